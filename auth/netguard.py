"""SSRF guard for server-side fetches of operator-supplied URLs (JWKS URLs, delivery Endpoints).

A URL passes when its scheme is https (http too with ``allow_private``), it carries no credentials,
and its host is not -- and does not resolve to -- anything but global unicast space. "Any spelling"
matters: ``http://2130706433/``, ``http://0x7f.1/`` and ``http://[::ffff:7f00:1]/`` all reach
127.0.0.1, because the BSD ``inet_aton`` forms are accepted by libc and by URL parsers alike
(https://url.spec.whatwg.org/#concept-ipv4-parser). So numeric hosts are parsed here, with those
semantics, and never left to the resolver; names are resolved and *every* address is judged.

DNS rebinding (a name that resolves to a public address at the check and to a private one at the
connect): closed for deliveries, because ``adapters._http`` connects to the address vetted here
rather than resolving again. Still open for JWKS fetches (``auth.jwks_fetcher`` checks, then lets
httpx resolve again); acceptable for now because JWKS URLs are registered by an operator, not by
anonymous callers, but it is a known gap.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedAddress(ValueError):
    """The host is, or resolves to, an address outside global unicast space."""


# IANA IPv4 Special-Purpose Address Registry
# (https://www.iana.org/assignments/iana-ipv4-special-registry/). Written out rather than left to
# ``ipaddress.is_global``, whose tables differ between Python versions (3.11 calls 192.0.0.8 global).
_V4_NON_GLOBAL = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # shared address space (CGNAT), RFC 6598
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, including cloud metadata (169.254.169.254)
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # deprecated 6to4 relay anycast, RFC 7526
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255
    )
)
# IPv6: only global unicast (2000::/3, RFC 4291 section 2.4) is ever public; this excludes ::1, ::,
# IPv4-compatible ::/96, ULA fc00::/7, link-local fe80::/10, site-local fec0::/10, multicast ff00::/8,
# discard 100::/64 and local-use NAT64 64:ff9b:1::/48 in one test. Within it, these are not global:
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_V6_NON_GLOBAL = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) among them
        "2001:db8::/32",  # documentation
        # 6to4 (RFC 3056) embeds any IPv4 address, 2002:7f00:1:: is 127.0.0.1; deprecated (RFC 7526),
        # so refused outright rather than judged by the embedded address.
        "2002::/16",
        "3fff::/20",  # documentation, RFC 9637
    )
)
# Addresses that are another spelling of an IPv4 address: judged as that address.
_V4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
# NAT64 well-known prefix (RFC 6052): a gateway translates 64:ff9b::a00:1 to 10.0.0.1, and DNS64
# resolvers hand out such addresses for public names on IPv6-only networks, so the embedded IPv4
# address decides (RFC 6052 section 3.1 forbids private ones there, but we do not trust gateways).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_forbidden(address: IPAddress) -> bool:
    """True unless ``address`` is global unicast space a delivery may connect to."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _V4_MAPPED or address in _NAT64:
            return is_forbidden(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address not in _V6_GLOBAL_UNICAST or any(address in net for net in _V6_NON_GLOBAL):
            return True
    elif any(address in net for net in _V4_NON_GLOBAL):
        return True
    # Belt and braces: Python's own tables (newer versions know ranges registered since).
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


_is_forbidden = is_forbidden  # the old private name; callers may still import it

# One IPv4 part, by the inet_aton rules: 0x-prefixed hex, 0-prefixed octal, else decimal.
_HEX, _OCTAL, _DECIMAL = re.compile(r"0x[0-9a-f]*"), re.compile(r"0[0-7]+"), re.compile(r"0|[1-9][0-9]*")
# A host "ends in a number" (WHATWG URL): then it is an IPv4 address or it is invalid, never a name.
_ENDS_IN_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")


def _ipv4_part(part: str) -> int:
    if _HEX.fullmatch(part):
        return int(part[2:] or "0", 16)
    if _OCTAL.fullmatch(part):
        return int(part, 8)
    if _DECIMAL.fullmatch(part):
        return int(part, 10)
    raise ValueError(f"malformed IPv4 address {part!r}")


def _ipv4(labels: list[str]) -> ipaddress.IPv4Address:
    # inet_aton: a.b.c.d, a.b.c (c is 16 bits), a.b (b is 24 bits), a (32 bits).
    if len(labels) > 4:
        raise ValueError("malformed IPv4 address: more than four parts")
    numbers = [_ipv4_part(label) for label in labels]
    *leading, last = numbers
    if any(n > 0xFF for n in leading) or last >= 256 ** (5 - len(numbers)):
        raise ValueError("malformed IPv4 address: a part is out of range")
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def normalise_host(host: str) -> str:
    """The host in ASCII lowercase (IDNA, which also folds full-width digits and dots to ASCII)."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise ValueError("malformed host name") from exc
    return host


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a numeric host spells (any inet_aton form, or IPv6), or None for a name.

    Raises ValueError for a host that is neither a valid address nor a valid name.
    """
    host = normalise_host(host)
    if ":" in host:
        if "%" in host:  # a zone id names an interface: never a public destination
            raise ValueError("IPv6 zone identifiers are not allowed")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise ValueError("malformed IPv6 address") from exc
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()  # one trailing dot: "127.0.0.1." is still 127.0.0.1
    if _ENDS_IN_NUMBER.fullmatch(labels[-1]):
        return _ipv4(labels)
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError("malformed host name")
    return None


def _is_localhost_name(host: str) -> bool:
    # RFC 6761 section 6.3: localhost and *.localhost are loopback whatever a resolver says.
    name = host.rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` stands for: a numeric host without the resolver, a name through it."""
    literal = parse_ip_literal(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(normalise_host(host), port, type=socket.SOCK_STREAM)
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
    """Raise ValueError unless ``url`` is https (http only if ``allow_private``), carries no
    credentials, and every address its host is or resolves to is public (:class:`RefusedAddress`
    when it is not). ``allow_private`` (development, tests) also lifts the address check.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        # Not echoing the URL: it may carry credentials.
        raise ValueError("malformed URL (host or port)") from exc
    scheme = parts.scheme.lower()
    if scheme != "https" and not (allow_private and scheme == "http"):
        raise ValueError(f"URL scheme {parts.scheme!r} not allowed; use https")
    host = parts.hostname
    if not host:
        raise ValueError("URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("URL must not carry credentials")
    literal = parse_ip_literal(host)  # a malformed host is refused even in development
    if allow_private:
        return
    if literal is None and _is_localhost_name(normalise_host(host)):
        raise RefusedAddress(f"host {host!r} is a non-public address (localhost)")
    default_port = 443 if scheme == "https" else 80
    verb = "is" if literal is not None else "resolves to"
    for address in [literal] if literal is not None else resolve(host, port or default_port):
        if is_forbidden(address):
            raise RefusedAddress(f"host {host!r} {verb} a non-public address ({address})")
