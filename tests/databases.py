"""Throwaway databases for the tests: SQLite files and a PostgreSQL cluster of their own."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from app.migrate import upgrade


def postgres_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return candidates[-1].parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start a private PostgreSQL cluster on loopback; yields the server URL without database."""
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL binaries not found")
    root = Path(tempfile.mkdtemp(prefix="vigil-pg-"))
    data = root / "data"
    port = _free_port()
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as the postgres user
        shutil.chown(root, "postgres")
        root.chmod(0o700)
        prefix = ["runuser", "-u", "postgres", "--"]
    run = lambda *args: subprocess.run([*prefix, *args], check=True, capture_output=True)  # noqa: E731
    run(
        str(bindir / "initdb"),
        "-D",
        str(data),
        "-A",
        "trust",
        "-U",
        "vigil",
        "--no-sync",
        "-E",
        "UTF8",
    )
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    )
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(root / "log"),
        "-w",
        "start",
    )
    try:
        yield f"postgresql+psycopg://vigil@127.0.0.1:{port}"
    finally:
        stop = [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
        subprocess.run([*prefix, *stop], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


class Template:
    """A database migrated once by Alembic; each test gets a fresh copy of it."""

    def __init__(self, backend: str, workdir: Path, server_url: str | None = None) -> None:
        self.backend, self.workdir, self.server_url = backend, workdir, server_url
        if backend == "sqlite":
            self.template_path = workdir / "template.db"
            upgrade(f"sqlite:///{self.template_path}")
        else:
            assert server_url is not None
            self._admin = sa.create_engine(f"{server_url}/postgres", isolation_level="AUTOCOMMIT")
            with self._admin.connect() as conn:
                conn.exec_driver_sql("CREATE DATABASE vigil_template")
            upgrade(f"{server_url}/vigil_template")

    def fresh(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            path = self.workdir / f"{name}.db"
            shutil.copyfile(self.template_path, path)
            return f"sqlite:///{path}"
        with self._admin.connect() as conn:
            for attempt in range(20):
                try:
                    conn.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE vigil_template")
                    break
                except sa.exc.OperationalError:  # the template is briefly busy
                    time.sleep(0.1 * (attempt + 1))
        return f"{self.server_url}/{name}"

    def empty(self) -> str:
        """A database with no schema at all."""
        name = f"e_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            return f"sqlite:///{self.workdir / name}.db"
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        return f"{self.server_url}/{name}"
