"""The OpenAPI document: one set of paths per resource type, derived from what is registered.

The routes dispatch every type through ``/fhir/{resource_type}``; a developer in ``/docs`` needs
to find ``ServiceRequest`` by name, with its schema, its search parameters and an example that
works. So the generic routes are left out of the schema (``include_in_schema=False`` in
``service/app.py``) and their paths are generated here from ``service.rest.registry`` (the
interactions each type allows) and ``service.search.params`` (its search parameters), as the
CapabilityStatement is. Routes with their own paths (operations, the token endpoint) come from
FastAPI as usual and get their request bodies, examples and responses completed here.

Schemas are fhir.resources' ``model_json_schema()`` corrected to FHIR JSON (``openapi_schemas``).
Measured (21 types plus Bundle, OperationOutcome, Parameters and CapabilityStatement, 223
operations): the schemas are ~240 KB of a ~1.4 MB document, most of the rest being each type's
search parameters, listed for search, POST _search and conditional update; it is built once per
process (~1 s). Swagger UI renders an operation only when it is expanded, so that size is acceptable.

The document tells the truth, as schemathesis checks against the live server
(``tests/contract/run_schemathesis.py``): each operation lists every status it really answers
(errors as OperationOutcome, shared through ``components/responses``), and each path exactly the
methods the hub serves there: ``api/methods.py`` answers 405 to any other, from ``path_methods``.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from service.api import examples, resource_routes
from service.api import openapi_params as params
from service.api.openapi_schemas import resource_schema
from service.rest import registry

FHIR_JSON = "application/fhir+json"
SECURITY: list[dict[str, list[str]]] = [{"SMART access token": []}]
_EXTRA_SCHEMAS = ("Bundle", "OperationOutcome", "Parameters", "CapabilityStatement")
_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    _describe(doc["paths"])
    components = doc.setdefault("components", {})
    components["schemas"] = {
        **components.get("schemas", {}),
        **{n: resource_schema(n) for n in (*registry.TYPES, *_EXTRA_SCHEMAS)},
    }
    components["responses"] = _error_responses()
    doc["tags"] = [
        {"name": "Authentication", "description": "SMART Backend Services: discover, then get a token"},
        {"name": "Conformance", "description": "What this server supports"},
        *({"name": n, "description": i.documentation or f"FHIR R4 {n}"} for n, i in registry.TYPES.items()),
    ]
    return doc


def path_methods(app: FastAPI) -> dict[str, frozenset[str]]:
    """{path template: the HTTP methods the document gives it}, without building the schemas."""
    paths = get_openapi(title=app.title, version=app.version, routes=app.routes)["paths"]
    _describe(paths)
    return {path: frozenset(m.upper() for m in item if m in _HTTP_METHODS) for path, item in paths.items()}


def _describe(paths: dict[str, Any]) -> None:
    patch = _has_patch()
    for name, info in registry.TYPES.items():
        for path, item in _type_paths(name, info, patch).items():
            paths.setdefault(path, {}).update(item)
    _add_operation_bodies(paths)
    _add_token_body(paths)
    _describe_routes(paths)


def _has_patch() -> bool:
    # PATCH is documented only once its route exists. The generic routes live on
    # resource_routes' router (FastAPI keeps included routers unflattened in app.routes).
    return any(
        isinstance(r, APIRoute)
        and r.path == "/fhir/{resource_type}/{resource_id}"
        and "PATCH" in (r.methods or set())
        for r in resource_routes.router.routes
    )


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


# -- responses ---------------------------------------------------------------------------------

# Every authenticated FHIR interaction can answer these: a malformed query or header (400), no or
# a bad token (401), a scope or role that does not allow it (403), an XML Accept or _format (415),
# the client's rate limit (429, with Retry-After) and a database outage (503, with Retry-After).
_ANY = (400, 401, 403, 415, 429, 503)
_REASONS = {
    405: "Interaction not supported for this type",
    410: "Deleted",
    413: "Body too large",
    415: "Only FHIR JSON is accepted (Content-Type, Accept, _format)",
    429: "Rate limit reached: retry after the Retry-After seconds",
    503: "The hub's database is unavailable: retry after the Retry-After seconds",
}
_ERROR_STATUSES = (400, 401, 403, 404, 405, 409, 410, 412, 413, 415, 422, 429, 503)


def _errors(*extra: int) -> dict[str, Any]:
    # Shared through components/responses: the same OperationOutcome shapes on every path.
    return {str(s): {"$ref": f"#/components/responses/Error{s}"} for s in sorted({*_ANY, *extra})}


def _error_responses() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status in _ERROR_STATUSES:
        entry = copy.deepcopy(examples.ERROR_RESPONSES.get(status)) or {"description": _REASONS[status]}
        entry.setdefault("content", {}).setdefault(FHIR_JSON, {})["schema"] = _ref("OperationOutcome")
        if status in (429, 503):
            entry["headers"] = {"Retry-After": {"description": "Seconds", "schema": {"type": "string"}}}
        out[f"Error{status}"] = entry
    return out


def _ok(
    description: str, schema: str, status: int = 200, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {FHIR_JSON: {"schema": _ref(schema)}},
    }
    if headers:
        response["headers"] = {
            h: {"description": d, "schema": {"type": "string"}} for h, d in headers.items()
        }
    return {str(status): response}


def _written(description: str, name: str, status: int = 200, **headers: str) -> dict[str, Any]:
    """A write's result: the resource, or what ``Prefer: return=`` asked for (no body, an outcome)."""
    response = _ok(description, name, status, {**params.VERSION_HEADERS, **headers})
    content = response[str(status)]["content"][FHIR_JSON]
    content["schema"] = {"anyOf": [_ref(name), _ref("OperationOutcome")]}
    response[str(status)]["description"] += " (Prefer: return=minimal has no body)"
    return response


