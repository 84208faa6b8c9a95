"""The README's walk-through, run verbatim against a real `gateway serve` in the development profile."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.processes import clean_env, free_port, gateway_process

README = Path(__file__).resolve().parents[1] / "README.md"


def walkthrough_script() -> str:
    text = README.read_text()
    section = text.split("## Walk-through", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_readme_walkthrough_works_verbatim(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "bin").symlink_to(Path(sys.executable).parent)
    script = walkthrough_script().replace("GW=http://127.0.0.1:8000", f"GW=http://127.0.0.1:{port}")
    env = clean_env()
    with gateway_process(["serve"], tmp_path, env, port):
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
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


def _json_lines(out: str) -> list[str]:
    # curl prints each JSON document without a newline: split them apart.
    decoder = json.JSONDecoder()
    first_newline = out.index("\n")
    rest, docs, i = out[first_newline + 1 :], [], 0
    while i < len(rest):
        if rest[i].isspace():
            i += 1
            continue
        obj, end = decoder.raw_decode(rest, i)
        docs.append(json.dumps(obj))
        i = end
    return docs
