"""Load the running server on loopback and compare it with a no-op FastAPI app.

    python -m benchmarks.load [--seconds 5] [--clients 32] [--rounds 3] [--workers 1]
                              [--preload N] [--floor]

``--preload N`` first stores N readings in 1,000-reading sessions of the same clinic (straight
into the database, as a busy clinic's history would be), to show that costs do not grow with
the amount of data: compare a run with ``--preload 10000`` to one with ``--preload 1000000``.

``--floor`` also measures benchmarks/floor_app.py: the no-op plus a reading post's SQL written
by hand on one sqlite3 connection, the most a committed post can reach on this machine.

Starts `vigil serve` on a fresh SQLite database (or VIGIL_DATABASE_URL) and the no-op app of
benchmarks/noop_app.py under the same uvicorn, then measures each target in turn, alternating,
for a bounded time with keep-alive connections from one asyncio client process. Prints
throughput and p50/p99 latency per target and the ratio to the no-op.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not come up")


RequestFactory = Callable[[], bytes]


def request_bytes(
    method: str, path: str, port: int, token: str | None, body: bytes | None, *extra: str
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", *extra]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def _client(
    port: int, make: RequestFactory, stop_at: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(make())
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            status = int(status_line.split()[1])
            if status >= 400:
                errors.append(status)
    finally:
        writer.close()


async def _run(
    port: int, make: RequestFactory, seconds: float, clients: int
) -> tuple[list[float], list[int], float]:
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(_client(port, make, stop_at, latencies, errors) for _ in range(clients)))
    return latencies, errors, time.perf_counter() - started


def measure(port: int, make: RequestFactory, seconds: float, clients: int) -> dict[str, float]:
    latencies, errors, elapsed = asyncio.run(_run(port, make, seconds, clients))
    if errors:
        raise RuntimeError(f"{len(errors)} error responses, e.g. {errors[:3]}")
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "n": len(latencies),
    }


def with_client_id(body: bytes) -> bytes:
    """A tablet's post: a fresh id of its own each time, kept so that a retry replays it."""
    return b'{"id":"' + str(uuid.uuid4()).encode() + b'",' + body[1:]


def start_vigil(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port), "--workers", str(workers)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "app", *args], env=env, cwd=ROOT, check=True, capture_output=True
    )
    return out.stdout.decode().strip()


