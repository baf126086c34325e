"""A real ``vigil serve`` process (several workers) on the test's database, for concurrency tests."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import World

ROOT = Path(__file__).resolve().parent.parent
VIGIL = Path(sys.executable).parent / "vigil"
READY_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server (uvicorn stops its workers), then SIGKILL its own process group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
    # The group is this server's alone (start_new_session): reap any stray worker.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=15)


@pytest.fixture
def live_server(database_url: str, tmp_path: Path, server_log_level: str) -> Iterator[str]:
    """The base URL of ``vigil serve --workers 2`` on ``database_url``; stopped in all cases."""
    port = _free_port()
    log = (tmp_path / "server.log").open("wb")
    env = {**os.environ, "VIGIL_DATABASE_URL": database_url, "VIGIL_LOG_LEVEL": server_log_level}
    process = subprocess.Popen(
        [str(VIGIL), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"vigil serve exited early: {(tmp_path / 'server.log').read_text()}")
            try:
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vigil serve not ready: {(tmp_path / 'server.log').read_text()}")
            time.sleep(0.1)  # polling for readiness
        yield base_url
    finally:
        _stop(process)
        log.close()
        # Captured by pytest and shown only when the test fails: the server's side of the story.
        sys.stderr.write((tmp_path / "server.log").read_text(errors="replace")[-20000:])


# --- Server-Sent Events subscribers, appended for the alert stream tests -------------------------
class SseEvent:
    """One event of a text/event-stream: its ``event``, ``id`` and ``data`` (parsed as JSON)."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.event, self.id = fields.get("event"), fields.get("id")
        self.data: Any = json.loads(fields["data"]) if "data" in fields else None

    def __repr__(self) -> str:
        alert = self.data if isinstance(self.data, dict) else {}
        return f"SseEvent({self.event}, id={self.id}, {alert.get('rule')}, {alert.get('status')})"


def alert_change(session_id: str, rule: str, **expected: Any) -> Callable[[SseEvent], bool]:
    """Matches an event about ``rule`` in the session whose alert has the ``expected`` fields."""

    def matches(event: SseEvent) -> bool:
        alert = event.data
        return (alert["session_id"], alert["rule"]) == (session_id, rule) and all(
            alert[k] == v for k, v in expected.items()
        )

    return matches


class AlertStream:
    """``GET /v1/alerts/stream`` read on a thread, so a test waits for events with a timeout."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.status_code, self.content_type = 0, ""
        self._queue: queue.Queue[SseEvent | BaseException] = queue.Queue()
        self._opened = threading.Event()
        self._response: httpx.Response | None = None
        self._client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(10, read=120))
        self._thread = threading.Thread(target=self._read, args=(headers,), daemon=True)
        self._thread.start()
        assert self._opened.wait(15), "the alert stream did not answer"

    def _read(self, headers: dict[str, str]) -> None:
        try:
            with self._client.stream("GET", "/v1/alerts/stream", headers=headers) as response:
                self._response = response
                self.status_code = response.status_code
                self.content_type = response.headers.get("content-type", "")
                self._opened.set()
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if not line:
                        if fields:
                            self._queue.put(SseEvent(fields))
                        fields = {}
                    elif not line.startswith(":"):  # a comment (keep-alive) is no event
                        name, _, value = line.partition(":")
                        value = value.removeprefix(" ")
                        fields[name] = f"{fields[name]}\n{value}" if name in fields else value
        except BaseException as exc:  # handed to the test, not lost in the thread
            self._queue.put(exc)
        finally:
            self._opened.set()

    def poll(self, timeout: float) -> SseEvent | None:
        """The next event, or None if none arrives within ``timeout`` seconds."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise AssertionError(f"the stream broke: {item!r}")
        return item

    def next(self, timeout: float = 10) -> SseEvent:
        event = self.poll(timeout)
        assert event is not None, f"no event within {timeout} s"
        return event

    def until(self, done: Callable[[SseEvent], bool], timeout: float = 15) -> list[SseEvent]:
        """Every event up to and including the first for which ``done`` is true."""
        deadline = time.monotonic() + timeout
        events: list[SseEvent] = []
        while not events or not done(events[-1]):
            events.append(self.next(max(0.1, deadline - time.monotonic())))
        return events

    def follow(self, change: Callable[[], str], timeout: float = 30) -> SseEvent:
        """Call ``change`` (it changes an alert and names its session) until an event arrives.

        The stream is then surely live. Its first event must be of that session: a stream opened
        without Last-Event-ID sends nothing from before it connected.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            session_id = change()
            event = self.poll(timeout=2)
            if event is not None:
                assert event.data["session_id"] == session_id, event
                return event
        raise AssertionError(f"the stream showed no change within {timeout} s")

    def ended(self, timeout: float) -> bool:
        """Whether the server closed the stream within ``timeout`` seconds."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        """Shut the socket down (this wakes the reading thread) so the server sees the client go."""
        if self._response is not None:
            stream = self._response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self._client.close()


@pytest.fixture
def alert_stream(live_server: str) -> Iterator[Callable[..., AlertStream]]:
    """Open subscriptions to the live server's alert stream: ``alert_stream(headers)``."""
    opened: list[AlertStream] = []

    def subscribe(headers: dict[str, str], last_event_id: str | None = None) -> AlertStream:
        extra = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
        opened.append(AlertStream(live_server, {**headers, **extra}))
        return opened[-1]

    yield subscribe
    for subscription in opened:
        subscription.close()


@pytest.fixture
def live_world(live_server: str, database_url: str) -> Iterator[World]:
    """A World that speaks to the live server, every request on a new connection (any worker)."""
    fresh = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=live_server, timeout=60, limits=fresh) as http:
        yield World.create(http, database_url)  # type: ignore[arg-type]
