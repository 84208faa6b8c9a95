"""`--profile`: where the time goes during a measured window.

* py-spy samples each gateway process (100 Hz, only the thread holding the GIL) and the collapsed stacks are
  summarised as the functions with the most samples, by self time and by inclusive time;
* a sampler polls pg_stat_activity for the benchmark database every 20 ms and counts what the backends were
  doing: running a query, idle in a transaction (waiting for the app), waiting on a lock, ...
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

_LINE_NO = re.compile(r":\d+\)$")


def py_spy_path() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


def _frame(frame: str) -> str:
    """'function (sqlalchemy/orm/session.py:2555)' → 'function (sqlalchemy/orm/session.py)'."""
    return _LINE_NO.sub(")", frame.strip())


def _package(frame: str) -> str:
    if " (" not in frame:
        return frame
    where = frame.rpartition(" (")[2].rstrip(")")
    return where.split("/")[0] if "/" in where else "stdlib (" + where + ")"


def summarise_collapsed(text: str, top: int = 20) -> str:
    """Self and inclusive sample counts from py-spy's collapsed stacks.

    SQLAlchemy's async layer runs the ORM in greenlets, and py-spy sees a greenlet's stack only up to the
    greenlet's start (e.g. `Session.execute`): self time is exact, inclusive time of the request handlers above
    an ORM call is undercounted. The package table (self time) is the reliable overview.
    """
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame(f) for f in stack.split(";") if f.strip()]
        leaf = frames[-1] if frames else "(native code, no Python frame)"
        self_time[leaf] += count
        packages[_package(leaf)] += count
        for name in set(frames):
            inclusive[name] += count
    if total == 0:
        return "(no samples)\n"
    lines = [f"{total} samples (100 Hz, the thread holding the GIL)\n", "| self % | package |", "|--:|---|"]
    lines += [f"| {100 * n / total:.1f} | {name} |" for name, n in packages.most_common(12)]
    lines += ["", "| self % | function |", "|--:|---|"]
    lines += [f"| {100 * n / total:.1f} | `{name}` |" for name, n in self_time.most_common(top)]
    lines += ["", "| inclusive % | function (gateway code only) |", "|--:|---|"]
    gateway = [(name, n) for name, n in inclusive.most_common() if "(gateway/" in name]
    lines += [f"| {100 * n / total:.1f} | `{name}` |" for name, n in gateway[:top]]
    return "\n".join(lines) + "\n"


@dataclass
class PgActivitySampler:
    dsn: str
    database: str
    interval: float = 0.02
    counts: Counter[str] = field(default_factory=Counter)
    queries: Counter[str] = field(default_factory=Counter)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    async def _run(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while not self._stop.is_set():
                rows = await conn.fetch(
                    "SELECT state, wait_event_type, wait_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS q"
                    " FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
                    " AND backend_type = 'client backend'",
                    self.database,
                )
                self.samples += 1
                for row in rows:
                    state = row["state"] or "?"
                    if state == "idle":
                        continue
                    wait = f"{row['wait_event_type']}:{row['wait_event']}" if row["wait_event_type"] else "on CPU"
                    self.counts[f"{state} / {wait}"] += 1
                    if state == "active":
                        self.queries[row["q"]] += 1
                await asyncio.sleep(self.interval)
        finally:
            await conn.close()

    def summary(self, top: int = 8) -> str:
        if not self.samples:
            return "(no pg_stat_activity samples)\n"
        lines = [
            f"{self.samples} samples of pg_stat_activity (every {self.interval * 1000:.0f} ms); "
            "average number of non-idle backends in each state:\n",
            "| backends | state / wait |",
            "|--:|---|",
        ]
        lines += [f"| {n / self.samples:.2f} | {name} |" for name, n in self.counts.most_common(top)]
        lines += ["", "| backends | active query |", "|--:|---|"]
        lines += [f"| {n / self.samples:.2f} | `{q}` |" for q, n in self.queries.most_common(top)]
        return "\n".join(lines) + "\n"


async def _db_counters(dsn: str, database: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        db = await conn.fetchrow("SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = $1", database)
        tables = await conn.fetch("SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables")
    finally:
        await conn.close()
    counters = {"transactions committed": int(db["xact_commit"]), "transactions rolled back": int(db["xact_rollback"])}
    for row in tables:
        for kind, column in (("inserted", "n_tup_ins"), ("updated", "n_tup_upd"), ("deleted", "n_tup_del")):
            counters[f"{row['relname']} rows {kind}"] = int(row[column])
    return counters


def db_work_summary(before: dict[str, int], after: dict[str, int], units: int, unit: str) -> str:
    """What the database did per request (or lifecycle, delivery), from pg_stat_database/pg_stat_user_tables
    (which backends report when they go idle, so the last second of the window may be missing)."""
    if units <= 0:
        return ""
    lines = [f"per {unit} ({units:,} in the window):\n", f"| per {unit} | counter |", "|--:|---|"]
    for name, value in after.items():
        delta = value - before.get(name, 0)
        if delta > 0:
            lines.append(f"| {delta / units:.2f} | {name} |")
    return "\n".join(lines) + "\n"


@dataclass
class Profiler:
    """py-spy on each named process for `seconds`, plus the pg_stat_activity sampler, during one window."""

    label: str
    out_dir: Path
    pids: dict[str, int]
    seconds: float
    dsn: str
    database: str
    _spies: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)
    _sampler: PgActivitySampler | None = None
    _db_before: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def start(self) -> None:
        self._db_before = asyncio.run(_db_counters(self.dsn, self.database))
        spy = py_spy_path()
        if spy is None:
            self.problems.append("py-spy not found (.venv/bin/pip install py-spy)")
        else:
            for name, pid in self.pids.items():
                out = self.out_dir / f"profile-{self.label}-{name}.txt"
                argv = [spy, "record", "--pid", str(pid), "--duration", str(max(1, int(self.seconds))), "--rate", "100"]
                # --gil: only threads holding the GIL, i.e. running Python. Without it py-spy counts FastAPI's idle
                # thread-pool workers (parked in Condition.wait, <1% CPU each by /proc) as busy.
                argv += ["--gil", "--format", "raw", "--output", str(out)]
                proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
                self._spies.append((name, proc, out))
        self._sampler = PgActivitySampler(self.dsn, self.database)
        self._sampler.start()

    def finish(self, units: int = 0, unit: str = "request") -> str:
        sections = [f"## {self.label}\n"]
        if self._sampler is not None:
            self._sampler.stop()
        db_after = asyncio.run(_db_counters(self.dsn, self.database))
        for name, proc, out in self._spies:
            try:
                _, err = proc.communicate(timeout=self.seconds + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            sections.append(f"### py-spy: {name}\n")
            if out.exists():
                sections.append(summarise_collapsed(out.read_text()))
            else:
                sections.append(f"(py-spy failed: {err.decode(errors='replace')[-500:]})\n")
        if self._sampler is not None:
            sections.append("### PostgreSQL backends\n")
            sections.append(self._sampler.summary())
        work = db_work_summary(self._db_before, db_after, units, unit)
        if work:
            sections.append("### Database work\n")
            sections.append(work)
        sections += [f"* {p}\n" for p in self.problems]
        return "\n".join(sections)
