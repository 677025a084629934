"""Custom search attributes that make sessions filterable in the Temporal Web UI."""

from temporalio.common import SearchAttributeKey

SESSION_STATUS = SearchAttributeKey.for_keyword("SessionStatus")
ACCOUNT_ID = SearchAttributeKey.for_keyword("AccountId")
ALGORITHM_ID = SearchAttributeKey.for_keyword("AlgorithmId")
LOSS_USED_PCT = SearchAttributeKey.for_float("LossUsedPct")
TIME_USED_PCT = SearchAttributeKey.for_float("TimeUsedPct")
SESSION_DEADLINE = SearchAttributeKey.for_datetime("SessionDeadline")
TERMINATION_REASON = SearchAttributeKey.for_keyword("TerminationReason")

ALL_KEYS = (
    SESSION_STATUS,
    ACCOUNT_ID,
    ALGORITHM_ID,
    LOSS_USED_PCT,
    TIME_USED_PCT,
    SESSION_DEADLINE,
    TERMINATION_REASON,
)

# The names the Temporal CLI and the operator service use for each indexed value type.
CLI_TYPE_NAMES = {
    "KEYWORD": "Keyword",
    "DOUBLE": "Double",
    "DATETIME": "Datetime",
    "TEXT": "Text",
    "INT": "Int",
    "BOOL": "Bool",
    "KEYWORD_LIST": "KeywordList",
}


def cli_definitions() -> list[str]:
    """``Name=Type`` pairs for ``temporal server start-dev --search-attribute``."""
    return [f"{key.name}={CLI_TYPE_NAMES[key.indexed_value_type.name]}" for key in ALL_KEYS]
