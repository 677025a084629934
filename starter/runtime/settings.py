"""One Settings object, read from ``TRADING_*`` environment variables (or a .env file)."""

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "TRADING_"


class Settings(BaseSettings):
    """Configuration of the worker, the API, the CLI and the dev launcher."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", populate_by_name=True
    )

    # Temporal. Leaving the address unset means: the embedded dev server on 127.0.0.1.
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_task_queue: str = "trading-sessions"
    temporal_tls: bool = False
    temporal_tls_server_ca: Path | None = None
    temporal_tls_client_cert: Path | None = None
    temporal_tls_client_key: Path | None = None
    temporal_tls_server_name: str | None = None
    temporal_api_key: SecretStr | None = None

    # PostgreSQL. Unset means: the embedded server under data_dir/pg.
    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TRADING_DATABASE_URL", "DATABASE_URL")
    )
    database_pool_size: int = 10

    data_dir: Path = Path(".data")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # uvicorn processes `make run` starts for the API; each has its own pools and caches.
    api_workers: int = Field(default=1, ge=1)
    # `python worker.py` processes `make run` starts on the task queue. A worker runs its
    # workflow code and local activities on one core (Python), so a wave of deadlines drains
    # faster with one process per core; each gets the metrics ports after the previous one's.
    worker_processes: int = Field(default=1, ge=1)
    dev_temporal_port: int = 7233
    dev_ui_port: int = 8233

    # Fee the paper broker charges on flattening fills, as a fraction of notional.
    paper_fee_rate: Decimal = Field(default=Decimal("0.0005"), ge=0, lt=1)

    # A check that only succeeds after the database was unreachable this long raises an alert.
    database_outage_alert_seconds: float = Field(default=60.0, gt=0)
    # Workflows a worker keeps in memory; set it to at least the sessions one worker holds.
    worker_max_cached_workflows: int = Field(default=5000, gt=0)
    # The fleet sweep checks every open session's loss this often, in one statement a shard.
    check_interval_seconds: float = Field(default=30.0, gt=0)
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
    mark_clock_skew_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How far in the future a mark's marked_at may lie (the sender's clock "
        "may run ahead); a later one is refused, or it would hide every later real price.",
    )
    ingest_wake_window_seconds: float = Field(
        default=1.0,
        ge=0,
        description="A fill or mark wakes a session's workflow at most once per this window "
        "unless the loss limit is reached, so a fast feed cannot churn its history.",
    )
    max_session_hours: float = Field(default=24 * 7, gt=0)
    max_start_ahead_days: float = Field(
        default=30,
        gt=0,
        description="How far ahead a session may be scheduled to start; later starts are 422.",
    )

    # Operations: logs, metrics, traces, housekeeping.
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    # Temporal SDK metrics (Prometheus) of the worker, and the project's own; "" turns one off.
    worker_metrics_address: str = "127.0.0.1:9464"
    worker_app_metrics_address: str = "127.0.0.1:9465"
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    otel_endpoint: str | None = None
    otel_service_name: str = "trading-sessions"
    retention_days: int = Field(default=30, ge=1)

    # Security. Turning auth off (dev only) makes every call an anonymous operator.
    auth_enabled: bool = True
    # How long an API process trusts a key it verified: a key revoked elsewhere (the CLI,
    # another API process) still works there this long. 0 looks every key up every time.
    api_key_cache_seconds: float = Field(default=5.0, ge=0)
    # Payload encryption: "id:base64key" entries (comma list or JSON list), newest first.
    payload_keys: SecretStr | None = None
    # Origins (comma list) allowed to call the codec endpoints from a browser: the Web UI.
    codec_cors_origins: str = "http://localhost:8233,http://127.0.0.1:8233"
    max_request_bytes: int = Field(default=64 * 1024, ge=1024)

    @property
    def uses_dev_temporal(self) -> bool:
        return self.temporal_address is None

    @property
    def resolved_temporal_address(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.dev_temporal_port}"

    def resolved_database_url(self) -> str:
        """The configured URL, or the embedded server's (started if it is not running)."""
        if self.database_url is not None:
            return _asyncpg_url(self.database_url.get_secret_value())
        from store.embedded import ensure_embedded_postgres

        return ensure_embedded_postgres(self.data_dir)


def _asyncpg_url(url: str) -> str:
    """Accept the usual ``postgresql://`` form and select the asyncpg driver for it."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url
