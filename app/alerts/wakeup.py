"""Waking stream subscribers when alert changes commit.

On PostgreSQL every alert change sends ``NOTIFY vigil_alert_changes`` with its clinic's id, which
the database delivers at commit to every listening connection; each server process keeps one,
and wakes that clinic's subscribers at once. The database stays the source of truth: a woken
subscriber reads the numbered change log, and subscribers still look on their own every few
seconds, so a notification lost with a dropped connection delays a change but never loses it.

SQLite has no notifications: subscribers look every half second, one indexed read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator

import psycopg
from sqlalchemy import Engine, bindparam, func, select
from sqlalchemy.orm import Session

from app.hotpath import Prepared

CHANNEL = "vigil_alert_changes"
# How long a subscriber waits before it looks anyway: without notifications, and with them.
POLL_SECONDS = 0.5
NOTIFIED_POLL_SECONDS = 5.0
RECONNECT_SECONDS = 1.0

log = logging.getLogger("vigil.alerts")
_NOTIFY = Prepared(select(func.pg_notify(CHANNEL, bindparam("clinic_id", type_=None))))


def notify(db: Session, clinic_id: uuid.UUID) -> None:
    """Tell every process, at commit, that ``clinic_id`` has a new alert change (PostgreSQL)."""
    if db.get_bind().dialect.name == "postgresql":
        _NOTIFY.execute(db, {"clinic_id": str(clinic_id)})


class Wakeups:
    """This process's subscribers, by clinic, and the connection that listens for them."""

    def __init__(self, engine: Engine) -> None:
        self.notifying = engine.dialect.name == "postgresql"
        self._conninfo = (
            engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            if self.notifying
            else ""
        )
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set while the LISTEN connection is up

    @property
    def poll_seconds(self) -> float:
        return NOTIFIED_POLL_SECONDS if self.listening.is_set() else POLL_SECONDS

    @contextlib.contextmanager
    def subscribe(self, clinic_id: uuid.UUID) -> Iterator[asyncio.Event]:
        """An event set whenever the clinic has a change; the listener starts with the first."""
        if self.notifying and self._listener is None:
            self._listener = asyncio.create_task(self._listen())
        event = asyncio.Event()
        waiters = self._waiters.setdefault(str(clinic_id), set())
        waiters.add(event)
        try:
            yield event
        finally:
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(str(clinic_id), None)

    async def wait(self, event: asyncio.Event) -> None:
        """Until the event is set or it is time to look anyway; then clear it."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), self.poll_seconds)
        event.clear()

    def wake(self, clinic_id: str) -> None:
        for event in self._waiters.get(clinic_id, ()):
            event.set()

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    # Changes may have committed while no one listened.
                    for clinic_id in list(self._waiters):
                        self.wake(clinic_id)
                    async for note in conn.notifies():
                        self.wake(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the subscribers poll meanwhile
                log.warning("alert notifications unavailable (%s); polling", type(exc).__name__)
            finally:
                self.listening.clear()
            await asyncio.sleep(RECONNECT_SECONDS)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
