"""Crash safety: a server killed with SIGKILL under load keeps what it acknowledged.

A real ``vigil serve`` takes concurrent readings (some raising alerts) and is killed in the
middle of the load. Restarted on the same database, it must have stored every reading it
answered 201 to, exactly as answered; each reading whose answer was lost must be stored whole
or not at all (a retry with its client id settles it); and the alerts must agree with the
readings that are stored, as if every request had run alone.
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import World, iso, started
from tests.live import READY_TIMEOUT_S, ROOT, VIGIL

THREADS = 6
PLANNED = 600  # more than the load gets through before the kill
KILL_AFTER = 50  # readings answered 201
BASELINE = {"systolic": 124, "diastolic": 78, "heart_rate": 72}  # what started() measures

# Kinds of reading in the load: vitals, and the rules they violate (PROTOCOL.md defaults).
KINDS: list[tuple[dict[str, int], int]] = [
    ({"systolic": 124, "diastolic": 78, "heart_rate": 72}, 8),  # nothing
    ({"systolic": 185, "diastolic": 95, "heart_rate": 76}, 3),  # systolic high, rise
    ({"systolic": 165, "diastolic": 88, "heart_rate": 80}, 2),  # systolic medium, rise
    ({"systolic": 130, "diastolic": 104, "heart_rate": 74}, 2),  # diastolic medium, rise
    ({"systolic": 128, "diastolic": 80, "heart_rate": 135}, 2),  # heart rate high
    ({"systolic": 86, "diastolic": 52, "heart_rate": 48}, 1),  # systolic low, heart rate low
]
SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3}


def violations(reading: dict[str, Any]) -> dict[str, str]:
    """The reading rules a reading violates, with their severity: rule -> severity."""
    found: dict[str, str] = {}

    def grade(rule: str, value: int | None, medium: int, high: int, above: bool) -> None:
        if value is None:
            return
        sign = 1 if above else -1  # "at or above" a limit, or "at or below" it
        if sign * value >= sign * high:
            found[rule] = "high"
        elif sign * value >= sign * medium:
            found[rule] = "medium"

    systolic, diastolic = reading.get("systolic"), reading.get("diastolic")
    grade("bp.systolic.high", systolic, 160, 180, above=True)
    grade("bp.systolic.low", systolic, 90, 80, above=False)
    grade("bp.diastolic.high", diastolic, 100, 110, above=True)
    grade("hr.high", reading.get("heart_rate"), 110, 130, above=True)
    grade("hr.low", reading.get("heart_rate"), 50, 40, above=False)
    if systolic is not None and reading.get("phase", "intra") != "pre":
        assert diastolic is not None
        if systolic >= BASELINE["systolic"] + 40 or diastolic >= BASELINE["diastolic"] + 25:
            found["bp.rise_from_baseline"] = "medium"
    return found


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- the server ------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``vigil serve`` (one worker) in a process group of its own."""

    def __init__(self, database_url: str, log: Path) -> None:
        self.log_path = log
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("wb")
        env = {**os.environ, "VIGIL_DATABASE_URL": database_url, "VIGIL_LOG_LEVEL": "warning"}
        self.process = subprocess.Popen(
            [str(VIGIL), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"vigil serve exited early: {self.log()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                pytest.fail(f"vigil serve not ready: {self.log()}")
            time.sleep(0.1)  # polling for readiness

    def kill(self) -> None:
        """SIGKILL, no goodbye: the whole group, as a power cut of the process would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def close(self) -> None:
        self.kill()
        self._log.close()
        # Captured by pytest and shown only when the test fails: the server's side.
        sys.stderr.write(f"--- {self.log_path.name}\n{self.log()[-10000:]}\n")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def serving(database_url: str, log: Path) -> Iterator[Server]:
    server = Server(database_url, log)
    try:
        server.wait_ready()
        yield server
    finally:
        server.close()


# --- the load ----------------------------------------------------------------------------------
@dataclass
class Attempt:
    body: dict[str, Any]
    status: int | None = None  # None: no answer (the server died first)
    answer: dict[str, Any] | None = None
    error: str | None = None
    sent: bool = False

    @property
    def id(self) -> str:
        return str(self.body["id"])


class Load:
    """Threads posting planned readings until the server goes away or they run out."""

    def __init__(self, base_url: str, headers: dict[str, str], session_id: str) -> None:
        self.path = f"/v1/sessions/{session_id}/readings"
        self.base_url, self.headers = base_url, headers
        rng = random.Random(20261121)
        first = datetime.now(UTC) - timedelta(minutes=5)
        self.attempts = [
            Attempt(
                {
                    "id": str(uuid.uuid4()),
                    # Distinct bedside times: alerts' first and last evidence are well defined.
                    "measured_at": iso(first + timedelta(milliseconds=250 * i)),
                    **rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0],
                }
            )
            for i in range(PLANNED)
        ]
        self._todo: queue.Queue[Attempt] = queue.Queue()
        for attempt in self.attempts:
            self._todo.put(attempt)
        self.created = 0
        self._lock = threading.Lock()
        self.stop = threading.Event()
        self._threads = [threading.Thread(target=self._post, daemon=True) for _ in range(THREADS)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _post(self) -> None:
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=30) as http:
            while not self.stop.is_set():
                try:
                    attempt = self._todo.get_nowait()
                except queue.Empty:
                    return
                attempt.sent = True
                try:
                    response = http.post(self.path, json=attempt.body)
                except httpx.TransportError as exc:
                    attempt.error = repr(exc)
                    return  # the server is gone
                attempt.status = response.status_code
                try:
                    attempt.answer = response.json()
                except ValueError:  # not JSON: kept for the failure message
                    attempt.answer = {"text": response.text}
                with self._lock:
                    self.created += response.status_code == 201

    def wait_for(self, created: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.created < created:
            assert all(t.is_alive() for t in self._threads), "a load thread stopped early"
            assert time.monotonic() < deadline, f"only {self.created} readings within {timeout} s"
            time.sleep(0.01)

    def join(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
            assert not thread.is_alive()

    def answered(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status is not None]

    def lost(self) -> list[Attempt]:
        return [a for a in self.attempts if a.sent and a.status is None]


# --- reading the restarted server --------------------------------------------------------------
def all_pages(http: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        response = http.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def stored_readings(http: httpx.Client, session_id: str) -> dict[str, dict[str, Any]]:
    items = all_pages(
        http, f"/v1/sessions/{session_id}/readings", limit=37, include_entered_in_error=True
    )
    ids = [r["id"] for r in items]
    assert len(ids) == len(set(ids)), "a reading is stored twice"
    assert [(r["measured_at"], r["id"]) for r in items] == sorted(
        (r["measured_at"], r["id"]) for r in items
    )
    return {r["id"]: r for r in items}


def check_alerts(readings: dict[str, dict[str, Any]], alerts: list[dict[str, Any]]) -> None:
    """The session's alerts are what its stored readings call for, whatever the order they ran.

    Nobody acknowledges or resolves in this test, so each violated rule has one open alert that
    counts every violating reading; an alert without a violating reading is a phantom.
    """
    evidence: dict[str, list[dict[str, Any]]] = {}
    for reading in readings.values():
        if reading["status"] == "final":
            for rule in violations(reading):
                evidence.setdefault(rule, []).append(reading)
    active = [a for a in alerts if a["status"] in ("open", "acknowledged")]
    rules = [a["rule"] for a in active]
    assert len(rules) == len(set(rules)), f"two active alerts for one rule: {sorted(rules)}"
    assert all(a["status"] == "open" for a in alerts), [a for a in alerts if a["status"] != "open"]
    assert set(rules) == set(evidence), "alerts without evidence, or evidence without an alert"
    for alert in active:
        rule, seen = alert["rule"], evidence[alert["rule"]]
        by_time = sorted(seen, key=lambda r: moment(r["measured_at"]))
        assert alert["count"] == len(seen), (rule, alert["count"], len(seen))
        assert alert["severity"] == max(
            (violations(r)[rule] for r in seen), key=SEVERITY_RANK.__getitem__
        ), rule
        # Bedside times: from the earliest measured evidence, in whatever order it arrived.
        assert moment(alert["first_seen_at"]) == moment(by_time[0]["measured_at"]), rule
        assert moment(alert["last_seen_at"]) == moment(by_time[-1]["measured_at"]), rule
        assert alert["reading_id"] == by_time[-1]["id"], rule
        if alert["cleared_at"] is not None:  # by a stored reading that does not violate it
            clearing = [
                r
                for r in readings.values()
                if moment(r["measured_at"]) == moment(alert["cleared_at"])
                and r["status"] == "final"
                and rule not in violations(r)
            ]
            assert clearing, (rule, alert["cleared_at"])
            assert moment(alert["cleared_at"]) >= moment(alert["last_seen_at"]), rule


def check_audit(
    http: httpx.Client, readings: dict[str, dict[str, Any]], attempted: set[str]
) -> None:
    """Each stored reading was audited once, in its transaction; no audit of one not stored."""
    entries = all_pages(http, "/v1/audit", limit=500)
    audited = [e["resource_id"] for e in entries if e["action"] == "reading.create"]
    assert len(audited) == len(set(audited)), "a reading audited twice"
    assert set(audited) & attempted == set(readings) & attempted


def test_readings_acknowledged_before_a_kill_survive_it_and_alerts_agree(
    database_url: str, tmp_path: Path
) -> None:
    with serving(database_url, tmp_path / "server-1.log") as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            world = World.create(http, database_url)  # type: ignore[arg-type]
            session = started(world)
            [baseline] = world.readings(session)
        load = Load(server.url, world.nurse.headers, session["id"])
        load.start()
        try:
            load.wait_for(KILL_AFTER)
        finally:
            server.kill()  # in the middle of the load
            load.join()

    answered, lost = load.answered(), load.lost()
    assert [a.answer for a in answered if a.status != 201] == []
    assert len(answered) >= KILL_AFTER
    attempted = {a.id for a in answered + lost}

    with (
        serving(database_url, tmp_path / "server-2.log") as server,
        httpx.Client(base_url=server.url, timeout=30, headers=world.nurse.headers) as http,
    ):
        readings = stored_readings(http, session["id"])
        assert set(readings) <= attempted | {baseline["id"]}, "a reading nobody sent"
        assert readings[baseline["id"]] == baseline

        # Every 201 is stored, exactly as it was answered.
        for attempt in answered:
            assert attempt.answer is not None
            stored = readings.get(attempt.id)
            assert stored is not None, f"reading {attempt.id} was answered 201 but is lost"
            assert stored == {k: attempt.answer[k] for k in stored}
        # The answer told the truth about the alerts it opened or updated.
        for attempt in answered:
            assert attempt.answer is not None
            told = {a["rule"] for a in attempt.answer["alerts"]}
            assert set(violations(attempt.body)) <= told, (attempt.body, told)

        # A reading whose answer was lost is stored whole or not at all.
        for attempt in lost:
            stored = readings.get(attempt.id)
            if stored is not None:
                sent = {k: stored[k] for k in attempt.body}
                assert sent == attempt.body, "a lost request was stored in part"
                assert (stored["status"], stored["phase"]) == ("final", "intra")
                assert stored["session_id"] == session["id"]

        alerts_path = "/v1/alerts"
        alert_params = {"session_id": session["id"], "limit": 7}
        check_alerts(readings, all_pages(http, alerts_path, **alert_params))
        admin = {"Authorization": world.global_admin.headers["Authorization"]}
        with httpx.Client(base_url=server.url, timeout=30, headers=admin) as admin_http:
            check_audit(admin_http, readings, attempted)

        # Retrying with the same client id settles every attempt: 201, stored once.
        for attempt in [*lost, *answered]:
            response = http.post(f"/v1/sessions/{session['id']}/readings", json=attempt.body)
            assert response.status_code == 201, response.text
            again = response.json()
            if attempt.id in readings:  # a replay: the stored reading, unchanged
                assert {k: again[k] for k in readings[attempt.id]} == readings[attempt.id]
            else:
                assert {k: again[k] for k in attempt.body} == attempt.body
        final = stored_readings(http, session["id"])
        assert set(final) == attempted | {baseline["id"]}
        assert all(final[i] == r for i, r in readings.items()), "a replay changed a reading"
        check_alerts(final, all_pages(http, alerts_path, **alert_params))
        with httpx.Client(base_url=server.url, timeout=30, headers=admin) as admin_http:
            check_audit(admin_http, final, attempted)

    stored_lost = sum(a.id in readings for a in lost)
    print(f"{len(answered)} answered, {len(lost)} lost of which {stored_lost} had been stored")