# -- per-type paths ----------------------------------------------------------------------------


def _op(name: str, summary: str, op_id: str, **rest: Any) -> dict[str, Any]:
    return {
        "tags": [name],
        "summary": summary,
        "operationId": f"{op_id}_{name}",
        "security": SECURITY,
        **rest,
    }


def _body(name: str, examples_: dict[str, Any], media: str = FHIR_JSON) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": _ref(name)}
    if examples_:
        content["examples"] = examples_
    return {"required": True, "content": {media: content}}


# RFC 6902 §4: each operation has `op` and a JSON Pointer `path`; `value` for add, replace and
# test, `from` for move and copy.
_POINTER = {"type": "string", "pattern": "^(/[^/]*)*$"}


def _patch_op(ops: list[str], *needs: str) -> dict[str, Any]:
    properties: dict[str, Any] = {"op": {"type": "string", "enum": ops}, "path": _POINTER}
    properties |= {n: ({} if n == "value" else _POINTER) for n in needs}
    return {"type": "object", "required": ["op", "path", *needs], "properties": properties}


_JSON_PATCH = {
    "type": "array",
    "minItems": 1,
    "items": {
        "anyOf": [
            _patch_op(["add", "replace", "test"], "value"),
            _patch_op(["remove"]),
            _patch_op(["move", "copy"], "from"),
        ]
    },
}


def _type_paths(name: str, info: registry.TypeInfo, patch: bool) -> dict[str, dict[str, Any]]:
    can = set(info.interactions)
    base, inst = f"/fhir/{name}", f"/fhir/{name}/{{id}}"
    paths: dict[str, dict[str, Any]] = {base: {}, inst: {}}
    bundle = _ok("A searchset Bundle", "Bundle")
    if "search-type" in can:
        paths[base]["get"] = _op(
            name,
            f"search {name}",
            "search",
            parameters=params.search_parameters(name),
            responses={**bundle, **_errors()},
        )
        paths[f"{base}/_search"] = {
            "post": _op(
                name,
                f"search {name} (POST, form-encoded)",
                "search_post",
                requestBody={
                    "content": {"application/x-www-form-urlencoded": {"schema": params.search_form(name)}}
                },
                responses={**bundle, **_errors(413)},
            )
        }
    if "create" in can:
        paths[base]["post"] = _op(
            name,
            f"create {name}",
            "create",
            description=examples.CREATE_NOTES.get(name, ""),
            parameters=[params.PREFER, params.IF_NONE_EXIST],
            requestBody=_body(name, examples.create_examples(name)),
            responses={
                **_written("Created", name, 201, Location=f"…/fhir/{name}/<id>/_history/1"),
                **_written("Conditional create matched an existing resource", name),
                **_errors(404, 409, 412, 413, 422),
            },
        )
    if "update" in can:
        paths[base]["put"] = _op(
            name,
            f"conditional update {name} (by search, e.g. ?identifier=)",
            "conditional_update",
            parameters=[*params.search_parameters(name, criteria=True), params.PREFER, params.IF_MATCH],
            requestBody=_body(name, {}),
            responses={
                **_written("Updated the one match", name),
                **_written("Created (no match)", name, 201),
                **_errors(404, 409, 410, 412, 413, 422),
            },
        )
    if "read" in can:
        paths[inst]["get"] = _op(
            name,
            f"read {name}",
            "read",
            parameters=[params.path_id(), params.IF_NONE_MATCH],
            responses={
                **_ok(f"The current {name}", name, headers=params.VERSION_HEADERS),
                "304": {"description": "Not modified"},
                **_errors(404, 410),
            },
        )
    if "update" in can:
        paths[inst]["put"] = _op(
            name,
            f"update {name}",
            "update",
            parameters=[params.path_id(), params.PREFER, params.IF_MATCH],
            requestBody=_body(name, examples.update_examples(name)),
            responses={
                **_written("Updated", name),
                **_written("Created (directory and definition types only)", name, 201),
                **_errors(404, 409, 410, 412, 413, 422),
            },
        )
    if patch and "patch" in can:
        paths[inst]["patch"] = _op(
            name,
            f"patch {name} (JSON Patch, RFC 6902)",
            "patch",
            parameters=[params.path_id(), params.PREFER, params.IF_MATCH],
            requestBody={
                "required": True,
                "content": {
                    "application/json-patch+json": {
                        "schema": _JSON_PATCH,
                        "examples": examples.PATCH_EXAMPLES,
                    }
                },
            },
            responses={**_written("Patched", name), **_errors(404, 409, 410, 412, 413, 422)},
        )
    if "delete" in can:
        paths[inst]["delete"] = _op(
            name,
            f"delete {name} (later reads answer 410)",
            "delete",
            parameters=[params.path_id(), params.IF_MATCH],
            responses={"204": {"description": "Deleted"}, **_errors(404, 409, 412)},
        )
    history = _ok("A history Bundle", "Bundle")
    if "history-type" in can:
        paths[f"{base}/_history"] = {
            "get": _op(name, f"{name} history", "type_history", responses={**history, **_errors()})
        }
    if "history-instance" in can:
        paths[f"{inst}/_history"] = {
            "get": _op(
                name,
                f"history of one {name}",
                "instance_history",
                parameters=[params.path_id()],
                responses={**history, **_errors(404)},
            )
        }
    if "vread" in can:
        paths[f"{inst}/_history/{{vid}}"] = {
            "get": _op(
                name,
                f"vread {name}",
                "vread",
                parameters=[params.path_id(), params.PATH_VID],
                responses={
                    **_ok("That version", name, headers=params.VERSION_HEADERS),
                    **_errors(404, 410),
                },
            )
        }
    return {p: item for p, item in paths.items() if item}


