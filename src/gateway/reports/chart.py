"""The report as a chart (§17): one horizontal bar of online share per row, with the target to reach.

Drawn with matplotlib: reference lines (`axvline` for the filter's target, a marker per row for the units' own
targets) and text layout (long Vietnamese labels, percentages at the bars' ends) are first-class there, where pygal
has no reference line. It is imported inside `report_svg` only, so the service starts without paying for it. The
SVG keeps its text as text (`svg.fonttype: none`: searchable, and DejaVu Sans — shipped with matplotlib — covers
Vietnamese), and the same report always draws the same bytes (a fixed `svg.hashsalt`, no date in the metadata)."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

_TITLE_DATE = "%d/%m/%Y"


def _label(row: dict[str, Any]) -> str:
    name, key = row.get("name"), row.get("key")
    if name and key and name != key:
        return f"{name} ({key})"
    return str(name or key or "?")


def _title(report: dict[str, Any]) -> str:
    first = date.fromisoformat(report["from"]).strftime(_TITLE_DATE)
    last = date.fromisoformat(report["to"]).strftime(_TITLE_DATE)
    return f"Tỷ lệ thanh toán trực tuyến, {first} - {last}"


def report_svg(report: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rows = list(report["rows"])
    labels = [_label(row) for row in rows]
    shares = [float(row["online_share"]) for row in rows]
    with matplotlib.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": "gateway-report",
            "font.family": "DejaVu Sans",
            "font.size": 10,
            # Names are text, never TeX: a `$` in a unit's or merchant's name must not start a formula.
            "text.parse_math": False,
        }
    ):
        figure = Figure(figsize=(8, 1.6 + 0.45 * max(len(rows), 1)), layout="constrained")
        axes = figure.add_subplot()
        positions = list(range(len(rows)))
        axes.barh(positions, shares, color="#2f7ed8", height=0.6)
        axes.set_yticks(positions, labels)
        axes.invert_yaxis()  # the first row on top
        axes.set_xlim(0, 1.12)
        axes.set_xticks([0, 0.25, 0.5, 0.75, 1], ["0%", "25%", "50%", "75%", "100%"])
        axes.set_xlabel("Tỷ lệ trực tuyến (số giao dịch)")
        for y, row in zip(positions, rows, strict=True):
            axes.text(
                float(row["online_share"]) + 0.01,
                y,
                f"{row['online_share'] * 100:.1f}% ({row['online_payments']}/{row['payments']})",
                va="center",
                fontsize=9,
            )
        _targets(axes, report, rows, positions)
        if not rows:
            axes.text(0.5, 0, "Không có giao dịch", ha="center", va="center")
        axes.set_title(_title(report))
        buffer = io.BytesIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _targets(axes: Any, report: dict[str, Any], rows: list[dict[str, Any]], positions: list[int]) -> None:
    """Units' own targets (group_by=org_unit) as a red tick on each row; otherwise the filter's target as one
    vertical line across the chart."""
    if report["group_by"] == "org_unit":
        marked = [(y, row["target"]) for y, row in zip(positions, rows, strict=True) if row["target"] is not None]
        for index, (y, target) in enumerate(marked):
            axes.plot(
                [target, target],
                [y - 0.4, y + 0.4],
                color="#c0392b",
                linewidth=2.5,
                label="Mục tiêu" if index == 0 else None,
                gid=f"target-{index}",
            )
        if marked:
            axes.legend(loc="lower right")
        return
    target = report["totals"]["target"]
    if target is not None:
        axes.axvline(
            target, color="#c0392b", linewidth=2, linestyle="--", label=f"Mục tiêu {target * 100:.1f}%", gid="target"
        )
        axes.legend(loc="lower right")
