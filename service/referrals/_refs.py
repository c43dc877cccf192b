"""Resolving FHIR references inside the hub, with and without the caller's visibility.

R4 references (http://hl7.org/fhir/R4/references.html#literal) are relative (``Type/id``) or absolute;
an absolute URL counts as local only when it starts with this server's FHIR base. Contained (``#x``)
and ``urn:`` references never resolve here: a transaction Bundle rewrites its urn:uuid references
before the entries reach the rules.
"""

from __future__ import annotations

from collections.abc import Collection

from service.access.visibility import is_visible
from service.rest.context import Context
from service.storage.resources import Stored


def local_parts(ctx: Context, reference: str) -> tuple[str, str] | None:
    """(type, id) of a reference to a resource on this server; None for contained, urn: or foreign ones."""
    ref = reference.strip()
    if ref.startswith(("#", "urn:")):
        return None
    if "://" in ref:
        base = ctx.base_url.rstrip("/") + "/"
        if not ref.startswith(base):
            return None
        ref = ref[len(base) :]
    ref = ref.split("/_history/", 1)[0].strip("/")
    parts = ref.split("/")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


def local_ref(ctx: Context, reference: str | None) -> str | None:
    """``Type/id`` for a local reference, else None."""
    parts = local_parts(ctx, reference) if reference else None
    return f"{parts[0]}/{parts[1]}" if parts else None


def resolve(ctx: Context, reference: str | None, types: Collection[str]) -> Stored | None:
    """The current, undeleted resource a local reference of one of ``types`` points at (no visibility)."""
    parts = local_parts(ctx, reference) if reference else None
    if parts is None or parts[0] not in types:
        return None
    stored = ctx.store.current(*parts)
    if stored is None or stored.deleted or stored.content is None:
        return None
    return stored


def resolve_visible(ctx: Context, reference: str | None, types: Collection[str]) -> Stored | None:
    """As ``resolve``, but only when the caller may see the target (else as if missing)."""
    stored = resolve(ctx, reference, types)
    if stored is None or not is_visible(ctx.conn, ctx.caller, stored):
        return None
    return stored


def ref_id(reference: str) -> str:
    """The id part of a ``Type/id`` reference."""
    return reference.rsplit("/", 1)[-1]
