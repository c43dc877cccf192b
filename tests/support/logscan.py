"""Captures every log record of the test run so secrets and identifiers can be looked for."""

from __future__ import annotations

import logging

# Issued access tokens and client assertions, recorded by tests/support/clients.py.
SECRETS: list[str] = []
# NHS numbers the tests use (valid check digits); none may reach a log line.
NHS_NUMBERS = ("9000000009", "9434765919", "9434765870", "9876543210")


class Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # httpx/httpcore log the *test client's* requests (the integration side), not the hub's.
        if record.name.startswith(("httpx", "httpcore")):
            return
        try:
            text = record.getMessage()
        except Exception:  # a broken format string is still worth scanning raw
            text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]!r}"
        self.lines.append(text)


def leaks(lines: list[str]) -> list[str]:
    found = []
    for line in lines:
        for secret in SECRETS:
            if secret and secret in line:
                found.append("a token or client assertion")
        for number in NHS_NUMBERS:
            if number in line:
                found.append(f"NHS number {number[:3]}…")
    return sorted(set(found))
