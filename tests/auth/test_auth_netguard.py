from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from auth.netguard import (
    RefusedAddress,
    _is_forbidden,
    check_public_url,
    is_forbidden,
    parse_ip_literal,
    resolve,
)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/jwks",
        "https://10.1.2.3/jwks",
        "https://192.168.0.10/",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/jwks",
        "https://[::ffff:127.0.0.1]/jwks",
        "https://0.0.0.0/",
        "https://224.0.0.1/",
        "https://100.64.0.1/",
        "https://localhost/jwks",
    ],
)
def test_refuses_non_public_addresses(url: str) -> None:
    with pytest.raises(ValueError, match="non-public"):
        check_public_url(url, allow_private=False)


@pytest.mark.parametrize("url", ["https://127.0.0.1/jwks", "http://10.0.0.5:8080/x", "https://[::1]/"])
def test_allow_private_permits_local_addresses(url: str) -> None:
    check_public_url(url, allow_private=True)


def test_public_literal_address_passes() -> None:
    check_public_url("https://93.184.216.34/jwks", allow_private=False)


def test_http_refused_unless_allow_private() -> None:
    with pytest.raises(ValueError, match="scheme"):
        check_public_url("http://93.184.216.34/jwks", allow_private=False)


@pytest.mark.parametrize("url", ["ftp://93.184.216.34/x", "file:///etc/passwd", "gopher://x/"])
def test_other_schemes_always_refused(url: str) -> None:
    with pytest.raises(ValueError, match="scheme"):
        check_public_url(url, allow_private=True)


def test_refuses_url_without_host_or_with_credentials() -> None:
    with pytest.raises(ValueError, match="no host"):
        check_public_url("https:///jwks", allow_private=False)
    with pytest.raises(ValueError, match="credentials"):
        check_public_url("https://user:pw@93.184.216.34/", allow_private=False)


def test_any_private_resolution_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        assert host == "keys.example.org"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(ValueError, match=r"10\.0\.0\.7"):
        check_public_url("https://keys.example.org/jwks", allow_private=False)


def test_unresolvable_host_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_getaddrinfo(*args: Any, **kwargs: Any) -> list[Any]:
        raise socket.gaierror("no such host")

    monkeypatch.setattr(socket, "getaddrinfo", failing_getaddrinfo)
    with pytest.raises(ValueError, match="cannot resolve"):
        check_public_url("https://nowhere.invalid/", allow_private=False)


# -- every spelling of a non-public host (issue 8, "Endpoints are checked when they are written") ------

FORBIDDEN_SPELLINGS = {
    # IPv4 in the BSD inet_aton forms: decimal, hex, octal, short and mixed.
    "2130706433": "127.0.0.1",
    "0x7f000001": "127.0.0.1",
    "0x7f.1": "127.0.0.1",
    "0X7F.0.0.1": "127.0.0.1",
    "0177.0.0.1": "127.0.0.1",
    "017700000001": "127.0.0.1",
    "127.1": "127.0.0.1",
    "127.0.1": "127.0.0.1",
    "0xa.0.0.5": "10.0.0.5",
    "012.0.0.5": "10.0.0.5",
    "167772165": "10.0.0.5",
    "0xa9fea9fe": "169.254.169.254",
    "169.254.43518": "169.254.169.254",
    "127.0.0.1.": "127.0.0.1",
    "0": "0.0.0.0",
    # Full-width digits and dots fold to ASCII under IDNA (as browsers and libc's idn do).
    "\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11": "127.0.0.1",
}


