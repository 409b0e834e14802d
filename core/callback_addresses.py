"""Where a callback URL really points: its host resolved, and internal addresses refused.

The allow-list matches host names, but a name (or a literal such as `2130706433` or `0x7f.1`) can
resolve to loopback, a private network or a cloud metadata address. Every resolved address is
checked, and the delivery then connects to a checked address, so the name cannot be resolved
again to somewhere else between the check and the request (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Callable, Optional, Union, cast
from urllib.parse import SplitResult, urlsplit, urlunsplit

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Resolver = Callable[[str, int], list[str]]
ALLOW_PRIVATE_SETTING = "RERANKQ_WEBHOOK_ALLOW_PRIVATE"
log = logging.getLogger(__name__)

# Ranges some Python versions still call global but that reach other networks: 6to4 relays
# (2002::/16 embeds any IPv4 address, internal ones included, and 192.88.99.0/24 is their anycast
# relay) and NAT64 (64:ff9b::/96, 64:ff9b:1::/48 translate to an embedded IPv4 address).
_NOT_GLOBAL = tuple(ipaddress.ip_network(n) for n in ("2002::/16", "192.88.99.0/24", "64:ff9b::/96", "64:ff9b:1::/48"))


def internal_kind(address: str) -> Optional[str]:
    """`not globally routable` when `address` is not a public unicast address, else None.

    Everything that is not `is_global` is refused (private, loopback, link-local, carrier-grade NAT
    100.64.0.0/10 with its cloud metadata addresses, reserved, ...), rather than a list of kinds
    that misses the next range."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id names no other host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if not ip.is_global or ip.is_multicast or any(ip in network for network in _NOT_GLOBAL):
        return "not globally routable"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host`, in its order, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # An AF_INET/AF_INET6 sockaddr starts with the address string; typeshed's sockaddr union also
    # holds (int, bytes), which only a Python built without IPv6 returns.
    return list(dict.fromkeys(cast(str, info[4][0]) for info in infos))


@dataclass(frozen=True)
class Resolution:
    addresses: list[str]
    problem: Optional[str]  # why the URL may not be called; None when `addresses[0]` may be


def resolve_host(host: str, port: int, allow_private: bool, resolver: Resolver = system_resolver) -> Resolution:
    """Resolve `host`; refuse it when any address is internal (one bad address is enough, since
    the client might pick it) unless `allow_private`."""
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError) as error:
        return Resolution([], f"host '{host}' could not be resolved ({error})")
    if not addresses:
        return Resolution([], f"host '{host}' resolves to no address")
    if not allow_private:
        for address in addresses:
            if internal_kind(address):
                # The message goes back to the caller: it names the rule, never the address, so it cannot
                # be used to map what internal names resolve to. The address is logged for operators.
                log.info("callback host %r refused: it resolves to %s, which is not globally routable", host, address)
                return Resolution(addresses, f"host '{host}' resolves to an address that is not globally "
                                  f"routable; such callbacks are refused unless {ALLOW_PRIVATE_SETTING} is true")
    return Resolution(addresses, None)


@dataclass(frozen=True)
class PinnedRequest:
    """A URL rewritten to a checked address, with what keeps the request about the original host."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, str]


def pin(url: str, address: str) -> PinnedRequest:
    """`url` with its host replaced by `address`; the Host header and the TLS server name (so the
    certificate is still verified against the name) stay the original host's."""
    parts = urlsplit(url)
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    pinned = urlunsplit(SplitResult(parts.scheme, netloc, parts.path, parts.query, ""))
    host_header = parts.netloc.rsplit("@", 1)[-1]
    extensions: dict[str, str] = {}
    if parts.scheme == "https":
        # Callers pin URLs that passed core.webhooks.callback_url_problem, which requires a host.
        assert parts.hostname is not None, "pin() needs a URL with a host"
        extensions["sni_hostname"] = parts.hostname
    return PinnedRequest(pinned, {"Host": host_header}, extensions)
