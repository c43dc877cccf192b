from __future__ import annotations

import pytest

from auth.scopes import Scope, grant, parse_scopes, permits, supported


def test_parse_v2_scopes() -> None:
    scopes = parse_scopes("system/Task.rs  system/*.cruds\tsystem/Patient.r")
    assert scopes == [
        Scope("Task", frozenset("rs")),
        Scope("*", frozenset("cruds")),
        Scope("Patient", frozenset("r")),
    ]


@pytest.mark.parametrize(
    ("text", "letters"),
    [
        ("system/Task.read", "rs"),
        ("system/Task.write", "cud"),
        ("system/Task.*", "cruds"),
    ],
)
def test_v1_aliases(text: str, letters: str) -> None:
    assert parse_scopes(text) == [Scope("Task", frozenset(letters))]


def test_scope_renders_as_v2() -> None:
    assert str(parse_scopes("system/*.write")[0]) == "system/*.cud"


def test_empty_text_is_no_scopes() -> None:
    assert parse_scopes("   ") == []


@pytest.mark.parametrize(
    "text",
    [
        "system/Task.sr",  # wrong order
        "system/Task.rr",  # repeated letter
        "system/Task.x",
        "system/Task.",
        "system/task.rs",  # not a resource type
        "patient/Task.rs",
        "user/*.read",
        "openid",
        "system/Observation.rs?category=laboratory",
        "system/Task",
    ],
)
def test_malformed_scopes_raise(text: str) -> None:
    with pytest.raises(ValueError, match="scope"):
        parse_scopes(text)


def test_wildcard_request_narrows_to_allowed_types() -> None:
    assert grant("system/*.rs", "system/Task.cruds system/Patient.r") == "system/Task.rs system/Patient.r"


def test_grant_never_wider_than_request() -> None:
    assert grant("system/Task.r", "system/*.cruds") == "system/Task.r"


def test_grant_drops_types_not_allowed() -> None:
    assert grant("system/Task.rs system/Consent.c", "system/Task.rs") == "system/Task.rs"


def test_grant_nothing_is_empty_string() -> None:
    assert grant("system/Consent.c", "system/Task.rs") == ""


def test_grant_accepts_v1_aliases_and_normalises() -> None:
    assert grant("system/Task.read system/Task.write", "system/Task.*") == "system/Task.cruds"


def test_grant_wildcard_against_wildcard_and_covered_types_collapse() -> None:
    granted = grant("system/*.rs system/Task.r system/Task.u", "system/*.cruds")
    assert granted == "system/*.rs system/Task.ru"
    assert grant("system/*.rs system/Task.r", "system/*.rs") == "system/*.rs"


def test_grant_malformed_request_raises() -> None:
    with pytest.raises(ValueError, match="scope"):
        grant("system/Task.bogus", "system/*.cruds")


def test_permits() -> None:
    granted = "system/Task.rs system/*.r"
    assert permits(granted, "Task", "s")
    assert permits(granted, "Patient", "r")
    assert not permits(granted, "Patient", "s")
    assert not permits(parse_scopes(granted), "Task", "u")
    assert not permits("", "Task", "r")


def test_permits_rejects_unknown_letter() -> None:
    with pytest.raises(ValueError, match="letter"):
        permits("system/*.cruds", "Task", "x")


def test_supported_drops_what_cannot_be_granted() -> None:
    types = {"Patient", "Task"}
    requested = "launch/patient openid system/Foo.rs system/Task.sr system/Patient.read system/*.s"
    assert supported(requested, types) == "system/Patient.rs system/*.s"
    assert supported("openid patient/*.read", types) == ""
