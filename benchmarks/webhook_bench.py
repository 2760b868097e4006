"""Webhook receiver benchmark: acknowledgement latency on loopback, and duplicate storms.

    python benchmarks/webhook_bench.py [--rate 200] [--seconds 10] [--storm 1000] [--backlog 1000]
                                       [--phases load,backlog]

Runs the real service (FastAPI under uvicorn, the receiver core, SQLite queue and state
store, the worker thread) in a child process, with a fake launcher that counts launches
and a gate that always says EXCEEDED, so nothing but the webhook path is measured.

1. Open-loop load at ``--rate`` requests/s of distinct TRIGGERED alerts (basic auth):
   throughput and p50/p99 acknowledgement latency, measured from each request's
   scheduled send time (no coordinated omission). Baseline, measured in the same run:
   the same uvicorn/FastAPI stack answering a bare route that does no work. Then again
   with ``webhook.fsync_acks`` on (every answer waits for a disk sync).
   Target: p99 < 50 ms at 200 requests/s.
2. Saturation: 32 clients back to back for 3 s; requests/s.
3. ``--storm`` concurrent deliveries of one alert: exactly one launch.
4. Backlog (``--phases backlog``), with the real audit table: how long a TRIGGERED alert waits
   behind ``--backlog`` OK deliveries, against the same alert on an idle queue in the same
   run, and how many audit commits the OK deliveries cost (they are written in batches).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
USER, PASSWORD = "bench", "bench-pass-0123456789"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
        "Content-Type": "application/json"}


# -- the server (child process) ---------------------------------------------------------------

def serve(port: int, state_dir: str) -> None:
    import uvicorn
    from fastapi import FastAPI

    from driftgate.core.settings import load_settings
    from driftgate.triggers.webhook.auth import Credentials
    from driftgate.triggers.webhook.service import create_app, open_webhook
    from driftgate.workspace.jobs import FakeJobLauncher

    class Exceeded:
        status = "EXCEEDED"
        reasons = ["bench"]
        decision_id = "bench"

        def __init__(self, *, run_key=None):
            self.run_key = run_key

    cooldown = os.environ.get("BENCH_COOLDOWN", "3600")
    settings = load_settings(ROOT / "conf", "local", (f"workspace.root={state_dir}",
                                                      f"webhook.min_time_between_triggers_seconds={cooldown}",
                                                      f"webhook.fsync_acks={os.environ.get('BENCH_FSYNC', 'false')}"))
    launcher = FakeJobLauncher()
    audit, ws = (lambda *a, **k: None), None
    if os.environ.get("BENCH_AUDIT") == "workspace":  # the real audit table (one Delta commit per write)
        from driftgate.triggers.webhook.worker import audit_to_workspace
        from driftgate.workspace import open_workspace

        ws = open_workspace(settings)
        audit = audit_to_workspace(ws)
    wh = open_webhook(settings, credentials=Credentials(USER, PASSWORD), launcher=launcher, gate=Exceeded,
                      audit=audit, state_dir=state_dir)
    app = create_app(wh, run_worker=not os.environ.get('BENCH_NO_WORKER'))

    @app.get("/bench/launches")
    def launches(run_key: str | None = None):
        row = wh.receiver.queue.get(run_key) if run_key else None
        commits = None
        if ws is not None:
            from driftgate.workspace.audit import events_table

            table = events_table(ws)
            commits = ws.tables.version(table) + 1 if ws.tables.exists(table) else 0
        return {"launches": launcher.launches, "queue": wh.receiver.queue.counts(),
                "launches_of_key": sum(r.run_key == run_key for r in launcher.requests),
                "outcome": row["outcome"] if row else None, "audit_commits": commits}

    @app.post("/bench/bare", status_code=202)
    async def bare():
        return {"status": "queued"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- the load (this process) -----------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _body(i: int, alert_id: str | None = None, state: str = "TRIGGERED") -> bytes:
    return json.dumps({"driftgate": 1, "alert_id": alert_id or f"bench-{i}", "alert_name": "predictions drift",
                       "state": state, "evaluated_at": "2026-08-01T09:00:00Z", "value": "0.31",
                       "threshold": "0.2"}).encode()


class RawClient:
    """A minimal keep-alive HTTP/1.1 client on asyncio streams.

    The load generator shares two cores with the server; a full client library would
    spend more CPU per request than the server does and measure itself.
    """

    def __init__(self, host: str, port: int, connections: int):
        self.host, self.port, self.size = host, port, connections
        self.pool: asyncio.Queue | None = None

    async def __aenter__(self):
        self.pool = asyncio.Queue()
        for _ in range(self.size):
            self.pool.put_nowait(await asyncio.open_connection(self.host, self.port))
        return self

    async def __aexit__(self, *exc):
        while not self.pool.empty():
            _, writer = self.pool.get_nowait()
            writer.close()

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None):
        reader, writer = await self.pool.get()
        try:
            head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
            writer.write(head.encode() + b"\r\n" + body)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            payload = await reader.readexactly(length)
            return int(status_line.split()[1]), payload
        except Exception:
            writer.close()
            reader, writer = await asyncio.open_connection(self.host, self.port)
            raise
        finally:
            self.pool.put_nowait((reader, writer))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def open_loop(client, path: str, rate: float, seconds: float, tag: str) -> dict:
    n = int(rate * seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter() + 0.2

    async def one(i: int):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        code, _ = await client.request("POST", path, _body(i, f"{tag}-{i}"), AUTH)
        latencies.append(time.perf_counter() - scheduled)
        if os.environ.get("BENCH_TRACE"):
            print(f"{tag} {i} {1000 * (time.perf_counter() - scheduled):.1f}", file=sys.stderr)
        statuses[code] = statuses.get(code, 0) + 1

    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - start
    return {"n": n, "throughput": n / elapsed, "p50_ms": 1000 * _pct(latencies, 0.5),
            "p99_ms": 1000 * _pct(latencies, 0.99), "mean_ms": 1000 * statistics.fmean(latencies), "statuses": statuses}


async def saturate(client, path: str, seconds: float, clients: int = 32) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(w: int):
        nonlocal done
        i = 0
        while time.perf_counter() < stop:
            await client.request("POST", path, _body(i, f"sat-{w}-{i}"), AUTH)
            done += 1
            i += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(clients)))
    return done / (time.perf_counter() - t0)


async def storm(host: str, port: int, n: int) -> dict:
    body = _body(0, "storm-alert")
    async with RawClient(host, port, n) as client:
        gate = asyncio.Event()

        async def one():
            await gate.wait()
            return (await client.request("POST", "/v1/alerts/databricks-sql", body, AUTH))[0]

        tasks = [asyncio.create_task(one()) for _ in range(n)]
        await asyncio.sleep(0.1)
        t0 = time.perf_counter()
        gate.set()
        codes = await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    counts: dict[int, int] = {}
    for c in codes:
        counts[c] = counts.get(c, 0) + 1
    return {"codes": counts, "seconds": elapsed}


async def _launches(host: str, port: int, key: str | None = None) -> dict:
    async with RawClient(host, port, 1) as client:
        query = f"?run_key={key}" if key else ""
        return json.loads((await client.request("GET", f"/bench/launches{query}"))[1])


async def load_phase(host: str, port: int, args) -> dict:
    async with RawClient(host, port, 64) as client:
        for _ in range(20):  # warm up both routes
            await client.request("POST", "/bench/bare", _body(0), AUTH)
            await client.request("POST", "/v1/alerts/databricks-sql", _body(0, "warmup"), AUTH)
        bare = await open_loop(client, "/bench/bare", args.rate, args.seconds, "bare")
        real = await open_loop(client, "/v1/alerts/databricks-sql", args.rate, args.seconds, "load")
        sat_bare = await saturate(client, "/bench/bare", 3)
        sat_real = await saturate(client, "/v1/alerts/databricks-sql", 3)
    state = await _launches(host, port)
    return {"bare": bare, "real": real, "sat_bare": sat_bare, "sat_real": sat_real, "state": state}


async def synced_phase(host: str, port: int, args) -> dict:
    async with RawClient(host, port, 64) as client:
        for _ in range(20):
            await client.request("POST", "/v1/alerts/databricks-sql", _body(0, "warmup"), AUTH)
        return await open_loop(client, "/v1/alerts/databricks-sql", args.rate, args.seconds, "synced")


async def storm_phase(host: str, port: int, args) -> dict:
    result = await storm(host, port, args.storm)
    storm_key = "alert:storm-alert:20260801T090000Z"
    deadline = time.perf_counter() + 60
    while True:  # wait until the worker has dealt with the storm's key
        state = await _launches(host, port, storm_key)
        if state["outcome"] is not None or time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.2)
    return {**result, "state": state}


async def _wait_launched(host: str, port: int, key: str, deadline_s: float = 300) -> float:
    """Seconds from now until the worker has launched ``key``."""
    t0 = time.perf_counter()
    while (await _launches(host, port, key))["launches_of_key"] < 1:
        if time.perf_counter() - t0 > deadline_s:
            return float("inf")
        await asyncio.sleep(0.02)
    return time.perf_counter() - t0


async def backlog_phase(host: str, port: int, args) -> dict:
    """A TRIGGERED alert alone (baseline), then one behind ``args.backlog`` OK deliveries, with the real
    audit table: how long it waits, and how many audit commits the OK deliveries cost."""
    async with RawClient(host, port, 16) as client:
        await client.request("POST", "/v1/alerts/databricks-sql", _body(0, "alone"), AUTH)
        alone = await _wait_launched(host, port, "alert:alone:20260801T090000Z")
        before = (await _launches(host, port))["audit_commits"]
        await asyncio.gather(*(client.request("POST", "/v1/alerts/databricks-sql", _body(i, f"ok-{i}", "OK"), AUTH)
                               for i in range(args.backlog)))
        await client.request("POST", "/v1/alerts/databricks-sql", _body(0, "behind"), AUTH)
        behind = await _wait_launched(host, port, "alert:behind:20260801T090000Z")
    deadline = time.perf_counter() + 600
    while True:  # until every OK delivery is recorded
        state = await _launches(host, port)
        if not state["queue"].get("queued") and not state["queue"].get("taken") or time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.2)
    return {"alone_s": alone, "behind_s": behind, "ok_commits": state["audit_commits"] - before - 3}


def report_backlog(args, backlog: dict) -> None:
    print(f"priority: a TRIGGERED alert behind {args.backlog} OK deliveries was launched after "
          f"{backlog['behind_s']:.2f} s; alone {backlog['alone_s']:.2f} s (ratio "
          f"{backlog['behind_s'] / backlog['alone_s']:.2f}x); the {args.backlog} OK deliveries cost "
          f"{backlog['ok_commits']} audit commit(s)")


def report(args, load: dict, st: dict, synced: dict) -> None:
    bare, real, sat_bare, sat_real = load["bare"], load["real"], load["sat_bare"], load["sat_real"]
    launched = st["state"]["launches_of_key"]
    print(f"webhook ack latency at {args.rate:.0f} req/s for {args.seconds:.0f} s on loopback "
          f"({real['n']} distinct TRIGGERED alerts, basic auth, worker running)")
    print(f"{'':24}{'throughput':>12}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}  statuses")
    for name, r in (("bare FastAPI route", bare), ("receiver", real), ("receiver, fsync_acks", synced)):
        print(f"{name:24}{r['throughput']:12.1f}{r['p50_ms']:10.2f}{r['p99_ms']:10.2f}{r['mean_ms']:10.2f}  "
              f"{r['statuses']}")
    print(f"ratio receiver/bare: p50 {real['p50_ms'] / bare['p50_ms']:.2f}x, p99 {real['p99_ms'] / bare['p99_ms']:.2f}x; "
          f"with fsync_acks: p50 {synced['p50_ms'] / bare['p50_ms']:.2f}x, p99 {synced['p99_ms'] / bare['p99_ms']:.2f}x")
    target = "MET" if real["p99_ms"] < 50 else "MISSED"
    print(f"target p99 < 50 ms at {args.rate:.0f} req/s: {target} ({real['p99_ms']:.1f} ms)")
    print(f"saturation (32 clients, 3 s): receiver {sat_real:.0f} req/s, bare route {sat_bare:.0f} req/s, "
          f"ratio {sat_real / sat_bare:.2f}")
    print(f"storm (fresh service): {args.storm} concurrent deliveries of one alert in {st['seconds']:.2f} s: "
          f"answers {st['codes']}, launches {launched} (expected exactly 1): {'OK' if launched == 1 else 'FAILED'}, "
          f"total launches {st['state']['launches']}")
    print(f"(worker during the load phase: {load['state']['launches']} launch(es), queue {load['state']['queue']}; "
          f"cooldown {os.environ.get('BENCH_COOLDOWN', '3600')} s; load average at the end "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--storm", type=int, default=1000)
    parser.add_argument("--backlog", type=int, default=1000, help="OK deliveries ahead of a TRIGGERED one")
    parser.add_argument("--phases", default="load,backlog", help="comma-separated: load (incl. fsync and storm), "
                                                                 "backlog")
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "STATE_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1])
        return
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    phases = args.phases.split(",")
    if "load" in phases:
        with server() as port:
            load = asyncio.run(load_phase("127.0.0.1", port, args))
        with server(BENCH_FSYNC="true") as port:
            synced = asyncio.run(synced_phase("127.0.0.1", port, args))
        with server() as port:
            st = asyncio.run(storm_phase("127.0.0.1", port, args))
        report(args, load, st, synced)
    if "backlog" in phases:
        with server(BENCH_AUDIT="workspace", BENCH_COOLDOWN="0") as port:
            report_backlog(args, asyncio.run(backlog_phase("127.0.0.1", port, args)))


@contextmanager
def server(**env: str) -> Iterator[int]:
    """A fresh benchmark service in a child process, on a free port, with its own state."""
    from driftgate.triggers.webhook.service import wait_until_healthy

    port = _free_port()
    with tempfile.TemporaryDirectory() as state:
        child = subprocess.Popen([sys.executable, __file__, "--serve", str(port), state], cwd=ROOT,
                                 env={**os.environ, **env})
        try:
            try:
                wait_until_healthy(f"http://127.0.0.1:{port}", child)
            except RuntimeError as exc:
                raise SystemExit(f"the benchmark server did not start: {exc}") from None
            yield port
        finally:
            child.terminate()
            child.wait(20)


if __name__ == "__main__":
    main()
