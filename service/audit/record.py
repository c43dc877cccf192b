"""AuditEvents shaped after IHE Basic Audit Log Patterns (BALP).

https://profiles.ihe.net/ITI/BALP/ — RESTful activity events: type ``rest``, subtype the
FHIR interaction, the client as the requesting agent (with the token's ``jti``, never
the token), the resources touched as entities, and for searches the query and the
Patients returned. Events are append-only: no client may update or delete them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from service.access.caller import Caller
from service.fhir.instant import fhir_instant
from service.rest.context import Context
from service.search._values import date_rows, reference_rows, token_rows
from service.search.extract import extract_index_rows
from service.search.types import IndexRow, ReferenceRow
from service.storage import audit_index
from service.storage.resources import ResourceStore, Stored

ACTION = {
    "create": "C",
    "read": "R",
    "vread": "R",
    "history": "R",
    "search": "E",
    "update": "U",
    "delete": "D",
    "operation": "E",
    "transaction": "E",
    "batch": "E",
    "token": "E",
    "disclosure": "R",
}
_REST = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
_INTERACTION = "http://hl7.org/fhir/restful-interaction"
_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_USER_ID = "https://wraparound.org.uk/fhir/Id/user"


def _outcome_code(status: int) -> str:
    # AuditEvent.outcome: 0 success, 4 minor failure (client error), 8 serious failure.
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def build_event(
    *,
    caller: Caller,
    action: str,
    now: datetime,
    status: int,
    entities: Iterable[Stored] = (),
    query: str | None = None,
    patients: Sequence[str] = (),
    description: str | None = None,
    subtype: dict[str, str] | None = None,
) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": _DCM, "code": "110153", "display": "Source Role ID"}]},
        "who": {
            "identifier": {"system": "https://wraparound.org.uk/fhir/Id/client", "value": caller.client_id},
            "display": caller.client_id,
        },
        "altId": caller.client_id,
        "requestor": True,
        "role": [{"text": caller.role}],
    }
    if caller.person:
        # A person in the web app (service/web/): the agent is that user, at its organisation.
        agent["who"]["identifier"] = {"system": _USER_ID, "value": caller.person}
        agent["who"]["display"] = caller.person
    if caller.organization_id:
        agent["who"]["reference"] = (
            caller.organization_ref if caller.organization_id != "wraparound" else None
        )
        if agent["who"]["reference"] is None:
            del agent["who"]["reference"]
    if caller.jti:
        agent["policy"] = [f"urn:jti:{caller.jti}"]
    if caller.source:
        agent["network"] = {"address": caller.source, "type": "2"}
    entity: list[dict[str, Any]] = []
    for stored in entities:
        entity.append(
            {
                "what": {"reference": f"{stored.resource_type}/{stored.id}/_history/{stored.version_id}"},
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
            }
        )
    for patient in patients:
        entity.append(
            {
                "what": {"reference": patient},
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1"},
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "1",
                    "display": "Patient",
                },
            }
        )
    if query is not None:
        entity.append(
            {
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "24",
                    "display": "Query",
                },
                "query": base64.b64encode(query.encode()).decode(),
            }
        )
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": _REST,
        "subtype": [subtype or {"system": _INTERACTION, "code": action}],
        "action": ACTION.get(action, "E"),
        "recorded": fhir_instant(now),
        "outcome": _outcome_code(status),
        "agent": [agent],
        "source": {
            "site": "wraparound",
            "observer": {"display": "Wraparound FHIR hub"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4"}],
        },
    }
    if description:
        event["outcomeDesc"] = description
    if entity:
        event["entity"] = entity
    return event


# The elements build_event writes. An event with others (meta, say) is indexed the generic way.
_BUILT = frozenset(
    {
        "resourceType",
        "type",
        "subtype",
        "action",
        "recorded",
        "outcome",
        "outcomeDesc",
        "agent",
        "source",
        "entity",
    }
)


def index_rows(event: dict[str, Any]) -> list[IndexRow]:
    """The search index rows of an event (the AuditEvent search parameters).

    Every access writes an event, so this runs once per request. For the events build_event
    makes it walks their known shape with the indexer's own row builders, in the order of the
    search parameters: the same rows as ``extract_index_rows`` (tests/audit/test_audit_index_rows.py
    compares them), in half the time of evaluating the FHIRPath expressions (19 against 38 µs).
    """
    if not _is_built(event):
        return extract_index_rows(event)
    rows: dict[IndexRow, None] = {}
    agents = [a for a in _listed(event.get("agent")) if isinstance(a, dict)]
    entities = [e for e in _listed(event.get("entity")) if isinstance(e, dict)]
    entity_rows = [row for entity in entities for row in reference_rows("entity", entity.get("what"))]
    rows.update(dict.fromkeys(entity_rows))  # entity: AuditEvent.entity.what
    for agent in agents:  # altid: AuditEvent.agent.altId
        if "altId" in agent:
            rows.update(dict.fromkeys(_token("altid", agent["altId"])))
    for agent in agents:  # agent: AuditEvent.agent.who
        who = agent.get("who")
        rows.update(
            dict.fromkeys(_reference("agent", who.get("reference") if isinstance(who, dict) else None))
        )
    rows.update(dict.fromkeys(date_rows("date", event.get("recorded"))))
    for name in ("type", "action", "outcome"):
        if name in event:
            rows.update(dict.fromkeys(_token(name, event[name])))
    for coding in _listed(event.get("subtype")):
        rows.update(dict.fromkeys(_token("subtype", coding)))
    source = event.get("source")
    if isinstance(source, dict):
        rows.update(dict.fromkeys(reference_rows("source", source.get("observer"))))
    # patient: AuditEvent.agent.who.where(resolve() is Patient) | AuditEvent.entity.what.where(...);
    # an entity's are its entity rows under this name, not worked out again.
    for agent in agents:
        who = agent.get("who")
        for row in reference_rows("patient", who):
            if row.target_type == "Patient":
                rows[row] = None
    rows.update(dict.fromkeys(_patient_rows(entity_rows)))
    return list(rows)


def _is_built(event: dict[str, Any]) -> bool:
    """Whether ``event`` has build_event's shape (else it is indexed the generic way)."""
    return event.get("resourceType") == "AuditEvent" and event.keys() <= _BUILT


