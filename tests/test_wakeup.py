"""Stream subscribers are woken by the database's notifications where it has them."""

from __future__ import annotations

import asyncio
import uuid

from app.alerts.wakeup import NOTIFIED_POLL_SECONDS, POLL_SECONDS, Wakeups, notify
from app.db import make_engine, make_sessionmaker
from tests.factories import World, ago, started

HIGH_BP = {"systolic": 185, "diastolic": 95}


async def _woken_by_a_violation(wakeups: Wakeups, world: World, clinic_id: uuid.UUID) -> bool:
    session = started(world)
    other_clinic = uuid.uuid4()
    with wakeups.subscribe(clinic_id) as woken, wakeups.subscribe(other_clinic) as not_ours:
        await asyncio.wait_for(wakeups.listening.wait(), 30)
        await asyncio.sleep(0)  # on connecting, the listener wakes everyone once
        woken.clear()
        not_ours.clear()
        # Committed by the API's own transaction, as any server process would.
        await asyncio.to_thread(world.reading, session, measured_at=ago(5), **HIGH_BP)
        await asyncio.wait_for(woken.wait(), 30)
        assert not not_ours.is_set()
    return True


def test_an_alert_change_wakes_the_clinics_subscribers(world: World, database_url: str) -> None:
    engine = make_engine(database_url)
    wakeups = Wakeups(engine)
    clinic_id = world.clinic_id
    try:
        if engine.dialect.name == "postgresql":
            assert wakeups.notifying

            async def scenario() -> None:
                try:
                    assert await _woken_by_a_violation(wakeups, world, clinic_id)
                    assert wakeups.poll_seconds == NOTIFIED_POLL_SECONDS
                finally:
                    await wakeups.close()

            asyncio.run(scenario())
        else:
            # SQLite cannot notify: subscribers look on their own, twice a second.
            assert not wakeups.notifying
            assert wakeups.poll_seconds == POLL_SECONDS
            with make_sessionmaker(engine)() as db:
                notify(db, clinic_id)  # a no-op here, not an error
                db.commit()
    finally:
        engine.dispose()
