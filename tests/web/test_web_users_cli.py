"""``wraparound users add|list|remove`` through Typer's runner, against a real SQLite file; and the
demo people ``wraparound demo`` creates."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
from typer.testing import CliRunner, Result

from service.cli.users import users_app
from service.delivery.secrets import box_for, generate_key
from service.demo import people_text, setup_demo
from service.search.extract import extract_index_rows
from service.settings import get_settings
from service.storage.database import Database
from service.storage.resources import ResourceStore
from service.web import signin

runner = CliRunner()
PASSWORD = "a long enough passphrase"


@pytest.fixture(autouse=True)
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setenv("WRAPAROUND_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("WRAPAROUND_SECRET_KEY", generate_key())
    get_settings.cache_clear()
    db = Database(get_settings().database_url)
    db.upgrade()
    organization = {"resourceType": "Organization", "id": "org-1", "name": "Advice Charity"}
    with db.transaction() as conn:
        ResourceStore(conn).create(
            "Organization",
            organization,
            extract_index_rows(organization),
            now=datetime.now(UTC),
            resource_id="org-1",
        )
    yield db
    db.dispose()
    get_settings.cache_clear()


def _add(*extra: str, email: str = "Sam@Example.org", password: str | None = PASSWORD) -> Result:
    args = ["add", "--email", email, "--organization", "Organization/org-1", "--role", "partner", *extra]
    if password is not None:
        return runner.invoke(users_app, [*args, "--password-stdin"], input=f"{password}\n")
    return runner.invoke(users_app, args)


def _secret(output: str) -> str:
    found = re.search(r"otpauth://totp/[^\s]*\?secret=([A-Z2-7]+)", output)
    assert found is not None, output
    return found.group(1)


def test_add_prints_the_enrolment_and_the_account_signs_in(database: Database) -> None:
    result = _add()
    assert result.exit_code == 0, result.output
    assert "created partner account sam@example.org for Organization/org-1" in result.output
    codes = re.findall(r"^  ([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})$", result.output, re.M)
    assert len(codes) == 10
    secret = _secret(result.output)
    with database.transaction() as conn:
        outcome = signin.sign_in(
            conn, box_for(get_settings()), email="sam@example.org", password=PASSWORD,
            code=pyotp.TOTP(secret).now(), now=datetime.now(UTC),
        )  # fmt: skip
    assert outcome.person is not None
    assert outcome.person.organization_id == "org-1"
    listed = runner.invoke(users_app, ["list"])
    assert "sam@example.org\tOrganization/org-1\tpartner\t10 recovery codes left" in listed.output
    assert secret not in listed.output


def test_rerunning_updates_and_re_enrols(database: Database) -> None:
    first = _secret(_add().output)
    again = runner.invoke(
        users_app,
        ["add", "--email", "sam@example.org", "--organization", "Organization/org-1", "--role", "clinic"],
        input="",
    )
    assert again.exit_code == 0, again.output
    assert "updated clinic account" in again.output
    assert _secret(again.output) != first
    assert "sam@example.org\tOrganization/org-1\tclinic" in runner.invoke(users_app, ["list"]).output


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        ((), "short", "at least 12 characters"),
        (("--email", "not-an-email"), PASSWORD, "is not an email address"),
        ((), None, "a new account needs a password"),
    ],
)
def test_refusals_are_one_line(args: tuple[str, ...], password: str | None, message: str) -> None:
    email = args[1] if args else "sam@example.org"
    result = _add(email=email, password=password)
    assert result.exit_code == 2
    assert message in result.output


def test_an_unknown_organization_is_refused() -> None:
    result = runner.invoke(
        users_app,
        [
            "add",
            "--email",
            "a@example.org",
            "--organization",
            "Organization/nope",
            "--role",
            "partner",
            "--password-stdin",
        ],
        input=f"{PASSWORD}\n",
    )
    assert result.exit_code == 2
    assert "Organization/nope is not in the hub's directory" in result.output


def test_remove(database: Database) -> None:
    _add()
    assert runner.invoke(users_app, ["remove", "--email", "SAM@example.org"]).exit_code == 0
    assert "no accounts" in runner.invoke(users_app, ["list"]).output
    missing = runner.invoke(users_app, ["remove", "--email", "sam@example.org"])
    assert missing.exit_code == 2


def test_the_demo_creates_people_who_can_sign_in(database: Database, tmp_path: Path) -> None:
    box = box_for(get_settings())
    setup = setup_demo(database, fhir_base="http://127.0.0.1:8000/fhir", keys_dir=tmp_path / "keys", box=box)
    assert [p.enrolment.role for p in setup.people] == ["partner", "clinic"]
    text = people_text(setup)
    assert "http://127.0.0.1:8000/app/" in text
    for person in setup.people:
        assert person.enrolment.email in text
        assert person.password in text
        with database.transaction() as conn:
            outcome = signin.sign_in(
                conn, box, email=person.enrolment.email, password=person.password,
                code=pyotp.TOTP(person.totp_secret).now(), now=datetime.now(UTC),
            )  # fmt: skip
        assert outcome.person is not None
