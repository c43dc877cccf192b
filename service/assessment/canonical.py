"""Local canonical resolution: ``url|version`` -> the stored definition, and local ValueSet expansion.

Definitions are public (policy.PUBLIC_READ), so resolution needs no caller, only the connection.
Version choice (http://hl7.org/fhir/R4/references.html#canonical):

- ``url|version`` names exactly that version; a different version never stands in for it, so a
  response keeps validating against the Questionnaire it was written for after a new one is published.
- bare ``url`` means the latest ``active`` version; when none is active, the latest of any status
  (drafts included), so a freshly authored draft can be tried out. "Latest" compares versions
  numerically part by part (1.10.0 > 1.9.0), then by last update.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection

from service.storage import canonical as sql
from service.storage.resources import Stored

Codes = set[tuple[str | None, str]]

_MAX_DEPTH = 8  # ValueSet imports deeper than this are treated as unresolvable (guards cycles)


def split(canonical: str) -> tuple[str, str | None]:
    url, bar, version = canonical.partition("|")
    return url, (version if bar and version else None)


def _version_key(stored: Stored) -> tuple[tuple[tuple[int, int | str], ...], Any]:
    version = str((stored.content or {}).get("version") or "")
    parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.\-+]", version) if p)
    return parts, stored.last_updated


def candidates(conn: Connection, resource_type: str, url: str) -> list[Stored]:
    return sql.with_url(conn, resource_type, url)


def resolve(conn: Connection, resource_type: str, canonical: str) -> Stored | None:
    url, version = split(canonical)
    found = candidates(conn, resource_type, url)
    if version is not None:
        exact = [s for s in found if (s.content or {}).get("version") == version]
        return max(exact, key=_version_key) if exact else None
    active = [s for s in found if (s.content or {}).get("status") == "active"]
    pool = active or found
    return max(pool, key=_version_key) if pool else None


def resolve_content(conn: Connection, resource_type: str, canonical: str) -> dict[str, Any] | None:
    stored = resolve(conn, resource_type, canonical)
    return None if stored is None else stored.content


class ValueSetExpander:
    """Expands local ValueSets for answer checking (http://hl7.org/fhir/R4/valueset.html#compose).

    Supported: a stored ``expansion``; ``compose.include``/``exclude`` of listed concepts (any system),
    of whole local CodeSystems whose ``content`` is ``complete``, and of other local ValueSets.
    Anything else (filters, external code systems without listed concepts) is unresolvable: the
    validator then warns that it could not check the answer instead of refusing it.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._cache: dict[str, Codes | None] = {}

    def __call__(self, canonical: str) -> Codes | None:
        return self.expand(canonical, 0)

    def expand(self, canonical: str, depth: int) -> Codes | None:
        if canonical in self._cache:
            return self._cache[canonical]
        self._cache[canonical] = None  # a cycle resolves to "unknown"
        value_set = resolve_content(self._conn, "ValueSet", canonical)
        codes = None if value_set is None or depth > _MAX_DEPTH else self._value_set(value_set, depth)
        self._cache[canonical] = codes
        return codes

    def _value_set(self, value_set: dict[str, Any], depth: int) -> Codes | None:
        expansion = value_set.get("expansion")
        if isinstance(expansion, dict) and "contains" in expansion:
            return _contains(expansion.get("contains", []))
        compose = value_set.get("compose")
        if not isinstance(compose, dict):
            return None
        included: Codes = set()
        for include in compose.get("include", []):
            part = self._part(include, depth)
            if part is None:
                return None
            included |= part
        for exclude in compose.get("exclude", []):
            part = self._part(exclude, depth)
            if part is None:
                return None
            included -= part
        return included

    def _part(self, include: Any, depth: int) -> Codes | None:
        if not isinstance(include, dict) or include.get("filter"):
            return None
        sets: list[Codes] = []
        system = include.get("system")
        if isinstance(system, str):
            concepts = include.get("concept")
            if concepts:
                sets.append({(system, c["code"]) for c in concepts if isinstance(c, dict) and "code" in c})
            else:
                whole = self._code_system(system, include.get("version"))
                if whole is None:
                    return None
                sets.append(whole)
        for imported in include.get("valueSet", []):
            codes = self.expand(str(imported), depth + 1)
            if codes is None:
                return None
            sets.append(codes)
        if not sets:
            return None
        # Within one include, system and valueSet criteria intersect (ValueSet.compose.include).
        result = sets[0]
        for other in sets[1:]:
            result = result & other
        return result

    def _code_system(self, system: str, version: Any) -> Codes | None:
        canonical = f"{system}|{version}" if isinstance(version, str) and version else system
        code_system = resolve_content(self._conn, "CodeSystem", canonical)
        if code_system is None or code_system.get("content") != "complete":
            return None
        codes: Codes = set()
        _concepts(system, code_system.get("concept", []), codes)
        return codes


def _concepts(system: str, concepts: list[Any], out: Codes) -> None:
    for concept in concepts:
        if isinstance(concept, dict) and isinstance(concept.get("code"), str):
            out.add((system, concept["code"]))
            _concepts(system, concept.get("concept", []), out)


def _contains(contains: list[Any]) -> Codes:
    out: Codes = set()
    for entry in contains:
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("code"), str) and not entry.get("abstract"):
            out.add((entry.get("system"), entry["code"]))
        out |= _contains(entry.get("contains", []))
    return out


def code_displays(conn: Connection, system: str) -> dict[str, str]:
    """code -> display for a local CodeSystem (empty when it is not held here)."""
    code_system = resolve_content(conn, "CodeSystem", system)
    out: dict[str, str] = {}

    def walk(concepts: list[Any]) -> None:
        for concept in concepts:
            if isinstance(concept, dict) and isinstance(concept.get("code"), str):
                if isinstance(concept.get("display"), str):
                    out[concept["code"]] = concept["display"]
                walk(concept.get("concept", []))

    if code_system is not None:
        walk(code_system.get("concept", []))
    return out
