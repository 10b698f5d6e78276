"""Settings: one class; field names are the app-setting (environment) names."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDERS = frozenset({"", "changeme", "change-me", "placeholder", "secret", "dev"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore")

    OCM_ENV: Literal["development", "production"] = "development"
    OCM_BACKEND: Literal["embedded", "azure"] = "embedded"
    OCM_DATA_DIR: Path = Path(".ocm")
    OCM_HOST: str = "127.0.0.1"
    OCM_PORT: int = Field(default=7071, ge=1, le=65535)
    OCM_LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    OCM_OUTBOUND_QUEUE: str = "ocm-outbound"
    OCM_PROVIDER_EVENTS_QUEUE: str = "ocm-provider-events"
    OCM_EVENTS_TOPIC: str = "ocm-events"
    OCM_EVENTS_LOG_SUBSCRIPTION: str = "ocm-events-log"
    OCM_EVENTS_LOG_TYPES: str = Field(
        default="message.failed,message.expired",
        description="Event types the log subscription receives (comma-separated; * for "
        "all). In Azure this is the subscription's SQL filter rule.",
    )

    OCM_OUTBOX_SWEEP_SCHEDULE: str = "*/30 * * * * *"
    OCM_HOUSEKEEPING_SCHEDULE: str = "0 */10 * * * *"

    OCM_MAX_ATTEMPTS: int = Field(default=5, ge=1, le=50)
    OCM_RETRY_BASE_SECONDS: float = Field(default=2.0, gt=0)
    OCM_RETRY_MAX_SECONDS: float = Field(default=900.0, gt=0)
    OCM_MAX_THROTTLES: int = Field(default=100, ge=1)
    OCM_PAUSED_RECHECK_SECONDS: float = Field(default=60.0, gt=0)
    OCM_QUEUE_MAX_DELIVERY_COUNT: int = Field(default=10, ge=1)
    OCM_QUEUE_LOCK_SECONDS: float = Field(default=60.0, gt=0)
    OCM_CLAIM_TIMEOUT_SECONDS: float = Field(
        default=300.0, gt=0, description="After this, a send in progress is presumed lost."
    )
    OCM_OUTBOX_GRACE_SECONDS: float = Field(
        default=30.0, ge=0, description="Age after which the outbox sweep re-publishes."
    )
    OCM_IDEMPOTENCY_TTL_SECONDS: int = Field(default=86_400, ge=60)
    OCM_SECRET_KEY: str | None = Field(
        default=None,
        description="Fernet key of the embedded secret store; generated into the data "
        "directory when unset (development).",
    )
    OCM_ALLOW_PRIVATE_EGRESS: bool = False

    @model_validator(mode="after")
    def _production_is_strict(self) -> Settings:
        if self.OCM_ENV == "production" and self.OCM_BACKEND == "embedded":
            key = (self.OCM_SECRET_KEY or "").strip().lower()
            if key in PLACEHOLDERS:
                raise ValueError(
                    "OCM_SECRET_KEY must be set to a real Fernet key in production "
                    "(generate one with `ocm secret-key`)"
                )
        return self

    @property
    def events_log_types(self) -> tuple[str, ...] | None:
        """The log subscription's event types, or None for every event."""
        types = tuple(t.strip() for t in self.OCM_EVENTS_LOG_TYPES.split(",") if t.strip())
        return None if "*" in types else types

    @property
    def private_egress_allowed(self) -> bool:
        return self.OCM_ENV == "development" or self.OCM_ALLOW_PRIVATE_EGRESS

    @property
    def database_path(self) -> Path:
        return self.OCM_DATA_DIR / "ocm.sqlite3"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
