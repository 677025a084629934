"""The input rules of domain/text.py: hand-picked hostile values, then hypothesis."""

import unicodedata
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from domain.text import (
    ACTOR_MAX,
    REASON_MAX,
    Actor,
    Amount,
    HttpUrl,
    Identifier,
    Reason,
    Symbol,
    check_identifier,
    check_text,
    check_url,
    clean_text,
    clean_text_or,
    is_forbidden_char,
    parse_money,
)


class Sample(BaseModel):
    id: Identifier | None = None
    symbol: Symbol | None = None
    reason: Reason | None = None
    actor: Actor | None = None
    url: HttpUrl | None = None
    amount: Amount | None = None


@pytest.mark.parametrize(
    "value", ["demo-1", "acc-1", "mm-1", "ACME", "algo_1", "a1b2c3d4e5f6a7b8", "acc:desk.7", "9"]
)
def test_ids_the_readme_and_tests_use_are_accepted(value: str) -> None:
    assert check_identifier(value) == value


@pytest.mark.parametrize(
    "value",
    [
        ".",
        "..",
        "-rf",
        "_x",
        "",
        "a b",
        "a/b",
        "a\x00b",
        "a\n",
        "ab\u0660",
        "\uff21\uff22",
        "a" * 65,
    ],
)
def test_ids_outside_the_safe_alphabet_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"characters|letter"):
        check_identifier(value)


def test_symbols_may_hold_a_slash_but_not_start_with_one() -> None:
    assert check_identifier("EUR/USD", 32, symbol=True) == "EUR/USD"
    with pytest.raises(ValueError, match="must start"):
        check_identifier("/etc", 32, symbol=True)
    with pytest.raises(ValueError, match="1 to 32"):
        check_identifier("A" * 33, 32, symbol=True)


@pytest.mark.parametrize(
    "value",
    [
        "a\x00b",
        "tab\there",
        "line\nbreak",
        "del\x7f",
        "c1\x85",
        "sep\u2028",
        "rlo\u202eevil",
        "\ud800",
    ],
)
def test_free_text_with_control_separator_bidi_or_surrogate_characters_is_refused(
    value: str,
) -> None:
    with pytest.raises(ValueError, match=r"U\+"):
        check_text(value)


@pytest.mark.parametrize(
    "value", ["risk desk: limit breached", "Zoë 👩\u200d💻", "soft\u00adhyphen", "日本語", ""]
)
def test_ordinary_text_emoji_and_other_format_characters_are_accepted(value: str) -> None:
    assert check_text(value) == value


def test_text_is_bounded_and_actors_are_shorter_than_reasons() -> None:
    assert check_text("x" * REASON_MAX) == "x" * REASON_MAX
    with pytest.raises(ValueError, match="at most 500"):
        check_text("x" * (REASON_MAX + 1))
    with pytest.raises(ValidationError, match="at most 64"):
        Sample(actor="x" * (ACTOR_MAX + 1))
    assert Sample(actor="Jane Doe").actor == "Jane Doe"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("100", Decimal(100)),
        ("-12.5", Decimal("-12.5")),
        ("+0.00000001", Decimal("0.00000001")),
        (".5", Decimal("0.5")),
        ("1234567890123456.12345678", Decimal("1234567890123456.12345678")),
        ("1.50000000000", Decimal("1.5")),  # trailing zeros do not count as places
        (7, Decimal(7)),
        (Decimal("0.1"), Decimal("0.1")),
        (2.5, Decimal("2.5")),
        ("-0", Decimal(0)),
    ],
)
def test_plain_ascii_money_is_taken_exactly(value: Any, expected: Decimal) -> None:
    assert parse_money(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "١٠٠",  # noqa: RUF001 - Arabic-Indic digits, which Decimal() takes as 100
        "１００",  # noqa: RUF001 - fullwidth
        "१००",  # Devanagari
        "1e3",
        "NaN",
        "Infinity",
        "-inf",
        " 1",
        "1 ",
        "1,5",
        "1.2.3",
        "",
        "0x10",
        "1_000",
        "12345678901234567",
        "0.000000001",
        "1" * 65,
        True,
        None,
        [1],
        float("nan"),
        float("inf"),
        Decimal("1E+400"),
        Decimal("1e999999999"),
        Decimal("sNaN"),
        10**20,
    ],
)
def test_money_outside_the_rule_is_refused(value: Any) -> None:
    assert Decimal(100) == Decimal("１００")  # noqa: RUF001 - why the rule exists
    with pytest.raises(ValueError, match=r"must|at most"):
        parse_money(value)


