"""§17: the report as CSV (Accept: text/csv), as the SVG chart, and as `gateway report` prints and writes them."""

from __future__ import annotations

import asyncio
import csv
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.reports.chart import report_svg
from gateway.runtime import Runtime
from gateway.settings import Settings
from tests.conftest import ADMIN, SECRET_KEY, MerchantHandle, assert_problem
from tests.reports.test_reports import NOVEMBER, REPORT, november_payments

SVG = "{http://www.w3.org/2000/svg}"


def svg_text(content: bytes) -> str:
    root = ET.fromstring(content)  # noqa: S314 - our own output
    assert root.tag == f"{SVG}svg"
    return " ".join("".join(e.itertext()) for e in root.iter(f"{SVG}text"))


async def test_csv_svg_and_the_command_show_the_same_report(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle, settings: Settings, tmp_path: Path
) -> None:
    await november_payments(client, rt, merchant)
    params = {**NOVEMBER, "group_by": "org_unit", "level": "district"}
    document = (await client.get(REPORT, params=params, headers=ADMIN)).json()

    answer = await client.get(REPORT, params=params, headers={**ADMIN, "Accept": "text/csv"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    lines = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8"))))
    assert list(lines[0]) == list(document["rows"][0])  # the header row: the JSON row's field names, in order
    assert [(line["key"], line["name"]) for line in lines] == [
        ("CX", "Cẩm Xuyên"),
        ("SYT", "Sở Y tế"),
        ("TH", "Thạch Hà"),
        ("", "Chưa xác định"),
        ("total", "Tổng cộng"),
    ]
    assert lines[2] == {
        "key": "TH",
        "name": "Thạch Hà",
        "payments": "2",
        "amount": "300000",
        "online_payments": "2",
        "online_amount": "300000",
        "online_share": "1.0",
        "target": "0.4",
        "meets_target": "true",
    }
    for line, row in zip(lines, [*document["rows"], document["totals"]], strict=True):
        assert int(line["amount"]) == row["amount"] and float(line["online_share"]) == row["online_share"]
        assert line["target"] == ("" if row["target"] is None else str(row["target"]))
    assert lines[-1]["target"] == "" and lines[-1]["payments"] == "5"

    chart = await client.get(REPORT + ".svg", params=params, headers=ADMIN)
    assert chart.status_code == 200, chart.text
    assert chart.headers["content-type"] == "image/svg+xml"
    text = svg_text(chart.content)
    for label in ("Thạch Hà (TH)", "Cẩm Xuyên (CX)", "Sở Y tế (SYT)", "Chưa xác định", "100.0%", "0.0%", "Mục tiêu"):
        assert label in text, (label, text)
    assert "01/11/2026 - 30/11/2026" in text
    assert b'id="target-0"' in chart.content and b'id="target-1"' in chart.content  # CX's and TH's marks
    # A filter's target is one vertical line across the chart.
    province = await client.get(
        REPORT + ".svg", params={**NOVEMBER, "group_by": "channel", "org_unit": "HT"}, headers=ADMIN
    )
    assert b'id="target"' in province.content and "Mục tiêu 50.0%" in svg_text(province.content)
    assert "Trực tuyến" in svg_text(province.content)
    assert_problem(
        await client.get(REPORT + ".svg", params={**NOVEMBER, "group_by": "org_unit"}), 401, "unauthenticated"
    )

    # `gateway report` against the same database, as the operator.
    env = {
        "GATEWAY_DATABASE_URL": settings.database_url,
        "GATEWAY_SECRET_KEY": SECRET_KEY,
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    args = ["report", "--from", "2026-11-01", "--to", "2026-11-30", "--group-by", "org_unit", "--level", "district"]
    csv_out, svg_out = tmp_path / "out.csv", tmp_path / "out.svg"
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, [*args, "--csv", str(csv_out), "--svg", str(svg_out)], env=env
    )
    assert result.exit_code == 0, result.output
    printed = result.output
    assert "Collections 2026-11-01 to 2026-11-30 by org_unit, level district" in printed
    assert "Thạch Hà" in printed and "300.000" in printed and "100.0%" in printed and "40.0%" in printed
    assert "Chưa xác định" in printed and "total" in printed and "500.000" in printed
    assert csv_out.read_bytes() == answer.content
    assert svg_out.read_bytes() == chart.content  # deterministic: drawn twice, the same bytes
    filtered = await asyncio.to_thread(CliRunner().invoke, cli, [*args[:6], "channel", "--org-unit", "HT"], env=env)
    assert filtered.exit_code == 0, filtered.output
    assert "Trực tuyến" in filtered.output and "50.0%" in filtered.output and "430.000" in filtered.output
    for bad in (["--org-unit", "NOWHERE"], ["--group-by", "x"]):
        refused = await asyncio.to_thread(CliRunner().invoke, cli, [*args, *bad], env=env)
        assert refused.exit_code == 2, (bad, refused.output)
        assert "bad option" in refused.output, refused.output


def test_names_are_drawn_as_text_never_as_formulas() -> None:
    """A `$` in a name would start a matplotlib formula (a 500 on an unbalanced one): names stay plain text."""
    figures = {"payments": 2, "amount": 2, "online_payments": 1, "online_amount": 1, "online_share": 0.5}
    names = [r"Công ty $\frac{$ X", "Giá $5 và $10"]
    rows = [
        {"key": f"m{i}", "name": name, **figures, "target": None, "meets_target": None} for i, name in enumerate(names)
    ]
    report = {
        "from": "2026-11-01",
        "to": "2026-11-30",
        "group_by": "merchant",
        "rows": rows,
        "totals": {**figures, "target": None},
    }
    text = svg_text(report_svg(report))
    assert all(name in text for name in names), text


async def test_the_format_follows_the_accept_headers_weights(client: httpx.AsyncClient) -> None:
    params = {**NOVEMBER, "group_by": "day"}
    for accept, media in [
        ("text/csv", "text/csv"),
        ("application/json, text/csv;q=0", "application/json"),
        ("application/json;q=0.5, text/csv", "text/csv"),
        ("text/csv;q=0.2, */*;q=0.8", "application/json"),
        ("*/*", "application/json"),
        ("", "application/json"),
    ]:
        answer = await client.get(REPORT, params=params, headers={**ADMIN, "Accept": accept})
        assert (answer.status_code, answer.headers["content-type"].split(";")[0]) == (200, media), accept
