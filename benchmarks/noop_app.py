"""The yardstick: a minimal FastAPI app that validates and echoes a reading-shaped body."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import FastAPI
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

app = FastAPI()


class Echo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    measured_at: AwareDatetime
    heart_rate: Annotated[int, Field(ge=0, le=300)] | None = None
    systolic: Annotated[int, Field(ge=20, le=300)] | None = None
    diastolic: Annotated[int, Field(ge=10, le=200)] | None = None
    spo2: Annotated[int, Field(ge=0, le=100)] | None = None
    respiratory_rate: Annotated[int, Field(ge=0, le=60)] | None = None
    source: Literal["manual", "device"] = "manual"


@app.post("/echo", status_code=201)
async def echo(body: Echo) -> Echo:
    return body


@app.get("/echo")
async def read() -> dict[str, datetime]:
    return {"at": datetime(2026, 1, 1)}
