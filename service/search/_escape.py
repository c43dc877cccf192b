"""Splitting search values on ``,`` (OR) and ``|`` (system|code) with ``\\`` escapes.

http://hl7.org/fhir/R4/search.html#escaping: ``\\,``, ``\\|``, ``\\$`` and ``\\\\``
stand for the literal character.
"""

from __future__ import annotations


def split_unescaped(text: str, sep: str) -> list[str]:
    """Split on ``sep`` where it is not escaped; escapes are kept for a later split."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ",|$\\":
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