def preload(env: dict[str, str], base: str, auth: dict[str, str], total: int) -> None:
    """Store ``total`` readings in sessions of 1,000 readings each, one minute apart."""
    from sqlalchemy import select

    from app.auth.deps import hash_key
    from app.auth.models import ApiKey
    from app.db import make_engine, table_of
    from app.readings.models import Reading

    engine = make_engine(env["VIGIL_DATABASE_URL"])
    with engine.begin() as conn:
        key = conn.execute(
            select(ApiKey.id, ApiKey.clinic_id).where(
                ApiKey.key_hash == hash_key(auth["Authorization"].split()[1])
            )
        ).one()
    start = datetime(2025, 1, 1, tzinfo=UTC)
    per_session = 1000
    for first in range(0, total, per_session):
        patient = httpx.post(
            f"{base}/v1/patients", headers=auth, json={"mrn": uuid.uuid4().hex, "display_name": "P"}
        ).json()
        session = httpx.post(
            f"{base}/v1/sessions", headers=auth, json={"patient_id": patient["id"], "route": "iv"}
        ).json()
        rows = [
            {
                "id": uuid.uuid4(), "infusion_id": uuid.UUID(session["id"]),
                "clinic_id": key.clinic_id, "measured_at": start + timedelta(minutes=i),
                "recorded_at": start + timedelta(minutes=i), "heart_rate": 70 + i % 20,
                "systolic": 120 + i % 15, "diastolic": 80, "spo2": 97, "respiratory_rate": 14,
                "temperature_c": 36.8, "consciousness": "alert", "on_oxygen": False,
                "source": "device", "device_id": None, "status": "final",
                "entered_in_error_at": None, "entered_in_error_reason": None,
                "recorded_by": key.id, "request_hash": "preload",
            }
            for i in range(min(per_session, total - first))
        ]  # fmt: skip
        with engine.begin() as conn:
            conn.execute(table_of(Reading).insert(), rows)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="per target and round")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--preload", type=int, default=0, help="readings stored before measuring")
    parser.add_argument(
        "--floor", action="store_true", help="also measure the hand-written SQL floor"
    )
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="vigil-bench-")
    env = {**os.environ}
    env.setdefault("VIGIL_DATABASE_URL", f"sqlite:///{tmp}/bench.db")
    env["VIGIL_LOG_LEVEL"] = "warning"
    env["VIGIL_RATE_LIMIT_PER_MINUTE"] = "0"  # one key at thousands a second is the point here
    cli(env, "migrate")
    clinic = cli(env, "clinics", "create", "Benchmark clinic")
    token = cli(env, "keys", "create", "--role", "nurse", "--clinic", clinic)

    vigil_port, noop_port, floor_port = free_port(), free_port(), free_port()
    servers = [
        start_vigil(env, vigil_port, args.workers),
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "benchmarks.noop_app:app", "--port", str(noop_port),
             "--log-level", "warning", "--no-access-log", "--workers", str(args.workers)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
    ]  # fmt: skip
    if args.floor:
        servers.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "benchmarks.floor_app:app", "--port", str(floor_port),
             "--log-level", "warning", "--no-access-log", "--workers", str(args.workers)],
            cwd=ROOT, env={**os.environ, "FLOOR_DB": f"{tmp}/floor.db"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
    try:
        wait_ready(f"http://{HOST}:{vigil_port}/readyz")
        wait_ready(f"http://{HOST}:{noop_port}/echo")
        auth = {"Authorization": f"Bearer {token}"}
        base = f"http://{HOST}:{vigil_port}"
        patient = httpx.post(
            f"{base}/v1/patients",
            headers=auth,
            json={"mrn": uuid.uuid4().hex, "display_name": "Bench"},
        ).json()
        if args.preload:
            started = time.perf_counter()
            preload(env, base, auth, args.preload)
            print(f"preloaded {args.preload} readings in {time.perf_counter() - started:.0f} s")
        session = httpx.post(
            f"{base}/v1/sessions", headers=auth, json={"patient_id": patient["id"], "route": "iv"}
        ).json()
        # A session in progress: a baseline, then the start, so every rule judges the readings.
        now = datetime.now(UTC)
        baseline = {"measured_at": _iso(now - timedelta(minutes=2)), "heart_rate": 70,
                    "systolic": 120, "diastolic": 78, "spo2": 98, "respiratory_rate": 14}  # fmt: skip
        httpx.post(f"{base}/v1/sessions/{session['id']}/readings", headers=auth, json=baseline)
        httpx.post(
            f"{base}/v1/sessions/{session['id']}/start",
            headers=auth,
            json={"at": _iso(now - timedelta(minutes=1))},
        ).raise_for_status()
        reading = json.dumps(
            {"measured_at": _iso(now), "heart_rate": 72, "systolic": 118, "diastolic": 76,
             "spo2": 98}
        ).encode()  # fmt: skip
        httpx.post(
            f"{base}/v1/sessions/{session['id']}/readings", headers=auth, json=json.loads(reading)
        ).raise_for_status()
        # A dashboard's poll: the ETag of the alerts it already has, answered 304.
        etag = httpx.get(f"{base}/v1/alerts?status=active", headers=auth).headers["etag"]
        targets: dict[str, tuple[int, RequestFactory]] = {
            "no-op POST /echo": (noop_port, lambda r=request_bytes("POST", "/echo", noop_port, None, reading): r),
            "POST /v1/sessions/{id}/readings": (
                vigil_port,
                lambda r=request_bytes("POST", f"/v1/sessions/{session['id']}/readings", vigil_port, token, reading): r,
            ),
            "POST readings, with a client id": (
                vigil_port,
                lambda path=f"/v1/sessions/{session['id']}/readings": request_bytes(
                    "POST", path, vigil_port, token, with_client_id(reading)
                ),
            ),
            "no-op GET /echo": (noop_port, lambda r=request_bytes("GET", "/echo", noop_port, None, None): r),
            "GET /v1/sessions/{id}": (
                vigil_port, lambda r=request_bytes("GET", f"/v1/sessions/{session['id']}", vigil_port, token, None): r
            ),
            "GET /v1/alerts (304)": (
                vigil_port,
                lambda r=request_bytes("GET", "/v1/alerts?status=active", vigil_port, token, None,
                                       f"If-None-Match: {etag}"): r,
            ),
        }  # fmt: skip
        if args.floor:
            wait_ready(f"http://{HOST}:{floor_port}/openapi.json")
            floor = request_bytes("POST", "/echo", floor_port, None, reading)
            targets = {
                **dict(list(targets.items())[:2]),
                "floor POST (hand-written SQL)": (floor_port, lambda r=floor: r),
                **dict(list(targets.items())[2:]),
            }
        results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, (port, make) in targets.items():
                results[name].append(measure(port, make, args.seconds, args.clients))
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)  # a million readings take most of a gigabyte

    print(
        f"{args.clients} clients, {args.rounds} rounds x {args.seconds:g} s per target, "
        f"{args.workers} worker(s), {args.preload} preloaded readings"
    )
    print(f"{'target':34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs no-op':>9}")
    summary = {
        name: {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50_ms", "p99_ms")}
        for name, runs in results.items()
    }
    yardstick = {
        "POST": summary["no-op POST /echo"]["rps"],
        "GET": summary["no-op GET /echo"]["rps"],
    }
    for name, row in summary.items():
        method = name.split()[1] if name.startswith(("no-op", "floor")) else name.split()[0]
        ratio = row["rps"] / yardstick[method]
        print(f"{name:34} {row['rps']:8.0f} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {ratio:8.0%}")


if __name__ == "__main__":
    main()