def test_amount_type_refuses_unicode_digits_in_a_model() -> None:
    with pytest.raises(ValidationError, match="ASCII digits"):
        Sample(amount="１００")  # noqa: RUF001
    assert Sample.model_validate({"amount": "100"}).amount == Decimal(100)


@pytest.mark.parametrize(
    "value",
    [
        "ftp://example.com/x",
        "javascript:alert(1)",
        "http://",
        "http://exa mple.com",
        "http://example.com/\x00",
        "https://example.com:99999/",
        "https://example.com/" + "a" * 2048,
        "example.com",
    ],
)
def test_urls_other_than_plain_http_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"URL|whitespace|at most"):
        check_url(value)


def test_http_and_https_urls_are_kept_as_written() -> None:
    for url in ("http://127.0.0.1:8080/hook", "https://hooks.example.com/a?b=c"):
        assert Sample(url=url).url == url


def test_clean_text_drops_what_check_text_refuses_and_cuts_to_length() -> None:
    assert clean_text("a\x00b\u202ec\ud800d\ne", 100) == "abcde"
    assert clean_text("x" * 10, 4) == "xxxx"
    assert clean_text(None, 10) == ""
    assert clean_text(42, 10) == "42"
    assert clean_text_or("ab\x00cdefg", 5, "none") == "abcde"
    assert clean_text_or(" \x00 ", 5, "none") == "none"


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=80), max_len=st.integers(0, 100))
def test_clean_text_output_always_passes_check_text(value: str, max_len: int) -> None:
    cleaned = clean_text(value, max_len)
    assert check_text(cleaned, max_len) == cleaned
    assert len(cleaned) <= max_len


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=40))
def test_check_text_refuses_exactly_the_forbidden_characters(value: str) -> None:
    forbidden = any(is_forbidden_char(char) for char in value)
    try:
        check_text(value)
    except ValueError:
        assert forbidden
    else:
        assert not forbidden
        assert all(unicodedata.category(char) != "Cc" for char in value)


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=20))
def test_any_accepted_id_is_ascii_short_and_not_a_path_segment(value: str) -> None:
    try:
        check_identifier(value)
    except ValueError:
        return
    assert value.isascii()
    assert value.isprintable()
    assert value not in (".", "..")
    assert value[0].isalnum()
    assert 1 <= len(value) <= 64


@settings(max_examples=300, deadline=None)
@given(
    value=st.text(alphabet=st.characters(categories=["Nd", "Po", "Pd", "Zs", "Ll"]), max_size=12)
)
def test_any_accepted_money_string_is_ascii_and_fits_numeric_24_8(value: str) -> None:
    try:
        amount = parse_money(value)
    except ValueError:
        return
    assert value.isascii()
    assert amount.is_finite()
    assert amount == amount.quantize(Decimal("1E-8"))
    assert abs(amount) < Decimal(10) ** 16


@settings(max_examples=300, deadline=None)
@given(
    amount=st.decimals(
        min_value="-9999999999999999.99999999",
        max_value="9999999999999999.99999999",
        places=8,
        allow_nan=False,
    )
)
def test_every_storable_amount_round_trips_through_its_string(amount: Decimal) -> None:
    assert parse_money(format(amount, "f")) == amount
