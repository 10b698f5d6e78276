"""The egress guard: which addresses may be connected to, and resolution."""

from __future__ import annotations

import pytest

from shared.egress import EgressRefused, check_address, resolve

PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001:82a::200e"]
PRIVATE = [
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "127.0.0.1",
    "169.254.1.1",
    "100.64.0.1",  # shared address space (CGNAT)
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.10",
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "ff02::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.1.2.3",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
]
METADATA = [
    "169.254.169.254",
    "fd00:ec2::254",
    "100.100.100.200",
    "169.254.170.2",
    "168.63.129.16",
    "::ffff:169.254.169.254",
    "::ffff:a9fe:a9fe",
    "64:ff9b::a9fe:a9fe",
    "2002:a9fe:a9fe::1",
]


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_are_allowed(ip: str) -> None:
    check_address(ip, allow_private=False)


@pytest.mark.parametrize("ip", ["::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"])
def test_ipv6_forms_of_a_public_ipv4_are_judged_by_it(ip: str) -> None:
    check_address(ip, allow_private=False)


@pytest.mark.parametrize("ip", PRIVATE)
def test_non_public_addresses_are_refused_unless_allowed(ip: str) -> None:
    with pytest.raises(EgressRefused):
        check_address(ip, allow_private=False)
    check_address(ip, allow_private=True)


@pytest.mark.parametrize("ip", METADATA)
def test_metadata_addresses_are_refused_even_when_private_is_allowed(ip: str) -> None:
    for allow in (False, True):
        with pytest.raises(EgressRefused, match="metadata"):
            check_address(ip, allow_private=allow)


@pytest.mark.parametrize("value", ["", "example.com", "999.1.1.1", "1.2.3"])
def test_a_non_address_is_refused(value: str) -> None:
    with pytest.raises(EgressRefused):
        check_address(value, allow_private=True)


async def test_a_literal_ip_resolves_to_itself() -> None:
    assert await resolve("8.8.8.8", 443, allow_private=False) == ["8.8.8.8"]
    assert await resolve("[2606:4700:4700::1111]", 443, allow_private=False) == [
        "2606:4700:4700::1111"
    ]


async def test_a_literal_private_ip_is_refused() -> None:
    with pytest.raises(EgressRefused):
        await resolve("127.0.0.1", 25, allow_private=False)
    assert await resolve("127.0.0.1", 25, allow_private=True) == ["127.0.0.1"]


async def test_numeric_tricks_are_judged_by_the_address_they_resolve_to() -> None:
    with pytest.raises(EgressRefused):
        await resolve("2130706433", 80, allow_private=False)  # 127.0.0.1 as one integer


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    with pytest.raises(EgressRefused):
        await resolve("localhost", 25, allow_private=False)


async def test_a_name_resolving_to_loopback_is_allowed_when_private_is() -> None:
    addresses = await resolve("localhost", 25, allow_private=True)
    assert addresses
    assert set(addresses) <= {"127.0.0.1", "::1"}
    assert len(addresses) == len(set(addresses))


async def test_metadata_is_refused_through_resolution_too() -> None:
    with pytest.raises(EgressRefused, match="metadata"):
        await resolve("169.254.169.254", 80, allow_private=True)