@pytest.mark.parametrize(("host", "address"), sorted(FORBIDDEN_SPELLINGS.items()))
def test_numeric_spellings_are_parsed_without_the_resolver(host: str, address: str) -> None:
    assert parse_ip_literal(host) == ipaddress.ip_address(address)
    with pytest.raises(RefusedAddress, match="non-public"):
        check_public_url(f"https://{host}/fhir", allow_private=False)


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "0177.0.0.1", "017700000001", "127.1", "0xa.0.0.5"])
def test_parser_agrees_with_libc_inet_aton(host: str) -> None:
    # The resolver and most HTTP stacks accept these forms through inet_aton: our parse must match.
    assert parse_ip_literal(host) == ipaddress.IPv4Address(socket.inet_aton(host))


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data",
        "https://172.16.0.1/",
        "https://192.0.0.8/",  # IETF protocol assignments (Python 3.11 calls it global)
        "https://192.0.2.1/",
        "https://198.18.0.1/",
        "https://203.0.113.9/",
        "https://240.0.0.1/",
        "https://255.255.255.255/",
        "https://[::1]/",
        "https://[::]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:7f00:1]/",
        "https://[::ffff:10.0.0.1]/",
        "https://[::7f00:1]/",  # IPv4-compatible (deprecated)
        "https://[fc00::1]/",
        "https://[fd12:3456::1]/",
        "https://[fe80::1]/",
        "https://[fec0::1]/",
        "https://[ff02::1]/",
        "https://[100::1]/",
        "https://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
        "https://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
        "https://[64:ff9b:1::1]/",  # local-use NAT64 (RFC 8215)
        "https://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
        "https://[2002:5db8:d822::1]/",  # 6to4 is refused whatever it embeds
        "https://[2001::1]/",  # Teredo
        "https://[2001:db8::1]/",
        "https://[3fff::1]/",
        "https://localhost./",
        "https://LOCALHOST/",
        "https://db.localhost/",
    ],
)
def test_refuses_every_non_global_range(url: str) -> None:
    with pytest.raises(RefusedAddress, match="non-public"):
        check_public_url(url, allow_private=False)


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:93.184.216.34"],
)
def test_public_addresses_are_not_forbidden(address: str) -> None:
    assert not is_forbidden(ipaddress.ip_address(address))
    assert not _is_forbidden(ipaddress.ip_address(address))  # the old name still works


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.216.34:8443/fhir",
        "https://1572395042/fhir",  # 93.184.216.34 as one number: a spelling, not a trick
        "https://[2606:2800:220:1:248:1893:25c8:1946]/fhir",
        "https://[64:ff9b::5db8:d822]/fhir",  # DNS64 synthesis of a public address
    ],
)
def test_public_literals_pass(url: str) -> None:
    check_public_url(url, allow_private=False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://08.0.0.1/", "malformed IPv4"),  # 8 is not an octal digit
        ("https://1.2.3.4.5/", "more than four parts"),
        ("https://256.0.0.1/", "out of range"),
        ("https://127.16777216/", "out of range"),
        ("https://0x1g.0.0.1/", "malformed"),
        ("https://%31%32%37.0.0.1/", "malformed"),  # percent-encoded digits
        ("https://ex%41mple.org/", "malformed host"),
        ("https://[fe80::1%25eth0]/", "zone"),
        ("https://[::ffff:0x7f.1]/", "malformed"),  # urlsplit refuses it first
        ("https://93.184.216.34:99999/", "malformed URL"),
    ],
)
def test_malformed_hosts_are_refused_even_in_development(url: str, message: str) -> None:
    for allow_private in (False, True):
        with pytest.raises(ValueError, match=message) as info:
            check_public_url(url, allow_private=allow_private)
        assert not isinstance(info.value, RefusedAddress)


def test_resolve_uses_the_real_resolver_for_names() -> None:
    # "localhost" is in /etc/hosts: the resolver answers without a network, and what it answers is loopback.
    addresses = resolve("localhost", 443)
    assert addresses
    assert all(is_forbidden(a) for a in addresses)


def test_resolve_parses_numeric_hosts_itself() -> None:
    with pytest.raises(ValueError, match="malformed IPv6"):
        resolve("::ffff:0x7f.1", 80)  # as an adapter's HTTP stack might hand it over
    assert resolve("0x7f.1", 80) == [ipaddress.IPv4Address("127.0.0.1")]
    assert resolve("[::1]", 80) == [ipaddress.IPv6Address("::1")]


def test_resolve_refuses_a_name_that_does_not_resolve() -> None:
    # .invalid never resolves (RFC 6761 section 6.4); answered locally, no internet needed.
    with pytest.raises(ValueError, match="cannot resolve"):
        resolve("nowhere.invalid", 443)
