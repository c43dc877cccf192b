"""SSRF guard for server-side fetches of client-supplied URLs (JWKS URLs, delivery endpoints).

Known gap: this resolves the host, checks every address, and the caller then connects, which
resolves again. A DNS server that answers differently the second time (DNS rebinding) can slip a
private address past the check. Closing it needs connecting to the checked address itself (a custom
transport pinning the IP while keeping SNI/Host); acceptable for now because JWKS and endpoint URLs
are registered by an operator, not by anonymous callers.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _is_forbidden(address: IPAddress) -> bool:
    # An IPv4-mapped IPv6 address (::ffff:127.0.0.1) reaches the IPv4 host: judge that instead.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        # Catches shared/CGNAT space (100.64/10) and other ranges not covered above.
        or not address.is_global
    )


def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(f"cannot resolve host {host!r}") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        # sockaddr[0] is the address text; drop an IPv6 zone id ("fe80::1%eth0").
        text = str(info[4][0]).split("%", 1)[0]
        addresses.append(ipaddress.ip_address(text))
    if not addresses:
        raise ValueError(f"host {host!r} has no addresses")
    return addresses


def check_public_url(url: str, *, allow_private: bool) -> None:
    """Raise ValueError unless ``url`` is https (http only if ``allow_private``) and every address
    its host resolves to is public. ``allow_private`` (development, tests) also lifts the address check.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"malformed URL {url!r}") from exc
    scheme = parts.scheme.lower()
    if scheme != "https" and not (allow_private and scheme == "http"):
        raise ValueError(f"URL scheme {parts.scheme!r} not allowed; use https")
    host = parts.hostname
    if not host:
        raise ValueError("URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("URL must not carry credentials")
    if allow_private:
        return
    default_port = 443 if scheme == "https" else 80
    for address in resolve(host, port or default_port):
        if _is_forbidden(address):
            raise ValueError(f"host {host!r} resolves to a non-public address ({address})")
