import pytest

from service.search._escape import split_unescaped, unescape
from service.search._normalise import normalise


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Zoë", "zoe"),
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),
        ("Ångström", "angstrom"),
        ("ﬁle", "file"),
        ("Séan Ó Briain", "sean o briain"),
        ("plain", "plain"),
    ],
)
def test_normalise_folds_case_and_accents(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_split_respects_escapes() -> None:
    assert split_unescaped(r"a,b\,c,d", ",") == ["a", r"b\,c", "d"]
    assert [unescape(p) for p in split_unescaped(r"a,b\,c,d", ",")] == ["a", "b,c", "d"]
    assert split_unescaped(r"sys\|x|code", "|") == [r"sys\|x", "code"]
    assert unescape(r"a\\b\$c") == r"a\b$c"
    assert split_unescaped("", ",") == [""]
