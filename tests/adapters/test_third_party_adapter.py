"""A third-party adapter is a separate installable package; discovery picks it up by entry point."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.base import Adapter, Delivery, Transport
from tests.support.receiver import Receiver

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "wraparound-adapter-example"

DISCOVER = """
import json
from adapters.registry import discover
registry = discover()
print(json.dumps({"slugs": [a.slug for a in registry.adapters], "broken": registry.broken}))
"""


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    # --no-deps: the hub is already here. The build backend (setuptools) comes from the package index.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
        capture_output=True,
    )
    return target


@pytest.mark.slow
def test_discovery_finds_the_installed_third_party_adapter(installed_example: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed_example), os.getcwd()])}
    found = subprocess.run(
        [sys.executable, "-c", DISCOVER], env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(found.stdout)
    assert "chat-notice" in result["slugs"]
    assert {"webhook", "hl7-fhir-rest", "secure-email"} <= set(result["slugs"])
    assert result["broken"] == []
    # Without the package on the path it is not there: discovery really reads the entry points.
    plain = subprocess.run([sys.executable, "-c", DISCOVER], capture_output=True, text=True, check=True)
    assert "chat-notice" not in json.loads(plain.stdout)["slugs"]


@pytest.mark.slow
def test_the_example_adapter_delivers_a_notice_without_clinical_detail(installed_example: Path) -> None:
    sys.path.insert(0, str(installed_example))
    try:
        import wraparound_adapter_example as example  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(installed_example))
    adapter = example.ChatNoticeAdapter()
    assert isinstance(adapter, Adapter)
    with Receiver.start() as rx:
        delivery = Delivery(
            message_id="msg_1",
            event="referral.created",
            attempt=1,
            address=rx.url("/chat"),
            recipient="Organization/p",
            task="Task/t",
            task_url="http://hub/fhir/Task/t",
            collect_url="http://hub/app/",
            hub_base="http://hub/fhir",
            occurred_at=datetime.now(UTC),
        )
        config = example.ChatNoticeConfig(format="markdown", prefix="Wraparound:")
        transport = Transport(allow_private=True, deadline_seconds=5, max_response_bytes=65536)
        receipt = asyncio.run(adapter.deliver(delivery, config, transport))
        [request] = rx.wait_for(1, timeout=5)
    assert receipt.status_code == 200
    body = json.loads(request.body)
    assert body == {
        "text": "Wraparound: A new referral is waiting for your team. [Open it](http://hub/app/)",
        "id": "msg_1",
    }
    assert request.headers["idempotency-key"] == "msg_1"
