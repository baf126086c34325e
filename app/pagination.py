"""Query parameters shared by every list route."""

from typing import Annotated

from fastapi import Query

Limit = Annotated[int, Query(ge=1, le=500, description="Page size (default 100, max 500).")]
Cursor = Annotated[
    str | None, Query(max_length=512, description="Opaque cursor from a previous page.")
]