def _patient_rows(entity_rows: Iterable[ReferenceRow]) -> Iterator[ReferenceRow]:
    """An event's ``patient`` rows from its entities: their entity rows that name a Patient, under
    that name (not worked out again)."""
    for row in entity_rows:
        if row.target_type == "Patient":
            yield ReferenceRow("patient", row.target_type, row.target_id, row.url, row.version)


def audit_rows(event: dict[str, Any]) -> audit_index.SplitRows:
    """``audit_index.split_rows(index_rows(event))``, as the audit writer stores every event.

    That took 43 µs an event in a micro-benchmark, most of it building, hashing and sorting rows that
    are the same from one event to the next. Here, for the events build_event makes, the parts that
    repeat (the agents, the type, subtype, action, outcome and source: ``_fixed_key``) are split once
    per distinct value and kept in ``_FIXED``; each event adds its date and entities to them. The
    result, in order, is the general path's (tests/audit/test_audit_index_rows.py compares them for
    every shape written).
    """
    key = _fixed_key(event)
    if key is None:
        return audit_index.split_rows(index_rows(event))
    fixed = _FIXED.get(key)
    if fixed is None:
        if len(_FIXED) >= _FIXED_MAX:
            _FIXED.clear()
        without = {k: v for k, v in event.items() if k not in PER_EVENT_ELEMENTS}
        fixed = _FIXED[key] = audit_index.split_rows(index_rows(without))
    columns = list(fixed.columns)
    for date in date_rows("date", event.get("recorded")):
        columns[audit_index.DATE_SLOT : audit_index.DATE_SLOT + 2] = (date.low, date.high)
    entity_rows: dict[ReferenceRow, None] = {}
    for entity in _listed(event.get("entity")):
        if isinstance(entity, dict):
            entity_rows.update(dict.fromkeys(reference_rows("entity", entity.get("what"))))
    # In index_rows' order: entity rows, the fixed part's rows, then the entities' patient rows.
    keys: dict[tuple[str, str, str], None] = {}
    rest: dict[IndexRow, None] = {}
    for row in entity_rows:
        _place(row, keys, rest)
    keys.update(dict.fromkeys(fixed.entities))
    rest.update(dict.fromkeys(fixed.rest))
    for row in _patient_rows(entity_rows):
        _place(row, keys, rest)
    return audit_index.SplitRows(tuple(columns), tuple(keys), tuple(rest))


def _place(row: IndexRow, keys: dict[tuple[str, str, str], None], rest: dict[IndexRow, None]) -> None:
    key = audit_index.entity_key(row)
    if key is not None:
        keys[key] = None
    else:
        rest[row] = None


_FIXED: dict[tuple[Any, ...], audit_index.SplitRows] = {}
_FIXED_MAX = 4096
# The elements whose rows _fixed_key stands for (outcomeDesc has none), and those audit_rows adds per
# event. Together they must be _BUILT: an element added there needs a place here first
# (tests/audit/test_audit_index_rows.py).
FIXED_ELEMENTS = frozenset(
    {"resourceType", "type", "subtype", "action", "outcome", "outcomeDesc", "agent", "source"}
)
PER_EVENT_ELEMENTS = frozenset({"entity", "recorded"})


