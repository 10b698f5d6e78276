"""The one egress guard for every tenant-controlled destination.

Webhook URLs, provider base URLs, SMTP hosts and media URLs all pass here, and
the caller connects to an address this module returned, so the address checked
is the address connected to (no second DNS lookup between check and connect).

- Cloud metadata and host-agent addresses are refused always.
- Private, loopback, link-local, multicast, reserved, unspecified, shared
  (100.64.0.0/10, CGNAT), documentation and benchmarking ranges are refused
  unless ``allow_private`` (``OCM_ENV=development`` or ``OCM_ALLOW_PRIVATE_EGRESS``).
- IPv6 forms that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64
  ``64:ff9b::/96``, IPv4-compatible ``::a.b.c.d``, 6to4 ``2002::/16``, Teredo)
  are judged by the embedded IPv4 as well.

The ranges are listed here explicitly, on top of ``ipaddress``'s flags, because
those flags changed between Python versions.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Always refused, whatever allow_private says.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, Azure IMDS, GCP, OpenStack, DigitalOcean, …
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS Pod Identity agent
        "fd00:ec2::23",  # AWS EKS Pod Identity agent over IPv6
        "168.63.129.16",  # Azure WireServer (a public address, hence listed)
        "192.0.0.192",  # Oracle Cloud metadata
    )
)

_NON_PUBLIC_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
_NON_PUBLIC_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/8",  # unspecified, loopback, IPv4-compatible
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215)
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, …)
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_COMPAT = ipaddress.IPv6Network("::/96")


class EgressRefused(Exception):
    """The destination is not allowed (metadata, or private without permission)."""


def _is_non_public(ip: IPAddress) -> bool:
    if (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    ):
        return True
    if isinstance(ip, ipaddress.IPv4Address):
        return any(ip in net for net in _NON_PUBLIC_V4)
    return ip.is_site_local or any(ip in net for net in _NON_PUBLIC_V6)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[bool, list[ipaddress.IPv4Address]]:
    """IPv4 addresses carried by an IPv6 one, and whether they alone decide.

    True for forms that *are* an IPv4 destination (mapped, NAT64); False for forms
    judged on both the IPv6 and the IPv4 addresses (compatible, 6to4, Teredo).
    """
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _MAPPED or ip in _NAT64:
        return True, [low32]
    if ip in _COMPAT and int(ip) > 1:
        return False, [low32]
    if ip.sixtofour is not None:
        return False, [ip.sixtofour]
    if ip.teredo is not None:
        return False, list(ip.teredo)
    return False, []


def check_address(ip: str, *, allow_private: bool) -> None:
    """Raise EgressRefused unless ``ip`` (a literal address) may be connected to."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0].strip("[]"))
    except ValueError:
        raise EgressRefused(f"not an IP address: {ip!r}") from None
    decisive, embedded = (
        _embedded_ipv4(addr) if isinstance(addr, ipaddress.IPv6Address) else (False, [])
    )
    for candidate in (addr, *embedded):
        if candidate in METADATA_ADDRESSES:
            raise EgressRefused(f"{ip} is a cloud metadata address")
    if allow_private:
        return
    judged: list[IPAddress] = list(embedded) if decisive else [addr, *embedded]
    for candidate in judged:
        if _is_non_public(candidate):
            raise EgressRefused(f"{ip} is not a public address")


async def resolve(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Resolve ``host`` (a name or literal IP) and check every address.

    Returns the addresses to connect to, in resolver order, without duplicates.
    Raises EgressRefused if any resolved address is refused (a name that resolves
    to a private address is refused as a whole), and lets ``socket.gaierror`` (an
    OSError) through when the name does not resolve.
    """
    name = host.strip().strip("[]")
    if not name:
        raise EgressRefused("empty host")
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[str] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = str(sockaddr[0])
        check_address(address, allow_private=allow_private)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise EgressRefused(f"{host} has no IPv4 or IPv6 address")
    return addresses


__all__ = ["METADATA_ADDRESSES", "EgressRefused", "check_address", "resolve"]
