"""Batch and transaction Bundles POSTed to the base (http://hl7.org/fhir/R4/http.html#transaction).

Every entry runs through the same interaction functions as a single request, so
scopes, roles, visibility, validation rules, hooks and audit apply per entry.
A transaction runs inside the request's one database transaction: the first failing
entry raises and everything rolls back. A batch gives each entry a SAVEPOINT, so a
failing entry undoes only itself and reports its error in its response entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from service.access import policy
from service.audit import record
from service.errors import (
    BadRequest,
    FhirError,
    Issue,
    NotFound,
    PreconditionFailed,
)
from service.rest import _bundle_refs, conditional, history, interactions, patch
from service.rest._bundle_entries import Entry, envelope, parse_entry
from service.rest._bundle_response import response_entry
from service.rest.context import Context
from service.rest.interactions import Result, require_type
from service.rest.prefer import return_preference
from service.rest.search import find, search
from service.storage.resources import Stored, new_id

# Processing order for transactions (http://hl7.org/fhir/R4/http.html#trules); batches use it too.
_RANK = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_ACTION = {
    "GET": "read",
    "HEAD": "read",
    "POST": "create",
    "PUT": "update",
    "PATCH": "update",
    "DELETE": "delete",
}


def process(ctx: Context, body: Any, *, prefer: str | None = None) -> dict[str, Any]:
    kind, raw = envelope(body)
    parsed = [parse_entry(ctx, i, e) for i, e in enumerate(raw)]
    if kind == "transaction":
        entries = [p if isinstance(p, Entry) else _fail(i, p) for i, p in enumerate(parsed)]
        outcomes: list[Result | FhirError] = list(_transaction(ctx, entries))
    else:
        outcomes = _batch(ctx, parsed)
    record.access(ctx, kind, [])
    methods = [p.method if isinstance(p, Entry) else "GET" for p in parsed]
    response: dict[str, Any] = {"resourceType": "Bundle", "type": f"{kind}-response"}
    if outcomes:  # FHIR JSON has no empty arrays
        response["entry"] = [
            response_entry(ctx, o, m, return_preference(prefer))
            for o, m in zip(outcomes, methods, strict=True)
        ]
    return response


def _transaction(ctx: Context, entries: list[Entry]) -> list[Result]:
    _check_distinct(entries)
    order = sorted(entries, key=lambda e: _RANK[e.method])
    results: dict[int, Result] = {}
    for entry in (e for e in order if e.method == "DELETE"):
        with _naming(entry):
            results[entry.index] = _execute(ctx, entry)
    # Ids are settled after the deletes, so If-None-Exist sees their effect, and before
    # any resource is written, so references between new resources resolve in any order.
    mapping: dict[str, str] = {}
    assigned: dict[int, str] = {}
    for entry in (e for e in order if e.method == "POST"):
        found = None
        if entry.if_none_exist:
            with _naming(entry):
                found = _existing(ctx, entry)
        if found is not None:
            results[entry.index] = Result(200, found, found.content)
        else:
            assigned[entry.index] = new_id()
        if entry.full_url and entry.path:
            mapping[entry.full_url] = f"{entry.path[0]}/{found.id if found else assigned[entry.index]}"
    for entry in order:
        if entry.method == "PUT" and entry.full_url and len(entry.path) == 2:
            mapping[entry.full_url] = "/".join(entry.path)
    pending = [e for e in order if e.index not in results]
    for entry in pending:
        with _naming(entry):
            entry.url = _bundle_refs.rewrite_url(entry.url, mapping)
            if entry.resource is not None:
                entry.resource = _bundle_refs.rewrite(ctx, entry.resource, mapping, strict=True)
    posts = [e.index for e in pending if e.method == "POST"]
    new_refs = {
        e.index: f"{e.path[0]}/{assigned[e.index]}" for e in pending if e.index in assigned and e.path
    }
    resources = {e.index: e.resource for e in pending}
    ranked = _bundle_refs.creation_order(posts, new_refs, resources)
    by_index = {e.index: e for e in pending}
    for entry in [by_index[i] for i in ranked] + [e for e in pending if e.method != "POST"]:
        with _naming(entry):
            results[entry.index] = _execute(ctx, entry, assigned.get(entry.index))
    return [results[e.index] for e in entries]


def _batch(ctx: Context, parsed: list[Entry | FhirError]) -> list[Result | FhirError]:
    outcomes: dict[int, Result | FhirError] = {}
    entries: list[Entry] = []
    for i, item in enumerate(parsed):
        if isinstance(item, Entry):
            entries.append(item)
        else:
            outcomes[i] = item
    for entry in sorted(entries, key=lambda e: _RANK[e.method]):
        i = entry.index
        try:
            with ctx.conn.begin_nested():
                if entry.resource is not None:
                    entry.resource = _bundle_refs.rewrite(ctx, entry.resource, {}, strict=False)
                outcomes[i] = _execute(ctx, entry)
        except FhirError as exc:
            outcomes[i] = exc
            event = record.build_event(
                caller=ctx.caller,
                action=_ACTION[entry.method],
                now=ctx.now,
                status=exc.status,
                description=f"Bundle.entry[{i}]: {exc.diagnostics}",
            )
            record.write_event(ctx.conn, event, ctx.now)
    return [outcomes[i] for i in range(len(parsed))]


def _check_distinct(entries: list[Entry]) -> None:
    # Two entries naming the same resource make the outcome order-dependent (http.html#trules).
    seen: dict[str, int] = {}
    for entry in entries:
        keys = {entry.full_url} if entry.full_url else set()
        if entry.method in ("PUT", "PATCH", "DELETE"):
            keys.add(entry.url)
        for key in sorted(keys):
            if key in seen:
                _fail(
                    entry.index,
                    BadRequest(f"Entries {seen[key]} and {entry.index} identify the same resource"),
                )
            seen[key] = entry.index


@contextmanager
def _naming(entry: Entry) -> Iterator[None]:
    try:
        yield
    except FhirError as exc:
        _fail(entry.index, exc)


def _fail(index: int, exc: FhirError) -> NoReturn:
    """Re-raise with the failing entry named, keeping the entry's own status."""
    where = f"Bundle.entry[{index}]"
    issues = [
        Issue(i.code, i.diagnostics, i.severity, (where, *(_within(where, x) for x in i.expression)))
        for i in exc.outcome_issues()
    ]
    message = exc.diagnostics if exc.diagnostics.startswith(where) else f"{where}: {exc.diagnostics}"
    raise type(exc)(message, issues=issues) from exc


