"""The secure-email adapter against a real aiosmtpd server on loopback (tests/support/smtp.py)."""

from __future__ import annotations

import asyncio
import socket
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.base import (
    Adapter,
    Delivery,
    EventKind,
    MisconfiguredError,
    PermanentError,
    Receipt,
    RetryableError,
    SmtpSettings,
    Transport,
)
from adapters.secure_email import SecureEmailAdapter, SecureEmailConfig
from bench.servers import free_port
from tests.support.smtp import SmtpServer, TlsFiles, self_signed_certificate, smtp_server

ADAPTER = SecureEmailAdapter()
HUB = "https://hub.wraparound.test"
TASK_URL = f"{HUB}/fhir/Task/task-7f3a"
COLLECT_URL = f"{HUB}/app/referrals/task-7f3a"
TO = "intake@partner.example.org"
FROM = "wraparound@hub.wraparound.test"

# A realistic referral for the partner. The adapter must not let any of it into an email.
BUNDLE: dict[str, Any] = {
    "resourceType": "Bundle",
    "type": "transaction",
    "entry": [
        {
            "resource": {
                "resourceType": "Patient",
                "id": "pat-1",
                "identifier": [
                    {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"},
                    {"system": "https://clinic.example.org/Id/clinic-number", "value": "GUM-448812"},
                ],
                "name": [{"given": ["Amara"], "family": "Okafor"}],
                "birthDate": "1987-03-14",
                "telecom": [{"system": "phone", "value": "07700 900123"}],
                "address": [{"line": ["17 Marigold Terrace"], "city": "Bradford", "postalCode": "BD7 1QX"}],
            }
        },
        {
            "resource": {
                "resourceType": "ServiceRequest",
                "status": "active",
                "intent": "order",
                "category": [{"text": "Housing support"}],
                "reasonCode": [{"text": "housing need"}],
                "note": [{"text": "Recent HIV diagnosis; mental health assessment requested"}],
                "subject": {"reference": "Patient/pat-1"},
            }
        },
        {
            "resource": {
                "resourceType": "QuestionnaireResponse",
                "status": "completed",
                "item": [
                    {
                        "linkId": "phq4-1",
                        "text": "PHQ-4: Feeling nervous, anxious or on edge",
                        "answer": [{"valueInteger": 2}],
                    },
                    {
                        "linkId": "phq4-2",
                        "text": "Not being able to stop or control worrying",
                        "answer": [{"valueInteger": 3}],
                    },
                    {"linkId": "consent", "text": "Consent to share", "answer": [{"valueBoolean": True}]},
                ],
            }
        },
    ],
}
FORBIDDEN = (
    "Amara", "Okafor", "9434765919", "943 476 5919", "GUM-448812", "1987", "14/03", "03-14", "07700",
    "900123", "Marigold", "Bradford", "BD7", "housing", "HIV", "mental health", "PHQ", "anxious",
    "worrying", "assessment", "diagnosis", "consent", "patient", "pat-1", "ServiceRequest",
)  # fmt: skip


def delivery(**overrides: Any) -> Delivery:
    values: dict[str, Any] = {
        "message_id": "msg_2f1c9d0e",
        "event": "referral.created",
        "attempt": 1,
        "address": f"mailto:{TO}",
        "recipient": "Organization/partner-1",
        "task": "Task/task-7f3a",
        "task_url": TASK_URL,
        "collect_url": COLLECT_URL,
        "hub_base": f"{HUB}/fhir",
        "occurred_at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    return Delivery(**{**values, **overrides})


def transport(
    server: SmtpServer | None, allow_private: bool = False, deadline: float = 5.0, **smtp: Any
) -> Transport:
    relay: dict[str, Any] = {"sender": FROM}
    if server is not None:
        relay |= {"host": server.host, "port": server.port}
    return Transport(
        allow_private=allow_private,
        deadline_seconds=deadline,
        max_response_bytes=65536,
        smtp=SmtpSettings(**(relay | smtp)),
    )


def send(d: Delivery, t: Transport, config: Any = None) -> Receipt:
    return asyncio.run(ADAPTER.deliver(d, SecureEmailConfig() if config is None else config, t))


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with smtp_server() as running:
        yield running


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return self_signed_certificate(tmp_path_factory.mktemp("smtp-tls"))


def everything_readable(raw: bytes, message: EmailMessage) -> str:
    """The raw bytes plus every header and body part decoded (RFC 2047, quoted-printable, base64)."""
    texts = [raw.decode("ascii", errors="replace")]
    for part in message.walk():
        texts += [f"{name}: {value}" for name, value in part.items()]
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            texts.append(payload.decode("utf-8", errors="replace"))
    return "\n".join(texts)


def test_the_adapter_satisfies_the_contract_and_never_wants_the_bundle() -> None:
    assert isinstance(ADAPTER, Adapter)
    assert str(ADAPTER.connection_type) == (
        "http://terminology.hl7.org/CodeSystem/endpoint-connection-type#secure-email"
    )
    assert ADAPTER.wants_bundle(SecureEmailConfig()) is False
    assert ADAPTER.wants_bundle(SecureEmailConfig(subject_prefix="[WRAP]")) is False


def test_pyproject_registers_this_adapter_under_its_slug() -> None:
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    group = "wraparound.adapters"
    target = pyproject["project"]["entry-points"][group][ADAPTER.slug]
    assert isinstance(EntryPoint(ADAPTER.slug, target, group).load()(), SecureEmailAdapter)


def test_a_notification_arrives_with_a_stable_message_id(server: SmtpServer) -> None:
    first = send(delivery(attempt=1), transport(server))
    second = send(delivery(attempt=2), transport(server))
    other = send(delivery(message_id="msg_other"), transport(server))

    one, two, three = server.messages
    assert (one.mail_from, one.rcpt_tos) == (FROM, (TO,))
    assert one.message["To"] == TO
    assert one.message["From"] == FROM
    assert one.message["Subject"] == "Wraparound: a referral is waiting"
    assert one.message["Date"] is not None
    assert one.message["Auto-Submitted"] == "auto-generated"
    assert one.message["Message-ID"] == "<msg_2f1c9d0e@hub.wraparound.test>"
    assert two.message["Message-ID"] == one.message["Message-ID"]
    assert three.message["Message-ID"] != one.message["Message-ID"]
    assert first == second == Receipt(status_code=250, detail="<msg_2f1c9d0e@hub.wraparound.test>")
    assert other.detail == three.message["Message-ID"]
    body = one.message.get_body(("plain",))
    assert body is not None
    assert COLLECT_URL in body.get_content()
    assert TASK_URL in body.get_content()
    assert one.tls is False  # this server offers no STARTTLS; "auto" sends in clear


def test_an_unusual_message_id_is_hashed_but_still_stable(server: SmtpServer) -> None:
    send(delivery(message_id="odd id/with spaces"), transport(server))
    send(delivery(message_id="odd id/with spaces", attempt=3), transport(server))
    first, second = (m.message["Message-ID"] for m in server.messages)
    assert first == second
    assert " " not in first
    assert first.endswith("@hub.wraparound.test>")


@pytest.mark.parametrize(
    "event", ["referral.created", "task.updated", "consent.withdrawn", "consent.expired"]
)
def test_no_personal_or_clinical_detail_reaches_the_mailbox(server: SmtpServer, event: EventKind) -> None:
    send(delivery(event=event, bundle=BUNDLE), transport(server), SecureEmailConfig(subject_prefix="[WRAP]"))

    (received,) = server.messages
    readable = everything_readable(received.raw, received.message).lower()
    leaked = [word for word in FORBIDDEN if word.lower() in readable]
    assert leaked == []
    assert COLLECT_URL.lower() in readable
    assert TASK_URL.lower() in readable
    assert str(received.message["Subject"]).startswith("[WRAP] Wraparound: a referral")


@pytest.mark.parametrize(
    "address",
    [
        f"mailto:{TO}%0d%0aBcc:evil@example.org",
        f"mailto:{TO}%0D%0ABcc:%20evil@example.org",
        f"mailto:{TO}\r\nBcc: evil@example.org",
        f"mailto:{TO}\nBcc: evil@example.org",
        f"mailto:{TO}?cc=evil@example.org",
        f"mailto:{TO}?body=hello",
        f"mailto:?to={TO}",
        f"mailto:{TO},evil@example.org",
        f"mailto:{TO}%2Cevil@example.org",
        f"mailto:Intake <{TO}>",
        "mailto:intake@@partner.example.org",
        "mailto:intake@partner..example.org",
        "mailto:",
        f"https://{TO}",
        TO,
    ],
)
def test_a_dangerous_or_ambiguous_address_sends_nothing(server: SmtpServer, address: str) -> None:
    with pytest.raises(MisconfiguredError) as raised:
        send(delivery(address=address), transport(server))
    assert "evil" not in raised.value.message
    assert server.mail_commands == 0
    assert server.messages == []


def test_a_subject_prefix_with_a_line_break_is_refused(server: SmtpServer) -> None:
    with pytest.raises(ValidationError):
        SecureEmailConfig(subject_prefix="[WRAP]\r\nBcc: evil@example.org")
    with pytest.raises(ValidationError):
        SecureEmailConfig(subject_prefix="x" * 41)
    with pytest.raises(ValidationError):
        SecureEmailConfig.model_validate({"unknown": 1})
    with pytest.raises(MisconfiguredError, match="subject_prefix"):
        send(delivery(), transport(server), {"subject_prefix": "[WRAP]\nBcc: evil@example.org"})
    assert server.mail_commands == 0


def test_auto_starttls_upgrades_and_verifies_the_relay(tls: TlsFiles) -> None:
    with smtp_server(tls=tls) as server:
        send(delivery(), transport(server, ca_file=str(tls.cert)))
        (received,) = server.messages
    assert received.tls is True


def test_an_unverifiable_certificate_sends_nothing(tls: TlsFiles) -> None:
    with smtp_server(tls=tls) as server:
        with pytest.raises(MisconfiguredError, match="TLS"):
            send(delivery(), transport(server))  # system CAs do not know the throwaway certificate
        assert server.mail_commands == 0
        send(delivery(), transport(server, verify_tls=False))  # a development relay, explicitly
        assert [m.tls for m in server.messages] == [True]


def test_require_starttls_refuses_a_relay_that_does_not_offer_it(server: SmtpServer) -> None:
    with pytest.raises(MisconfiguredError, match="STARTTLS"):
        send(delivery(), transport(server, starttls="require"))
    assert server.mail_commands == 0


def test_starttls_off_stays_in_clear(tls: TlsFiles) -> None:
    with smtp_server(tls=tls) as server:
        send(delivery(), transport(server, starttls="off"))
        assert [m.tls for m in server.messages] == [False]


def test_implicit_tls(tls: TlsFiles) -> None:
    with smtp_server(tls=tls, implicit_tls=True) as server:
        send(delivery(), transport(server, use_tls=True, ca_file=str(tls.cert)))
        assert [m.tls for m in server.messages] == [True]


def test_auth_over_starttls(tls: TlsFiles) -> None:
    with smtp_server(tls=tls, users={"hub": "s3cret-pass"}) as server:
        good = transport(server, ca_file=str(tls.cert), username="hub", password="s3cret-pass")
        send(delivery(), good)
        assert [(m.tls, m.login) for m in server.messages] == [(True, "hub")]

        bad = transport(server, ca_file=str(tls.cert), username="hub", password="wrong")
        with pytest.raises(MisconfiguredError) as raised:
            send(delivery(), bad)
        assert raised.value.status_code == 535
        assert "wrong" not in raised.value.message
        assert len(server.messages) == 1


def test_credentials_are_never_sent_in_clear_to_a_public_relay() -> None:
    with smtp_server(users={"hub": "s3cret-pass"}, auth_require_tls=False) as server:
        creds: dict[str, Any] = {"username": "hub", "password": "s3cret-pass"}
        with pytest.raises(MisconfiguredError, match="without TLS"):
            send(delivery(), transport(server, **creds))
        assert server.auth_attempts == []
        assert server.mail_commands == 0
        # A development relay on loopback, with private endpoints explicitly allowed.
        send(delivery(), transport(server, allow_private=True, **creds))
        assert [(m.tls, m.login) for m in server.messages] == [(False, "hub")]


@pytest.mark.parametrize(
    ("stage", "reply", "error", "code"),
    [
        ("RCPT", "550 5.1.1 <intake@partner.example.org>: no such user", PermanentError, 550),
        ("RCPT", "451 4.3.0 mailbox busy, come back soon", RetryableError, 451),
        ("DATA", "451 4.3.0 mailbox busy, come back soon", RetryableError, 451),
        ("DATA", "554 5.7.1 rejected as spam", PermanentError, 554),
        ("MAIL", "553 5.7.1 sender not allowed", MisconfiguredError, 553),
    ],
)
def test_smtp_replies_map_to_typed_errors(
    server: SmtpServer, stage: Any, reply: str, error: type[Exception], code: int
) -> None:
    server.reply(stage, reply)
    with pytest.raises(error) as raised:
        send(delivery(), transport(server))
    assert getattr(raised.value, "status_code", None) == code
    message = getattr(raised.value, "message", "")
    assert str(code) in message
    assert TO not in message
    assert reply.split(" ", 2)[2] not in message  # the server's text stays out of stored errors
    assert server.messages == []
    server.reply(stage, None)
    send(delivery(), transport(server))
    assert len(server.messages) == 1


def test_a_closed_port_is_retryable() -> None:
    with pytest.raises(RetryableError):
        send(delivery(), transport(None, host="127.0.0.1", port=free_port()))


def test_a_silent_relay_hits_the_deadline() -> None:
    # Accepts TCP (the kernel's backlog) but never sends a greeting.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with pytest.raises(RetryableError):
            send(delivery(), transport(None, host="127.0.0.1", port=port, deadline=0.3))


def test_no_relay_configured_is_misconfigured() -> None:
    with pytest.raises(MisconfiguredError, match="WRAPAROUND_SMTP_HOST is not set"):
        send(delivery(), transport(None))


@pytest.mark.parametrize("sender", ["not-an-address", "a@b.org, c@d.org", "hub@example.org\r\nBcc: x@y.org"])
def test_a_bad_sender_setting_is_misconfigured(server: SmtpServer, sender: str) -> None:
    with pytest.raises(MisconfiguredError, match="WRAPAROUND_SMTP_FROM"):
        send(delivery(), transport(server, sender=sender))
    assert server.mail_commands == 0


def test_a_named_sender_is_kept_in_the_header(server: SmtpServer) -> None:
    send(delivery(), transport(server, sender=f"Wraparound <{FROM}>"))
    (received,) = server.messages
    assert received.mail_from == FROM
    assert received.message["From"] == f"Wraparound <{FROM}>"
