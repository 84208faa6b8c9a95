#!/usr/bin/env python3
"""Performance benchmark of the payment gateway (issue 5).

    .venv/bin/python bench/run.py                  # everything: ~10 min, 1,000,000 payments, 100,000 deliveries
    .venv/bin/python bench/run.py --smoke          # every scenario for a few seconds on tiny data (< 60 s)
    .venv/bin/python bench/run.py --scenarios S1,S3 [--profile]

It creates its own PostgreSQL database (127.0.0.1:5432, user postgres; dropped at the end, also on failure),
runs `gateway migrate` and `gateway merchant create`, then for each scenario starts a fresh `gateway serve`
(production profile, one worker process) and drives it over HTTP from a separate load-generator process: wrk with
bench/wrk_script.lua when wrk is on PATH, else bench/load.py (asyncio + httpx). It prints one markdown table
(throughput, p50/p95/p99 latency, errors, peak RSS; every figure also as a ratio to S0 of the same run; the
issue's targets as PASS/FAIL) and writes it to bench/.results/latest.md with the git commit it measured.

  S0  ceiling: bench/ceiling_app.py — validate the same body, INSERT one row with asyncpg, same uvicorn setup
  S1  POST /v1/payments (create + confirm, VietQR) with a fresh Idempotency-Key each
  S2  the same request replayed with already-used keys: S2a a pool of keys, S2b one hot key
  S3  reads on 1,000,000 payments: by id, by reference, list page 1 vs page 1,000 (+ the two reads at 1 connection)
  S4  lifecycles: create+confirm → test-helper pay (the sandbox bank's signed notification → ledger) → webhook
      delivered by `gateway worker` to an HTTPS receiver process; lifecycles/s and notification→webhook latency
  S5  drain 100,000 due webhook deliveries with one `gateway worker`: deliveries/s until the backlog is empty
  S6  bulk bill import: 100,000 bills for 100,000 new customers (created from customer_name) in 10 CSV requests of
      10,000 to POST /v1/bills/import, one after the other; bills/s and the server's peak RSS
  S7  collection partners' signed inquiry + payment pairs against 100,000 customers (bench/pairs.py)
  S8  the collections report (GET /v1/reports/collections, by district) over a month, on 1,000,000 succeeded
      payments spread over 12 months, then on 1,000,000 more all in one month (bench/seed_reports.py): 50
      sequential requests after 3 warm-ups, JSON, then CSV and the SVG chart; the statement's plan from EXPLAIN

The exit status is 0 when every scenario ran (whatever the verdicts; --strict makes a FAIL exit 1), 1 when one
could not run (its row says ERROR).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _ensure_venv() -> None:
    """`python bench/run.py` with another interpreter re-runs itself with the project's virtualenv."""
    venv = REPO / ".venv"
    if Path(sys.prefix).resolve() != venv.resolve() and (venv / "bin" / "python").exists():
        try:
            import asyncpg  # type: ignore[import-untyped]  # noqa: F401

            import gateway  # noqa: F401
        except ImportError:
            os.execv(str(venv / "bin" / "python"), [str(venv / "bin" / "python"), *sys.argv])  # noqa: S606


_ensure_venv()

# ruff: noqa: E402
import argparse
import asyncio
import contextlib
import hashlib
import json
import platform
import secrets
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from loadgen import (
    Generator,
    LifecycleSpec,
    LoadResult,
    LoadSpec,
    choose_generator,
    percentile,
    run_lifecycles,
    run_load,
)
from procs import CpuWindow, Managed, ProcessSet, free_port, peak_rss_mb, postgres_pids, tree, wait_http_ok
from profiling import Profiler
from report import Row, evaluate, render_notes, render_table
from seed import seed_deliveries, seed_payments
from seed_reports import SeededReport, add_months, last_full_month, seed_report_payments
from tlscert import TlsFiles, make_tls_files

BENCH_DIR = REPO / "bench"
RESULTS_DIR = BENCH_DIR / ".results"
SCENARIOS = ("S0", "S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8")
PAYMENT_BODY = '{"amount":150000,"method":"vietqr","reference":"HIS-2026-000123","confirm":true}'
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


# --- configuration ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    smoke: bool
    scenarios: tuple[str, ...]
    load_seconds: float
    warmup_seconds: float
    probe_seconds: float  # S3's single-connection reads
    lifecycle_seconds: float
    webhook_grace_seconds: float
    payments: int
    deliveries: int
    drain_timeout: float
    import_bills: int  # S6: bills imported in all
    import_batch: int  # S6: bills per request
    collect_customers: int  # S7: customers with an open bill
    workers: int  # S7: gateway serve --workers
    report_payments: int  # S8: succeeded payments per seed
    report_months: tuple[int, ...]  # S8: one seed per entry, spread over that many months (its last one reported)
    report_requests: int  # S8: measured JSON requests per seed (after the warm-ups)
    report_warmups: int
    replay_keys: int
    connections: int
    generator: Literal["wrk", "httpx"]
    postgres_url: str
    profile: bool
    strict: bool


def parse_args(argv: list[str]) -> Config:
    parser = argparse.ArgumentParser(
        description="Benchmark the payment gateway (issue 5).", formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="every scenario for a few seconds on tiny data")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset, e.g. S1,S3")
    parser.add_argument("--duration", type=float, help="seconds per load scenario (default 30; smoke 2)")
    parser.add_argument("--lifecycle-duration", type=float, help="seconds of S4 (default 60; smoke 3)")
    parser.add_argument("--payments", type=int, help="payments seeded for S3 (default 1,000,000; smoke 2,000)")
    parser.add_argument("--deliveries", type=int, help="deliveries seeded for S5 (default 100,000; smoke 500)")
    parser.add_argument("--drain-timeout", type=float, help="S5's bound in seconds (default 600; smoke 30)")
    parser.add_argument("--import-bills", type=int, help="bills S6 imports (default 100,000; smoke 1,000)")
    parser.add_argument("--import-batch", type=int, help="bills per S6 request (default 10,000; smoke 500)")
    parser.add_argument("--collect-customers", type=int, help="S7's customers with open bills (default 100,000)")
    parser.add_argument("--workers", type=int, default=1, help="S7's gateway serve --workers (default 1)")
    parser.add_argument(
        "--report-payments", type=int, help="S8's succeeded payments per seed (default 1,000,000; smoke 2,000)"
    )
    parser.add_argument(
        "--report-months",
        default="12,1",
        help="S8: one seed per entry, spread over that many months; its last month is reported (default 12,1: a "
        "realistic month, then the worst case of every payment in one month)",
    )
    parser.add_argument("--report-requests", type=int, help="S8's measured JSON requests per seed (default 50)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument("--generator", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help=f"an admin connection to the server (default {DEFAULT_POSTGRES}; env BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy + pg_stat_activity during each window")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    wanted = [s.strip().upper() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")
    smoke = bool(args.smoke)
    try:
        report_months = tuple(int(m) for m in args.report_months.split(",") if m.strip())
    except ValueError:
        report_months = ()
    if not report_months or min(report_months) < 1:
        parser.error("--report-months takes positive whole numbers of months, e.g. 12,1")
    load = args.duration if args.duration is not None else (2.0 if smoke else 30.0)
    generator: Generator = args.generator
    return Config(
        smoke=smoke,
        scenarios=tuple(s for s in SCENARIOS if s in wanted),
        load_seconds=load,
        warmup_seconds=0.0 if smoke else min(3.0, load / 5),
        probe_seconds=1.0 if smoke else max(1.0, load / 3),
        lifecycle_seconds=args.lifecycle_duration or (3.0 if smoke else 60.0),
        webhook_grace_seconds=10.0 if smoke else 30.0,
        payments=args.payments or (2_000 if smoke else 1_000_000),
        deliveries=args.deliveries or (500 if smoke else 100_000),
        drain_timeout=args.drain_timeout or (30.0 if smoke else 600.0),
        import_bills=args.import_bills or (1_000 if smoke else 100_000),
        import_batch=args.import_batch or (500 if smoke else 10_000),
        collect_customers=args.collect_customers or (600 if smoke else 100_000),
        workers=args.workers,
        report_payments=args.report_payments or (2_000 if smoke else 1_000_000),
        report_months=report_months,
        report_requests=args.report_requests or (5 if smoke else 50),
        report_warmups=1 if smoke else 3,
        replay_keys=100 if smoke else 1_000,
        connections=args.connections,
        generator=choose_generator(generator),
        postgres_url=_loopback_only(args.postgres),
        profile=bool(args.profile),
        strict=bool(args.strict),
    )


def _loopback_only(url: str) -> str:
    url = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"the benchmark talks only to 127.0.0.1; refusing PostgreSQL at {host!r}")
    return url


