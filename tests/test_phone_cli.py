"""`gateway phone` plays a feature phone against a sandbox telco served over real HTTP (uvicorn on a free port),
its inputs piped in as a script would."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from gateway.adapters.telco.wire import VIETTEL_MONEY
from gateway.cli import app as cli
from tests.sandbox.telco_fake_gateway import Harness, make_harness

PHONE = "0987654321"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Harness]]:
    harness = make_harness(VIETTEL_MONEY)
    harness.gateway.billers = [{"biller_code": "BILLER01", "name": "Cap nuoc Ha Noi"}]
    harness.gateway.bills[("BILLER01", "PA01")] = (150_000, "NGUYEN VAN AN")
    root = FastAPI()
    root.mount("/sandbox/viettel_money", harness.app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(root, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield f"http://127.0.0.1:{port}", harness
    server.should_exit = True
    thread.join(timeout=10)


def phone(url: str, stdin: str, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["phone", "--provider", "viettel_money", "--phone", PHONE, "--url", url, *extra], input=stdin
    )
    return result.exit_code, result.output


def test_a_piped_session_pays_a_bill_and_reads_as_a_transcript(served: tuple[str, Harness]) -> None:
    url, harness = served
    before = harness.telco.wallet("84987654321").balance
    code, output = phone(url, "1\n1\nPA01\n1\n1234\n")
    assert code == 0, output
    assert "| Viettel Money" in output and "| 1 Thanh toan hoa don" in output
    assert "> 1\n" in output and "> PA01\n" in output and "> 1234\n" in output
    assert "CON " not in output and "END " not in output
    assert "Thanh toan thanh cong 150.000 VND" in output
    assert harness.telco.wallet("84987654321").balance == before - 150_000
    assert harness.gateway.results[-1]["payment_status"] == "1"


def test_the_balance_and_the_service_code(served: tuple[str, Harness]) -> None:
    url, _ = served
    code, output = phone(url, "2\n")
    assert code == 0 and "So du:" in output
    code, output = phone(url, "", "--service-code", "*123#")
    assert code == 0 and "Ma dich vu khong ton tai" in output


def test_input_ending_before_the_session_fails(served: tuple[str, Harness]) -> None:
    url, _ = served
    code, output = phone(url, "1\n")
    assert code == 1 and "input ended" in output


def test_an_unreachable_telco_exits_1() -> None:
    code, output = phone(f"http://127.0.0.1:{free_port()}", "1\n")
    assert code == 1 and "cannot be reached" in output


def test_an_http_error_exits_1(served: tuple[str, Harness]) -> None:
    url, _ = served
    code, output = phone(url, "", "--phone", "x" * 30)  # refused by the simulator: 400
    assert code == 1 and "HTTP 400" in output


def test_an_unknown_telco_is_refused() -> None:
    result = CliRunner().invoke(cli, ["phone", "--provider", "nope", "--phone", PHONE])
    assert result.exit_code == 2


def test_the_installed_command_reads_a_real_pipe(served: tuple[str, Harness]) -> None:
    url, _ = served
    command = Path(sys.executable).with_name("gateway")
    completed = subprocess.run(
        [str(command), "phone", "--provider", "viettel_money", "--phone", PHONE, "--url", url],
        input="2\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "> 2\n" in completed.stdout and "So du:" in completed.stdout
