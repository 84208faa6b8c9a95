"""The results table: one row per measured scenario, every figure also as a ratio to S0 of the same run, and
the issue's targets next to them (PASS / FAIL)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Verdict = Literal["PASS", "FAIL", "n/a", "ERROR", ""]
Process = Literal["ceiling", "server", "worker", ""]


@dataclass
class Row:
    key: str  # "S0", "S1", "S2a", ... — the table's first column
    title: str
    unit: str  # what the throughput counts: req/s, lifecycles/s, deliveries/s
    throughput: float | None = None
    p50: float | None = None  # ms
    p95: float | None = None
    p99: float | None = None
    errors: int | None = None
    rss_mb: float | None = None
    rss_of: Process = ""  # whose peak RSS the row shows
    target: str = ""
    verdict: Verdict = ""
    notes: list[str] = field(default_factory=list)

    @property
    def scenario(self) -> str:
        return self.key[:2]


# --- targets (issue 5) ---------------------------------------------------------------------------------------

S3_P99_MS = 10.0
PAGE_RATIO = 1.5
S4_LIFECYCLES = 300.0
S4_P99_MS = 1000.0
S5_DELIVERIES = 1000.0
S6_BILLS = 10_000.0
S7_PAIRS = 200.0  # partner inquiry + payment pairs per second
S7_P99_MS = 200.0  # for each of the two routes
S8_MS = 500.0  # the collections report of a month (§17), at p99 of requests one after the other
RSS_LIMIT_MB = 200.0


def _find(rows: list[Row], key: str) -> Row | None:
    return next((r for r in rows if r.key == key), None)


def _verdict(ok: bool) -> Verdict:
    return "PASS" if ok else "FAIL"


def evaluate(rows: list[Row]) -> None:
    """Fill each row's target and verdict; appends the memory row."""
    s0 = _find(rows, "S0")
    s0_ok = s0 is not None and s0.verdict != "ERROR" and s0.throughput and s0.p99

    def relative(row: Row, target: str, check: Callable[[Row, Row], bool]) -> None:
        row.target = target
        if not s0_ok:
            row.verdict = "n/a"
            row.notes.append("no S0 in this run: run it with S0 for the relative targets")
            return
        assert s0 is not None
        row.verdict = _verdict(check(row, s0))

    for row in rows:
        if row.verdict == "ERROR":
            continue
        if row.key == "S1":
            relative(
                row,
                "≥60% S0 req/s, p99 ≤1.5× S0, 0 errors",
                lambda r, s: (
                    (r.throughput or 0) >= 0.6 * (s.throughput or 0)
                    and (r.p99 or 0) <= 1.5 * (s.p99 or 0)
                    and r.errors == 0
                ),
            )
        elif row.key.startswith("S2"):
            relative(row, "≥90% S0 req/s", lambda r, s: (r.throughput or 0) >= 0.9 * (s.throughput or 0))
        elif row.key in ("S3a", "S3b", "S3e", "S3f"):
            row.target = f"p99 ≤{S3_P99_MS:g} ms"
            row.verdict = _verdict(row.p99 is not None and row.p99 <= S3_P99_MS)
        elif row.key == "S3d":
            page1 = _find(rows, "S3c")
            row.target = f"p50 and p99 ≤{PAGE_RATIO:g}× page 1"
            if page1 is None or not page1.p50 or not page1.p99:
                row.verdict = "n/a"
            else:
                row.verdict = _verdict(
                    (row.p50 or 0) <= PAGE_RATIO * page1.p50 and (row.p99 or 0) <= PAGE_RATIO * page1.p99
                )
        elif row.key == "S4":
            row.target = f"≥{S4_LIFECYCLES:g}/s, notif→webhook p99 ≤{S4_P99_MS / 1000:g} s"
            row.verdict = _verdict(
                (row.throughput or 0) >= S4_LIFECYCLES and row.p99 is not None and row.p99 <= S4_P99_MS
            )
        elif row.key == "S5":
            row.target = f"≥{S5_DELIVERIES:g} deliveries/s"
            row.verdict = _verdict((row.throughput or 0) >= S5_DELIVERIES)
        elif row.key == "S6":
            row.target = f"≥{S6_BILLS:,.0f} bills/s, RSS ≤{RSS_LIMIT_MB:g} MB, 0 errors"
            row.verdict = _verdict(
                (row.throughput or 0) >= S6_BILLS and (row.rss_mb or 0) <= RSS_LIMIT_MB and row.errors == 0
            )
        elif row.key in ("S7a", "S7b"):
            row.target = f"≥{S7_PAIRS:g} pairs/s, p99 ≤{S7_P99_MS:g} ms, 0 errors"
            row.verdict = _verdict(
                (row.throughput or 0) >= S7_PAIRS and row.p99 is not None and row.p99 <= S7_P99_MS and row.errors == 0
            )
        elif row.scenario == "S8":
            row.target = f"p99 ≤{S8_MS:g} ms, 0 errors"
            row.verdict = _verdict(row.p99 is not None and row.p99 <= S8_MS and row.errors == 0)
    servers = [r for r in rows if r.rss_of == "server" and r.rss_mb is not None]
    if servers:
        worst = max(servers, key=lambda r: r.rss_mb or 0)
        workers = [r.rss_mb for r in rows if r.rss_of == "worker" and r.rss_mb is not None]
        memory = Row(
            "M",
            "memory: highest `gateway serve` peak RSS of the run",
            "",
            rss_mb=worst.rss_mb,
            rss_of="server",
            target=f"≤{RSS_LIMIT_MB:g} MB",
            verdict=_verdict((worst.rss_mb or 0) <= RSS_LIMIT_MB),
        )
        memory.notes.append(f"in {worst.key}" + (f"; `gateway worker` peak {max(workers):.0f} MB" if workers else ""))
        rows.append(memory)


# --- rendering -----------------------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _with_ratio(value: float | None, base: float | None, *, percent: bool = False) -> str:
    text = _num(value)
    if value is None or not base:
        return text
    return f"{text} ({100 * value / base:.0f}%)" if percent else f"{text} ({value / base:.2g}×)"


def render_table(rows: list[Row]) -> str:
    s0 = _find(rows, "S0")
    base = s0 if s0 is not None and s0.verdict != "ERROR" else None
    header = (
        "| # | scenario | throughput /s | p50 ms | p95 ms | p99 ms | errors | peak RSS MB | target | result |\n"
        "|---|---|--:|--:|--:|--:|--:|--:|---|---|\n"
    )
    lines = []
    for r in rows:
        is_base = r is base
        b = None if is_base or base is None else base
        throughput = _with_ratio(r.throughput, b.throughput if b else None, percent=True)
        if r.throughput is not None and r.unit != "req/s":
            throughput += f" {r.unit.removesuffix('/s')}"
        cells = [
            r.key,
            r.title,
            throughput,
            _with_ratio(r.p50, b.p50 if b else None),
            _with_ratio(r.p95, b.p95 if b else None),
            _with_ratio(r.p99, b.p99 if b else None),
            "—" if r.errors is None else str(r.errors),
            _with_ratio(r.rss_mb, b.rss_mb if b else None) + (f" {r.rss_of}" if r.rss_of not in ("server", "") else ""),
            r.target or "—",
            f"**{r.verdict}**" if r.verdict in ("FAIL", "ERROR") else (r.verdict or "—"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return header + "\n".join(lines) + "\n"


def render_notes(rows: list[Row]) -> str:
    out = []
    for r in rows:
        if r.notes:
            out.append(f"* **{r.key}** — " + "; ".join(r.notes))
    return "\n".join(out) + ("\n" if out else "")
