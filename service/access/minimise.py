"""Minimisation per partner: only the part of a shared assessment that the partner's service needs.

CONTRACT.md "What counts as consent": each partner sees only the part of a shared
QuestionnaireResponse its service needs (by the service's category); the clinic always sees the whole.
UK GDPR Art. 5(1)(c) (adequate, relevant and limited to what is necessary) and Art. 9 (health, sex
life and drug use are special-category data); the HL7 SDOH Clinical Care IG's privacy guidance says
the same of shared assessments.

- *Which service*: the referrals that granted the organisation its access (``resource_access`` rows
  ``referral:<ServiceRequest id>``), each through its performer HealthcareService's category
  (``HealthcareService.category`` in the service-category CodeSystem). Several referrals: the union of
  their allowances. An Organization performer, or a service with no known category: the policy's
  ``default``. An organisation with a grant of its own (the authoring clinic) sees the whole.
- *What it sees*: ``fhir_profiles/data/minimisation-policy.json``, keyed by linkId (never by item
  order, so every Questionnaire version with the same linkIds is covered; a linkId the policy does
  not name is withheld).
- *The view*: a copy keeping the allowed items and the groups leading to them, without the narrative
  (``text`` renders every answer) or contained resources, marked ``meta.security`` REDACTED
  (v3-ObservationValue, http://hl7.org/fhir/R4/security-labels.html): information was removed by the
  server's policy. SUBSETTED (``meta.tag``) stays what ``_summary``/``_elements`` mean, a subset the
  client asked for (http://hl7.org/fhir/R4/search.html#summary). ``meta.versionId`` and
  ``lastUpdated`` stay the stored version's, so ETags and conditional reads are unchanged.

Reads, searches, includes, history, bundle entries, ``$suggest-referrals`` and delivery payloads all
come through :func:`caller_views` / :func:`organization_views`, so no route can differ from another.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection

from fhir_profiles import load_minimisation_policy
from service.access.caller import Caller
from service.storage import access
from service.storage.resources import Stored

MINIMISED_TYPE = "QuestionnaireResponse"
_DROPPED = ("text", "contained")  # the narrative and contained resources may repeat any answer


@dataclass(frozen=True)
class Allowance:
    """The linkIds one view shows: ``items`` with everything nested under them; ``answer_only`` with
    their own answers but none of their nested items (unless those are allowed themselves)."""

    items: frozenset[str] = frozenset()
    answer_only: frozenset[str] = frozenset()

    def __or__(self, other: Allowance) -> Allowance:
        return Allowance(self.items | other.items, self.answer_only | other.answer_only)


@dataclass(frozen=True)
class Policy:
    category_system: str
    by_category: dict[str, Allowance]
    default: Allowance
    label: dict[str, str]

    def allowance(self, categories: Iterable[str | None]) -> Allowance:
        """The union over the services; a missing or unknown category counts as the default."""
        result = Allowance()
        for code in categories:
            result |= self.by_category.get(code, self.default) if code else self.default
        return result


def _allowance(rule: dict[str, Any]) -> Allowance:
    return Allowance(frozenset(rule.get("item", ())), frozenset(rule.get("answerOnly", ())))


@cache
def policy() -> Policy:
    """The shipped policy, parsed once per process (it is package data, not a stored resource)."""
    raw = load_minimisation_policy()
    label = {k: v for k, v in raw["securityLabel"].items() if k in ("system", "code", "display")}
    return Policy(
        category_system=raw["categorySystem"],
        by_category={r["category"]: _allowance(r) for r in raw["rule"]},
        default=_allowance(raw["default"]),
        label=label,
    )


# -- the view ----------------------------------------------------------------------------------------


def _prune(items: list[Any], allowed: Allowance) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        link_id = item.get("linkId")
        if link_id in allowed.items:
            kept.append(copy.deepcopy(item))
            continue
        own = link_id in allowed.answer_only
        children = _prune(item.get("item") or [], allowed)
        answers = []
        for answer in item.get("answer") or []:
            if not isinstance(answer, dict):
                continue
            nested = _prune(answer.get("item") or [], allowed)
            # Not allowed itself but leading to allowed items: the structure stays, its value goes.
            shown = {k: copy.deepcopy(v) for k, v in answer.items() if k != "item"} if own else {}
            if nested:
                shown["item"] = nested
            if shown:
                answers.append(shown)
        if not (own or children or answers):
            continue  # neither allowed nor leading to anything allowed: dropped (empty groups too)
        view = {k: copy.deepcopy(v) for k, v in item.items() if k not in ("item", "answer")}
        if children:
            view["item"] = children
        if answers:
            view["answer"] = answers
        kept.append(view)
    return kept


def redact(resource: dict[str, Any], allowed: Allowance, label: dict[str, str]) -> dict[str, Any]:
    """The response with only the allowed items, labelled; the resource itself when nothing is removed."""
    items = resource.get("item") or []
    kept = _prune(items, allowed)
    if kept == items and not any(k in resource for k in _DROPPED):
        return resource
    view = {k: v for k, v in resource.items() if k not in ("item", "meta", *_DROPPED)}
    if kept:
        view["item"] = kept
    meta = copy.deepcopy(resource.get("meta") or {})
    labels = [
        s
        for s in meta.get("security") or []
        if not (s.get("system") == label["system"] and s.get("code") == label["code"])
    ]
    meta["security"] = [*labels, dict(label)]
    view["meta"] = meta
    return view


# -- whose view ----------------------------------------------------------------------------------------


def allowances(conn: Connection, organization_id: str, rids: Sequence[int]) -> dict[int, Allowance | None]:
    """Per resource, what the organisation's grants allow (None: the whole, a grant of its own).

    A resource with no current grant gets an empty allowance: fail closed.
    """
    found = policy()
    rows = access.grant_services(conn, sorted(set(rids)), organization_id, found.category_system)
    own: set[int] = set()
    categories: dict[int, list[str | None]] = defaultdict(list)
    for rid, reason, code in rows:
        if reason.startswith(access.REFERRAL_PREFIX):
            categories[rid].append(code)
        else:
            own.add(rid)
    return {rid: None if rid in own else found.allowance(categories.get(rid, ())) for rid in set(rids)}


def organization_views(
    conn: Connection, organization_id: str, resources: Sequence[Stored]
) -> list[dict[str, Any] | None]:
    """Each resource's content as this organisation may receive it (by its grants, whatever its role)."""
    wanted = [s.rid for s in resources if s.resource_type == MINIMISED_TYPE and s.content is not None]
    if not wanted:
        return [s.content for s in resources]
    allowed = allowances(conn, organization_id, wanted)
    label = policy().label
    views: list[dict[str, Any] | None] = []
    for stored in resources:
        rule = allowed.get(stored.rid)
        if stored.resource_type != MINIMISED_TYPE or stored.content is None or rule is None:
            views.append(stored.content)
        else:
            views.append(redact(stored.content, rule, label))
    return views


def organization_view(conn: Connection, organization_id: str, stored: Stored) -> dict[str, Any] | None:
    return organization_views(conn, organization_id, [stored])[0]


def caller_views(
    conn: Connection, caller: Caller, resources: Sequence[Stored]
) -> list[dict[str, Any] | None]:
    """What the caller receives of each resource, by its organisation's grants whatever its role.

    A clinic sees the responses it wrote whole (its grant is its own). Deciding by grant rather
    than by role means a client or person registered with the wrong role for a partner's
    Organization still gets only that partner's view; admins never see clinical data at all."""
    return organization_views(conn, caller.organization_id, resources)


def caller_view(conn: Connection, caller: Caller, stored: Stored) -> dict[str, Any] | None:
    return caller_views(conn, caller, [stored])[0]
