"""Property tests: request models refuse hostile input cleanly; position arithmetic holds."""

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from domain.positions import Position, Side, apply_fill, unrealized_pnl
from domain.text import is_forbidden_char
from starter.api.schemas import (
    CreateKeyBody,
    ExtendDeadlineBody,
    FillBody,
    MarkBody,
    SetLossLimitBody,
    StartSessionBody,
    TerminateBody,
)

MODELS: list[type[BaseModel]] = [
    StartSessionBody,
    TerminateBody,
    ExtendDeadlineBody,
    SetLossLimitBody,
    FillBody,
    MarkBody,
    CreateKeyBody,
]
FIELDS = st.sampled_from(
    ["session_id", "account_id", "algorithm_id", "end_time", "loss_limit", "warning_thresholds",
     "reason", "actor", "fill_id", "symbol", "side", "quantity", "price", "fee", "role"]
)  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(model=st.sampled_from(MODELS), body=st.dictionaries(FIELDS | st.text(), JSON))
def test_any_json_body_is_either_a_valid_request_or_a_validation_error(
    model: type[BaseModel], body: dict[str, Any]
) -> None:
    try:
        parsed = model.model_validate(body)
    except ValidationError:
        return
    # What gets through is bounded and storable: ids stay short and plain, amounts finite.
    for name, value in parsed.model_dump().items():
        if isinstance(value, str):
            assert len(value) <= 500, name
            assert not any(map(is_forbidden_char, value)), name
            if name.endswith("_id") or name == "symbol":
                assert value.isascii(), name
                assert " " not in value, name
        if isinstance(value, Decimal):
            assert value.is_finite(), name
        if isinstance(value, list):
            assert len(value) <= 10, name


QUANTITY = st.decimals(min_value="0.001", max_value="10000", places=3)
PRICE = st.decimals(min_value="0.01", max_value="100000", places=2)
FILLS = st.lists(st.tuples(st.sampled_from(Side), QUANTITY, PRICE, PRICE), max_size=30)


@settings(max_examples=300, deadline=None)
@given(fills=FILLS, mark=PRICE)
def test_realized_plus_unrealized_equals_the_cash_flows_of_all_fills(
    fills: list[tuple[Side, Decimal, Decimal, Decimal]], mark: Decimal
) -> None:
    position, realized, cash, held = Position(), Decimal(0), Decimal(0), Decimal(0)
    for side, quantity, price, fee_price in fills:
        fee = fee_price / 1000
        effect = apply_fill(position, side, quantity, price, fee)
        position, realized = effect.position, realized + effect.realized_pnl
        signed = quantity if side is Side.BUY else -quantity
        held += signed
        cash -= signed * price + fee
    assert position.quantity == held
    total = realized + unrealized_pnl(position, mark)
    assert abs(total - (cash + held * mark)) < Decimal("1e-9")
