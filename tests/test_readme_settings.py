"""The README lists every setting (CONTRACT.md: "every setting ... listed in the README")."""

from __future__ import annotations

from pathlib import Path

from service.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [
        f"WRAPAROUND_{name.upper()}"
        for name in Settings.model_fields
        if f"`WRAPAROUND_{name.upper()}`" not in text
    ]
    assert missing == []