# --- the run's shared state ---------------------------------------------------------------------------------------


@dataclass
class Bench:
    cfg: Config
    run_dir: Path
    db_name: str = ""
    dsn: str = ""  # asyncpg / libpq URL of the benchmark database
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    admin_token: str = field(default_factory=lambda: "adm_bench_" + secrets.token_hex(16))
    merchant_id: str = ""
    api_key: str = ""
    tls: TlsFiles | None = None
    profile_sections: list[str] = field(default_factory=list)
    process_sets: list[ProcessSet] = field(default_factory=list)

    # -- processes --

    @contextlib.contextmanager
    def processes(self) -> Iterator[ProcessSet]:
        """The processes of one scenario, all stopped when it ends, however it ends."""
        procs = ProcessSet(self.run_dir / "logs")
        self.process_sets.append(procs)
        try:
            yield procs
        finally:
            procs.stop_all()
            self.process_sets.remove(procs)

    def gateway_env(self, public_url: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "SSL_CERT_"))}
        env.update(
            GATEWAY_ENV="production",
            GATEWAY_DATABASE_URL=self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1),
            GATEWAY_SECRET_KEY=self.secret_key,
            GATEWAY_ADMIN_TOKEN=self.admin_token,
            GATEWAY_SANDBOX="true",
            GATEWAY_PUBLIC_URL=public_url,
            GATEWAY_ACCESS_LOG="false",
            GATEWAY_LOG_LEVEL="WARNING",
            GATEWAY_WEBHOOK_ALLOW_PRIVATE="true",
        )
        env.update(extra)
        return env

    def gateway_cli(self, *args: str) -> list[str]:
        cli = Path(sys.executable).with_name("gateway")
        return [str(cli), *args] if cli.exists() else [sys.executable, "-m", "gateway.cli", *args]

    def run_cli(self, *args: str, timeout: float = 120.0) -> str:
        completed = subprocess.run(
            self.gateway_cli(*args),
            cwd=self.run_dir,  # no stray .env is read
            env=self.gateway_env("http://127.0.0.1:8000"),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"gateway {' '.join(args)} failed: {completed.stderr.decode()[-2000:]}")
        return completed.stdout.decode()

    def start_server(self, procs: ProcessSet, label: str, workers: int = 1) -> tuple[Managed, str]:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        argv = self.gateway_cli("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers))
        server = procs.start(f"{label}-serve", argv, self.gateway_env(url), self.run_dir)
        wait_http_ok(f"{url}/healthz", server)
        return server, url

    def start_worker(self, procs: ProcessSet, label: str, public_url: str) -> Managed:
        assert self.tls is not None
        env = self.gateway_env(public_url, SSL_CERT_FILE=str(self.tls.ca_cert))  # trusts the receiver's CA
        return procs.start(f"{label}-worker", self.gateway_cli("worker"), env, self.run_dir)

    def start_receiver(self, procs: ProcessSet, label: str, port: int, secret: str) -> tuple[Managed, str]:
        assert self.tls is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env["BENCH_WEBHOOK_SECRET"] = secret
        argv = [sys.executable, str(BENCH_DIR / "receiver.py"), "--port", str(port)]
        argv += ["--cert", str(self.tls.cert), "--key", str(self.tls.key)]
        receiver = procs.start(f"{label}-receiver", argv, env, self.run_dir)
        url = f"https://127.0.0.1:{port}"
        wait_http_ok(f"{url}/healthz", receiver, verify=self.ssl_context())
        return receiver, url

    def ssl_context(self) -> ssl.SSLContext:
        assert self.tls is not None
        return ssl.create_default_context(cafile=str(self.tls.ca_cert))

    # -- HTTP helpers --

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def payment_headers(self) -> dict[str, str]:
        return {**self.auth, "Content-Type": "application/json"}

    def create_endpoint(self, base_url: str, url: str) -> tuple[str, str]:
        response = httpx.post(
            f"{base_url}/v1/webhook-endpoints",
            json={"url": url, "events": ["payment.succeeded"], "description": "benchmark receiver"},
            headers=self.auth,
            timeout=10,
        )
        if response.status_code != 201:
            raise RuntimeError(f"creating the webhook endpoint answered {response.status_code}: {response.text}")
        body = response.json()
        return str(body["id"]), str(body["secret"])

    def receiver_json(self, url: str, path: str) -> Any:
        return httpx.get(f"{url}{path}", verify=self.ssl_context(), timeout=30).json()

    # -- measuring --

    def measure(
        self, label: str, spec: LoadSpec, watched: dict[str, int], *, warmup: bool = True
    ) -> tuple[LoadResult, dict[str, float]]:
        """An optional warm-up, then the measured run, with the CPU of every watched process (and PostgreSQL)."""
        if warmup and self.cfg.warmup_seconds > 0:
            prefix = spec.idempotency_prefix + "w-" if spec.idempotency == "fresh" else spec.idempotency_prefix
            run_load(replace(spec, duration=self.cfg.warmup_seconds, idempotency_prefix=prefix), self.cfg.generator)
        window = self.cpu_window(watched)
        profiler = self.profiler(label, watched, spec.duration)
        window.start()
        result = run_load(spec, self.cfg.generator)
        cpu = window.stop()
        cpu["load generator"] = 100 * result.cpu_seconds / max(result.duration, 1e-9)
        if profiler is not None:
            self.profile_sections.append(profiler.finish(result.requests, "request"))
        return result, cpu

    def cpu_window(self, watched: dict[str, int]) -> CpuWindow:
        groups = {name: tree(pid) for name, pid in watched.items()}
        groups["postgres"] = postgres_pids
        groups["harness"] = lambda: [os.getpid()]
        return CpuWindow(groups)

    def profiler(self, label: str, watched: dict[str, int], seconds: float) -> Profiler | None:
        if not self.cfg.profile:
            return None
        profiler = Profiler(label, self.run_dir, watched, seconds, self.dsn, self.db_name)
        profiler.start()
        return profiler


GENERATOR_BOUND = 85.0  # % of a core: above it, the generator limits the figures as much as the server does
OTHERS_BOUND = 20.0  # % of a core used by processes that are not this run's: the machine was not quiet


def _others(cpu: dict[str, float]) -> float:
    return cpu.get("machine", 0.0) - sum(v for k, v in cpu.items() if k != "machine")


def cpu_note(cpu: dict[str, float]) -> str:
    cores = os.cpu_count() or 1
    parts = [f"{name} {value:.0f}" for name, value in cpu.items() if name not in ("machine", "harness")]
    return (
        f"CPU % of one core: {', '.join(parts)}; machine {cpu.get('machine', 0):.0f} of {cores * 100}, "
        f"of which other processes {max(0.0, _others(cpu)):.0f}"
    )


def window_warnings(cpu: dict[str, float]) -> list[str]:
    warnings = []
    used = cpu.get("load generator", 0.0)
    if used >= GENERATOR_BOUND:
        warnings.append(f"⚠ the load generator used {used:.0f}% of a core: it, not the server, may be the limit here")
    others = _others(cpu)
    if others >= OTHERS_BOUND:
        warnings.append(
            f"⚠ processes outside this run used {others:.0f}% of a core during the window: the machine was not "
            "quiet, these figures are perturbed"
        )
    return warnings


def load_row(key: str, title: str, result: LoadResult, rss: float, cpu: dict[str, float]) -> Row:
    notes = [f"{result.requests:,} requests in {result.duration:.1f} s ({result.generator})", cpu_note(cpu)]
    notes += window_warnings(cpu)
    if result.error_kinds:
        notes.append(f"errors {result.error_kinds}")
    odd = {s: n for s, n in result.statuses.items() if not s.startswith("2")}
    if odd:
        notes.append(f"statuses {odd}")
    return Row(
        key,
        title,
        "req/s",
        throughput=result.rps,
        p50=result.p50_ms,
        p95=result.p95_ms,
        p99=result.p99_ms,
        errors=result.errors,
        rss_mb=rss,
        rss_of="server",
        notes=notes,
    )


# --- setup and teardown -------------------------------------------------------------------------------------------


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _fetch(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def setup(bench: Bench) -> None:
    cfg = bench.cfg
    bench.db_name = f"gateway_bench_{secrets.token_hex(6)}"
    asyncio.run(_admin(cfg.postgres_url, f'CREATE DATABASE "{bench.db_name}"'))
    parts = urlsplit(cfg.postgres_url)
    bench.dsn = urlunsplit((parts.scheme, parts.netloc, f"/{bench.db_name}", "", ""))
    bench.run_cli("migrate")
    output = bench.run_cli("merchant", "create", "--name", "Bench Hospital", "--category", "hospital")
    created = json.loads(next(line for line in reversed(output.splitlines()) if line.startswith("{")))
    bench.merchant_id, bench.api_key = created["id"], created["api_key"]
    asyncio.run(
        _admin(
            bench.dsn,
            "CREATE TABLE bench_ceiling (id varchar(40) PRIMARY KEY, amount bigint NOT NULL,"
            " currency varchar(3) NOT NULL, method varchar(32) NOT NULL, reference varchar(64) NOT NULL,"
            " expires_at timestamptz NOT NULL, created_at timestamptz NOT NULL)",
        )
    )
    bench.tls = make_tls_files(bench.run_dir / "tls")


def teardown(bench: Bench) -> None:
    for procs in list(bench.process_sets):
        procs.stop_all()
    if bench.db_name:
        try:
            asyncio.run(_admin(bench.cfg.postgres_url, f'DROP DATABASE IF EXISTS "{bench.db_name}" WITH (FORCE)'))
        except Exception as exc:
            print(f"warning: could not drop database {bench.db_name}: {exc}", file=sys.stderr)


# --- scenarios ----------------------------------------------------------------------------------------------------


def s0_ceiling(bench: Bench) -> list[Row]:
    with bench.processes() as procs:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env["BENCH_CEILING_DSN"] = bench.dsn
        argv = [sys.executable, "-m", "uvicorn", "ceiling_app:create_app", "--factory", "--app-dir", str(BENCH_DIR)]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--no-access-log"]
        argv += ["--log-level", "warning"]
        server = procs.start("S0-ceiling", argv, env, bench.run_dir)
        wait_http_ok(f"{url}/healthz", server)
        check = httpx.post(f"{url}/v1/payments", content=PAYMENT_BODY, headers=bench.payment_headers(), timeout=10)
        if check.status_code != 201:
            raise RuntimeError(f"ceiling answered {check.status_code}: {check.text}")
        spec = _payment_spec(bench, url, "fresh", f"s0-{secrets.token_hex(4)}-")
        result, cpu = bench.measure("S0", spec, {"ceiling": server.pid})
        row = load_row("S0", "ceiling: bare FastAPI + pydantic + asyncpg INSERT", result, peak_rss_mb(server.pid), cpu)
        row.rss_of = "ceiling"
        return [row]


def _payment_spec(bench: Bench, url: str, mode: Literal["fresh", "pool"], prefix: str, pool: int = 1) -> LoadSpec:
    return LoadSpec(
        base_url=url,
        method="POST",
        paths=["/v1/payments"],
        headers=bench.payment_headers(),
        body=PAYMENT_BODY,
        idempotency=mode,
        idempotency_prefix=prefix,
        idempotency_pool=pool,
        connections=bench.cfg.connections,
        duration=bench.cfg.load_seconds,
    )


def s1_create(bench: Bench) -> list[Row]:
    with bench.processes() as procs:
        server, url = bench.start_server(procs, "S1")
        check = httpx.post(
            f"{url}/v1/payments",
            content=PAYMENT_BODY,
            headers={**bench.payment_headers(), "Idempotency-Key": f"s1-check-{secrets.token_hex(4)}"},
            timeout=30,
        )
        if check.status_code != 201 or check.json()["status"] != "requires_action":
            raise RuntimeError(f"POST /v1/payments answered {check.status_code}: {check.text[:500]}")
        spec = _payment_spec(bench, url, "fresh", f"s1-{secrets.token_hex(4)}-")
        result, cpu = bench.measure("S1", spec, {"server": server.pid})
        return [load_row("S1", "create+confirm, fresh Idempotency-Key", result, peak_rss_mb(server.pid), cpu)]


async def _create_payments(bench: Bench, url: str, keys: list[str]) -> None:
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        semaphore = asyncio.Semaphore(16)

        async def create(key: str) -> None:
            async with semaphore:
                response = await client.post(
                    "/v1/payments", content=PAYMENT_BODY, headers={**bench.payment_headers(), "Idempotency-Key": key}
                )
                if response.status_code != 201:
                    raise RuntimeError(f"creating a payment answered {response.status_code}: {response.text[:300]}")

        await asyncio.gather(*(create(k) for k in keys))


def s2_replay(bench: Bench) -> list[Row]:
    with bench.processes() as procs:
        server, url = bench.start_server(procs, "S2")
        prefix = f"s2-{secrets.token_hex(4)}-"
        asyncio.run(_create_payments(bench, url, [f"{prefix}{i}" for i in range(bench.cfg.replay_keys)]))
        check = httpx.post(
            f"{url}/v1/payments",
            content=PAYMENT_BODY,
            headers={**bench.payment_headers(), "Idempotency-Key": f"{prefix}0"},
            timeout=30,
        )
        if check.status_code != 201 or check.headers.get("idempotent-replayed") != "true":
            raise RuntimeError(f"a replay answered {check.status_code} {dict(check.headers)}: {check.text[:300]}")
        rows = []
        pool = _payment_spec(bench, url, "pool", prefix, bench.cfg.replay_keys)
        result, cpu = bench.measure("S2a", pool, {"server": server.pid})
        title = f"replay, {bench.cfg.replay_keys:,} used keys in turn"
        rows.append(load_row("S2a", title, result, peak_rss_mb(server.pid), cpu))
        hot = _payment_spec(bench, url, "pool", prefix, 1)
        result, cpu = bench.measure("S2b", hot, {"server": server.pid})
        rows.append(load_row("S2b", "replay, one hot key", result, peak_rss_mb(server.pid), cpu))
        return rows


def _walk_to_page(url: str, headers: dict[str, str], page: int) -> tuple[str, float]:
    """Follow starting_after cursors from page 1; returns the cursor that fetches `page`, and the walk's time."""
    started = time.monotonic()
    cursor = ""
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for _ in range(page - 1):
            params = {"limit": "20", **({"starting_after": cursor} if cursor else {})}
            body = client.get("/v1/payments", params=params).raise_for_status().json()
            if not body["has_more"]:
                raise RuntimeError("the listing ended before the page asked for")
            cursor = body["data"][-1]["id"]
    return cursor, time.monotonic() - started


def s3_read(bench: Bench) -> list[Row]:
    cfg = bench.cfg
    seeded = asyncio.run(seed_payments(bench.dsn, bench.merchant_id, cfg.payments))
    seed_note = f"{seeded.count:,} payments seeded (COPY + VACUUM ANALYZE) in {seeded.seconds:.0f} s"
    with bench.processes() as procs:
        server, url = bench.start_server(procs, "S3")
        page = min(1000, max(2, cfg.payments // 20))
        cursor, walk_seconds = _walk_to_page(url, bench.auth, page)
        targets = {
            "id": [f"/v1/payments/{pid}" for pid in seeded.sample_ids],
            "reference": [f"/v1/payments?reference={ref}" for ref in seeded.sample_references],
            "page 1": ["/v1/payments?limit=20"],
            f"page {page}": [f"/v1/payments?limit=20&starting_after={cursor}"],
        }
        for paths in targets.values():
            response = httpx.get(f"{url}{paths[0]}", headers=bench.auth, timeout=30)
            if response.status_code != 200:
                raise RuntimeError(f"GET {paths[0]} answered {response.status_code}: {response.text[:300]}")
        plan = [
            ("S3a", "GET /v1/payments/{id}", targets["id"], cfg.connections, cfg.load_seconds),
            ("S3b", "GET /v1/payments?reference=", targets["reference"], cfg.connections, cfg.load_seconds),
            ("S3c", "list, page 1 (limit=20)", targets["page 1"], cfg.connections, cfg.load_seconds),
            (
                "S3d",
                f"list, page {page:,} (starting_after)",
                targets[f"page {page}"],
                cfg.connections,
                cfg.load_seconds,
            ),
            ("S3e", "GET /v1/payments/{id}, 1 connection", targets["id"], 1, cfg.probe_seconds),
            ("S3f", "GET ?reference=, 1 connection", targets["reference"], 1, cfg.probe_seconds),
        ]
        rows = []
        for key, title, paths, connections, seconds in plan:
            spec = LoadSpec(
                base_url=url, method="GET", paths=paths, headers=bench.auth, connections=connections, duration=seconds
            )
            result, cpu = bench.measure(key, spec, {"server": server.pid})
            rows.append(load_row(key, title, result, peak_rss_mb(server.pid), cpu))
        rows[0].notes.insert(0, seed_note)
        rows[3].notes.insert(0, f"cursor found by walking {page - 1} pages in {walk_seconds:.1f} s")
        return rows


def _poll(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Bounded polling: True as soon as `check()` holds, False when `timeout` passed first."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def s4_lifecycle(bench: Bench) -> list[Row]:
    cfg = bench.cfg
    with bench.processes() as procs:
        server, url = bench.start_server(procs, "S4")
        receiver_port = free_port()
        endpoint_id, secret = bench.create_endpoint(url, f"https://127.0.0.1:{receiver_port}/hooks")
        receiver, receiver_url = bench.start_receiver(procs, "S4", receiver_port, secret)
        worker = bench.start_worker(procs, "S4", url)

        def succeeded() -> int:
            return int(bench.receiver_json(receiver_url, "/_stats")["succeeded_payments"])

        # One lifecycle first: the worker is up, the endpoint verified, TLS trusted.
        with httpx.Client(base_url=url, headers=bench.auth, timeout=30) as client:
            created = client.post(
                "/v1/payments",
                content=PAYMENT_BODY,
                headers={**bench.payment_headers(), "Idempotency-Key": f"s4-check-{secrets.token_hex(4)}"},
            )
            if created.status_code != 201:
                raise RuntimeError(f"POST /v1/payments answered {created.status_code}: {created.text[:300]}")
            paid = client.post(f"/v1/test-helpers/payments/{created.json()['id']}/pay", json={"outcome": "success"})
            if paid.status_code != 200 or paid.json()["status"] != "succeeded":
                raise RuntimeError(f"the test-helper pay answered {paid.status_code}: {paid.text[:300]}")
        if not _poll(lambda: succeeded() >= 1, 30):
            raise RuntimeError(f"no webhook reached the receiver within 30 s:\n{worker.log_tail()}")
        baseline = succeeded()

        spec = LifecycleSpec(url, bench.api_key, cfg.connections, cfg.lifecycle_seconds, f"s4-{secrets.token_hex(4)}-")
        watched = {"server": server.pid, "worker": worker.pid, "receiver": receiver.pid}
        window = bench.cpu_window(watched)
        profiler = bench.profiler("S4", {"server": server.pid, "worker": worker.pid}, cfg.lifecycle_seconds)
        window.start()
        result = run_lifecycles(spec)
        cpu = window.stop()
        cpu["load generator"] = 100 * result.cpu_seconds / max(result.ended_at - result.started_at, 1e-9)
        if profiler is not None:
            bench.profile_sections.append(profiler.finish(len(result.paid_at), "lifecycle"))
        expected = baseline + len(result.paid_at)
        drained = _poll(lambda: succeeded() >= expected, cfg.webhook_grace_seconds)
        received: dict[str, float] = bench.receiver_json(receiver_url, "/_times")
        stats = bench.receiver_json(receiver_url, "/_stats")
        server_rss, worker_rss = peak_rss_mb(server.pid), peak_rss_mb(worker.pid)
        httpx.delete(f"{url}/v1/webhook-endpoints/{endpoint_id}", headers=bench.auth, timeout=30)

    elapsed = result.ended_at - result.started_at
    completed = [pid for pid in result.paid_at if pid in received and received[pid] <= result.ended_at]
    latencies = sorted(received[pid] - at for pid, at in result.paid_at.items() if pid in received)
    from_sent = sorted(received[pid] - at for pid, at in result.pay_sent_at.items() if pid in received)
    missing = sum(1 for pid in result.paid_at if pid not in received)
    row = Row(
        "S4",
        "lifecycle: create → pay → signed notification → webhook",
        "lifecycles/s",
        throughput=len(completed) / elapsed if elapsed > 0 else 0.0,
        p50=percentile(latencies, 50) * 1000,
        p95=percentile(latencies, 95) * 1000,
        p99=percentile(latencies, 99) * 1000,
        errors=result.errors + missing,
        rss_mb=server_rss,
        rss_of="server",
    )
    row.notes += [
        f"{len(completed):,} lifecycles completed (webhook received) within the {elapsed:.1f} s run; "
        f"{len(result.paid_at):,} paid, {result.lifecycles_started:,} started",
        "latency columns: pay call returned → receiver got payment.succeeded (negative: the webhook arrived "
        "before the pay response reached the client)",
        f"pay call sent → webhook received p50/p99: {percentile(from_sent, 50) * 1000:.0f}/"
        f"{percentile(from_sent, 99) * 1000:.0f} ms",
        f"API latency p50/p99: create {result.create_p50_ms:.1f}/{result.create_p99_ms:.1f} ms, "
        f"pay {result.pay_p50_ms:.1f}/{result.pay_p99_ms:.1f} ms",
        f"`gateway worker` peak RSS {worker_rss:.0f} MB",
        cpu_note(cpu),
        *window_warnings(cpu),
    ]
    if result.error_kinds:
        row.notes.append(f"errors {result.error_kinds}")
    if missing:
        row.notes.append(f"{missing} paid lifecycles had no webhook {cfg.webhook_grace_seconds:g} s after the run")
    if not drained or stats["duplicates"] or stats["bad_signatures"]:
        row.notes.append(f"receiver {stats}")
    return [row]


async def _delivery_counts(dsn: str, endpoint_id: str) -> dict[str, int]:
    rows = await _fetch(
        dsn, "SELECT status, count(*) AS n FROM webhook_deliveries WHERE endpoint_id = $1 GROUP BY status", endpoint_id
    )
    return {r["status"]: int(r["n"]) for r in rows}


def s5_drain(bench: Bench) -> list[Row]:
    cfg = bench.cfg
    with bench.processes() as procs:
        server, url = bench.start_server(procs, "S5")
        receiver_port = free_port()
        endpoint_id, secret = bench.create_endpoint(url, f"https://127.0.0.1:{receiver_port}/hooks")
        procs.stop(server)  # draining needs no API; only the worker and the receiver run from here on
        receiver, receiver_url = bench.start_receiver(procs, "S5", receiver_port, secret)
        worker = bench.start_worker(procs, "S5", url)

        def received() -> int:
            return int(bench.receiver_json(receiver_url, "/_stats")["succeeded_payments"])

        # One delivery first, so the clock below starts with a worker that is up and connected.
        asyncio.run(seed_deliveries(bench.dsn, bench.merchant_id, endpoint_id, 1))
        if not _poll(lambda: received() >= 1, 60):
            raise RuntimeError(f"the warm-up delivery did not arrive within 60 s:\n{worker.log_tail()}")

        watched = {"worker": worker.pid, "receiver": receiver.pid}
        window = bench.cpu_window(watched)
        profiler = bench.profiler("S5", {"worker": worker.pid}, min(cfg.drain_timeout, max(5.0, cfg.deliveries / 400)))
        window.start()
        committed_at = asyncio.run(seed_deliveries(bench.dsn, bench.merchant_id, endpoint_id, cfg.deliveries))
        progress: list[tuple[float, int]] = [(committed_at, cfg.deliveries)]
        deadline = committed_at + cfg.drain_timeout
        interval = 0.05 if cfg.deliveries < 10_000 else 0.25
        while True:
            pending = asyncio.run(_delivery_counts(bench.dsn, endpoint_id)).get("pending", 0)
            progress.append((time.monotonic(), pending))
            if pending == 0 or time.monotonic() > deadline:
                break
            time.sleep(interval)
        finished_at, remaining = progress[-1]
        cpu = window.stop()
        if profiler is not None:
            bench.profile_sections.append(profiler.finish(cfg.deliveries - remaining, "delivery"))
        counts = asyncio.run(_delivery_counts(bench.dsn, endpoint_id))
        attempts = asyncio.run(
            _fetch(
                bench.dsn,
                "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms) AS p,"
                " count(*) AS n, count(*) FILTER (WHERE status_code IS NULL OR status_code NOT BETWEEN 200 AND 299)"
                " AS bad, count(DISTINCT created_at) AS cycles FROM webhook_attempts WHERE endpoint_id = $1",
                endpoint_id,
            )
        )[0]
        stats = bench.receiver_json(receiver_url, "/_stats")
        worker_rss = peak_rss_mb(worker.pid)

    elapsed = finished_at - committed_at
    delivered = cfg.deliveries - remaining
    cycles = max(int(attempts["cycles"]) - 1, 1)
    p50, p95, p99 = (float(v) for v in attempts["p"]) if attempts["p"] else (None, None, None)
    row = Row(
        "S5",
        f"drain {cfg.deliveries:,} due webhook deliveries, one worker",
        "deliveries/s",
        throughput=delivered / elapsed if elapsed > 0 else 0.0,
        p50=p50,
        p95=p95,
        p99=p99,
        errors=int(attempts["bad"]) + counts.get("failed", 0) + remaining,
        rss_mb=worker_rss,
        rss_of="worker",
    )
    row.notes += [
        f"{delivered:,} delivered in {elapsed:.1f} s"
        + (f" — TIMED OUT with {remaining:,} still pending" if remaining else " (backlog empty)"),
        f"rate over the first/last fifth of the backlog: {_fifth_rates(progress, cfg.deliveries)}",
        # Every attempt recorded by one claim → deliver → record cycle carries that cycle's timestamp (the warm-up
        # delivery had a cycle of its own).
        f"{cycles:,} dispatcher cycles, {(int(attempts['n']) - 1) / cycles:.1f} deliveries and "
        f"{1000 * elapsed / cycles:.0f} ms each on average",
        "latency columns: duration of each delivery's HTTPS POST (webhook_attempts.duration_ms); RSS is the worker's",
        f"{int(attempts['n']):,} attempts; receiver {stats}",
        cpu_note(cpu),
        *window_warnings(cpu),
    ]
    return [row]


def _fifth_rates(progress: list[tuple[float, int]], total: int) -> str:
    def time_at(pending_at_most: float) -> float | None:
        return next((t for t, pending in progress if pending <= pending_at_most), None)

    start, first, last, end = progress[0][0], time_at(total * 0.8), time_at(total * 0.2), time_at(0)
    parts = []
    if first is not None and first > start:
        parts.append(f"{total * 0.2 / (first - start):,.0f}/s")
    if last is not None and end is not None and end > last:
        parts.append(f"{total * 0.2 / (end - last):,.0f}/s")
    return " → ".join(parts) if parts else "n/a"


def _bill_csv(start: int, count: int) -> bytes:  # bench/pairs.py knows these codes, numbers and amounts
    """`count` bills of a water company's month, each for a customer of its own, created from customer_name."""
    lines = ["number,amount,currency,description,period,due_date,amount_rule,customer_code,customer_name"]
    for i in range(start, start + count):
        lines.append(
            f'HD-2026-11-{i:07d},{120_000 + (i * 37) % 400_000},VND,"Tiền nước tháng 11/2026, kỳ {i % 4 + 1}",'
            f"2026-11,2026-11-30,partial,KH{i:010d},Nguyễn Văn Khách {i}"
        )
    return ("\r\n".join(lines) + "\r\n").encode()


def s6_import(bench: Bench) -> list[Row]:
    cfg = bench.cfg
    batches = [
        (start, min(cfg.import_batch, cfg.import_bills - start))
        for start in range(0, cfg.import_bills, cfg.import_batch)
    ]
    bodies = [_bill_csv(start, count) for start, count in batches]  # built before the clock starts
    headers = {**bench.auth, "Content-Type": "text/csv"}
    prefix = f"s6-{secrets.token_hex(4)}-"
    with bench.processes() as procs:
        server, url = bench.start_server(procs, "S6")
        with httpx.Client(base_url=url, timeout=600) as client:
            # One request first (another merchant's numbers would collide: a distinct range), so the clock below
            # starts with a warm server; it is not counted.
            warm = client.post(
                "/v1/bills/import",
                content=_bill_csv(10**8, 10),
                headers={**headers, "Idempotency-Key": f"{prefix}warm"},
            )
            if warm.status_code != 200 or warm.json()["created"] != 10:
                raise RuntimeError(f"the warm-up import answered {warm.status_code}: {warm.text[:500]}")
            window = bench.cpu_window({"server": server.pid})
            profiler = bench.profiler("S6", {"server": server.pid}, max(5.0, cfg.import_bills / 20_000))
            latencies: list[float] = []
            created = unchanged = failed_rows = errors = 0
            window.start()
            started = time.monotonic()
            for n, body in enumerate(bodies):
                sent = time.monotonic()
                response = client.post(
                    "/v1/bills/import", content=body, headers={**headers, "Idempotency-Key": f"{prefix}{n}"}
                )
                latencies.append(time.monotonic() - sent)
                if response.status_code != 200:
                    errors += 1
                    continue
                result = response.json()
                created += result["created"]
                unchanged += result["unchanged"]
                failed_rows += len(result["errors"])
            elapsed = time.monotonic() - started
            cpu = window.stop()
            if profiler is not None:
                bench.profile_sections.append(profiler.finish(created, "bill"))
        server_rss = peak_rss_mb(server.pid)
    stored = asyncio.run(
        _fetch(
            bench.dsn,
            "SELECT (SELECT count(*) FROM bills) AS bills, (SELECT count(*) FROM customers) AS customers,"
            " (SELECT count(*) FROM events WHERE type = 'bill.created') AS events",
        )
    )[0]
    latencies.sort()
    row = Row(
        "S6",
        f"import {cfg.import_bills:,} bills (+ as many new customers), CSV, {cfg.import_batch:,} per request",
        "bills/s",
        throughput=created / elapsed if elapsed > 0 else 0.0,
        p50=percentile(latencies, 50) * 1000,
        p95=percentile(latencies, 95) * 1000,
        p99=percentile(latencies, 99) * 1000,
        errors=errors + failed_rows + (cfg.import_bills - created),
        rss_mb=server_rss,
        rss_of="server",
    )
    row.notes += [
        f"{created:,} bills created ({unchanged:,} unchanged, {failed_rows:,} rows refused) by {len(bodies)} requests "
        f"of {sum(len(b) for b in bodies) / len(bodies) / 1e6:.1f} MB in {elapsed:.1f} s, one after the other",
        f"stored: {stored['bills']:,} bills, {stored['customers']:,} customers, {stored['events']:,} bill.created "
        "events (the warm-up's 10 included)",
        "latency columns: one import request (10,000 rows unless smoke)",
        cpu_note(cpu),
        *window_warnings(cpu),
    ]
    return [row]


S7_FIRST_CUSTOMER = 300_000_000  # S7's customers and bills: a range of their own beside S6's


def _s7_setup(client: httpx.Client, bench: Bench) -> tuple[str, str, str]:
    """A test-mode bank partner enabled for the merchant, which gets a biller code: (biller code, partner, secret)."""
    admin = {"Authorization": f"Bearer {bench.admin_token}"}
    biller = f"BENCH{secrets.token_hex(3).upper()}"
    steps = [
        ("PATCH", f"/v1/merchants/{bench.merchant_id}", {"biller_code": biller}),
        ("POST", "/v1/partners", {"name": "Bench Bank", "code": biller + "BANK", "kind": "bank", "mode": "test"}),
    ]
    answers = []
    for method, path, body in steps:
        response = client.request(method, path, json=body, headers=admin)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        answers.append(response.json())
    partner = answers[1]
    enabled = client.put(
        f"/v1/merchants/{bench.merchant_id}/partners/{partner['id']}", json={"enabled": True}, headers=admin
    )
    if enabled.status_code != 200:
        raise RuntimeError(f"enabling the partner answered {enabled.status_code}: {enabled.text[:500]}")
    return biller, str(partner["id"]), str(partner["secret"])


def _run_pairs(spec: dict[str, Any]) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, str(BENCH_DIR / "pairs.py")],
        input=json.dumps(spec).encode(),
        capture_output=True,
        timeout=spec["duration"] + 120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"bench/pairs.py failed: {completed.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def s7_partners(bench: Bench) -> list[Row]:
    cfg = bench.cfg
    total = cfg.collect_customers
    with bench.processes() as procs:
        server, url = bench.start_server(procs, "S7", workers=cfg.workers)
        with httpx.Client(base_url=url, timeout=600) as client:
            biller, partner_id, secret = _s7_setup(client, bench)
            seeded_at = time.monotonic()
            for n, start in enumerate(range(S7_FIRST_CUSTOMER, S7_FIRST_CUSTOMER + total, 10_000)):
                count = min(10_000, S7_FIRST_CUSTOMER + total - start)
                response = client.post(
                    "/v1/bills/import",
                    content=_bill_csv(start, count),
                    headers={**bench.auth, "Content-Type": "text/csv", "Idempotency-Key": f"s7-{biller}-{n}"},
                )
                if response.status_code != 200 or response.json()["created"] != count:
                    raise RuntimeError(f"seeding S7 answered {response.status_code}: {response.text[:500]}")
            seeded = time.monotonic() - seeded_at
        asyncio.run(_admin(bench.dsn, "VACUUM ANALYZE"))
        spec: dict[str, Any] = {
            "base_url": url,
            "partner_id": partner_id,
            "secret": secret,
            "biller_code": biller,
            "connections": cfg.connections,
            "duration": cfg.warmup_seconds,
            "first_customer": S7_FIRST_CUSTOMER,
            "customers": total,
            "transaction_prefix": f"{biller}-w-",
        }
        warm = _run_pairs(spec) if cfg.warmup_seconds > 0 else {"pairs": 0}
        used = int(warm["pairs"]) + 2 * cfg.connections  # customers the warm-up may have touched
        spec.update(
            duration=cfg.load_seconds,
            first_customer=S7_FIRST_CUSTOMER + used,
            customers=total - used,
            transaction_prefix=f"{biller}-",
        )
        window = bench.cpu_window({"server": server.pid})
        profiler = bench.profiler("S7", {"server": server.pid}, cfg.load_seconds)
        window.start()
        result = _run_pairs(spec)
        cpu = window.stop()
        cpu["load generator"] = 100 * result["cpu_seconds"] / max(result["duration"], 1e-9)
        if profiler is not None:
            bench.profile_sections.append(profiler.finish(result["pairs"], "pair"))
        rss = peak_rss_mb(server.pid)
    stored = asyncio.run(
        _fetch(
            bench.dsn,
            "SELECT (SELECT count(*) FROM collections) AS collections,"
            " (SELECT count(*) FROM bills WHERE number LIKE 'HD-2026-11-3%' AND status = 'paid') AS paid",
        )
    )[0]
    pairs_per_second = result["pairs"] / result["duration"] if result["duration"] > 0 else 0.0
    common = [
        f"{total:,} customers with one open bill each, seeded by {-(-total // 10_000)} CSV imports in {seeded:.0f} s",
        f"{result['pairs']:,} pairs in {result['duration']:.1f} s on {cfg.connections} connections "
        f"(bench/pairs.py; `gateway serve --workers {cfg.workers}`)",
        f"stored after the run: {stored['collections']:,} collections, {stored['paid']:,} of the seeded bills paid "
        "(the warm-up's included)",
        cpu_note(cpu),
        *window_warnings(cpu),
    ]
    if result["statuses"]:
        common.append(f"statuses {result['statuses']}")
    if result["error_kinds"]:
        common.append(f"errors {result['error_kinds']}")
    common += [f"e.g. {example}" for example in result["examples"]]
    rows = []
    for key, title, latencies in (
        ("S7a", "partner inquiry (of each pair)", result["inquiry_ms"]),
        ("S7b", "partner payment (of each pair)", result["payment_ms"]),
    ):
        rows.append(
            Row(
                key,
                title,
                "pairs/s",
                throughput=pairs_per_second,
                p50=latencies["p50"],
                p95=latencies["p95"],
                p99=latencies["p99"],
                errors=result["errors"],
                rss_mb=rss,
                rss_of="server",
                notes=common if key == "S7a" else [],
            )
        )
    return rows


S8_ROUTE = "/v1/reports/collections"
# The statement gateway.reports.repository.grouped_sums runs for group_by=org_unit with the admin token (every
# merchant, both modes), written out so that EXPLAIN can show its plan; keep the two alike.
S8_STATEMENT = (
    "SELECT org_unit, sum(CASE WHEN amount_received - amount_refunded > 0 THEN 1 ELSE 0 END),"
    " sum(amount_received - amount_refunded),"
    " sum(CASE WHEN channel = 'online' AND amount_received - amount_refunded > 0 THEN 1 ELSE 0 END),"
    " sum(CASE WHEN channel = 'online' THEN amount_received - amount_refunded ELSE 0 END)"
    " FROM payments WHERE succeeded_on BETWEEN $1 AND $2 GROUP BY org_unit"
)
S8_EXPECTED = (
    "SELECT count(*) FILTER (WHERE amount_received > amount_refunded) AS payments,"
    " coalesce(sum(amount_received - amount_refunded), 0) AS amount,"
    " count(*) FILTER (WHERE channel = 'online' AND amount_received > amount_refunded) AS online_payments,"
    " coalesce(sum(amount_received - amount_refunded) FILTER (WHERE channel = 'online'), 0) AS online_amount"
    " FROM payments WHERE succeeded_on BETWEEN $1 AND $2"
)


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


def _node_name(node: dict[str, Any]) -> str:
    """ "Partial HashAggregate", "Gather Merge (2 of 2 workers)", "Parallel Index Only Scan" — as EXPLAIN's text."""
    name = node["Node Type"]
    if name == "Aggregate":
        name = {"Hashed": "HashAggregate", "Sorted": "GroupAggregate"}.get(node.get("Strategy", ""), name)
        mode = node.get("Partial Mode", "Simple")
        name = name if mode == "Simple" else f"{mode} {name}"
    if node.get("Parallel Aware"):
        name = f"Parallel {name}"
    if "Workers Planned" in node:
        name += f" ({node.get('Workers Launched', 0)} of {node['Workers Planned']} workers)"
    return name


def _plan_summary(explained: Any) -> tuple[str, bool]:
    """One line of an EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON): its nodes top-down, workers, the scan's heap fetches
    and buffers, JIT, time; and whether the scan read ix_payments_report."""
    document = explained[0] if isinstance(explained, list) else json.loads(explained)[0]
    nodes = list(_plan_nodes(document["Plan"]))
    scan = next((n for n in nodes if "Scan" in n["Node Type"]), {})
    shape = " ← ".join(_node_name(n) for n in nodes if n["Node Type"] != "Sort")
    index = scan.get("Index Name")
    parts = [
        shape + (f" on {index}" if index else f" on {scan.get('Relation Name', '?')}"),
        f"{scan.get('Actual Rows', 0) * scan.get('Actual Loops', 1):,.0f} rows read",
        f"heap fetches {scan.get('Heap Fetches', '—')}",
        f"buffers hit {scan.get('Shared Hit Blocks', 0):,} read {scan.get('Shared Read Blocks', 0):,}",
    ]
    if "JIT" in document:
        parts.append(f"JIT {document['JIT']['Timing']['Total']:.0f} ms")
    parts.append(f"{document['Execution Time']:.0f} ms")
    return ", ".join(parts), index == "ix_payments_report"


async def _s8_explain(dsn: str, first: date, last: date) -> tuple[str, str, bool]:
    """The statement's plan as the server's first runs of it get it (planned with the dates), and as a prepared
    statement gets it after five runs (PostgreSQL's generic plan, planned without them)."""
    conn = await asyncpg.connect(dsn)
    explain = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
    try:
        custom, uses_index = _plan_summary(await conn.fetchval(explain + S8_STATEMENT, first, last))
        # EXPLAIN with bound parameters plans with their values; only EXECUTE of a PREPAREd statement shows the
        # generic plan (the dates are date objects: their ISO text is safe to inline).
        await conn.execute(f"PREPARE s8_report(date, date) AS {S8_STATEMENT}")
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        executed = await conn.fetchval(f"{explain}EXECUTE s8_report('{first.isoformat()}', '{last.isoformat()}')")
        generic, generic_index = _plan_summary(executed)
    finally:
        await conn.close()
    return custom, generic, uses_index and generic_index


def _s8_requests(
    client: httpx.Client, path: str, params: dict[str, str], headers: dict[str, str], count: int, kind: str
) -> tuple[list[float], int, httpx.Response | None]:
    """`count` requests one after the other: each one's seconds, how many failed (not a 200 of `kind`), the last
    answer."""
    latencies: list[float] = []
    errors = 0
    last: httpx.Response | None = None
    for _ in range(count):
        started = time.perf_counter()
        try:
            last = client.get(path, params=params, headers=headers)
        except httpx.HTTPError:
            errors += 1
            continue
        latencies.append(time.perf_counter() - started)
        if last.status_code != 200 or kind not in last.headers.get("content-type", ""):
            errors += 1
    return latencies, errors, last


def _ms(values: list[float], q: float) -> float:
    return percentile(sorted(values), q) * 1000


def _s8_totals_note(report: dict[str, Any], expected: asyncpg.Record) -> str:
    totals = report.get("totals", {})
    fields = ("payments", "amount", "online_payments", "online_amount")
    wrong = [
        f"{f} {totals.get(f)!r} (the database: {int(expected[f]):,})" for f in fields if totals.get(f) != expected[f]
    ]
    if wrong:
        return "⚠ the report's totals differ from the payments' own sums: " + ", ".join(wrong)
    return (
        f"totals = the payments' own sums ({int(expected['payments']):,} payments, {int(expected['amount']):,} VND, "
        f"{int(expected['online_payments']):,} online)"
    )


def _s8_params(seeded: SeededReport) -> dict[str, str]:
    return {
        "from": seeded.date_from.isoformat(),
        "to": seeded.date_to.isoformat(),
        "group_by": "org_unit",
        "level": "district",
    }


def _s8_spread(seeded: SeededReport) -> str:
    return f"{seeded.months}-month spread" if seeded.months > 1 else "all in that month"


def _s8_json_row(
    bench: Bench, client: httpx.Client, seeded: SeededReport, key: str, server: Managed, plans: str
) -> tuple[Row, dict[str, Any]]:
    """The warm-ups, then the measured JSON requests one after the other: the row and the last report."""
    cfg = bench.cfg
    admin = {"Authorization": f"Bearer {bench.admin_token}"}
    params = _s8_params(seeded)
    warm, warm_errors, answer = _s8_requests(client, S8_ROUTE, params, admin, cfg.report_warmups, "json")
    if warm_errors:
        detail = f"{answer.status_code}: {answer.text[:300]}" if answer is not None else "no answer"
        raise RuntimeError(f"GET {S8_ROUTE} answered {detail}")
    window = bench.cpu_window({"server": server.pid})
    window.start()
    latencies, errors, answer = _s8_requests(client, S8_ROUTE, params, admin, cfg.report_requests, "json")
    cpu = window.stop()
    series = warm + latencies  # the server's 1st, 2nd, ... run of the statement
    row = Row(
        key,
        f"report JSON by district, {seeded.month:%Y-%m}: {seeded.in_month:,} of the payments ({_s8_spread(seeded)})"
        + plans,
        "req/s",
        throughput=len(latencies) / sum(latencies) if latencies else 0.0,
        p50=_ms(latencies, 50),
        p95=_ms(latencies, 95),
        p99=_ms(latencies, 99),
        errors=errors,
        rss_mb=peak_rss_mb(server.pid),
        rss_of="server",
    )
    row.notes += [
        f"{len(latencies)} requests one after the other after {len(warm)} warm-ups",
        f"the server's runs 1–5 of the statement: median {_ms(series[:5], 50):.0f} ms; runs 6–{len(series)}: "
        f"median {_ms(series[5:], 50):.0f} ms (a prepared statement is planned generically from its 6th run "
        "unless plan_cache_mode says otherwise)",
        cpu_note(cpu)
        + " (PostgreSQL's parallel workers exit within each request, so their CPU counts as other processes')",
        *window_warnings(cpu),
    ]
    return row, answer.json() if answer is not None and answer.status_code == 200 else {}


def _s8_seed_rows(bench: Bench, client: httpx.Client, seeded: SeededReport, letters: str, server: Managed) -> list[Row]:
    """One seed's rows: JSON (the latency series, checked against the payments, with the statement's plans), CSV
    and SVG."""
    cfg = bench.cfg
    admin = {"Authorization": f"Bearer {bench.admin_token}"}
    params = _s8_params(seeded)
    month = f"{seeded.month:%Y-%m}"
    spread = _s8_spread(seeded)
    json_row, report = _s8_json_row(bench, client, seeded, f"S8{letters[0]}", server, "")
    expected = asyncio.run(_fetch(bench.dsn, S8_EXPECTED, seeded.date_from, seeded.date_to))[0]
    custom, generic, uses_index = asyncio.run(_s8_explain(bench.dsn, seeded.date_from, seeded.date_to))
    keys = [row.get("key") for row in report.get("rows", [])]
    others = [k for k in keys if not (isinstance(k, str) and "-D" in k)]  # units without a district, and null
    json_row.notes[:0] = [
        f"{seeded.payments:,} succeeded payments over {seeded.months} month(s) seeded by INSERT … SELECT in "
        f"{seeded.seconds:.0f} s + VACUUM (ANALYZE) {seeded.vacuum_seconds:.0f} s; {seeded.in_month:,} in {month} "
        f"({seeded.in_month_live:,} live)",
        f"{len(keys)} rows: {len(keys) - len(others)} districts, and {others}",
        _s8_totals_note(report, expected),
        f"EXPLAIN, planned with the dates: {custom}",
        f"EXPLAIN, generic plan: {generic}",
    ]
    if not uses_index:
        json_row.notes.append("⚠ the statement did not read ix_payments_report")
    rows = [json_row]
    each = max(1, cfg.report_requests // 10)
    for letter, kind, path, headers in (
        (letters[1], "CSV", S8_ROUTE, {**admin, "Accept": "text/csv"}),
        (letters[2], "SVG chart", S8_ROUTE + ".svg", admin),
    ):
        content = "text/csv" if kind == "CSV" else "image/svg+xml"
        times, failed, last = _s8_requests(client, path, params, headers, each, content)
        row = Row(
            f"S8{letter}",
            f"report {kind} by district, {month} ({spread})",
            "req/s",
            throughput=len(times) / sum(times) if times else 0.0,
            p50=_ms(times, 50),
            p95=_ms(times, 95),
            p99=_ms(times, 99),
            errors=failed,
            rss_mb=peak_rss_mb(server.pid),
            rss_of="server",
        )
        size = len(last.content) if last is not None else 0
        row.notes.append(f"{len(times)} requests one after the other; the last answer {size:,} bytes")
        if failed and last is not None:
            row.notes.append(f"answered {last.status_code}: {last.text[:200]}")
        rows.append(row)
    return rows


def s8_reports(bench: Bench) -> list[Row]:
    cfg = bench.cfg
    month = last_full_month(datetime.now(UTC))
    seeds = []
    for tag, months in enumerate(cfg.report_months):
        # Each seed gets months of its own, before the previous one's: the reported month holds only its seed.
        seeds.append(
            asyncio.run(seed_report_payments(bench.dsn, cfg.report_payments, months=months, last_month=month, tag=tag))
        )
        month = add_months(month, -months)
    rows: list[Row] = []
    with bench.processes() as procs:
        server, url = bench.start_server(procs, "S8")
        with httpx.Client(base_url=url, timeout=120) as client:
            for n, seeded in enumerate(seeds):
                letters = "abcdefghijklmnopqrstuvwxyz"[3 * n : 3 * n + 3]
                rows += _s8_seed_rows(bench, client, seeded, letters, server)
    # The largest month again, every statement planned with its dates (a database setting, read by the server's
    # new connections): what the report's own `SET LOCAL plan_cache_mode = force_custom_plan` would give.
    largest = max(seeds, key=lambda seeded: seeded.in_month)
    asyncio.run(_admin(bench.dsn, f'ALTER DATABASE "{bench.db_name}" SET plan_cache_mode = force_custom_plan'))
    try:
        with bench.processes() as procs:
            server, url = bench.start_server(procs, "S8-custom-plans")
            with httpx.Client(base_url=url, timeout=120) as client:
                key = f"S8{'abcdefghijklmnopqrstuvwxyz'[3 * len(seeds)]}"
                row, _ = _s8_json_row(bench, client, largest, key, server, ", plan_cache_mode=force_custom_plan")
                rows.append(row)
    finally:
        asyncio.run(_admin(bench.dsn, f'ALTER DATABASE "{bench.db_name}" RESET plan_cache_mode'))
    return rows


RUNNERS: dict[str, Callable[[Bench], list[Row]]] = {
    "S0": s0_ceiling,
    "S1": s1_create,
    "S2": s2_replay,
    "S3": s3_read,
    "S4": s4_lifecycle,
    "S5": s5_drain,
    "S6": s6_import,
    "S7": s7_partners,
    "S8": s8_reports,
}
TITLES = {
    "S0": "ceiling",
    "S1": "create+confirm",
    "S2": "replay",
    "S3": "reads on 1,000,000 payments",
    "S4": "lifecycle",
    "S5": "webhook drain",
    "S6": "bulk bill import",
    "S7": "partner inquiry + payment pairs",
    "S8": "collections report on 1,000,000 payments",
}


# --- reporting ----------------------------------------------------------------------------------------------------


def _git(*args: str) -> str:
    completed = subprocess.run(
        ["git", "--no-optional-locks", *args], cwd=REPO, capture_output=True, timeout=30, check=False
    )
    return completed.stdout.decode().rstrip() if completed.returncode == 0 else ""


@dataclass(frozen=True)
class CodeState:
    commit: str
    dirty: tuple[str, ...]  # uncommitted changes under src/ and migrations/
    diff_hash: str

    @staticmethod
    def now() -> CodeState:
        commit = _git("rev-parse", "--short", "HEAD") or "unknown"
        dirty = tuple(line[3:] for line in _git("status", "--porcelain", "--", "src", "migrations").splitlines())
        diff = _git("diff", "HEAD", "--", "src", "migrations")
        return CodeState(commit, dirty, hashlib.sha256(diff.encode()).hexdigest()[:12])

    def describe(self) -> str:
        if not self.dirty:
            return f"`{self.commit}` (clean)"
        return f"`{self.commit}` **plus uncommitted changes** in {', '.join(f'`{d}`' for d in self.dirty)}"


def describe_environment(bench: Bench, postgres: dict[str, str], code: CodeState) -> list[str]:
    mem_kb = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    cfg = bench.cfg
    generator: str = cfg.generator
    if cfg.generator == "wrk":
        wrk = subprocess.run(["wrk", "--version"], capture_output=True, timeout=10, check=False)
        generator = (wrk.stdout or wrk.stderr).decode().split("[")[0].strip() or "wrk"
    ended = CodeState.now()
    lines = [
        f"* commit: {code.describe()}"
        + ("" if ended == code else f" — **the code changed during the run**: now {ended.describe()}"),
        f"* machine: {os.cpu_count()} CPUs, {mem_kb / 1024 / 1024:.1f} GB RAM, {platform.platform()}, "
        f"Python {platform.python_version()}",
        f"* PostgreSQL {postgres.get('server_version', '?')} on 127.0.0.1: "
        + ", ".join(f"{k}={v}" for k, v in postgres.items() if k != "server_version"),
        f"* load: {cfg.connections} connections, {cfg.load_seconds:g} s per load scenario (after a "
        f"{cfg.warmup_seconds:g} s warm-up), S4 {cfg.lifecycle_seconds:g} s; generator: {generator}"
        + (" (S4's lifecycles: httpx)" if cfg.generator == "wrk" else ""),
        "* server: `gateway serve --workers 1`, GATEWAY_ENV=production, access log off, log level WARNING, "
        "sandbox in-process; every gateway scenario starts a fresh server (peak RSS = that scenario's)",
    ]
    return lines


async def _postgres_settings(dsn: str) -> dict[str, str]:
    names = ("server_version", "shared_buffers", "synchronous_commit", "fsync", "max_connections", "work_mem")
    rows = await _fetch(dsn, "SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1::text[])", list(names))
    values = {r["name"]: r["setting"] + (f" ({r['unit']})" if r["unit"] else "") for r in rows}
    return {name: values.get(name, "?") for name in names}


def write_results(bench: Bench, rows: list[Row], header: list[str], wall: float) -> Path:
    cfg = bench.cfg
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    kind = "smoke run" if cfg.smoke else "run"
    text = (
        f"# Gateway benchmark — {kind} of {stamp}\n\n"
        + "\n".join(header)
        + f"\n* scenarios: {', '.join(cfg.scenarios)}; total wall time {wall:.0f} s\n\n"
        + render_table(rows)
        + "\nRatios in parentheses are to S0 of this run (throughput as %, latency and memory as ×). "
        "An error is a transport failure or a status ≥ 400.\n\n" + render_notes(rows)
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    # Only a full, unprofiled run replaces latest.md: smoke runs, profiled runs (py-spy perturbs what it measures)
    # and subsets each have their own file. Every run also keeps its own copy in its run directory.
    if cfg.smoke:
        name = "latest-smoke"
    elif cfg.profile:
        name = "latest-profiled"
    elif cfg.scenarios != SCENARIOS:
        name = "latest-partial"
    else:
        name = "latest"
    latest = RESULTS_DIR / f"{name}.md"
    latest.write_text(text)
    (bench.run_dir / "results.md").write_text(text)
    raw = {"config": {k: v for k, v in cfg.__dict__.items()}, "rows": [r.__dict__ for r in rows], "wall_seconds": wall}
    raw_text = json.dumps(raw, indent=2, default=str)
    latest.with_suffix(".json").write_text(raw_text)
    (bench.run_dir / "results.json").write_text(raw_text)
    if bench.profile_sections:
        profile = "# Profiles\n\n" + "\n".join(bench.profile_sections)
        (bench.run_dir / "profile.md").write_text(profile)
        (RESULTS_DIR / ("latest-smoke-profile.md" if cfg.smoke else "latest-profile.md")).write_text(profile)
    return latest


def _prune_old_runs(keep: int = 10) -> None:
    runs = sorted(p for p in RESULTS_DIR.glob("run-*") if p.is_dir())
    for old in runs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _raise_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    cfg = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)  # a `finally` still stops everything and drops the database
    started = time.monotonic()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    _prune_old_runs()
    run_dir = RESULTS_DIR / f"run-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    run_dir.mkdir(parents=True)
    bench = Bench(cfg, run_dir)
    code = CodeState.now()  # every scenario starts fresh servers: the code they run is read as they start
    rows: list[Row] = []
    failed = False
    postgres: dict[str, str] = {}
    try:
        print(f"setting up (database, migrate, merchant) — logs in {run_dir.relative_to(REPO)}", flush=True)
        setup(bench)
        postgres = asyncio.run(_postgres_settings(bench.dsn))
        for scenario in cfg.scenarios:
            print(f"{scenario} {TITLES[scenario]} ...", flush=True)
            t0 = time.monotonic()
            try:
                rows += RUNNERS[scenario](bench)
            except Exception as exc:
                failed = True
                rows.append(
                    Row(scenario, TITLES[scenario], "", verdict="ERROR", notes=[f"{type(exc).__name__}: {exc}"])
                )
                print(f"  {scenario} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            print(f"  {scenario} done in {time.monotonic() - t0:.0f} s", flush=True)
    finally:
        teardown(bench)
    wall = time.monotonic() - started
    evaluate(rows)
    latest = write_results(bench, rows, describe_environment(bench, postgres, code), wall)
    print()
    print(render_table(rows))
    print(render_notes(rows))
    print(f"total wall time {wall:.0f} s; written to {latest.relative_to(REPO)}")
    if failed:
        return 1
    if cfg.strict and any(r.verdict == "FAIL" for r in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
