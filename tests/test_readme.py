"""The README's walk-through, run verbatim against a real `gateway serve` in the development profile."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.processes import clean_env, free_port, gateway_process

README = Path(__file__).resolve().parents[1] / "README.md"


def walkthrough_script(heading: str = "## Walk-through") -> str:
    section = README.read_text().split(heading, 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```bash\n(.*?)```", section, re.S))


def run_walkthrough(tmp_path: Path, heading: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The README section's bash blocks, run verbatim (bar the port) against a real `gateway serve` in tmp_path."""
    port = free_port()
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "bin").symlink_to(Path(sys.executable).parent)
    script = walkthrough_script(heading).replace("GW=http://127.0.0.1:8000", f"GW=http://127.0.0.1:{port}")
    env = clean_env()
    with gateway_process(["serve"], tmp_path, env, port):
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def test_readme_walkthrough_works_verbatim(tmp_path: Path) -> None:
    result = run_walkthrough(tmp_path, "## Walk-through")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("requires_action 000201010212"), out[:200]
    assert (tmp_path / "qr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    documents = [json.loads(line) for line in _json_lines(out)]
    payment, refund, ledger, balance, events = (
        documents[1],
        documents[2],
        documents[3],
        documents[4],
        documents[5],
    )
    assert documents[0]["status"] == "succeeded"
    assert payment["status"] == "succeeded" and payment["amount_received"] == 150000
    assert refund["object"] == "refund" and refund["amount"] == 50000
    assert [t["kind"] for t in ledger["data"]] == ["refund_succeeded", "payment_received"]
    assert balance["balances"] == [{"currency": "VND", "collected": 150000, "refunded": 50000, "net": 100000}]
    assert events["data"][0]["type"] == "refund.succeeded"
    assert "vnpay requires_action http://127.0.0.1:" in out and "redirect momo://app" in out
    card_paid, wallet_paid, wallet_refund = documents[6], documents[7], documents[8]
    assert card_paid["status"] == "succeeded" and card_paid["provider"] == "vnpay"
    assert wallet_paid["status"] == "succeeded" and wallet_paid["provider"] == "momo"
    assert wallet_refund["status"] == "succeeded" and wallet_refund["amount"] == 85000


def _json_lines(out: str) -> list[str]:
    # curl prints JSON documents without newlines, between the plain lines the script prints: pick them out.
    decoder = json.JSONDecoder()
    docs, i = [], 0
    while i < len(out):
        if out[i] == "{":
            obj, i = decoder.raw_decode(out, i)
            docs.append(json.dumps(obj))
        elif out[i].isspace():
            i += 1
        else:
            i = out.find("\n", i) + 1 or len(out)
    return docs


def test_readme_bills_walkthrough_works_verbatim(tmp_path: Path) -> None:
    result = run_walkthrough(tmp_path, "## Bills walk-through")
    assert result.returncode == 0, result.stderr + result.stdout
    lines = result.stdout.splitlines()
    code, payload = lines[0].split(" ", 1)
    assert code.startswith("KH") and payload.startswith("000201010211"), lines[0]
    assert (tmp_path / "customer-qr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    imported = json.loads(lines[1])
    assert (imported["object"], imported["created"], imported["errors"]) == ("bill_import", 2, [])
    assert lines[2] == "[('HD-2026-11-000123', 'paid')]"
    assert lines[3] == "15000"
    assert lines[4] == "00000001 Ba trăm nghìn đồng"
    assert (tmp_path / "receipt.pdf").read_bytes()[:5] == b"%PDF-"
    assert lines[5] == "Nguyễn V** An"


def test_readme_collections_walkthrough_works_verbatim(tmp_path: Path) -> None:
    result = run_walkthrough(tmp_path, "## Collections walk-through", timeout=90)
    assert result.returncode == 0, result.stderr + result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == "('Lê V** Cường', 356000)"
    assert lines[1] == "('accepted', [{'bill_number': 'HD-2026-11-000125', 'amount': 356000}], '00000001')"
    assert "| Thanh toan thanh cong 85.000 VND cho Nuoc sach Quang Ninh. |" in lines[3]
    assert lines[-3:] == ["paid", "paid", "[('viettel_money', 'online')]"]
    # The README shows the phone's screens exactly as `gateway phone` printed them (the telco's id aside).
    shown = README.read_text().split("What the phone showed", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    printed = (tmp_path / "ussd.txt").read_text()
    assert re.sub(r"VT\d+", "VT…", printed) == re.sub(r"VT\d+", "VT…", shown)


def test_readme_reports_walkthrough_works_verbatim(tmp_path: Path) -> None:
    result = run_walkthrough(tmp_path, "## Reports walk-through", timeout=90)
    assert result.returncode == 0, result.stderr + result.stdout
    lines = result.stdout.splitlines()
    assert lines[:3] == ["TH", "('succeeded', 'counter')", "('succeeded', 'online')"]
    assert lines[3] == "[('Cẩm Xuyên', 1, 0.0, 0.6, False), ('Thạch Hà', 2, 0.5, 0.4, True)]"
    assert lines[4] == "(3, 320000, 0.3333, False)"
    assert lines[5:9] == [
        "key,name,payments,amount,online_payments,online_amount,online_share,target,meets_target",
        "CX,Cẩm Xuyên,1,120000,0,0,0.0,0.6,false",
        "TH,Thạch Hà,2,200000,1,150000,0.5,0.4,true",
        "total,Tổng cộng,3,320000,1,150000,0.3333,0.5,false",
    ]
    printed = "\n".join(lines[9:])
    assert "Thạch Hà" in printed and "Cẩm Xuyên" in printed and "33.3%" in printed and "320.000" in printed
    chart = (tmp_path / "report.svg").read_text()
    assert "Thạch Hà (TH)" in chart and "Cẩm Xuyên (CX)" in chart and 'id="target-0"' in chart
    # The README's chart is one these commands drew (on another day: the title carries the date).
    example = (README.parent / "docs" / "report-example.svg").read_text()
    assert re.sub(r"\d\d/\d\d/\d{4}", "D", example) == re.sub(r"\d\d/\d\d/\d{4}", "D", chart)
