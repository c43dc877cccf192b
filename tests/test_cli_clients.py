"""``wraparound clients`` through Typer's runner, against a real SQLite file."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, RSAKey
from typer.testing import CliRunner

from service.cli.clients import clients_app
from service.settings import get_settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "cli.db"
    monkeypatch.setenv("WRAPAROUND_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.delenv("WRAPAROUND_ALLOW_PRIVATE_ENDPOINTS", raising=False)
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def _jwks_file(tmp_path: Path, jwks: dict[str, Any], name: str = "jwks.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(jwks))
    return str(path)


def _public(*keys: RSAKey | ECKey) -> dict[str, Any]:
    return {"keys": [dict(k.as_dict(private=False)) for k in keys]}


def _add(*extra: str, client_id: str = "clinic-a", scope: str = "system/Task.rs") -> Any:
    args = ["add", "--client-id", client_id, "--organization", "Organization/org-1", "--role", "clinic"]
    return runner.invoke(clients_app, [*args, "--scope", scope, *extra])


def test_add_list_update_remove(tmp_path: Path) -> None:
    ec = ECKey.generate_key("P-384", parameters={"kid": "ec-1"})
    jwks = _jwks_file(tmp_path, _public(ec))

    created = _add("--jwks", jwks)
    assert created.exit_code == 0, created.output
    assert "created client clinic-a" in created.output

    listed = runner.invoke(clients_app, ["list"])
    assert listed.exit_code == 0
    assert "clinic-a\tOrganization/org-1\tclinic\tsystem/Task.rs\tkids ec-1" in listed.output

    updated = _add("--jwks-url", "https://8.8.8.8/jwks.json", scope="system/Task.cruds")
    assert updated.exit_code == 0, updated.output
    assert "updated client clinic-a" in updated.output
    listed = runner.invoke(clients_app, ["list"])
    assert "system/Task.cruds\thttps://8.8.8.8/jwks.json" in listed.output

    removed = runner.invoke(clients_app, ["remove", "--client-id", "clinic-a"])
    assert removed.exit_code == 0
    assert "no clients registered" in runner.invoke(clients_app, ["list"]).output
    again = runner.invoke(clients_app, ["remove", "--client-id", "clinic-a"])
    assert again.exit_code == 2
    assert "no client 'clinic-a'" in again.output


def test_private_key_jwks_is_refused(tmp_path: Path) -> None:
    rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    jwks = _jwks_file(tmp_path, {"keys": [dict(rsa.as_dict(private=True))]})
    result = _add("--jwks", jwks)
    assert result.exit_code == 2
    assert "private" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "no clients registered" in runner.invoke(clients_app, ["list"]).output


def test_small_rsa_key_is_refused(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        small = RSAKey.generate_key(1024, parameters={"kid": "small"})
    result = _add("--jwks", _jwks_file(tmp_path, _public(small)))
    assert result.exit_code == 2
    assert "2048" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "doctor"], "role must be one of"),
        (["--scope", "patient/*.read"], "unsupported scope"),
        (["--organization", "org-1"], "Organization/ID"),
        (["--jwks", None, "--jwks-url", "http://127.0.0.1/jwks.json"], "JWKS URL refused"),
        (["--jwks-url", "https://8.8.8.8/jwks.json"], "exactly one of --jwks FILE or --jwks-url URL"),
        (["--jwks", None], "exactly one of --jwks FILE or --jwks-url URL"),
    ],
)
def test_invalid_registrations_exit_2(tmp_path: Path, args: list[str | None], message: str) -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "k"})
    base: dict[str, str | None] = {
        "--client-id": "c",
        "--organization": "Organization/o",
        "--role": "partner",
        "--scope": "system/Task.r",
        "--jwks": _jwks_file(tmp_path, _public(key)),
    }
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[str(flag)] = value
    argv = ["add", *[part for flag, value in base.items() if value is not None for part in (flag, value)]]
    result = runner.invoke(clients_app, argv)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_unreadable_jwks_file(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    for path in (tmp_path / "bad.json", tmp_path / "missing.json"):
        result = _add("--jwks", str(path))
        assert result.exit_code == 2
        assert str(path) in result.output
