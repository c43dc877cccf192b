from __future__ import annotations

import socket
from typing import Any

import pytest

from auth.netguard import check_public_url


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
