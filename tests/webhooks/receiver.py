"""A billing backend's webhook receiver, served over real HTTP on a loopback port by uvicorn."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.requests import Request
from starlette.responses import Response


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


Behaviour = Callable[[Received, int], Response | None]  # (request, how many times this webhook-id came) → answer


@dataclass
class Receiver:
    url: str
    port: int
    received: list[Received] = field(default_factory=list)
    behaviour: Behaviour | None = None
    delay: float = 0.0

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.received if "webhook-id" in r.headers]

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:  # type: ignore[type-arg]
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        item = Received(request.url.path, {k.lower(): v for k, v in request.headers.items()}, await request.body())
        seen = sum(1 for r in self.received if r.headers.get("webhook-id") == item.headers.get("webhook-id"))
        self.received.append(item)
        if self.delay:
            await asyncio.sleep(self.delay)
        response = self.behaviour(item, seen + 1) if self.behaviour else None
        await (response or Response(b'{"ok":true}', 200, media_type="application/json"))(scope, receive, send)


def bound_socket(port: int = 0) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@asynccontextmanager
async def serve(receiver: Receiver, sock: socket.socket) -> AsyncIterator[Receiver]:
    server = uvicorn.Server(uvicorn.Config(receiver, log_config=None, access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def running_receiver(port: int = 0) -> AsyncIterator[Receiver]:
    sock = bound_socket(port)
    actual = sock.getsockname()[1]
    async with serve(Receiver(url=f"http://127.0.0.1:{actual}/hooks", port=actual), sock) as receiver:
        yield receiver
