"""The floor: the no-op app plus the SQL a reading post runs, written by hand on one connection.

What the hardware allows a committed reading post in Python, with none of Vigil's work between
the statements (no key checks beyond the look-up, no rules, NEWS2, idempotency, response
building or audit fields of substance): one key look-up, one session look-up, the reading and
its audit row inserted, the five indexed look-ups the rules need, and the commit, on one
``sqlite3`` connection in WAL mode with Vigil's pragmas and a readings table indexed like
Vigil's. ``benchmarks/load.py --floor`` measures it beside the no-op, to show how much of the
gap to the no-op is the database and how much is the application.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import uuid
from datetime import UTC, datetime

from fastapi import FastAPI

from benchmarks.noop_app import Echo

app = FastAPI()
KEY = "floor-key"
_db = sqlite3.connect(os.environ["FLOOR_DB"], isolation_level=None, check_same_thread=False)
for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "mmap_size=1073741824",
               "cache_size=-32768"):  # fmt: skip
    _db.execute(f"PRAGMA {pragma}")
_VITALS = ("heart_rate", "systolic", "diastolic", "spo2", "respiratory_rate", "temperature_c",
           "consciousness")  # fmt: skip
_db.executescript(
    "CREATE TABLE keys (id TEXT PRIMARY KEY, hash TEXT UNIQUE, role TEXT, clinic TEXT);"
    "CREATE TABLE sessions (id TEXT PRIMARY KEY, clinic TEXT, status TEXT, started_at TEXT);"
    "CREATE TABLE readings (id TEXT PRIMARY KEY, session TEXT, clinic TEXT, measured_at TEXT,"
    " recorded_at TEXT, " + ", ".join(_VITALS) + ", source TEXT, status TEXT, by TEXT);"
    "CREATE INDEX readings_timeline ON readings (session, measured_at, id);"
    + "".join(
        f"CREATE INDEX readings_{v} ON readings (session, measured_at) WHERE {v} IS NOT NULL;"
        for v in _VITALS
        if v != "diastolic"
    )
    + "CREATE TABLE audit (seq INTEGER PRIMARY KEY, at TEXT, key TEXT, action TEXT, rid TEXT);"
    "CREATE INDEX audit_key ON audit (key, seq); CREATE INDEX audit_rid ON audit (rid, seq);"
)
KEY_ID, CLINIC, SESSION = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
_db.execute(
    "INSERT INTO keys VALUES (?, ?, 'nurse', ?)",
    (KEY_ID, hashlib.sha256(KEY.encode()).hexdigest(), CLINIC),
)
_db.execute("INSERT INTO sessions VALUES (?, ?, 'in_progress', '2026-01-01')", (SESSION, CLINIC))


@app.post("/echo", status_code=201)
async def record(body: Echo) -> Echo:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    measured = body.measured_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    reading_id = uuid.uuid4().hex
    db = _db
    db.execute("BEGIN IMMEDIATE")
    db.execute("SELECT id, role, clinic FROM keys WHERE hash = ?", (digest,)).fetchone()
    db.execute(
        "SELECT clinic, status, started_at FROM sessions WHERE id = ?", (SESSION,)
    ).fetchone()
    db.execute(
        "INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, 'final', ?)",
        (reading_id, SESSION, CLINIC, measured, now, body.heart_rate, body.systolic,
         body.diastolic, body.spo2, body.respiratory_rate, body.source, KEY_ID),
    )  # fmt: skip
    db.execute(
        "INSERT INTO audit (at, key, action, rid) VALUES (?, ?, 'reading.create', ?)",
        (now, KEY_ID, reading_id),
    )
    for vital in ("systolic", "respiratory_rate", "consciousness", "temperature_c"):
        db.execute(
            f"SELECT measured_at, {vital} FROM readings WHERE session = ? AND {vital} IS NOT NULL"
            " AND measured_at < ? ORDER BY measured_at DESC LIMIT 1",
            (SESSION, measured),
        ).fetchone()
    db.execute("SELECT max(measured_at) FROM readings WHERE session = ?", (SESSION,)).fetchone()
    db.execute("COMMIT")
    return body
