"""Secure email: a notification that something is waiting, never the referral itself.

An Endpoint with connectionType ``#secure-email``
(http://hl7.org/fhir/R4/valueset-endpoint-connection-type.html) names a ``mailto:`` address
(RFC 6068). Email crosses relays we do not control, so the message says only that a referral (or an
update, or a withdrawal) is waiting for the organisation and where to collect it: the hub's web app
and the Task's URL. It is built from ids and URLs alone; ``wants_bundle`` is always False and
``delivery.bundle`` is never read, so no name, identifier or clinical word can reach a mailbox.

Sending goes through the hub's relay (``transport.smtp``, from ``WRAPAROUND_SMTP_*``) with
aiosmtplib. Credentials are sent only over TLS (implicit or STARTTLS); in clear only when
``WRAPAROUND_ALLOW_PRIVATE_ENDPOINTS`` is on (a development relay), and they are never logged.
The relay host is the operator's own setting, so the private-address rule for Endpoint addresses
does not apply to it (the mailto domain is never connected to directly).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import re
import ssl
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.base import (
    HL7_CONNECTION_TYPE,
    ConnectionType,
    Delivery,
    DeliveryError,
    EventKind,
    MisconfiguredError,
    PermanentError,
    Receipt,
    RetryableError,
    SmtpSettings,
    Transport,
)

log = logging.getLogger("wraparound.adapters.secure_email")

# RFC 5322 dot-atom local part and RFC 1035 LDH domain, ASCII only: stricter than the RFCs (no
# quoted local parts, no address literals, no SMTPUTF8) because a notification needs none of that.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_NAMED_SENDER = re.compile(r"\s*(?P<name>[^<>\"\r\n]*?)\s*<(?P<addr>[^<>]*)>\s*")
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_URL_CHARS = re.compile(r"[\x21-\x7e]+")

# What each event tells the recipient; nothing here may name a person, a need or a clinic.
_NOTICES: dict[EventKind, tuple[str, str]] = {
    "referral.created": ("a referral is waiting", "A new referral is waiting for your organisation."),
    "task.updated": ("a referral has been updated", "A referral for your organisation has been updated."),
    "consent.withdrawn": (
        "a referral has been withdrawn",
        "A referral sent to your organisation has been withdrawn. Please stop work on it.",
    ),
    "consent.expired": (
        "a referral is no longer available",
        "A referral sent to your organisation is no longer available. Please stop work on it.",
    ),
}

_BODY = """\
{lead}

Open it on Wraparound:
{collect_url}

For case systems connected to Wraparound, the FHIR Task is:
{task_url}

Reference: {reference}

