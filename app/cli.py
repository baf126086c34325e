"""The ``vigil`` command."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from typing import Annotated

import orjson
import typer
from sqlalchemy.orm import Session, sessionmaker

from app.auth.roles import Role
from app.config import MULTIPROCESS_METRICS, get_settings

cli = typer.Typer(
    help="Vigil: in-session monitoring API for ketamine-infusion clinics.", no_args_is_help=True
)
keys_cli = typer.Typer(help="API keys.", no_args_is_help=True)
clinics_cli = typer.Typer(help="Clinics.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
cli.add_typer(clinics_cli, name="clinics")


def _migrated_sessionmaker() -> sessionmaker[Session]:
    from app.db import make_engine, make_sessionmaker
    from app.migrate import upgrade

    url = get_settings().database_url
    upgrade(url)
    return make_sessionmaker(make_engine(url))


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
) -> None:
    """Migrate the database to head, then serve the API."""
    import uvicorn

    from app.logs import logging_config
    from app.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    metrics_dir = None
    if workers > 1 and not os.environ.get(MULTIPROCESS_METRICS):
        # Each worker counts in files of its own here and /metrics adds them all up
        # (prometheus-client's multiprocess mode); otherwise a scrape shows one worker's counts.
        metrics_dir = tempfile.mkdtemp(prefix="vigil-metrics-")
        os.environ[MULTIPROCESS_METRICS] = metrics_dir
    try:
        uvicorn.run(
            "app.main:create_served_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level,
            log_config=logging_config(settings.log_level),
            # uvicorn's request lines carry the ids in paths: ours (logs.py) name the route.
            access_log=False,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


@cli.command()
def migrate() -> None:
    """Upgrade the database schema to the newest revision."""
    from app.migrate import upgrade

    upgrade(get_settings().database_url)


@keys_cli.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="nurse, clinician, dashboard, ehr or admin.")],
    clinic: Annotated[
        str | None, typer.Option(help="Clinic id (admin keys may be global).")
    ] = None,
    label: Annotated[str, typer.Option(help="A name for the key.")] = "",
) -> None:
    """Create an API key and print it (it is shown only this once)."""
    from app.auth.service import create_key
    from app.errors import AppError

    try:
        clinic_id = uuid.UUID(clinic) if clinic else None
    except ValueError:
        typer.echo(f"not a clinic id: {clinic}", err=True)
        raise typer.Exit(2) from None
    with _migrated_sessionmaker()() as db:
        try:
            _, secret = create_key(db, None, role, clinic_id, label)
        except AppError as exc:
            typer.echo(exc.detail, err=True)
            raise typer.Exit(1) from None
        db.commit()
    typer.echo(secret)


@clinics_cli.command("create")
def clinics_create(name: Annotated[str, typer.Argument(help="The clinic's name.")]) -> None:
    """Create a clinic and print its id."""
    from pydantic import ValidationError

    from app.auth.schemas import ClinicCreate
    from app.auth.service import create_clinic

    try:  # the same rules as POST /v1/clinics
        name = ClinicCreate(name=name).name
    except ValidationError:
        raise typer.BadParameter(
            "a clinic's name has 1 to 200 characters", param_hint="NAME"
        ) from None
    with _migrated_sessionmaker()() as db:
        clinic = create_clinic(db, None, name)
        db.commit()
        typer.echo(str(clinic.id))


@cli.command()
def demo() -> None:
    """Fill the database with a demo clinic, its keys and simulated sessions; print the keys.

    Each run adds a new demo clinic with new keys and leaves every existing clinic as it was.
    """
    from app.demo import CLINIC_NAME, create_demo

    with _migrated_sessionmaker()() as db:
        made = create_demo(db)
        db.commit()
    typer.echo(f"# {CLINIC_NAME}: {len(made.session_ids)} sessions; keys are shown only now")
    typer.echo(f"{'clinic':<10} {made.clinic_id}")
    for role, key in made.keys.items():
        typer.echo(f"{role.value:<10} {key}")


@cli.command()
def openapi() -> None:
    """Print the OpenAPI document (the committed openapi.json equals it)."""
    from app.main import create_app

    typer.echo(orjson.dumps(create_app().openapi(), option=orjson.OPT_INDENT_2).decode())


def main() -> None:
    cli()