def _within(where: str, expression: str) -> str:
    head, dot, rest = expression.partition(".")
    if expression.startswith("Bundle.") or not head[:1].isupper():
        return expression
    return f"{where}.resource" + (f".{rest}" if dot else "")


def _existing(ctx: Context, entry: Entry) -> Stored | None:
    """Conditional create's search (http.html#ccreate), run before ids are handed out."""
    rtype = entry.path[0] if len(entry.path) == 1 else ""
    require_type(rtype, "create")
    policy.authorize(ctx.caller, rtype, "create")
    params = conditional._criteria(entry.if_none_exist or "")
    conditional._lock(ctx, rtype, params)
    matches = find(ctx, rtype, params)
    if len(matches) > 1:
        raise PreconditionFailed(
            f"If-None-Exist matched more than one {rtype}; the criteria are not selective"
        )
    return matches[0] if matches else None


def _execute(ctx: Context, entry: Entry, resource_id: str | None = None) -> Result:
    path, method = entry.path, entry.method
    if not path:
        raise BadRequest("request.url must name a resource type")
    rtype = path[0]
    if method in ("GET", "HEAD"):
        if len(path) == 1:
            return Result(200, None, search(ctx, rtype, entry.params))
        if len(path) == 2:
            return interactions.read(ctx, rtype, path[1])
        if len(path) == 3 and path[2] == "_history":
            return Result(200, None, history.instance(ctx, rtype, path[1], entry.params))
        if len(path) == 4 and path[2] == "_history":
            return interactions.vread(ctx, rtype, path[1], path[3])
    elif method == "POST" and len(path) == 1:
        if entry.if_none_exist and resource_id is None:
            return conditional.create(ctx, rtype, entry.resource, entry.if_none_exist)
        return interactions.create(ctx, rtype, entry.resource, resource_id=resource_id)
    elif method == "PUT" and len(path) == 2:
        return interactions.update(ctx, rtype, path[1], entry.resource, entry.if_match)
    elif method == "PUT" and len(path) == 1 and "?" in entry.url:
        return conditional.update(ctx, rtype, entry.params, entry.resource, entry.if_match)
    elif method == "DELETE" and len(path) == 2:
        return interactions.delete(ctx, rtype, path[1], entry.if_match)
    elif method == "DELETE" and len(path) == 1 and "?" in entry.url:
        return _conditional_delete(ctx, entry)
    elif method == "PATCH" and len(path) == 2:
        document = patch.from_binary(entry.resource)
        return patch.patch(ctx, rtype, path[1], document, entry.if_match)
    raise BadRequest(
        f"{method} {'/'.join(path[:1])}... is not an interaction this server supports in a Bundle"
    )


def _conditional_delete(ctx: Context, entry: Entry) -> Result:
    rtype = entry.path[0]
    require_type(rtype, "delete")
    policy.authorize(ctx.caller, rtype, "delete")
    matches = find(ctx, rtype, entry.params)
    if not matches:
        raise NotFound(f"The conditional delete matched no {rtype}")
    if len(matches) > 1:
        raise PreconditionFailed(f"The conditional delete matched more than one {rtype}")
    return interactions.delete(ctx, rtype, matches[0].id, entry.if_match)
