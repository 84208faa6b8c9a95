"""What the resilience tests run: real `gateway` processes on loopback ports (each in its own process group, so a
SIGKILL takes its children too), a throw-away PostgreSQL database or cluster, and an HTTPS webhook receiver that
verifies every signature with the `standardwebhooks` library."""

from __future__ import annotations

import asyncio
import ctypes
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks import Webhook, WebhookVerificationError

from tests.conftest import BACKENDS, POSTGRES_ADMIN_URL, REQUIRE_POSTGRES, _admin_execute, _postgres_available
from tests.processes import clean_env, free_port

SECRET_KEY = "resilience-secret-key-0123456789abcdef"
ADMIN_TOKEN = "adm_resilience"


def require_postgres() -> None:
    if "postgresql" not in BACKENDS:
        pytest.skip("GATEWAY_TEST_BACKENDS excludes postgresql")
    problem = _postgres_available()
    if problem is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required here but unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new, empty database on the shared server (never the server itself restarted), dropped afterwards."""
    name = f"gateway_resilience_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# --- processes ----------------------------------------------------------------------------------------------------

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Between fork and exec: should pytest itself be killed, the kernel stops this process too.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Gateway:
    """One kind of gateway process (serve, worker, sandbox) that can be started, killed and started again."""

    args: list[str]
    env: dict[str, str]
    log_dir: Path
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [sys.executable, "-m", "gateway.cli", *self.args]
        if self.port is not None:
            argv += ["--host", "127.0.0.1", "--port", str(self.port)]
        self.starts += 1
        with (self.log_dir / f"{self.args[0]}-{self.starts}.log").open("wb") as log:
            self.popen = subprocess.Popen(
                argv,
                env=self.env,
                cwd=self.log_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        if self.port is not None:
            self.wait_healthy()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.popen is not None
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.args[0]} exited: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.args[0]} did not start: {self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, chars: int = 3000) -> str:
        logs = sorted(self.log_dir.glob(f"{self.args[0]}-*.log"))
        return logs[-1].read_text(errors="replace")[-chars:] if logs else ""

    def kill(self) -> None:
        """SIGKILL to the whole process group: no cleanup, no graceful shutdown."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM (a graceful shutdown), SIGKILL after a bound."""
        if self.popen is not None and self.popen.poll() is None:
            self._signal(signal.SIGTERM, wait=False)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals, wait: bool = True) -> None:
        if self.popen is None:
            return
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        if wait:
            self.popen.wait(timeout=15)


def gateway_env(database_url: str, **extra: str) -> dict[str, str]:
    return clean_env(
        GATEWAY_DATABASE_URL=database_url,
        GATEWAY_SECRET_KEY=SECRET_KEY,
        GATEWAY_ADMIN_TOKEN=ADMIN_TOKEN,
        GATEWAY_LOG_LEVEL="WARNING",
        GATEWAY_ACCESS_LOG="false",
        **extra,
    )


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- a throw-away PostgreSQL cluster ------------------------------------------------------------------------------


@dataclass
class Cluster:
    version: str
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, action: str, *extra: str) -> None:
        _run(["pg_ctlcluster", self.version, self.name, action, *extra])


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stdout[-1000:]} {done.stderr[-1000:]}")


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster of this test's own (data in a temp dir, trust auth, a free port), dropped afterwards.
    Skipped where the Debian cluster tools are missing, unless PostgreSQL is required."""
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions or shutil.which("pg_createcluster") is None:
        message = "pg_createcluster / /etc/postgresql not available"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    version = versions[-1]
    cluster = Cluster(version, f"gwtest_{uuid.uuid4().hex[:10]}", free_port())
    data = Path(tempfile.mkdtemp(prefix="gateway-pg-", dir="/tmp"))
    try:
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: its data belongs to the postgres user
            shutil.chown(data, "postgres", "postgres")
        _run(
            [
                *("pg_createcluster", "-p", str(cluster.port), version, cluster.name, "-d", str(data / "data")),
                *("--", "--auth=trust", "--no-sync"),
            ]
        )
        try:
            cluster.ctl("start")
            yield cluster
        finally:
            subprocess.run(
                ["pg_dropcluster", "--stop", version, cluster.name],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=120,
                check=False,
            )
    finally:
        shutil.rmtree(data, ignore_errors=True)


# --- TLS and the webhook receiver ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def loopback_certificate(directory: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1 that is its own CA: the worker trusts it via SSL_CERT_FILE
    (production refuses plain-http webhook URLs, even on loopback)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    paths = Certificate(directory / "receiver.pem", directory / "receiver.key")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@dataclass
class WebhookReceiver:
    """A billing backend: verifies each delivery's signature, keeps the first copy of each webhook-id."""

    port: int
    secret: str | None = None
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: int = 0
    bad_signatures: int = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/hooks"

    def of_type(self, event_type: str) -> dict[str, dict[str, Any]]:
        """object id → the event, for every distinct event of that type."""
        return {e["data"]["object"]["id"]: e for e in self.events.values() if e["type"] == event_type}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status = 204
        if self.secret is None:
            status = 503  # not subscribed yet
        else:
            self.deliveries += 1
            try:
                event = Webhook(self.secret).verify(b"".join(chunks), headers)
            except WebhookVerificationError:
                self.bad_signatures += 1
                status = 400
            else:
                self.events.setdefault(headers["webhook-id"], event)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@asynccontextmanager
async def serving(receiver: WebhookReceiver, certificate: Certificate) -> AsyncIterator[WebhookReceiver]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", receiver.port))
    config = uvicorn.Config(
        receiver,
        log_config=None,
        access_log=False,
        lifespan="off",
        ssl_certfile=str(certificate.cert),
        ssl_keyfile=str(certificate.key),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
        sock.close()


def trusting(certificate: Certificate) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate.cert))
