"""Rules for text and money where they enter: ids, free text, URLs and decimal amounts.

Everything a caller types (API bodies and paths, CLI options, Web UI payloads) passes one of
these rules before it is stored or handed to a workflow, so nothing downstream can choke on
it (PostgreSQL refuses NUL in text; a workflow whose activity keeps failing on a value never
ends). The rules:

- **ids** (session, account, algorithm, fill, order ids): ASCII letters and digits first, then
  letters, digits and ``_ . : -``; 1-64 characters. ``.``, ``..`` and ``-x`` cannot be ids.
  **Symbols** may also hold ``/`` (``EUR/USD``), 1-32 characters.
- **free text** (reasons, details, descriptions) and **actors**: no control characters
  (Unicode ``Cc``: NUL, tab, newline, DEL, C1), no lone surrogates (``Cs``), no line or
  paragraph separators (``Zl``, ``Zp``) and no bidirectional overrides/isolates
  (U+202A-U+202E, U+2066-U+2069, which make a log line read differently from what it holds).
  Other format characters (``Cf``: zero-width joiner in emoji, soft hyphen) are allowed.
  Reasons hold up to 500 characters, actors 64.
- **URLs**: ``http`` or ``https`` with a host, at most 2048 characters, no whitespace or
  control characters.
- **money and quantities**: a JSON string or number of ASCII digits, an optional sign and one
  decimal point, at most 16 integer digits and 8 decimal places (the store's ``NUMERIC(24,8)``),
  finite. Arabic-Indic, fullwidth or Devanagari digits, ``"1e3"``, ``"NaN"`` and ``true`` are
  refused (Python's own ``Decimal()`` takes other scripts' digits).

The checks are pure functions raising ``ValueError`` (pydantic turns it into a 422); the
``Annotated`` types wrap them for models. :func:`clean_text` is the lenient twin for payloads
that cannot be refused (a signal from the Web UI): it removes what the strict rule refuses.
"""

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

ID_MAX = 64
SYMBOL_MAX = 32
KEY_ID_MAX = 32
ACTOR_MAX = 64
REASON_MAX = 500
DESCRIPTION_MAX = 200
URL_MAX = 2048
MONEY_INTEGER_DIGITS = 16
MONEY_DECIMAL_PLACES = 8
# Longest money string worth looking at: sign, 16 digits, point, 8 places, and leading zeros.
MONEY_TEXT_MAX = 64

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_./:-]*$"
MONEY_PATTERN = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$"
# The characters free text may not hold, as a JSON-schema pattern (lone surrogates aside).
TEXT_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]*$"

_ID = re.compile(ID_PATTERN[:-1] + r"\Z")
_SYMBOL = re.compile(SYMBOL_PATTERN[:-1] + r"\Z")
_MONEY = re.compile(MONEY_PATTERN[:-1] + r"\Z")
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def is_forbidden_char(char: str) -> bool:
    """True for a character free text may not hold (control, surrogate, separator, bidi)."""
    return char in _BIDI_CONTROLS or unicodedata.category(char) in _FORBIDDEN_CATEGORIES


def _first_forbidden(value: str) -> int | None:
    # Plain printable ASCII is by far the common case: one C-speed check skips the loop.
    if value.isascii() and value.isprintable():
        return None
    return next((i for i, char in enumerate(value) if is_forbidden_char(char)), None)


def check_text(value: str, max_len: int = REASON_MAX) -> str:
    """``value`` if it is free text of at most ``max_len`` characters; else ``ValueError``."""
    if len(value) > max_len:
        raise ValueError(f"at most {max_len} characters")
    position = _first_forbidden(value)
    if position is not None:
        code = f"U+{ord(value[position]):04X}"
        raise ValueError(
            f"control, separator or bidirectional character {code} at position {position}"
        )
    return value


def check_identifier(value: str, max_len: int = ID_MAX, *, symbol: bool = False) -> str:
    """``value`` if it is an id (or a symbol) from the safe alphabet; else ``ValueError``."""
    allowed = "_ . : - /" if symbol else "_ . : -"
    if not 1 <= len(value) <= max_len:
        raise ValueError(f"must be 1 to {max_len} characters")
    if not (_SYMBOL if symbol else _ID).match(value):
        raise ValueError(
            f"must start with an ASCII letter or digit and hold only letters, digits and {allowed}"
        )
    return value


