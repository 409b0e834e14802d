"""Where a callback URL really points: its host resolved, and internal addresses refused.

The allow-list matches host names, but a name (or a literal such as `2130706433` or `0x7f.1`) can
resolve to loopback, a private network or a cloud metadata address. Every resolved address is
checked, and the delivery then connects to a checked address, so the name cannot be resolved
again to somewhere else between the check and the request (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Callable, Optional, Union
from urllib.parse import SplitResult, urlsplit, urlunsplit

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Resolver = Callable[[str, int], list[str]]
ALLOW_PRIVATE_SETTING = "RERANKQ_WEBHOOK_ALLOW_PRIVATE"

# Checked in this order; the first that applies names the refusal.
_KINDS = ("unspecified", "loopback", "link_local", "multicast", "reserved", "private")


def internal_kind(address: str) -> Optional[str]:
    """`loopback`, `private`, ... when `address` is not a public unicast address, else None."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id names no other host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for kind in _KINDS:
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host`, in its order, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


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
            kind = internal_kind(address)
            if kind:
                return Resolution(addresses, f"host '{host}' resolves to {address}, a {kind} address; such "
                                  f"callbacks are refused unless {ALLOW_PRIVATE_SETTING} is true")
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
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return PinnedRequest(pinned, {"Host": host_header}, extensions)
