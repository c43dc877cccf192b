"""The patch interaction (http://hl7.org/fhir/R4/http.html#patch) with JSON Patch (RFC 6902).

A patch is applied to the stored resource and the result goes through ``interactions.update``
unchanged, so scopes and roles (403), visibility (404), structure (400), profiles and business
rules (422), hooks and the audit record are exactly an update's. The version the patch was
computed from is passed on as ``If-Match``: R4 http.html#patch requires servers that support
patch to support resource contention, so a concurrent write between the read and the update
is a 412, never a silently lost change.

Statuses follow RFC 5789 §2.2: a malformed patch document is 400; a well-formed one that
cannot be applied to this resource (a ``test`` that fails, a path that does not exist) is 422
("the server understands the patch document ... but is incapable of processing the request");
a patch format this server does not implement (FHIRPath Patch, XML Patch) is 415.

fhirpy's ``patch()`` sends a partial resource as ``application/json``: that is a JSON Merge
Patch (RFC 7386), which is also accepted, as ``application/merge-patch+json`` or as a JSON
object sent as ``application/json``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import jsonpatch
import jsonpointer

from service.access import policy
from service.access.visibility import is_visible
from service.errors import BadRequest, Gone, NotFound, Unprocessable, UnsupportedMediaType
from service.fhir.jsonbody import parse_json
from service.rest import interactions
from service.rest.context import Context
from service.rest.interactions import Result, require_type

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
_OPS = ("add", "remove", "replace", "move", "copy", "test")
# Limits for a patch document carried base64-encoded in a Bundle's Binary entry; a patch
# sent directly is parsed with the request-body limits (settings).
_BINARY_MAX_DEPTH = 64
_BINARY_MAX_ITEMS = 10_000


@dataclass(frozen=True)
class PatchDocument:
    kind: str  # "json-patch" | "merge-patch"
    body: Any


def check_media(content_type: str) -> str:
    """The media type, if it is a patch format this server applies; 415 otherwise."""
    media = content_type.split(";")[0].strip().lower()
    if media not in (JSON_PATCH, MERGE_PATCH, "application/json"):
        raise UnsupportedMediaType(
            f"PATCH with Content-Type '{media or '(none)'}' is not supported; send a JSON Patch "
            f"(RFC 6902) as {JSON_PATCH}. FHIRPath Patch (a Parameters resource) is not implemented."
        )
    return media


def document(content_type: str, body: Any) -> PatchDocument:
    """The patch document for a media type, checked for shape (400) before anything is read."""
    media = check_media(content_type)
    if media == JSON_PATCH or (media == "application/json" and isinstance(body, list)):
        return PatchDocument("json-patch", _check_operations(body))
    if media == MERGE_PATCH or (media == "application/json" and isinstance(body, dict)):
        if isinstance(body, dict) and body.get("resourceType") == "Parameters":
            raise UnsupportedMediaType("FHIRPath Patch (a Parameters resource) is not implemented")
        if not isinstance(body, dict):
            raise BadRequest("A JSON Merge Patch (RFC 7386) is a JSON object holding the changed elements")
        return PatchDocument("merge-patch", body)
    raise BadRequest(f"A {media} patch document is an array of operations (RFC 6902 §3)")


def from_binary(resource: Any) -> PatchDocument:
    """A PATCH entry's patch in a batch or transaction: a Binary whose data is the patch document
    (http://hl7.org/fhir/R4/http.html#transaction)."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Binary":
        raise BadRequest("A PATCH entry needs a Binary resource whose data is the patch document")
    content_type, data = resource.get("contentType"), resource.get("data")
    if not isinstance(content_type, str) or not isinstance(data, str):
        raise BadRequest("The PATCH entry's Binary needs contentType and base64 data")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("The PATCH entry's Binary.data is not valid base64") from None
    body = parse_json(raw, max_depth=_BINARY_MAX_DEPTH, max_items=_BINARY_MAX_ITEMS)
    return document(content_type, body)


def _check_operations(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, list) or not body:
        raise BadRequest("A JSON Patch document is a non-empty array of operations (RFC 6902 §3)")
    for i, op in enumerate(body):
        where = f"JSON Patch operation {i}"
        if not isinstance(op, dict):
            raise BadRequest(f"{where} is not an object")
        if op.get("op") not in _OPS:
            raise BadRequest(f"{where}: 'op' must be one of {', '.join(_OPS)} (RFC 6902 §4)")
        if not isinstance(op.get("path"), str):
            raise BadRequest(f"{where}: 'path' must be a JSON Pointer string (RFC 6902 §4)")
        if op["op"] in ("add", "replace", "test") and "value" not in op:
            raise BadRequest(f"{where}: '{op['op']}' needs a 'value' (RFC 6902 §4)")
        if op["op"] in ("move", "copy") and not isinstance(op.get("from"), str):
            raise BadRequest(f"{where}: '{op['op']}' needs a 'from' JSON Pointer (RFC 6902 §4)")
    try:
        jsonpatch.JsonPatch(body)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise BadRequest(f"The JSON Patch document is malformed: {exc}") from None
    return body


def patch(
    ctx: Context, resource_type: str, resource_id: str, doc: PatchDocument, if_match: str | None
) -> Result:
    require_type(resource_type, "patch")
    policy.authorize(ctx.caller, resource_type, "update")
    old = ctx.store.current_for_write(resource_type, resource_id)
    if old is None or not is_visible(ctx.conn, ctx.caller, old):
        # Never a create: there is nothing to patch (and no oracle for others' ids).
        raise NotFound(f"{resource_type}/{resource_id} is not known")
    if old.deleted:
        raise Gone(f"{resource_type}/{resource_id} was deleted", headers={"ETag": f'W/"{old.version_id}"'})
    interactions.check_if_match(old, if_match)
    current = old.content or {}
    patched = _apply(doc, current)
    _check_server_owned(current, patched)
    return interactions.update(ctx, resource_type, resource_id, patched, f'W/"{old.version_id}"')


def _apply(doc: PatchDocument, current: dict[str, Any]) -> Any:
    if doc.kind == "merge-patch":
        return _merge(current, doc.body)
    try:
        return jsonpatch.JsonPatch(doc.body).apply(current, in_place=False)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise Unprocessable(f"The JSON Patch cannot be applied to this resource: {exc}") from None


def _merge(target: Any, change: Any) -> Any:
    # RFC 7386 §2: objects merge member by member, null removes, anything else replaces.
    if not isinstance(change, dict):
        return change
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in change.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


def _check_server_owned(before: dict[str, Any], after: Any) -> None:
    # The logical id, the type and the version are the server's (http.html#update, #patch):
    # a patch that would change them is refused rather than quietly undone.
    if not isinstance(after, dict):
        raise Unprocessable("The patched document is not a resource")
    for name in ("resourceType", "id"):
        if after.get(name) != before.get(name):
            raise Unprocessable(f"A patch may not change '{name}'")
    old_meta, new_meta = before.get("meta") or {}, after.get("meta")
    new_meta = new_meta if isinstance(new_meta, dict) else {}
    for name in ("versionId", "lastUpdated"):
        if new_meta.get(name) != old_meta.get(name):
            raise Unprocessable(f"A patch may not change 'meta.{name}'; it is set by the server")
