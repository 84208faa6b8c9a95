"""SSRF protection: a webhook goes only to globally routable addresses, checked at delivery time, and the
connection is made to the very address that was checked (no second DNS lookup an attacker could steer)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The IANA special-purpose address blocks that are not globally reachable, named explicitly: `is_global` alone
# follows whatever table the running Python ships (3.11 still calls 192.0.0.8 global).
NOT_GLOBAL = tuple(
    ipaddress.ip_network(block)
    for block in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
        "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "3fff::/20",
        "fc00::/7", "fe80::/10", "ff00::/8",
    )
)  # fmt: skip
# Within 192.0.0.0/24 and 2001::/23, these few are globally reachable anycast services.
GLOBAL_EXCEPTIONS = tuple(
    ipaddress.ip_network(block)
    for block in ("192.0.0.9/32", "192.0.0.10/32", "2001:1::1/128", "2001:1::2/128", "2001:3::/32", "2001:4:112::/48",
                  "2001:20::/28", "2001:30::/28")
)  # fmt: skip


class UrlNotAllowed(Exception):
    pass


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip.teredo is not None:
            return ip.teredo[1]
        # NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
        if ip in ipaddress.ip_network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    embedded = _embedded_ipv4(ip)
    if embedded is not None:  # judged by the IPv4 address the packets really reach
        return is_public(embedded)
    if any(ip in block for block in GLOBAL_EXCEPTIONS if block.version == ip.version):
        return True
    if any(ip in block for block in NOT_GLOBAL if block.version == ip.version):
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local)


def check_scheme(url: str, *, require_https: bool) -> tuple[str, str, int, str]:
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in url):
        # urlsplit silently drops tabs and newlines; a header-splitting CR/LF must never reach a request line.
        raise UrlNotAllowed("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise UrlNotAllowed("the URL cannot be parsed") from None
    if parts.scheme not in {"http", "https"}:
        raise UrlNotAllowed("only http and https URLs are allowed")
    if require_https and parts.scheme != "https":
        raise UrlNotAllowed("https is required in production")
    if not parts.hostname:
        raise UrlNotAllowed("the URL has no host")
    if parts.username or parts.password:
        raise UrlNotAllowed("credentials in the URL are not allowed")
    try:
        explicit_port = parts.port
    except ValueError:
        raise UrlNotAllowed("the port must be a number from 1 to 65535") from None
    if explicit_port == 0:
        raise UrlNotAllowed("the port must be a number from 1 to 65535")
    port = explicit_port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return parts.scheme, parts.hostname, port, path


RESOLVE_TIMEOUT_SECONDS = 5.0


async def check_target(url: str, *, allow_private: bool, require_https: bool) -> None:
    """The URL's form, and every address its host resolves to now; raise UrlNotAllowed otherwise."""
    _scheme, host, port, _path = check_scheme(url, require_https=require_https)
    await CheckedResolver(lambda: allow_private).resolve(host, port, socket.AF_UNSPEC)


def check_addresses(host: str, addresses: Iterable[str], *, allow_private: bool) -> None:
    if allow_private:
        return
    for address in addresses:
        if not is_public(ipaddress.ip_address(address.split("%")[0])):
            raise UrlNotAllowed(f"{host} resolves to {address}, which is not a public address")


class CheckedResolver(AbstractResolver):
    """The webhook client's resolver: a connection only ever goes to an address that was checked, from the one
    lookup that was checked (a DNS answer that changes between check and connect cannot slip through).
    aiohttp does not ask a resolver about IP literals: the dispatcher checks those itself."""

    def __init__(self, allow_private: Callable[[], bool]) -> None:
        self._allow_private = allow_private
        self._resolver = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[Any]:
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
                found = await self._resolver.resolve(host, port, family)
        except (OSError, TimeoutError) as exc:
            raise UrlNotAllowed(f"{host} does not resolve") from exc
        if not found:
            raise UrlNotAllowed(f"{host} does not resolve")
        check_addresses(host, (r["host"] for r in found), allow_private=self._allow_private())
        return found

    async def close(self) -> None:
        await self._resolver.close()
