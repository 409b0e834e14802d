"""Callback hosts resolved and internal addresses refused (SSRF), including the literal spellings of
loopback that an allow-list of names would never see coming; and the pinned request that follows."""

from __future__ import annotations

import pytest

from core.callback_addresses import internal_kind, pin, resolve_host
from core.webhooks import host_and_port


@pytest.mark.parametrize("url, address", [
    ("http://127.0.0.1:9000/cb", "127.0.0.1"),
    ("http://[::1]:9000/cb", "::1"),
    ("http://2130706433/cb", "127.0.0.1"),  # decimal form of 127.0.0.1
    ("http://0x7f.1/cb", "127.0.0.1"),
    ("http://017700000001/cb", "127.0.0.1"),  # octal
    ("http://[::ffff:127.0.0.1]/cb", "::ffff:127.0.0.1"),  # IPv4-mapped IPv6
    ("http://10.1.2.3/cb", "10.1.2.3"),
    ("http://192.168.0.10/cb", "192.168.0.10"),
    ("http://[fd00::1]/cb", "fd00::1"),
    ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
    ("http://[fe80::1]/cb", "fe80::1"),
    ("http://0.0.0.0:9000/cb", "0.0.0.0"),
    ("http://[::]/cb", "::"),
    ("http://224.0.0.1/cb", "224.0.0.1"),
    ("http://240.0.0.1/cb", "240.0.0.1"),
    # carrier-grade NAT, including Alibaba Cloud's metadata address
    ("http://100.64.0.1/cb", "100.64.0.1"),
    ("http://100.100.100.200/latest/meta-data", "100.100.100.200"),
    ("http://[::ffff:100.100.100.200]/cb", "::ffff:100.100.100.200"),
    # 6to4 (any IPv4 address, internal ones too, behind 2002::/16) and its relay anycast range
    ("http://[2002:7f00:1::1]/cb", "2002:7f00:1::1"),
    ("http://[2002:808:808::1]/cb", "2002:808:808::1"),
    ("http://192.88.99.1/cb", "192.88.99.1"),
    # NAT64 translates to the embedded IPv4 address (here 127.0.0.1)
    ("http://[64:ff9b::7f00:1]/cb", "64:ff9b::7f00:1"),
    ("http://198.18.0.1/cb", "198.18.0.1"),  # benchmarking range
])
def test_every_address_that_is_not_globally_routable_is_refused(url, address):
    resolution = resolve_host(*host_and_port(url), allow_private=False)
    assert resolution.addresses == [address]
    assert resolution.problem.endswith("resolves to an address that is not globally routable; such callbacks "
                                       "are refused unless RERANKQ_WEBHOOK_ALLOW_PRIVATE is true")
    assert internal_kind(address) == "not globally routable"


def test_refusals_never_reveal_what_a_name_resolved_to():
    def resolver(_host, _port):
        return ["93.184.216.34", "10.20.30.40"]

    problem = resolve_host("hooks.example.com", 443, allow_private=False, resolver=resolver).problem
    assert problem == ("host 'hooks.example.com' resolves to an address that is not globally routable; such "
                       "callbacks are refused unless RERANKQ_WEBHOOK_ALLOW_PRIVATE is true")
    assert "10.20.30.40" not in problem and "93.184.216.34" not in problem and "private" not in problem


def test_localhost_is_refused_by_what_it_resolves_to():
    resolution = resolve_host("localhost", 9000, allow_private=False)
    assert resolution.addresses and all(internal_kind(a) for a in resolution.addresses)
    assert "not globally routable" in resolution.problem and "127.0.0.1" not in resolution.problem


def test_the_setting_lets_internal_addresses_through():
    resolution = resolve_host("127.0.0.1", 9000, allow_private=True)
    assert resolution.problem is None and resolution.addresses == ["127.0.0.1"]


def test_public_addresses_pass():
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"):
        assert resolve_host(address, 443, allow_private=False) == resolve_host(address, 443, allow_private=True)
        assert resolve_host(address, 443, allow_private=False).problem is None
        assert internal_kind(address) is None


def test_one_internal_address_among_public_ones_is_enough_to_refuse():
    def resolver(_host, _port):
        return ["93.184.216.34", "10.0.0.7"]

    resolution = resolve_host("hooks.example.com", 443, allow_private=False, resolver=resolver)
    assert "not globally routable" in resolution.problem and "10.0.0.7" not in resolution.problem


def test_a_host_that_does_not_resolve_is_refused_and_named():
    def resolver(_host, _port):
        raise OSError("Name or service not known")

    resolution = resolve_host("nowhere.invalid", 443, allow_private=True, resolver=resolver)
    assert resolution.addresses == []
    assert "nowhere.invalid" in resolution.problem and "could not be resolved" in resolution.problem


def test_pinned_request_connects_to_the_address_but_keeps_the_host():
    pinned = pin("https://hooks.example.com:8443/cb?x=1#frag", "93.184.216.34")
    assert pinned.url == "https://93.184.216.34:8443/cb?x=1"
    assert pinned.headers == {"Host": "hooks.example.com:8443"}
    assert pinned.extensions == {"sni_hostname": "hooks.example.com"}  # the certificate is checked by name
    v6 = pin("http://hooks.example.com/cb", "2606:2800:220:1:248:1893:25c8:1946")
    assert v6.url == "http://[2606:2800:220:1:248:1893:25c8:1946]/cb"
    assert v6.headers == {"Host": "hooks.example.com"} and v6.extensions == {}
