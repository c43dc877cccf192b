"""The OpenAPI document: one set of paths per resource type, derived from what is registered.

The routes dispatch every type through ``/fhir/{resource_type}``; a developer in ``/docs`` needs
to find ``ServiceRequest`` by name, with its schema, its search parameters and an example that
works. So the generic routes are left out of the schema (``include_in_schema=False`` in
``service/app.py``) and their paths are generated here from ``service.rest.registry`` (the
interactions each type allows) and ``service.search.params`` (its search parameters), as the
CapabilityStatement is. Routes with their own paths (operations, the token endpoint) come from
FastAPI as usual and get their request bodies and examples added here.

Schemas are fhir.resources' ``model_json_schema()``, used whole. Measured (21 types plus Bundle,
OperationOutcome and Parameters): the schemas are ~260 KB of a ~630 KB document (138 paths),
because the models type nested elements loosely (``{}``) rather than expanding every datatype;
the document is built once per process (~1 s) and served in ~20 ms after that. Swagger UI
renders an operation's schema only when it is expanded, so that size is acceptable and nothing is
trimmed beyond the library's private keywords
(``element_property`` and the like); its ``enum_values`` become a real ``enum``. Error
responses are shared through ``components/responses`` to keep the paths small.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from service.api import examples, resource_routes
from service.fhir.models import model_class
from service.rest import registry
from service.search.params import params_for
from service.search.types import SearchParam

FHIR_JSON = "application/fhir+json"
_ID = {"type": "string", "pattern": r"^[A-Za-z0-9\-\.]{1,64}$"}
_EXTRA_SCHEMAS = ("Bundle", "OperationOutcome", "Parameters")
_PRIVATE_KEYWORDS = (
    "element_property",
    "element_required",
    "summary_element_property",
    "enum_reference_types",
    "enum_values",
    "one_of_many",
    "one_of_many_required",
    "union_mode",
    "union_key",
)

# How each FHIR search parameter type is written (http://hl7.org/fhir/R4/search.html#ptypes).
_TYPE_HELP = {
    "token": "token: `system|code`, `code` or `system|`",
    "string": "string: starts with, case- and accent-insensitive; `:exact`, `:contains`",
    "date": "date: `YYYY[-MM[-DD[Thh:mm:ssZ]]]` with an optional prefix `eq ne gt lt ge le sa eb ap`",
    "reference": "reference: `Type/id`",
    "quantity": "quantity: `[prefix]number|system|code`",
    "number": "number: with an optional prefix `eq ne gt lt ge le`",
    "uri": "uri: exact match; `:below`, `:above`",
    "composite": "composite: `value1$value2`",
}
_RESULT_PARAMS = (
    ("_count", "integer", "Page size (http://hl7.org/fhir/R4/search.html#count)"),
    ("_sort", "string", "Comma-separated parameter names, `-` for descending, e.g. `-_lastUpdated`"),
    ("_include", "string", "e.g. `ServiceRequest:patient`: add the referenced resources"),
    ("_revinclude", "string", "e.g. `Task:focus`: add resources that reference the matches"),
    ("_total", "string", "`accurate` or `estimate` for an exact Bundle.total, `none` for none"),
    ("_summary", "string", "`true`, `count`, `data` or `text`"),
    ("_elements", "string", "Comma-separated element names to return"),
)


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    patch = _has_patch()
    for name, info in registry.TYPES.items():
        for path, item in _type_paths(name, info, patch).items():
            doc["paths"].setdefault(path, {}).update(item)
    _add_operation_bodies(doc["paths"])
    _add_token_body(doc["paths"])
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


def _has_patch() -> bool:
    # PATCH is documented only once its route exists. The generic routes live on
    # resource_routes' router (FastAPI keeps included routers unflattened in app.routes).
    return any(
        isinstance(r, APIRoute)
        and r.path == "/fhir/{resource_type}/{resource_id}"
        and "PATCH" in (r.methods or set())
        for r in resource_routes.router.routes
    )


# -- schemas -----------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _schema(name: str) -> dict[str, Any]:
    schema = model_class(name).model_json_schema()
    props = schema.setdefault("properties", {})
    props.pop("resource_type", None)
    props["resourceType"] = {"type": "string", "const": name, "description": "Always " + name}
    schema["required"] = ["resourceType", *[r for r in schema.get("required", []) if r in props]]
    # Responses may carry elements the models name differently (primitive extensions `_x`):
    # a strict additionalProperties=false would call a valid resource wrong.
    schema.pop("additionalProperties", None)
    schema["properties"] = {k: _clean(v) for k, v in props.items()}
    schema["title"] = name
    return schema


def resource_schema(name: str) -> dict[str, Any]:
    return copy.deepcopy(_schema(name))


def _clean(prop: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in prop.items() if k not in _PRIVATE_KEYWORDS}
    enum = prop.get("enum_values")
    if enum:
        for branch in out.get("anyOf", []):
            if branch.get("type") == "string":
                branch["enum"] = list(enum)
    return out


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


# -- per-type paths ----------------------------------------------------------------------------


def _errors(*statuses: int) -> dict[str, Any]:
    # Shared through components/responses: the same OperationOutcome shapes on every path.
    return {str(s): {"$ref": f"#/components/responses/Error{s}"} for s in statuses}


def _error_responses() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status in (*_COMMON_ERRORS, 409, 410, 412, 413, 415, 422):
        entry = copy.deepcopy(examples.ERROR_RESPONSES.get(status)) or {"description": _REASONS[status]}
        entry.setdefault("content", {}).setdefault(FHIR_JSON, {})["schema"] = _ref("OperationOutcome")
        out[f"Error{status}"] = entry
    return out


_REASONS = {
    405: "Interaction not supported for this type",
    410: "Deleted",
    413: "Body too large",
    415: "Only FHIR JSON is accepted",
}
_COMMON_ERRORS = (400, 401, 403, 404)


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


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


_PATH_ID = {"name": "id", "in": "path", "required": True, "description": "Logical id", "schema": _ID}
_PATH_VID = {
    "name": "vid",
    "in": "path",
    "required": True,
    "description": "versionId",
    "schema": {"type": "string"},
}
_PREFER = _header("Prefer", "return=minimal | representation | OperationOutcome")
_IF_MATCH = _header("If-Match", 'W/"<versionId>" for optimistic locking (412 if it is not current)')
_VERSION_HEADERS = {"ETag": 'W/"<versionId>"', "Last-Modified": "When this version was written"}


def _op(name: str, summary: str, op_id: str, **rest: Any) -> dict[str, Any]:
    return {"tags": [name], "summary": summary, "operationId": f"{op_id}_{name}", **rest}


def search_parameters(name: str) -> list[dict[str, Any]]:
    out = [_search_parameter(p) for _, p in sorted(params_for(name).items())]
    out += [
        {"name": n, "in": "query", "required": False, "description": d, "schema": {"type": t}}
        for n, t, d in _RESULT_PARAMS
    ]
    return out


def _search_parameter(param: SearchParam) -> dict[str, Any]:
    what = param.description or (f"`{param.expression}`" if param.expression else param.name)
    targets = f" (to {', '.join(param.targets)})" if param.targets else ""
    return {
        "name": param.name,
        "in": "query",
        "required": False,
        "description": (
            f"{what}{targets}. FHIR {_TYPE_HELP.get(param.type, param.type)}. Definition: {param.url}"
        ),
        "schema": {"type": "string"},
        "x-fhir-type": param.type,
    }


def _body(name: str, examples_: dict[str, Any], media: str = FHIR_JSON) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": _ref(name)}
    if examples_:
        content["examples"] = examples_
    return {"required": True, "content": {media: content}}


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
            parameters=search_parameters(name),
            responses={**bundle, **_errors(*_COMMON_ERRORS)},
        )
        form = {
            "type": "object",
            "properties": {
                p["name"]: {"type": "string", "description": p["description"]}
                for p in search_parameters(name)
            },
        }
        paths[f"{base}/_search"] = {
            "post": _op(
                name,
                f"search {name} (POST, form-encoded)",
                "search_post",
                requestBody={"content": {"application/x-www-form-urlencoded": {"schema": form}}},
                responses={**bundle, **_errors(*_COMMON_ERRORS, 415)},
            )
        }
    if "create" in can:
        paths[base]["post"] = _op(
            name,
            f"create {name}",
            "create",
            description=examples.CREATE_NOTES.get(name, ""),
            parameters=[
                _PREFER,
                _header("If-None-Exist", "Conditional create: a search query, e.g. identifier=sys|val"),
            ],
            requestBody=_body(name, examples.create_examples(name)),
            responses={
                **_ok(
                    "Created",
                    name,
                    201,
                    headers={"Location": f"…/fhir/{name}/<id>/_history/1", **_VERSION_HEADERS},
                ),
                **_ok("Conditional create matched an existing resource", name),
                **_errors(*_COMMON_ERRORS, 409, 413, 415, 422),
            },
        )
    if "read" in can:
        paths[inst]["get"] = _op(
            name,
            f"read {name}",
            "read",
            parameters=[_PATH_ID, _header("If-None-Match", 'W/"<versionId>": 304 if unchanged')],
            responses={
                **_ok(f"The current {name}", name, headers=_VERSION_HEADERS),
                "304": {"description": "Not modified"},
                **_errors(*_COMMON_ERRORS, 410),
            },
        )
    if "update" in can:
        paths[inst]["put"] = _op(
            name,
            f"update {name}",
            "update",
            parameters=[_PATH_ID, _PREFER, _IF_MATCH],
            requestBody=_body(name, examples.update_examples(name)),
            responses={
                **_ok("Updated", name, headers=_VERSION_HEADERS),
                **_ok("Created (directory and definition types only)", name, 201),
                **_errors(*_COMMON_ERRORS, 409, 412, 413, 415, 422),
            },
        )
    if patch and "patch" in can:
        paths[inst]["patch"] = _op(
            name,
            f"patch {name} (JSON Patch, RFC 6902)",
            "patch",
            parameters=[_PATH_ID, _PREFER, _IF_MATCH],
            requestBody={
                "required": True,
                "content": {
                    "application/json-patch+json": {
                        "schema": {"type": "array", "items": {"type": "object"}},
                        "examples": examples.PATCH_EXAMPLES,
                    }
                },
            },
            responses={
                **_ok("Patched", name, headers=_VERSION_HEADERS),
                **_errors(*_COMMON_ERRORS, 409, 412, 415, 422),
            },
        )
    if "delete" in can:
        paths[inst]["delete"] = _op(
            name,
            f"delete {name} (later reads answer 410)",
            "delete",
            parameters=[_PATH_ID, _IF_MATCH],
            responses={"204": {"description": "Deleted"}, **_errors(*_COMMON_ERRORS, 409, 412)},
        )
    history = _ok("A history Bundle", "Bundle")
    if "history-type" in can:
        paths[f"{base}/_history"] = {
            "get": _op(
                name, f"{name} history", "type_history", responses={**history, **_errors(*_COMMON_ERRORS)}
            )
        }
    if "history-instance" in can:
        paths[f"{inst}/_history"] = {
            "get": _op(
                name,
                f"history of one {name}",
                "instance_history",
                parameters=[_PATH_ID],
                responses={**history, **_errors(*_COMMON_ERRORS)},
            )
        }
    if "vread" in can:
        paths[f"{inst}/_history/{{vid}}"] = {
            "get": _op(
                name,
                f"vread {name}",
                "vread",
                parameters=[_PATH_ID, _PATH_VID],
                responses={
                    **_ok("That version", name, headers=_VERSION_HEADERS),
                    **_errors(*_COMMON_ERRORS, 410),
                },
            )
        }
    return {p: item for p, item in paths.items() if item}


# -- operations and the token endpoint ---------------------------------------------------------


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
