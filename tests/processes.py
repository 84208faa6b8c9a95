"""Real server processes for end-to-end tests: `gateway serve`, `gateway sandbox`, on loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(extra)
    return env


@contextmanager
def gateway_process(args: list[str], cwd: Path, env: dict[str, str], port: int) -> Iterator[str]:
    log = (cwd / f"gateway-{args[0]}-{port}.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *args, "--host", "127.0.0.1", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # generous: the suite runs on two workers on two cores
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{args[0]} exited: {(cwd / log.name).read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{args[0]} did not start: {(cwd / log.name).read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
