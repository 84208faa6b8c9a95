"""Closed-loop HTTP load from a separate process: wrk (with bench/wrk_script.lua) when it is on PATH, otherwise
the asyncio + httpx generator in bench/load.py. Both report the same `LoadResult`.

Conventions shared by both generators, so their figures are comparable:
* latency is measured per completed response (any status), from sending the request to the end of the response;
* an error is a transport failure (connect, read, write, timeout) or a response with status >= 400;
* throughput is completed responses (errors included) per second of the run.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

BENCH_DIR = Path(__file__).resolve().parent
WRK_SCRIPT = BENCH_DIR / "wrk_script.lua"
LOAD_PY = BENCH_DIR / "load.py"

Generator = Literal["auto", "wrk", "httpx"]
IdempotencyMode = Literal["none", "fresh", "pool"]


@dataclass(frozen=True)
class LoadSpec:
    """One request shape, repeated by `connections` connections for `duration` seconds."""

    base_url: str
    method: str
    paths: list[str]  # cycled through, one per request
    headers: dict[str, str]
    body: str | None = None
    idempotency: IdempotencyMode = "none"
    idempotency_prefix: str = ""  # fresh: prefix + connection/thread + counter; pool: prefix + (counter % pool)
    idempotency_pool: int = 1
    connections: int = 32
    duration: float = 30.0
    timeout: float = 10.0


@dataclass
class LoadResult:
    generator: str
    requests: int
    errors: int
    duration: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    error_kinds: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    cpu_seconds: float = 0.0  # the generator process's own CPU time

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100); 0.0 for an empty list."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def choose_generator(preference: Generator) -> Literal["wrk", "httpx"]:
    if preference == "wrk" and not wrk_available():
        raise RuntimeError("--generator wrk was asked for but wrk is not on PATH (Debian: apt-get install wrk)")
    if preference == "httpx":
        return "httpx"
    return "wrk" if wrk_available() else "httpx"


def run_load(spec: LoadSpec, generator: Literal["wrk", "httpx"]) -> LoadResult:
    if generator == "httpx":
        return _run_httpx(spec)  # reports the CPU of its measured run itself (its imports excluded)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = _run_wrk(spec)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result.cpu_seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def _run_httpx(spec: LoadSpec) -> LoadResult:
    request = {"mode": "fixed", "spec": asdict(spec)}
    completed = subprocess.run(
        [sys.executable, str(LOAD_PY)],
        input=json.dumps(request).encode(),
        capture_output=True,
        timeout=spec.duration + spec.timeout + 60,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"load.py failed ({completed.returncode}): {completed.stderr.decode()[-2000:]}")
    return LoadResult(**json.loads(completed.stdout))


def _run_wrk(spec: LoadSpec) -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        config = Path(tmp) / "config.tsv"
        lines = [f"method\t{spec.method}", f"idem\t{spec.idempotency}", f"idem_prefix\t{spec.idempotency_prefix}"]
        lines.append(f"idem_pool\t{spec.idempotency_pool}")
        lines += [f"header\t{name}: {value}" for name, value in spec.headers.items()]
        if spec.body is not None:
            body_file = Path(tmp) / "body"
            body_file.write_text(spec.body)
            lines.append(f"body_file\t{body_file}")
        paths_file = Path(tmp) / "paths"
        paths_file.write_text("\n".join(spec.paths) + "\n")
        lines.append(f"paths_file\t{paths_file}")
        config.write_text("\n".join(lines) + "\n")
        threads = max(1, min(spec.connections, 2))
        seconds = max(1, round(spec.duration))
        argv = [
            "wrk",
            f"-t{threads}",
            f"-c{spec.connections}",
            f"-d{seconds}s",
            f"--timeout={max(1, round(spec.timeout))}s",
            "-s",
            str(WRK_SCRIPT),
            spec.base_url,
            "--",
            str(config),
        ]
        completed = subprocess.run(argv, capture_output=True, timeout=seconds + spec.timeout + 60, check=False)
    out = completed.stdout.decode(errors="replace")
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {out[-1500:]} {completed.stderr.decode()[-1500:]}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    kinds = {k: int(v) for k, v in raw["errors"].items() if int(v)}
    duration = raw["duration_us"] / 1e6
    requests = int(raw["requests"])
    return LoadResult(
        generator="wrk",
        requests=requests,
        errors=sum(kinds.values()),
        duration=duration,
        rps=requests / duration if duration else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        error_kinds=kinds,
    )


@dataclass(frozen=True)
class LifecycleSpec:
    """S4's driver: each connection loops create+confirm → test-helper pay, recording when each pay returned."""

    base_url: str
    api_key: str
    connections: int
    duration: float
    key_prefix: str
    timeout: float = 30.0


@dataclass
class LifecycleResult:
    started_at: float  # time.monotonic() (CLOCK_MONOTONIC: the same clock in every process of this machine)
    ended_at: float
    lifecycles_started: int
    paid_at: dict[str, float]  # payment id → monotonic time the pay call returned
    pay_sent_at: dict[str, float]  # payment id → monotonic time the pay call was sent
    errors: int
    error_kinds: dict[str, int]
    create_p50_ms: float
    create_p99_ms: float
    pay_p50_ms: float
    pay_p99_ms: float
    cpu_seconds: float = 0.0


def run_lifecycles(spec: LifecycleSpec) -> LifecycleResult:
    """Always the httpx generator: a lifecycle is a chain of requests, which a wrk script cannot express."""
    completed = subprocess.run(
        [sys.executable, str(LOAD_PY)],
        input=json.dumps({"mode": "lifecycle", "spec": asdict(spec)}).encode(),
        capture_output=True,
        timeout=spec.duration + spec.timeout + 60,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"load.py lifecycle failed: {completed.stderr.decode()[-2000:]}")
    return LifecycleResult(**json.loads(completed.stdout))
