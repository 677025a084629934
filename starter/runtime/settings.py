"""One Settings object, read from ``TRADING_*`` environment variables (or a .env file)."""

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.risk import OrderLimits
from store.db import asyncpg_url

ENV_PREFIX = "TRADING_"


class Settings(BaseSettings):
    """Configuration of the worker, the API, the CLI and the dev launcher."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", populate_by_name=True
    )

    # Temporal.
    temporal_address: str | None = Field(
        default=None,
        description="`host:port` of a Temporal frontend. Unset: `make run` starts the embedded "
        "dev server on 127.0.0.1.",
    )
    temporal_namespace: str = Field(default="default", description="The Temporal namespace.")
    temporal_task_queue: str = Field(
        default="trading-sessions", description="Workers and the API must agree on it."
    )
    temporal_tls: bool = Field(default=False, description="Connect to Temporal with TLS.")
    temporal_tls_server_ca: Path | None = Field(
        default=None, description="CA bundle file for a self-hosted cluster."
    )
    temporal_tls_client_cert: Path | None = Field(
        default=None, description="mTLS client certificate (file); goes with the key."
    )
    temporal_tls_client_key: Path | None = Field(
        default=None, description="mTLS client key (file); goes with the certificate."
    )
    temporal_tls_server_name: str | None = Field(
        default=None, description="Override the TLS server name."
    )
    temporal_api_key: SecretStr | None = Field(
        default=None, description="API key (Temporal Cloud); implies TLS."
    )

    # PostgreSQL.
    database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("TRADING_DATABASE_URL", "DATABASE_URL"),
        description="`postgresql://user:pass@host/db` (`DATABASE_URL` works too). Unset: the "
        "embedded PostgreSQL in `.data/pg`.",
    )
    database_pool_size: int = Field(
        default=10, description="Connections per process (and as many again on overflow)."
    )

    data_dir: Path = Field(
        default=Path(".data"), description="Where the embedded stack keeps its state."
    )
    api_host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    api_port: int = Field(default=8000, description="Port the API listens on.")
    api_workers: int = Field(
        default=1,
        ge=1,
        description="API processes `make run` starts (`uvicorn --workers N`, one port). Each "
        "has its own database pool, key cache and metrics registry: a `/metrics` scrape is "
        "answered by one of them, so `trading_ingest_checks_total` is that one process's count "
        "(`trading_sessions_active` is read from the database and always right).",
    )
    worker_processes: int = Field(
        default=1,
        ge=1,
        description="`python worker.py` processes `make run` starts on the task queue. A worker "
        "runs workflow code on one core, so run one per core; worker *n* (from 0) serves its "
        "metrics on the two configured ports + 2*n*.",
    )
    dev_temporal_port: int = Field(default=7233, description="Port of the embedded dev server.")
    dev_ui_port: int = Field(default=8233, description="Port of the embedded Web UI.")

    paper_fee_rate: Decimal = Field(
        default=Decimal("0.0005"),
        ge=0,
        lt=1,
        description="Fee of the paper broker's flattening fills, as a fraction of notional.",
    )

    database_outage_alert_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A check that gets through only after the database was unreachable this "
        "long raises a `database_outage` alert.",
    )
    worker_max_cached_workflows: int = Field(
        default=5000,
        gt=0,
        description="Session workflows a worker keeps in memory (an evicted one is replayed "
        "from its history); at least the sessions one worker holds.",
    )
    check_interval_seconds: float = Field(
        default=30.0,
        gt=0,
        description="The fleet sweep checks every open session's loss this often, in one "
        "statement a shard.",
    )
    sweep_shards: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Fleet sweep shards; a session's shard is a stable hash of its id.",
    )
    performance_interval_seconds: float = Field(
        default=300.0,
        gt=0,
        description="The sweep records a periodic performance snapshot of each session that "
        "traded this often.",
    )
    reconcile_interval_seconds: float = Field(
        default=60.0,
        gt=0,
        description="The fleet sweep compares open session rows with their workflows (and "
        "finds ended sessions a late fill reopened) this often.",
    )
    reconcile_min_age_seconds: float = Field(
        default=60.0,
        ge=0,
        description="The reconciler leaves rows younger than this alone: the API inserts a "
        "row, then starts its workflow.",
    )
    halt_webhook_attempts: int = Field(
        default=12,
        ge=1,
        description="Attempts of an algorithm's halt webhook (the halt itself is the gate and "
        "the NOTIFY); then a `halt_webhook_failed` alert. 12 spans about 17 minutes.",
    )
    halt_webhook_first_retry_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Wait after the halt webhook's first failed attempt; doubled after each "
        "one, at most 5 minutes.",
    )
    broker_cancel_after_seconds: float = Field(
        default=60.0,
        gt=0,
        description="The broker's dead-man's switch (`Broker.cancel_all_after`): the fleet "
        "sweep re-arms it for every account with an open session each sweep; if nobody does "
        "for this long (workers or Temporal down), the broker cancels the account's open "
        "orders by itself. Keep it above `TRADING_CHECK_INTERVAL_SECONDS`.",
    )
    paper_venue_tick_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often the paper broker's venue timer (run by the API, independent "
        "of Temporal and the workers) cancels the open orders of accounts whose dead-man's "
        "switch expired: the cancellation lands at most this late.",
    )
    mark_clock_skew_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How far in the future a mark's marked_at may lie (the sender's clock "
        "may run ahead); a later one is refused, or it would hide every later real price.",
    )
    # Pre-trade checks (domain.risk.check_order): defaults for sessions that set none.
    default_max_order_quantity: Decimal | None = Field(
        default=None, gt=0, description="Largest quantity of one order; unset: no limit."
    )
    default_max_order_notional: Decimal | None = Field(
        default=None,
        gt=0,
        description="Largest notional (quantity x limit price, or the latest mark) of one "
        "order; unset: no limit.",
    )
    default_price_collar_pct: Decimal | None = Field(
        default=None,
        gt=0,
        description="A limit price must lie within this many percent of the symbol's latest "
        "mark; unset: no collar.",
    )
    default_max_orders_per_second: int | None = Field(
        default=None, ge=1, description="Most orders a session may place per second; unset: any."
    )
    default_max_open_orders: int | None = Field(
        default=None, ge=1, description="Most OPEN orders a session may hold; unset: any."
    )
    ingest_wake_window_seconds: float = Field(
        default=1.0,
        ge=0,
        description="A fill or mark wakes a session's workflow at most once per this window "
        "unless the loss limit is reached, so a fast feed cannot churn its history.",
    )
    max_session_hours: float = Field(
        default=24 * 7, gt=0, description="Longest session the API and the workflow accept."
    )
    max_start_ahead_days: float = Field(
        default=30,
        gt=0,
        description="How far ahead a session may be scheduled to start; later starts are 422.",
    )

    # Operations: logs, metrics, traces, housekeeping.
    log_level: str = Field(default="INFO", description="Level of every process's logs.")
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="`json`: one object per line with `workflow_id`, `run_id`, `session_id` "
        "(and `activity_type`, `attempt` in activities); `text` for humans.",
    )
    worker_metrics_address: str = Field(
        default="127.0.0.1:9464",
        description="Where the worker serves the Temporal SDK's Prometheus metrics. Empty: off.",
    )
    worker_app_metrics_address: str = Field(
        default="127.0.0.1:9465",
        description="Where the worker serves the project's own Prometheus series. Empty: off.",
    )
    otel_exporter: Literal["none", "console", "otlp"] = Field(
        default="none",
        description="Traces of clients, workflows and activities: `none`, `console` (stdout) "
        "or `otlp` (OTLP over HTTP).",
    )
    otel_endpoint: str | None = Field(
        default=None,
        description="OTLP traces URL, e.g. `http://collector:4318/v1/traces`. Unset: the "
        "`OTEL_EXPORTER_OTLP_*` variables, else `localhost:4318`.",
    )
    otel_service_name: str = Field(
        default="trading-sessions", description="`service.name` of the spans."
    )
    retention_days: int = Field(
        default=30,
        ge=1,
        description="Housekeeping removes fills, marks and positions of sessions that ended "
        "longer ago (audit records are kept).",
    )

    # Security.
    auth_enabled: bool = Field(
        default=True,
        description="Require an API key on every call. Off (dev only): every call is an "
        "anonymous operator.",
    )
    api_key_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long an API process trusts a key it verified: a key revoked elsewhere "
        "(the CLI, another API process) still works there this long. 0: every request looks "
        "its key up.",
    )
    payload_keys: SecretStr | None = Field(
        default=None,
        description="Payload encryption keys: `id:base64key` entries (comma list or JSON list), "
        "newest first. Unset: payloads are not encrypted.",
    )
    codec_cors_origins: str = Field(
        default="http://localhost:8233,http://127.0.0.1:8233",
        description="Origins (comma list) allowed to call the codec endpoints from a browser: "
        "the Web UI.",
    )
    max_request_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Largest request body the API reads (`POST /marks` batches may be larger); "
        "a larger one is 413.",
    )

    @property
    def uses_dev_temporal(self) -> bool:
        return self.temporal_address is None

    @property
    def resolved_temporal_address(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.dev_temporal_port}"

    def default_order_limits(self) -> OrderLimits:
        """The pre-trade checks of a session that sets none of its own."""
        return OrderLimits(
            max_quantity=self.default_max_order_quantity,
            max_notional=self.default_max_order_notional,
            price_collar_pct=self.default_price_collar_pct,
            max_orders_per_second=self.default_max_orders_per_second,
            max_open_orders=self.default_max_open_orders,
        )

    def resolved_database_url(self) -> str:
        """The configured URL, or the embedded server's (started if it is not running)."""
        if self.database_url is not None:
            return asyncpg_url(self.database_url.get_secret_value())
        from store.embedded import ensure_embedded_postgres

        return ensure_embedded_postgres(self.data_dir)