This email deliberately carries no personal details. Please do not reply to it.
"""


class SecureEmailConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # A short tag for the recipient's mail filters, e.g. "[WRAP]". Deliberately a tiny alphabet:
    # no CR/LF (header injection) and no room for a clinic's name to become a diagnosis in a subject.
    subject_prefix: str | None = Field(default=None, max_length=40, pattern=r"^[A-Za-z0-9 \[\]()._:#-]*$")


def _addr_spec(value: str, what: str) -> Address:
    local, at, domain = value.rpartition("@")
    if not at or len(value) > 254 or len(local) > 64:
        raise MisconfiguredError(f"{what} is not a single email address")
    if not _LOCAL.fullmatch(local) or not _DOMAIN.fullmatch(domain):
        raise MisconfiguredError(f"{what} is not a valid addr-spec (RFC 5322 section 3.4.1)")
    return Address(addr_spec=value)


def parse_mailto(address: str) -> Address:
    """Exactly one plain recipient (RFC 6068); any header field (?cc=, ?body=, ...) is refused."""
    what = "the Endpoint's mailto: address"
    scheme, colon, rest = address.partition(":")
    if not colon or scheme.lower() != "mailto":
        raise MisconfiguredError("the Endpoint address is not a mailto: URI")
    if "?" in rest or "#" in rest:
        raise MisconfiguredError(f"{what} has a query or fragment; only one plain address is allowed")
    try:
        decoded = unquote(rest, errors="strict")
    except UnicodeDecodeError:
        raise MisconfiguredError(f"{what} is not valid percent-encoded UTF-8") from None
    # Checked after decoding, so %0d%0a is caught as surely as a raw CR/LF.
    if not decoded or any(not 0x21 <= ord(c) <= 0x7E for c in address + decoded):
        raise MisconfiguredError(f"{what} contains spaces, line breaks or non-ASCII characters")
    if "," in decoded or decoded.count("@") != 1:
        raise MisconfiguredError(f"{what} must name exactly one recipient")
    return _addr_spec(decoded, what)


def parse_sender(sender: str) -> Address:
    what = "WRAPAROUND_SMTP_FROM"
    if any(not 0x20 <= ord(c) <= 0x7E for c in sender):
        raise MisconfiguredError(f"{what} contains line breaks or non-ASCII characters")
    if named := _NAMED_SENDER.fullmatch(sender):
        spec = _addr_spec(named["addr"], what)
        return Address(display_name=named["name"], addr_spec=spec.addr_spec)
    return _addr_spec(sender.strip(), what)


def message_id(delivery: Delivery, sender: Address) -> str:
    """The same on every retry of one outbox row, so a receiving system can de-duplicate."""
    key = delivery.message_id
    left = key if _SAFE_ID.fullmatch(key) and len(key) <= 64 else hashlib.sha256(key.encode()).hexdigest()
    return f"<{left}@{sender.domain}>"


def _url(value: str, what: str) -> str:
    parts = urlsplit(value)
    # Printable ASCII and well under the 998-octet line limit (RFC 5322 section 2.1.1) of a 7bit body.
    if (
        len(value) > 900
        or parts.scheme not in {"https", "http"}
        or not parts.netloc
        or not _URL_CHARS.fullmatch(value)
    ):
        raise MisconfiguredError(f"the delivery's {what} is not an absolute http(s) URL")
    return value


def compose(delivery: Delivery, config: SecureEmailConfig, sender: Address, to: Address) -> EmailMessage:
    """The notification, from ids and URLs only (``delivery.bundle`` is deliberately not read)."""
    subject, lead = _NOTICES.get(delivery.event, _NOTICES["task.updated"])
    prefix = (
        f"{config.subject_prefix.strip()} " if config.subject_prefix and config.subject_prefix.strip() else ""
    )
    message = EmailMessage(policy=SMTP)  # policy.SMTP refuses CR/LF in header values
    message["From"] = sender
    message["To"] = to
    message["Subject"] = f"{prefix}Wraparound: {subject}"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id(delivery, sender)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the hub
    body = _BODY.format(
        lead=lead,
        collect_url=_url(delivery.collect_url, "collect URL"),
        task_url=_url(delivery.task_url, "Task URL"),
        reference=message_id(delivery, sender).strip("<>"),
    )
    message.set_content(body, charset="us-ascii", cte="7bit")
    return message


def _ehlo_name(hub_base: str) -> str:
    # Our own name for EHLO; passing it skips aiosmtplib's socket.getfqdn() DNS lookup.
    host = urlsplit(hub_base).hostname or ""
    with contextlib.suppress(ValueError):
        ip = ipaddress.ip_address(host)
        return f"[{ip}]" if ip.version == 4 else f"[IPv6:{ip}]"  # RFC 5321 section 4.1.3
    return host if _DOMAIN.fullmatch(host) else "localhost"


def _tls_context(smtp: SmtpSettings) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=smtp.ca_file)
    except (OSError, ssl.SSLError):
        raise MisconfiguredError("the SMTP CA file cannot be read") from None
    if not smtp.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def _send(
    smtp: SmtpSettings, transport: Transport, ehlo: str, envelope: tuple[str, str], raw: bytes
) -> int:
    wants_tls = smtp.use_tls or smtp.starttls != "off"
    context = await asyncio.to_thread(_tls_context, smtp) if wants_tls else None
    client = aiosmtplib.SMTP(
        hostname=smtp.host or "",
        port=smtp.port,
        use_tls=smtp.use_tls,
        start_tls=False,  # decided in _session, so "require" can refuse before anything is sent
        tls_context=context,
        local_hostname=ehlo,
        timeout=transport.deadline_seconds,
    )
    try:
        await _session(client, smtp, transport, envelope, raw)
        return 250  # sendmail raises unless DATA was answered 250
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise classify(exc) from None  # never chain: the server's text may echo the address
    finally:
        await _hang_up(client)


async def _session(
    client: aiosmtplib.SMTP, smtp: SmtpSettings, transport: Transport, envelope: tuple[str, str], raw: bytes
) -> None:
    await client.connect()
    await client.ehlo()
    encrypted = smtp.use_tls
    if not smtp.use_tls and smtp.starttls != "off":
        if client.supports_extension("starttls"):
            await client.starttls()
            encrypted = True
        elif smtp.starttls == "require":
            raise MisconfiguredError(
                "the SMTP relay does not offer STARTTLS (WRAPAROUND_SMTP_STARTTLS=require)"
            )
        else:
            log.warning("the SMTP relay offers no STARTTLS; the notification goes in clear")
    if smtp.username:
        if not encrypted and not transport.allow_private:
            raise MisconfiguredError("refusing to send SMTP credentials without TLS")
        await client.login(smtp.username, smtp.password or "")
    sender, recipient = envelope
    await client.sendmail(sender, [recipient], raw)


async def _hang_up(client: aiosmtplib.SMTP) -> None:
    # RFC 5321 section 4.1.1.10: say QUIT while the session is usable (not once the deadline has
    # cancelled us; a lost QUIT changes nothing), then abort: a TLS close waits for the relay's
    # close_notify, which a loop about to stop never sees, and the socket would leak.
    connection = client.transport
    task = asyncio.current_task()
    if client.is_connected and not (task and task.cancelling()):
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await client.quit(timeout=2.0)
    if isinstance(connection, asyncio.Transport):
        connection.abort()
    client.close()


def classify(exc: BaseException) -> DeliveryError:
    """An aiosmtplib failure as a typed delivery error: the reply code and its class, never its text.

    4xx is transient (RFC 5321 section 4.2.1); 5xx for the recipient or the message is the
    recipient's final answer; 5xx anywhere else (greeting, EHLO, MAIL FROM, AUTH, STARTTLS) and TLS
    or credential failures are ours to fix.
    """
    if isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError):
        return MisconfiguredError("the TLS handshake with the SMTP relay failed (certificate or protocol)")
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients] or [550]
        return _by_code(min(codes), "RCPT", final=PermanentError)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        stage, final = _STAGES.get(type(exc), ("the exchange", MisconfiguredError))
        return _by_code(exc.code, stage, final=final)
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError | OSError):
        return RetryableError(f"the SMTP relay could not be reached ({type(exc).__name__})")
    # SMTPNotSupported or a bare SMTPException: e.g. AUTH configured but not offered by the relay.
    return MisconfiguredError(f"the SMTP relay does not support what is configured ({type(exc).__name__})")


_STAGES: dict[type[BaseException], tuple[str, type[DeliveryError]]] = {
    aiosmtplib.SMTPRecipientRefused: ("RCPT", PermanentError),
    aiosmtplib.SMTPDataError: ("DATA", PermanentError),
    aiosmtplib.SMTPSenderRefused: ("MAIL FROM", MisconfiguredError),
    aiosmtplib.SMTPAuthenticationError: ("AUTH", MisconfiguredError),
    aiosmtplib.SMTPHeloError: ("EHLO", MisconfiguredError),
    aiosmtplib.SMTPConnectResponseError: ("the greeting", MisconfiguredError),
}


def _by_code(code: int, stage: str, *, final: type[DeliveryError]) -> DeliveryError:
    if code >= 500:
        return final(f"the SMTP relay answered {stage} with {code} ({final.outcome})", status_code=code)
    return RetryableError(f"the SMTP relay answered {stage} with {code} (transient)", status_code=code)


class SecureEmailAdapter:
    slug: ClassVar[str] = "secure-email"
    connection_type: ClassVar[ConnectionType] = ConnectionType(HL7_CONNECTION_TYPE, "secure-email")
    config_model: ClassVar[type[BaseModel]] = SecureEmailConfig
    description: ClassVar[str] = (
        "Emails the partner's mailto: address that a referral is waiting, with links to collect it "
        "(never any personal or clinical detail)."
    )

    def wants_bundle(self, config: Any) -> bool:
        return False  # the email is a notice that something is waiting, never the referral

    async def deliver(self, delivery: Delivery, config: Any, transport: Transport) -> Receipt:
        settings = _config(config)
        smtp = transport.smtp
        if not smtp.host:
            raise MisconfiguredError("WRAPAROUND_SMTP_HOST is not set")
        to = parse_mailto(delivery.address)
        sender = parse_sender(smtp.sender)
        message = compose(delivery, settings, sender, to)
        raw = message.as_bytes(policy=SMTP)
        envelope = (sender.addr_spec, to.addr_spec)
        try:
            async with asyncio.timeout(transport.deadline_seconds):
                code = await _send(smtp, transport, _ehlo_name(delivery.hub_base), envelope, raw)
        except TimeoutError:
            raise RetryableError("the SMTP exchange did not finish within the deadline") from None
        return Receipt(status_code=code, detail=str(message["Message-ID"]))


def _config(config: Any) -> SecureEmailConfig:
    if isinstance(config, SecureEmailConfig):
        return config
    if isinstance(config, BaseModel):
        config = config.model_dump()
    try:
        return SecureEmailConfig.model_validate(config or {})
    except ValidationError as exc:
        # Field names only: the rejected value could be anything an operator typed.
        fields = sorted({".".join(map(str, error["loc"])) for error in exc.errors()})
        raise MisconfiguredError(f"the secure-email configuration is invalid: {', '.join(fields)}") from None