def _fixed_key(event: dict[str, Any]) -> tuple[Any, ...] | None:
    """Everything the rows of an event's repeating parts depend on, or None when its shape is not
    build_event's (then it is indexed the general way)."""
    if not _is_built(event):
        return None
    parts: list[Any] = []
    for agent in _listed(event.get("agent")):
        who = agent.get("who") if isinstance(agent, dict) else None
        if not isinstance(who, dict):
            return None
        parts += (agent.get("altId", _ABSENT), who.get("reference"))
    parts.append(len(parts))  # where the agents end
    kind = event.get("type", _ABSENT)
    parts += (
        _REST_KEY if kind is _REST else _coding_key(kind),
        event.get("action", _ABSENT),
        event.get("outcome", _ABSENT),
    )
    parts += map(_coding_key, _listed(event.get("subtype")))
    parts.append(len(parts))  # where the subtypes end
    source = event.get("source")
    observer = source.get("observer") if isinstance(source, dict) else None
    parts.append(observer.get("reference") if isinstance(observer, dict) else observer)
    for part in parts:
        if type(part) not in _KEYABLE:
            return None
    return tuple(parts)


def _coding_key(value: Any) -> Any:
    """A coding of strings as its (system, code, display); anything else as itself."""
    if isinstance(value, dict) and value.keys() <= _CODING:
        key = (value.get("system"), value.get("code"), value.get("display"))
        if all(v is None or type(v) is str for v in key):
            return key
    return value


class _Absent:
    """An element the event does not have (not the same rows as one that is null)."""


_ABSENT = _Absent()
_REST_KEY = ("rest",)  # build_event's own type coding, recognised by identity
_KEYABLE = frozenset({str, int, tuple, type(None), _Absent})


# The parts that repeat from event to event (the event type, action, outcome, subtype, and the
# client and organisation of each caller) are worked out once: rows are immutable.
def _token(param: str, value: Any) -> tuple[IndexRow, ...]:
    if isinstance(value, dict):
        key = (
            (value.get("system"), value.get("code"), value.get("display"))
            if value.keys() <= _CODING
            else None
        )
        if key is None:
            return tuple(token_rows(param, value, None))
        return _coding_rows(param, *key)
    return _scalar_rows(param, value) if isinstance(value, str) else tuple(token_rows(param, value, None))


_CODING = frozenset({"system", "code", "display"})


@lru_cache(maxsize=512)
def _coding_rows(param: str, system: Any, code: Any, display: Any) -> tuple[IndexRow, ...]:
    coding = {k: v for k, v in (("system", system), ("code", code), ("display", display)) if v is not None}
    return tuple(token_rows(param, coding, None))


@lru_cache(maxsize=4096)
def _scalar_rows(param: str, value: str) -> tuple[IndexRow, ...]:
    return tuple(token_rows(param, value, None))


@lru_cache(maxsize=4096)
def _reference(param: str, reference: str | None) -> tuple[IndexRow, ...]:
    return tuple(reference_rows(param, {"reference": reference} if reference is not None else None))


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def write_event(conn: Connection, event: dict[str, Any], now: datetime) -> Stored:
    return ResourceStore(conn).create("AuditEvent", event, audit_rows(event), now=now)


def write_events(conn: Connection, events: Sequence[dict[str, Any]], now: datetime) -> list[Stored]:
    """Several events in one set of multi-row inserts (the delivery worker's group commit)."""
    return ResourceStore(conn).create_many(
        "AuditEvent", [(event, audit_rows(event)) for event in events], now=now
    )


def created(
    ctx: Context, resource_type: str, resource_id: str
) -> tuple[dict[str, Any], audit_index.SplitRows]:
    """A write's create event for version 1 of ``resource_type/resource_id`` and its index rows, for
    ``ResourceStore.create(audit=...)`` to insert with the resource itself (what ``access`` would
    write for it once created)."""
    entity = Stored(0, resource_type, resource_id, 1, ctx.now, False, None)
    event = build_event(caller=ctx.caller, action="create", now=ctx.now, status=200, entities=[entity])
    return event, audit_rows(event)


def access(
    ctx: Context,
    action: str,
    entities: Sequence[Stored],
    *,
    query: str | None = None,
    patients: Sequence[str] = (),
    status: int = 200,
) -> None:
    """Record a successful interaction.

    A write records it in its own transaction, so the change and its audit commit together.
    A read-only interaction holds no write transaction: its event waits on the context until
    the read transaction ends, then goes to the audit writer, and the response waits for that
    commit (``service.audit.writer``, ADR 0012).
    """
    event = build_event(
        caller=ctx.caller,
        action=action,
        now=ctx.now,
        status=status,
        entities=entities,
        query=query,
        patients=patients,
    )
    if ctx.read_only:
        ctx.audit.append(event)
    else:
        write_event(ctx.conn, event, ctx.now)
