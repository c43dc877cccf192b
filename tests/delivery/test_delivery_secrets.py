"""Adapter secrets are encrypted at rest with WRAPAROUND_SECRET_KEY; without a key the hub will not start."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from service.delivery.secrets import SecretKeyMissing, SecretUnreadable, box_for, generate_key
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WRAPAROUND_")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def test_serve_refuses_to_start_without_a_key_and_says_how_to_make_one(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve", "--port", "1"],
        cwd=tmp_path,
        env=_clean_env(WRAPAROUND_DATABASE_URL=f"sqlite:///{tmp_path}/hub.db"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "WRAPAROUND_SECRET_KEY" in result.stderr
    assert "wraparound secrets generate-key" in result.stderr
    worker = subprocess.run(
        [sys.executable, "-m", "service.cli", "worker", "--once"],
        cwd=tmp_path,
        env=_clean_env(WRAPAROUND_DATABASE_URL=f"sqlite:///{tmp_path}/hub.db"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 2
    assert "WRAPAROUND_SECRET_KEY" in worker.stderr


def test_development_mode_keeps_a_private_key_file_and_reuses_it(tmp_path: Path) -> None:
    script = (
        "from service.delivery.secrets import box_for; from service.settings import Settings; "
        "print(box_for(Settings(development=True)).seal(b'x'))"
    )
    first = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    key_file = tmp_path / "wraparound.secret-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert Fernet(key.encode()).decrypt(first.stdout.strip().encode()) == b"x"
    subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=_clean_env(), check=True, capture_output=True
    )
    assert key_file.read_text().strip() == key


def test_keys_rotate_newest_first_and_a_wrong_key_is_reported_not_guessed() -> None:
    old, new = generate_key(), generate_key()
    sealed = box_for(Settings(secret_key=old)).seal(b"whsec_abc")
    rotated = box_for(Settings(secret_key=f"{new},{old}"))
    assert rotated.open(sealed) == b"whsec_abc"
    assert Fernet(new.encode()).decrypt(rotated.seal(b"y").encode()) == b"y"  # the first key encrypts
    with pytest.raises(SecretUnreadable):
        box_for(Settings(secret_key=new)).open(sealed)
    with pytest.raises(SecretKeyMissing, match="not a valid Fernet key"):
        box_for(Settings(secret_key="not-a-key"))
    with pytest.raises(SecretKeyMissing):
        box_for(Settings())


def test_a_keyed_digest_depends_on_the_key_and_the_purpose_and_is_stable() -> None:
    first, second = generate_key(), generate_key()
    box = box_for(Settings(secret_key=f"{first},{second}"))
    same = box_for(Settings(secret_key=first))
    other = box_for(Settings(secret_key=second))
    digest = box.digest("purpose-a", "someone@example.org")
    assert digest == same.digest("purpose-a", "someone@example.org")  # the newest key decides
    assert digest != other.digest("purpose-a", "someone@example.org")
    assert digest != box.digest("purpose-b", "someone@example.org")
    assert len(digest) == 64
