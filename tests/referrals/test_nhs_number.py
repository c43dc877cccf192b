import pytest

from service.referrals.nhs_number import NHS_NUMBER_SYSTEM, is_valid_nhs_number


@pytest.mark.parametrize(
    "value",
    [
        "9434765919",
        "9000000009",
        "9434765080",  # weighted sum divisible by 11: 11 - 0 = 11, so the check digit is 0
        "0000000000",
    ],
)
def test_valid_nhs_numbers(value: str) -> None:
    assert is_valid_nhs_number(value)


@pytest.mark.parametrize(
    "value",
    [
        "9434765918",  # wrong check digit
        "9000000008",
        "123",
        "",
        "94347659190",  # 11 digits
        "943476591",  # 9 digits
        "94347659A9",
        "abcdefghij",
        "943 476 5919",  # display grouping is not the identifier value
        "943-476-5919",
        " 9434765919",
        "\uff19\uff14\uff13\uff14\uff17\uff16\uff15\uff19\uff11\uff19",  # full-width digits
    ],
)
def test_invalid_nhs_numbers(value: str) -> None:
    assert not is_valid_nhs_number(value)


@pytest.mark.parametrize("last", list("0123456789"))
def test_remainder_giving_check_digit_10_is_never_valid(last: str) -> None:
    # 943476503's weighted sum leaves remainder 1, so 11 - 1 = 10: no digit can be right.
    assert not is_valid_nhs_number("943476503" + last)


def test_system_is_the_uk_core_nhs_number_system() -> None:
    assert NHS_NUMBER_SYSTEM == "https://fhir.nhs.uk/Id/nhs-number"