# -- routes with their own paths ---------------------------------------------------------------


def _add_operation_bodies(paths: dict[str, Any]) -> None:
    for path, (method, tag, body_examples, response) in examples.OPERATIONS.items():
        operation = paths.get(path, {}).get(method)
        if operation is None:
            continue
        operation["tags"] = [tag]
        if body_examples:
            operation["requestBody"] = {
                "required": method == "post" and "populate" in path,
                "content": {FHIR_JSON: {"schema": _ref("Parameters"), "examples": body_examples}},
            }
        ok = operation.setdefault("responses", {}).setdefault("200", {"description": "Successful Response"})
        ok["content"] = {FHIR_JSON: {"schema": _ref(response), "example": examples.OPERATION_RESULTS[path]}}
        # The FastAPI routes list the router's example errors; these are every status they answer.
        too_large = (413,) if "requestBody" in operation else ()
        operation["responses"] = {"200": ok, **_errors(404, 409, 422, *too_large)}


def _add_token_body(paths: dict[str, Any]) -> None:
    operation = paths.get("/auth/token", {}).get("post")
    if operation is None:
        return
    fields = ("grant_type", "client_assertion_type", "client_assertion", "scope")
    operation["requestBody"] = {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": list(fields),
                    "properties": {f: {"type": "string"} for f in fields},
                },
                "example": examples.TOKEN_REQUEST,
            }
        },
    }


# OAuth answers (RFC 6749 §5.1, §5.2), not FHIR ones.
_TOKEN = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in", "scope"],
    "properties": {
        "access_token": {"type": "string"},
        "token_type": {"type": "string", "enum": ["bearer"]},
        "expires_in": {"type": "integer"},
        "scope": {"type": "string"},
    },
}
_OAUTH_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}
_STATUS = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string"}, "detail": {"type": "string"}},
}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _describe_routes(paths: dict[str, Any]) -> None:
    """What FastAPI cannot see from the handlers: the schemas and the statuses they really answer."""
    if metadata := paths.get("/fhir/metadata", {}).get("get"):
        metadata["responses"] = {**_ok("The CapabilityStatement", "CapabilityStatement"), **_only(415)}
    if smart := paths.get("/fhir/.well-known/smart-configuration", {}).get("get"):
        document = {"type": "object", "required": ["token_endpoint"], "additionalProperties": True}
        smart["responses"] = {"200": _json("SMART configuration", document), **_only(415)}
    if ready := paths.get("/readyz", {}).get("get"):
        ready["responses"] = {
            "200": _json("Ready", _STATUS),
            "503": _json("Database unreachable or migrations not current", _STATUS),
        }
    if token := paths.get("/auth/token", {}).get("post"):
        oauth_error = _json("OAuth error (RFC 6749 §5.2)", _OAUTH_ERROR)
        token["responses"] = {
            "200": _json("An access token (RFC 6749 §5.1)", _TOKEN),
            **{str(s): oauth_error for s in (400, 401, 429)},
            # A database outage is answered as on the API, with an OperationOutcome.
            **_only(503),
        }
    if batch := paths.get("/fhir", {}).get("post"):
        batch["responses"] = {
            **_ok("The batch-response or transaction-response Bundle", "Bundle"),
            **_errors(404, 409, 412, 413, 422),
        }
        content = batch.setdefault("requestBody", {"required": True}).setdefault("content", {})
        content.setdefault(FHIR_JSON, {})["schema"] = _ref("Bundle")


def _only(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/Error{s}"} for s in statuses}
