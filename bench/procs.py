"""The processes a benchmark run starts, and what the harness reads about them from /proc.

Every process is started in its own session (so it leads its own process group) with its output in a log file,
and is stopped by that group id: SIGTERM, a bounded wait, then SIGKILL. Nothing is ever stopped by name.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: if the harness itself is killed (even by SIGKILL), the kernel
    sends this process SIGTERM, so no server outlives its run."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Managed:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass
class ProcessSet:
    """Every process this run started; `stop_all` (called from a finally) leaves none behind."""

    log_dir: Path
    started: list[Managed] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: Mapping[str, str], cwd: Path) -> Managed:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{len(self.started):02d}-{name}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                argv,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        managed = Managed(name, popen, log_path)
        self.started.append(managed)
        return managed

    def stop(self, proc: Managed, timeout: float = 10.0) -> None:
        if proc.popen.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.popen.wait(timeout=timeout)
        # Children left in the group (e.g. uvicorn's workers) go too.
        _signal_group(proc.pid, signal.SIGKILL)
        if proc in self.started:
            self.started.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.started)):
            try:
                self.stop(proc)
            except Exception as exc:  # keep stopping the others
                print(f"warning: could not stop {proc.name} (pid {proc.pid}): {exc}")


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_http_ok(url: str, proc: Managed, timeout: float = 30.0, verify: bool | ssl.SSLContext = True) -> None:
    """Bounded polling until `url` answers 200, failing at once if the process died."""
    deadline = time.monotonic() + timeout
    while True:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
        try:
            if httpx.get(url, timeout=1.0, verify=verify).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{proc.name} did not answer {url} within {timeout:g}s:\n{proc.log_tail()}")
        time.sleep(0.05)


# --- /proc readings ---------------------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces: split after its closing parenthesis.
    return raw[raw.rindex(")") + 2 :].split()


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def descendants(pid: int) -> list[int]:
    """pid and every process below it."""
    parents: dict[int, list[int]] = {}
    for other in _all_pids():
        fields = _stat_fields(other)
        if fields is not None:
            parents.setdefault(int(fields[1]), []).append(other)
    found, frontier = [pid], [pid]
    while frontier:
        children = parents.get(frontier.pop(), [])
        found.extend(children)
        frontier.extend(children)
    return found


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) summed over the process and its children, in MB."""
    return sum(_status_kb(p, "VmHWM") for p in descendants(pid)) / 1024


def cpu_seconds(pids: Iterable[int]) -> float:
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLOCK_TICKS


def postgres_pids() -> list[int]:
    pids = []
    for pid in _all_pids():
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "postgres":
                pids.append(pid)
        except OSError:
            continue
    return pids


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


PidSource = Callable[[], list[int]]


def tree(pid: int) -> PidSource:
    return lambda: descendants(pid)


def _cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    return {pid: cpu_seconds([pid]) for pid in pids}


@dataclass
class CpuWindow:
    """CPU used by groups of processes between `start()` and `stop()`, as % of one core.

    Each group's processes are listed again at the end, so a process born in the window (a new database
    backend) counts; one that exited in the window loses what it used (the kernel no longer says)."""

    groups: dict[str, PidSource]
    _start: dict[str, dict[int, float]] = field(default_factory=dict)
    _t0: float = 0.0
    _machine0: tuple[float, float] = (0.0, 0.0)
    percent: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._machine0 = machine_busy_seconds()
        self._start = {name: _cpu_by_pid(source()) for name, source in self.groups.items()}

    def stop(self) -> dict[str, float]:
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        for name, source in self.groups.items():
            before = self._start[name]
            now = _cpu_by_pid(source())
            used = sum(max(0.0, value - before.get(pid, 0.0)) for pid, value in now.items())
            self.percent[name] = 100 * used / elapsed
        busy1, total1 = machine_busy_seconds()
        busy0, total0 = self._machine0
        cores = os.cpu_count() or 1
        self.percent["machine"] = 100 * cores * (busy1 - busy0) / max(total1 - total0, 1e-9)
        return self.percent
