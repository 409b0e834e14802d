"""Callback hosts resolved and internal addresses refused (SSRF), including the literal spellings of
loopback that an allow-list of names would never see coming; and the pinned request that follows."""

from __future__ import annotations

import pytest

from core.callback_addresses import internal_kind, pin, resolve_host
from core.webhooks import host_and_port


@pytest.mark.parametrize("url, address, kind", [
    ("http://127.0.0.1:9000/cb", "127.0.0.1", "loopback"),
    ("http://[::1]:9000/cb", "::1", "loopback"),
    ("http://2130706433/cb", "127.0.0.1", "loopback"),  # decimal form of 127.0.0.1
    ("http://0x7f.1/cb", "127.0.0.1", "loopback"),
    ("http://017700000001/cb", "127.0.0.1", "loopback"),  # octal
    ("http://[::ffff:127.0.0.1]/cb", "::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6
    ("http://10.1.2.3/cb", "10.1.2.3", "private"),
    ("http://192.168.0.10/cb", "192.168.0.10", "private"),
    ("http://[fd00::1]/cb", "fd00::1", "private"),
    ("http://169.254.169.254/latest/meta-data", "169.254.169.254", "link-local"),
    ("http://[fe80::1]/cb", "fe80::1", "link-local"),
    ("http://0.0.0.0:9000/cb", "0.0.0.0", "unspecified"),
    ("http://[::]/cb", "::", "unspecified"),
    ("http://224.0.0.1/cb", "224.0.0.1", "multicast"),
    ("http://240.0.0.1/cb", "240.0.0.1", "reserved"),
])
def test_internal_addresses_are_refused_in_every_spelling(url, address, kind):
    resolution = resolve_host(*host_and_port(url), allow_private=False)
    assert resolution.addresses == [address]
    assert f"resolves to {address}, a {kind} address" in resolution.problem
    assert "RERANKQ_WEBHOOK_ALLOW_PRIVATE is true" in resolution.problem


def test_localhost_is_refused_by_what_it_resolves_to():
    resolution = resolve_host("localhost", 9000, allow_private=False)
    assert resolution.addresses and all(internal_kind(a) == "loopback" for a in resolution.addresses)
    assert "a loopback address" in resolution.problem


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
    assert "10.0.0.7, a private address" in resolution.problem


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
