"""SMART system scopes: parsing, granting the requested subset, and checking permissions.

SMART App Launch 2.x scopes: https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
Backend services only ever hold ``system/`` scopes. v2 form is ``system/<Type>.<cruds>`` where the
letters are a non-empty subset of c, r, u, d, s written in that order; the v1 suffixes ``read``,
``write`` and ``*`` are accepted as aliases (SMART 2.x §"Scopes for requesting clinical data",
backwards compatibility with v1).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache

LETTERS = "cruds"
WILDCARD = "*"

# v1 suffix -> v2 letters. "write" in v1 covered create, update and delete.
_V1_ALIASES = {"read": "rs", "write": "cud", "*": "cruds"}

# A FHIR resource type name (https://hl7.org/fhir/R4/resourcelist.html) or the wildcard.
_SCOPE_RE = re.compile(r"^system/(?P<type>\*|[A-Z][A-Za-z]{0,63})\.(?P<perm>[a-z]+|\*)$")


@dataclass(frozen=True)
class Scope:
    """One ``system/`` scope: a resource type (or ``*``) and the permitted interaction letters."""

    resource_type: str
    letters: frozenset[str]

    def __str__(self) -> str:
        return f"system/{self.resource_type}.{_letters_text(self.letters)}"

    def covers(self, resource_type: str, letter: str) -> bool:
        return self.resource_type in (WILDCARD, resource_type) and letter in self.letters


def _letters_text(letters: frozenset[str]) -> str:
    return "".join(ch for ch in LETTERS if ch in letters)


def _parse_letters(perm: str, token: str) -> frozenset[str]:
    if perm in _V1_ALIASES:
        return frozenset(_V1_ALIASES[perm])
    # v2 requires the letters in canonical order without repeats ("rs" is valid, "sr" or "rr" are not).
    position = -1
    for ch in perm:
        index = LETTERS.find(ch)
        if index <= position:
            raise ValueError(f"malformed scope {token!r}: permissions must be a subset of 'cruds' in order")
        position = index
    return frozenset(perm)


def parse_scope(token: str) -> Scope:
    match = _SCOPE_RE.match(token)
    if match is None:
        # Also covers patient/, user/, openid and SMART v2 granular "?param=value" scopes,
        # none of which a backend service may hold here.
        raise ValueError(f"malformed or unsupported scope {token!r}")
    return Scope(match["type"], _parse_letters(match["perm"], token))


def parse_scopes(text: str) -> list[Scope]:
    """Parse a space-separated scope string (RFC 6749 §3.3); raise ValueError on any malformed entry."""
    return [parse_scope(token) for token in text.split()]


def supported(requested: str, resource_types: Collection[str]) -> str:
    """The requested scopes this server could grant; the rest are dropped, not refused.

    RFC 6749 §3.3 lets the server "fully or partially ignore the scope requested by the client":
    clients add scopes a backend service cannot hold (fhirclient's ``launch/patient``, ``openid``,
    ``patient/`` and ``user/`` scopes, v2 granular ``?param=`` scopes), and refusing the whole request
    for them helps nobody. A scope naming a resource type the server does not serve is dropped too,
    so a token never claims access to something that does not exist here. The token response
    reports what was granted.
    """
    kept: list[Scope] = []
    for token in requested.split():
        try:
            scope = parse_scope(token)
        except ValueError:
            continue
        if scope.resource_type == WILDCARD or scope.resource_type in resource_types:
            kept.append(scope)
    return normalise(kept)


def _intersect(a: Scope, b: Scope) -> Scope | None:
    if a.resource_type == WILDCARD:
        resource_type = b.resource_type
    elif b.resource_type in (WILDCARD, a.resource_type):
        resource_type = a.resource_type
    else:
        return None
    letters = a.letters & b.letters
    return Scope(resource_type, letters) if letters else None


def normalise(scopes: list[Scope]) -> str:
    """Merge scopes per resource type and drop any type fully covered by the wildcard."""
    merged: dict[str, frozenset[str]] = {}
    for scope in scopes:
        merged[scope.resource_type] = merged.get(scope.resource_type, frozenset()) | scope.letters
    wildcard = merged.get(WILDCARD, frozenset())
    parts = [
        str(Scope(resource_type, letters))
        for resource_type, letters in merged.items()
        if resource_type == WILDCARD or not letters <= wildcard
    ]
    return " ".join(parts)


def grant(requested: str, allowed: str) -> str:
    """The granted subset: what was requested intersected with what the client is pre-authorised for.

    Never wider than either side, so ``system/*.rs`` requested against ``system/Task.cruds
    system/Patient.r`` grants ``system/Task.rs system/Patient.r``. Raises ValueError when either
    string is malformed (the token endpoint answers ``invalid_scope``). Empty string if nothing.
    """
    wanted = parse_scopes(requested)
    held = parse_scopes(allowed)
    granted = [s for w in wanted for h in held if (s := _intersect(w, h)) is not None]
    return normalise(granted)


def permits(scopes: str | list[Scope], resource_type: str, letter: str) -> bool:
    """True when any scope allows interaction ``letter`` (one of c, r, u, d, s) on ``resource_type``."""
    if len(letter) != 1 or letter not in LETTERS:
        raise ValueError(f"unknown permission letter {letter!r}")
    parsed = _held(scopes) if isinstance(scopes, str) else scopes
    return any(scope.covers(resource_type, letter) for scope in parsed)


@lru_cache(maxsize=1024)
def _held(text: str) -> tuple[Scope, ...]:
    # A token's scope string, parsed once: every request checks it, and the parse was 3 % of a read.
    return tuple(parse_scopes(text))
