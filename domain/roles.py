"""The roles an API key can have: what each kind of caller is for."""

from enum import StrEnum


class Role(StrEnum):
    TRADER = "trader"
    SERVICE = "service"
    OPERATOR = "operator"
    ADMIN = "admin"
    MARKET_DATA = "market_data"  # a price feed: POST /marks and nothing else
    RISK = "risk"  # a risk desk: engages the kill switch, reads the risk figures
    AUDITOR = "auditor"  # compliance: reads the audit trail and nothing else
