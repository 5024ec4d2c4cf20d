"""The one policy of which addresses the health checker may probe."""

from __future__ import annotations

import ipaddress

import pytest

from failover_did.addresses import is_canonical_literal, literal_address, refusal


@pytest.mark.parametrize(
    "text",
    ["169.254.169.254", "169.254.170.2", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "fe80::1", "::ffff:169.254.169.254"],
)
def test_never_probed_even_where_private_ranges_are_allowed(text: str) -> None:
    assert refusal(ipaddress.ip_address(text), allow_private=True) is not None


@pytest.mark.parametrize("text", ["127.0.0.1", "::1", "10.1.2.3", "192.168.0.5", "172.16.0.1", "100.64.0.1"])
def test_loopback_and_private_only_where_allowed(text: str) -> None:
    address = ipaddress.ip_address(text)
    assert refusal(address, allow_private=False) is not None
    assert refusal(address, allow_private=True) is None


@pytest.mark.parametrize("text", ["8.8.8.8", "2001:4860:4860::8888", "54.172.60.1"])
def test_public_addresses_are_probed(text: str) -> None:
    assert refusal(ipaddress.ip_address(text), allow_private=False) is None


@pytest.mark.parametrize(
    ("host", "means"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("169.254.169.254", "169.254.169.254"),
    ],
)
def test_unusual_spellings_are_read_as_the_resolver_reads_them(host: str, means: str) -> None:
    address = literal_address(host)
    assert address == ipaddress.ip_address(means)
    assert is_canonical_literal(host, address) is (host.strip("[]") == means)


@pytest.mark.parametrize("host", ["pbx.example.com", "deadbeef.example", "face", ""])
def test_names_are_not_literals(host: str) -> None:
    assert literal_address(host) is None
