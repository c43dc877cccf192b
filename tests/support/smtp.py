"""A real SMTP server (aiosmtpd) on a loopback port, for tests of anything that sends email.

``smtp_server()`` starts aiosmtpd's threaded ``Controller`` on 127.0.0.1 and yields a
:class:`SmtpServer` whose handler records every accepted message (envelope, raw bytes, parsed
message, whether it came over TLS and as whom). It can offer STARTTLS with a throwaway self-signed
certificate (:func:`self_signed_certificate`, written to a tmp dir), require AUTH, and play scripted
replies: ``server.reply("RCPT", "550 5.1.1 no such user")`` makes every RCPT fail until
``server.reply("RCPT", None)``.

The handler runs on the controller's thread; everything it records goes through one lock.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.servers import free_port

Stage = Literal["MAIL", "RCPT", "DATA"]
ACCEPTED = "250 2.0.0 Message accepted for delivery"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes  # exactly the bytes after DATA (CRLF line endings, dot-unstuffed)
    message: EmailMessage
    tls: bool  # the message came over TLS (STARTTLS or implicit)
    login: str | None  # the AUTH user name, when the client authenticated


@dataclass(frozen=True)
class TlsFiles:
    cert: Path  # PEM certificate, also usable as the client's CA file
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def self_signed_certificate(directory: Path, hostname: str = "localhost") -> TlsFiles:
    """A short-lived certificate for ``hostname`` and 127.0.0.1; never committed, never reused."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    san = x509.SubjectAlternativeName(
        [x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(directory / "smtp-cert.pem", directory / "smtp-key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@dataclass
class RecordingHandler:
    """aiosmtpd handler hooks (https://aiosmtpd.aio-libs.org/en/latest/handlers.html)."""

    users: Mapping[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _messages: list[Received] = field(default_factory=list)
    _replies: dict[str, str] = field(default_factory=dict)
    _mail_commands: int = 0
    _auth_attempts: list[str] = field(default_factory=list)

    def _scripted(self, stage: Stage) -> str | None:
        with self._lock:
            return self._replies.get(stage)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self._lock:
            self._mail_commands += 1
        if (reply := self._scripted("MAIL")) is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if (reply := self._scripted("RCPT")) is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if (reply := self._scripted("DATA")) is not None:
            return reply
        raw = bytes(envelope.original_content or envelope.content)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        received = Received(
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=raw,
            message=parsed,
            # session.ssl is set by STARTTLS; an implicit-TLS (SMTPS) listener shows on the transport.
            tls=session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None,
            login=login,
        )
        with self._lock:
            self._messages.append(received)
        return ACCEPTED

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        with self._lock:
            self._auth_attempts.append(user)
        ok = self.users.get(user) == password
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler

    @property
    def messages(self) -> list[Received]:
        with self.handler._lock:
            return list(self.handler._messages)

    @property
    def mail_commands(self) -> int:
        """How many MAIL FROM commands arrived (0 means the client never began a transaction)."""
        with self.handler._lock:
            return self.handler._mail_commands

    @property
    def auth_attempts(self) -> list[str]:
        with self.handler._lock:
            return list(self.handler._auth_attempts)

    def reply(self, stage: Stage, reply: str | None) -> None:
        """Answer every ``stage`` command with ``reply`` (e.g. "451 4.3.0 try later"); None resets."""
        with self.handler._lock:
            if reply is None:
                self.handler._replies.pop(stage, None)
            else:
                self.handler._replies[stage] = reply


@contextmanager
def smtp_server(
    *,
    tls: TlsFiles | None = None,
    implicit_tls: bool = False,
    users: Mapping[str, str] | None = None,
    auth_require_tls: bool = True,
) -> Iterator[SmtpServer]:
    """Serve SMTP on 127.0.0.1; ``tls`` offers STARTTLS (or, with ``implicit_tls``, serves SMTPS:
    TLS from the first byte), ``users`` (name -> password) enables AUTH.

    With ``users`` and ``auth_require_tls`` (aiosmtpd's default) AUTH is advertised only after
    STARTTLS; ``auth_require_tls=False`` advertises it in clear, to test a client that must refuse.
    """
    handler = RecordingHandler(users=dict(users or {}))
    options: dict[str, Any] = {"auth_require_tls": auth_require_tls}
    if tls is not None and implicit_tls:
        options["ssl_context"] = tls.server_context()
    elif tls is not None:
        options["tls_context"] = tls.server_context()
    if users:
        options["authenticator"] = handler.authenticate
    # server_hostname skips aiosmtpd's socket.getfqdn(), a DNS lookup that can stall offline.
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), server_hostname="smtp.test", **options
    )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", controller.port, handler)
    finally:
        controller.stop()
