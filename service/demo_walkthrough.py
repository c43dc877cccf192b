"""The copy-paste walkthrough ``wraparound demo`` prints: one closed-loop referral with curl.

A demo clinic registers a Patient (NHS number 9000000009, a number from the NHS test range), records
the patient's Consent to share with the partner (R4 Consent: a permit provision whose actor, role
IRCP "information recipient", is the partner organisation), and refers to one of the partner's
opt-in services; the partner finds the Task the hub created, accepts and completes it (PUT with
If-Match); the clinic sees the loop closed. ``script`` is plain bash so tests can run it as printed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from service.demo import DemoClient, DemoService, DemoSetup

NHS_NUMBER = "9000000009"
# SNOMED CT 871731000000106 |Referral to social prescribing service (procedure)|, UK edition.
REFERRAL_CODE = ("http://snomed.info/sct", "871731000000106", "Referral to social prescribing service")


def _choose(setup: DemoSetup) -> tuple[DemoClient, DemoClient, DemoService]:
    clinic = setup.clients_of("clinic")[0]
    for partner in setup.clients_of("partner"):
        services = setup.services_of(partner.organization_id)
        # An opt-in service shows the consent gate at work: without the Consent the referral is refused.
        chosen = next((s for s in services if s.consent_model == "opt-in"), services[0] if services else None)
        if chosen is not None:
            return clinic, partner, chosen
    raise LookupError("the demo directory has no partner service")


def _token(var: str, client: DemoClient) -> str:
    scope = f' --scope "{client.scopes}"' if client.scopes != "system/*.cruds" else ""
    return (
        f'export {var}=$(python -m service.demo_client token --hub "$HUB" '
        f"--client-id {client.client_id} --key {client.key_path}{scope})"
    )


def _curl(token: str, method: str, url: str, data: str | None = None, extra: str = "") -> str:
    verb = "" if method == "GET" else f"-X {method} "
    parts = [f'curl -s {verb}"$HUB/fhir/{url}" -H "Authorization: Bearer ${token}"']
    if data is not None:
        parts.append(f'-H "Content-Type: application/fhir+json"{extra} --data @{data}')
    return " \\\n    ".join(parts)


def script(setup: DemoSetup, today: str | None = None) -> str:
    """The walkthrough's shell commands (bash), with the real ids of this hub filled in."""
    clinic, partner, service = _choose(setup)
    today = today or datetime.now(UTC).date().isoformat()
    pick = "python -m service.demo_client pick"
    waiting = f"Task?owner=Organization/{partner.organization_id}&status=requested"
    put_task = _curl("PARTNER_TOKEN", "PUT", "Task/$TASK_ID", "-", ' -H "If-Match: W/\\"$TASK_VERSION\\""')
    return f"""\
# 1. Tokens (they last a few minutes: re-run these two lines if the hub answers 401)
export HUB={setup.hub_url}
{_token("CLINIC_TOKEN", clinic)}
{_token("PARTNER_TOKEN", partner)}

# 2. As {clinic.organization_name}: register the patient (NHS number {NHS_NUMBER}, a test number)
cat > demo-patient.json <<EOF
{{"resourceType": "Patient",
 "identifier": [{{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "{NHS_NUMBER}"}}],
 "name": [{{"family": "Demo", "given": ["Alex"]}}], "birthDate": "1985-04-01"}}
EOF
export PATIENT_ID=$({_curl("CLINIC_TOKEN", "POST", "Patient", "demo-patient.json")} | {pick} id)
echo "Patient/$PATIENT_ID"

# 3. The patient's consent to share the referral with {partner.organization_name}
cat > demo-consent.json <<EOF
{{"resourceType": "Consent", "status": "active",
 "scope": {{"coding": [{{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy"}}]}},
 "category": [{{"coding": [{{"system": "http://loinc.org", "code": "59284-0"}}]}}],
 "patient": {{"reference": "Patient/$PATIENT_ID"}}, "dateTime": "{today}",
 "organization": [{{"reference": "Organization/{clinic.organization_id}"}}],
 "policyRule": {{"coding": [{{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                             "code": "OPTIN"}}]}},
 "provision": {{"type": "permit", "period": {{"start": "{today}"}},
   "actor": [{{"role": {{"coding": [{{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                  "code": "IRCP"}}]}},
              "reference": {{"reference": "Organization/{partner.organization_id}"}}}}]}}}}
EOF
export CONSENT_ID=$({_curl("CLINIC_TOKEN", "POST", "Consent", "demo-consent.json")} | {pick} id)
echo "Consent/$CONSENT_ID"

# 4. The referral to "{service.name}" ({service.consent_model});
#    the hub checks the consent and creates the partner's Task in the same transaction
cat > demo-referral.json <<EOF
{{"resourceType": "ServiceRequest", "status": "active", "intent": "order",
 "code": {{"coding": [{{"system": "{REFERRAL_CODE[0]}", "code": "{REFERRAL_CODE[1]}",
                     "display": "{REFERRAL_CODE[2]}"}}]}},
 "subject": {{"reference": "Patient/$PATIENT_ID"}}, "authoredOn": "{today}",
 "requester": {{"reference": "Organization/{clinic.organization_id}"}},
 "performer": [{{"reference": "HealthcareService/{service.id}"}}],
 "supportingInfo": [{{"reference": "Consent/$CONSENT_ID"}}]}}
EOF
export REFERRAL_ID=$({_curl("CLINIC_TOKEN", "POST", "ServiceRequest", "demo-referral.json")} | {pick} id)
echo "ServiceRequest/$REFERRAL_ID"

# 5. As {partner.organization_name}: the new referrals waiting for you
export TASK_ID=$({_curl("PARTNER_TOKEN", "GET", waiting)} \\
    | {pick} entry.0.resource.id)
echo "Task/$TASK_ID"

# 6. Accept it (If-Match: the version you read, so nobody's change is overwritten)
{_curl("PARTNER_TOKEN", "GET", "Task/$TASK_ID")} > demo-task.json
export TASK_VERSION=$({pick} meta.versionId < demo-task.json)
python -m service.demo_client set status=accepted < demo-task.json \\
    | {put_task} > demo-task-accepted.json
{pick} status < demo-task-accepted.json

# 7. ... and, once the work is done, complete it
export TASK_VERSION=$({pick} meta.versionId < demo-task-accepted.json)
python -m service.demo_client set status=completed < demo-task-accepted.json \\
    | {put_task} > demo-task-completed.json
{pick} status < demo-task-completed.json

# 8. As {clinic.organization_name}: the loop is closed
{_curl("CLINIC_TOKEN", "GET", "Task?focus=ServiceRequest/$REFERRAL_ID")} | {pick} entry.0.resource.status
{_curl("CLINIC_TOKEN", "GET", "ServiceRequest/$REFERRAL_ID")} | {pick} status
"""


def _table(setup: DemoSetup) -> str:
    lines = ["Demo organisations and their clients (private keys, keep them local):"]
    for c in sorted(setup.clients, key=lambda c: ("clinic", "partner", "admin").index(c.role)):
        lines.append(f"  {c.role:<8} {c.organization_name:<28} Organization/{c.organization_id}")
        lines.append(f"           client {c.client_id}, key {c.key_path}")
        for s in setup.services_of(c.organization_id):
            lines.append(f"           HealthcareService/{s.id}  {s.name} [{s.consent_model}]")
    return "\n".join(lines)


def walkthrough(setup: DemoSetup, today: str | None = None) -> str:
    """Everything ``wraparound demo`` prints before the server starts."""
    return f"""\
Wraparound demo hub (fictional demonstration data only)
  FHIR base  {setup.fhir_base}
  API docs   {setup.hub_url}/docs
  directory  {setup.directory.summary()}

{_table(setup)}

Walkthrough: in a second terminal, in this folder, with wraparound's Python environment active,
paste these blocks one at a time (bash or zsh; needs curl).

{script(setup, today)}"""