def check_url(value: str) -> str:
    """``value`` if it is an http(s) URL with a host, bounded and without whitespace."""
    if len(value) > URL_MAX:
        raise ValueError(f"at most {URL_MAX} characters")
    if any(char.isspace() or is_forbidden_char(char) for char in value):
        raise ValueError("must not contain whitespace or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as err:
        raise ValueError("not a valid URL") from err
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


def parse_money(value: Any) -> Decimal:
    """A money amount or quantity as ``Decimal``; ``ValueError`` unless it is plainly written.

    Takes a string (ASCII digits, optional sign, at most one point), an ``int``, or a finite
    ``Decimal``/``float`` (what a JSON number parses to). Bounded to the stored
    ``NUMERIC(24,8)``: at most 16 integer digits and 8 decimal places, trailing zeros aside.
    """
    if isinstance(value, bool):
        raise ValueError("must be a decimal number, not a boolean")
    if isinstance(value, str):
        if len(value) > MONEY_TEXT_MAX or not _MONEY.match(value):
            raise ValueError("must be ASCII digits with an optional sign and decimal point")
        amount = Decimal(value)
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float | Decimal):
        try:
            amount = value if isinstance(value, Decimal) else Decimal(repr(value))
        except InvalidOperation as err:
            raise ValueError("must be a finite decimal number") from err
    else:
        raise ValueError("must be a decimal number, as a string or a number")
    return _bounded(amount)


def _bounded(amount: Decimal) -> Decimal:
    if not amount.is_finite():
        raise ValueError("must be a finite decimal number")
    if amount.is_zero():
        return Decimal(0)  # "-0" and "0E+999" alike
    # Read from the digits, never by expanding or rounding them ("1e999999999" stays cheap).
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    significant = len(digits)
    while digits[significant - 1] == 0:  # trailing zeros say nothing about the value
        significant -= 1
        exponent += 1
    if significant + exponent > MONEY_INTEGER_DIGITS:
        raise ValueError(f"at most {MONEY_INTEGER_DIGITS} digits before the decimal point")
    if -exponent > MONEY_DECIMAL_PLACES:
        raise ValueError(f"at most {MONEY_DECIMAL_PLACES} decimal places")
    return amount


def clean_text(value: object, max_len: int) -> str:
    """Lenient :func:`check_text`: drop the characters it refuses, then cut to ``max_len``.

    For payloads that cannot be refused (a signal sent from the Web UI or CLI): the request
    is kept, its text made storable. ``None`` becomes ``""``; other non-strings their ``str``.
    """
    text = "" if value is None else value if isinstance(value, str) else str(value)
    if _first_forbidden(text) is not None:
        text = "".join(char for char in text if not is_forbidden_char(char))
    return text[:max_len]


def _text_schema(max_len: int) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "maxLength": max_len, "pattern": TEXT_PATTERN})


def _id_schema(max_len: int, pattern: str = ID_PATTERN) -> WithJsonSchema:
    return WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": max_len, "pattern": pattern}
    )


Identifier = Annotated[str, AfterValidator(check_identifier), _id_schema(ID_MAX)]
"""A session, account, algorithm, fill or order id: ``[A-Za-z0-9][A-Za-z0-9_.:-]*``, 1-64."""
Symbol = Annotated[
    str,
    AfterValidator(partial(check_identifier, max_len=SYMBOL_MAX, symbol=True)),
    _id_schema(SYMBOL_MAX, SYMBOL_PATTERN),
]
"""An instrument symbol: like an id, ``/`` allowed too (``EUR/USD``), 1-32 characters."""
KeyId = Annotated[
    str, AfterValidator(partial(check_identifier, max_len=KEY_ID_MAX)), _id_schema(KEY_ID_MAX)
]
"""An API key's public id (12 hex digits as issued), 1-32 characters of the id alphabet."""
Reason = Annotated[str, AfterValidator(check_text), _text_schema(REASON_MAX)]
"""Free text an operator gives (why a session ends, is paused...): up to 500 characters."""
Actor = Annotated[
    str, AfterValidator(partial(check_text, max_len=ACTOR_MAX)), _text_schema(ACTOR_MAX)
]
"""Who asks, as a display name (``"jane"``, ``"risk desk"``): free text up to 64 characters."""
Description = Annotated[
    str,
    AfterValidator(partial(check_text, max_len=DESCRIPTION_MAX)),
    _text_schema(DESCRIPTION_MAX),
]
"""A short note (an API key's description): free text up to 200 characters."""
HttpUrl = Annotated[
    str,
    AfterValidator(check_url),
    WithJsonSchema({"type": "string", "format": "uri", "maxLength": URL_MAX}),
]
"""An ``http``/``https`` URL with a host, kept as written: up to 2048 characters."""
Amount = Annotated[
    Decimal,
    BeforeValidator(parse_money),
    WithJsonSchema({"anyOf": [{"type": "string", "pattern": MONEY_PATTERN}, {"type": "number"}]}),
]
"""Money or a quantity: ``"12.5"`` or ``12.5``, ASCII digits, <= 16 integer digits, <= 8 places."""


def clean_text_or(value: object, max_len: int, default: str) -> str:
    """:func:`clean_text`, trimmed, or ``default`` when nothing is left: what a signal's text
    field becomes, since a signal cannot be refused."""
    return clean_text(value, max_len).strip() or default
