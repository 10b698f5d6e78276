"""Settings: one class; field names are the app-setting (environment) names."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic.config import JsonDict
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_ONLY: JsonDict = {"deploy": False}
"""Marks settings that a deployment to Azure does not set (the embedded backend's,
or local stand-ins for managed identity); every other setting is an app setting
of the Function App in infra/ (tests/infra checks both sides)."""

PLACEHOLDERS = frozenset({"", "changeme", "change-me", "placeholder", "secret", "dev"})


class Settings(BaseSettings):
    # Errors name the setting and what it should look like, never its value: some
    # hold connection strings or keys, and start-up errors reach the host's logs.
    model_config = SettingsConfigDict(
        case_sensitive=True, extra="ignore", hide_input_in_errors=True
    )

    OCM_ENV: Literal["development", "production"] = "development"
    OCM_BACKEND: Literal["embedded", "azure"] = "embedded"
    OCM_DATA_DIR: Path = Field(default=Path(".ocm"), json_schema_extra=LOCAL_ONLY)
    OCM_HOST: str = Field(default="127.0.0.1", json_schema_extra=LOCAL_ONLY)
    OCM_PORT: int = Field(default=7071, ge=1, le=65535, json_schema_extra=LOCAL_ONLY)
    OCM_HTTP_READ_TIMEOUT_SECONDS: float = Field(
        default=30.0, gt=0, le=600, json_schema_extra=LOCAL_ONLY
    )
    OCM_LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    OCM_OUTBOUND_QUEUE: str = "ocm-outbound"
    OCM_PROVIDER_EVENTS_QUEUE: str = "ocm-provider-events"
    OCM_EVENTS_TOPIC: str = "ocm-events"
    OCM_EVENTS_LOG_SUBSCRIPTION: str = "ocm-events-log"
    OCM_WEBHOOKS_SUBSCRIPTION: str = Field(
        default="ocm-webhooks",
        description="The events topic's subscription that fans events out to webhooks.",
    )
    OCM_ANALYTICS_SUBSCRIPTION: str = "ocm-analytics"
    OCM_ANALYTICS_ENABLED: bool = True  # off: nothing is published for analytics
    OCM_COST_PER_MILLION_USD: float = Field(
        default=17.55,
        ge=0,
        description="What the platform costs per million messages "
        "(docs/cost.md's model): analytics' cost_usd figure.",
    )
    OCM_WEBHOOK_QUEUE: str = Field(
        default="ocm-webhook-deliveries", description="One message per webhook delivery attempt."
    )
    OCM_WEBHOOK_TIMEOUT_SECONDS: float = Field(
        default=15.0, gt=0, le=60, description="How long a webhook endpoint has to answer."
    )
    OCM_WEBHOOK_WARN_AFTER_SECONDS: int = Field(
        default=86_400,
        ge=1,
        description="An endpoint failing this long, continuously, gets a "
        "webhook.endpoint.failing event.",
    )
    OCM_WEBHOOK_DISABLE_AFTER_SECONDS: int = Field(
        default=5 * 86_400,
        ge=1,
        description="An endpoint failing this long, continuously, is disabled "
        "(webhook.endpoint.disabled).",
    )
    OCM_WEBHOOK_SECRET_GRACE_SECONDS: int = Field(
        default=86_400,
        ge=0,
        le=30 * 86_400,
        description="After a secret rotation, how long the old secret signs alongside the new.",
    )
    OCM_EVENT_RETENTION_DAYS: int = Field(
        default=30,
        ge=1,
        le=365,
        description="How long events (for replay) and webhook delivery records are kept.",
    )
    OCM_EVENTS_LOG_TYPES: str = Field(
        default="message.failed,message.expired,analytics.drift",
        description="Event types the log subscription receives (comma-separated; * for "
        "all). In Azure this is the subscription's SQL filter rule.",
    )

    OCM_OUTBOX_SWEEP_SCHEDULE: str = "*/30 * * * * *"
    OCM_HOUSEKEEPING_SCHEDULE: str = "0 */10 * * * *"
    OCM_ANALYTICS_RECONCILE_SCHEDULE: str = "0 15 * * * *"

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
    OCM_LOOKUP_CACHE_SECONDS: float = Field(
        default=5.0,
        ge=0,
        description="How long an instance caches API-key entries and channels for "
        "sending (0: never); its own changes apply at once.",
    )
    OCM_PUBLIC_BASE_URL: str | None = Field(
        default=None,
        description="The platform's public origin (https://ocm.example.com), where it is "
        "reached through a front end or custom domain: provider signatures that cover "
        "the callback URL are checked against it (else the request's own URL).",
    )
    WEBSITE_HOSTNAME: str | None = Field(
        default=None,
        json_schema_extra=LOCAL_ONLY,  # the platform sets it, not the deployment
        description="Set by Azure App Service to the app's default host name; the "
        "public origin when OCM_PUBLIC_BASE_URL is not set, on the Azure backend.",
    )
    OCM_TRUST_FORWARDED_FOR: bool = Field(
        default=False,
        description="Take the client's address from the last X-Forwarded-For hop (set "
        "behind a proxy that appends it, as Azure's front end does); else the peer's.",
    )
    OCM_RATE_LIMIT_PER_SECOND: float = Field(
        default=100.0, ge=0, description="Requests per second per application (0: none)."
    )
    OCM_RATE_LIMIT_BURST: int = Field(
        default=200, ge=1, description="Requests an application may make at once."
    )
    OCM_TENANT_RATE_LIMIT_PER_SECOND: float = Field(
        default=300.0,
        ge=0,
        description="Requests per second per tenant, all its applications and users (0: none).",
    )
    OCM_TENANT_RATE_LIMIT_BURST: int = Field(
        default=600, ge=1, description="Requests a tenant's credentials may make at once."
    )
    OCM_MESSAGE_RATE_PER_SECOND: float = Field(
        default=1000.0,
        ge=0,
        description="Messages per second per tenant; a batch counts its messages (0: none).",
    )
    OCM_MESSAGE_RATE_BURST: int = Field(
        default=5000, ge=1000, description="Messages a tenant may send at once (a batch fits)."
    )
    OCM_QUOTA_MESSAGES_PER_DAY: int = Field(
        default=0, ge=0, description="Messages a tenant may send per UTC day (0: no quota)."
    )
    OCM_QUOTA_MESSAGES_PER_MONTH: int = Field(
        default=0, ge=0, description="Messages a tenant may send per UTC month (0: no quota)."
    )
    OCM_AUDIT_RETENTION_DAYS: int = Field(
        default=400, ge=1, description="How long audit records are kept."
    )
    OCM_IDEMPOTENCY_TTL_SECONDS: int = Field(default=86_400, ge=60)
    OCM_SECRET_KEY: str | None = Field(
        default=None,
        description="Fernet key of the embedded secret store; generated into the data "
        "directory when unset (development).",
        json_schema_extra=LOCAL_ONLY,
    )

    # --- azure backend (identity-based: DefaultAzureCredential) -----------------
    OCM_COSMOS_ENDPOINT: str | None = Field(
        default=None,
        description="Cosmos DB account endpoint, https://<account>.documents.azure.com:443/",
    )
    OCM_COSMOS_DATABASE: str = Field(default="ocm", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
    OCM_COSMOS_KEY: str | None = Field(
        default=None,
        description="Account key, for the Cosmos DB emulator or a local test server only; "
        "in Azure the Function App's identity is used.",
        json_schema_extra=LOCAL_ONLY,
    )
    OCM_KEY_VAULT_URL: str | None = Field(
        default=None, description="Key Vault URI, https://<vault>.vault.azure.net/"
    )
    OCM_SECRET_CACHE_SECONDS: float = Field(
        default=60.0, ge=0, description="How long secrets read from Key Vault are cached."
    )
    ServiceBusConnection__fullyQualifiedNamespace: str | None = Field(
        default=None,
        description="Service Bus namespace host, <namespace>.servicebus.windows.net "
        "(the identity-based connection the Functions host reads too).",
    )
    ServiceBusConnection: str | None = Field(
        default=None,
        description="A Service Bus connection string (the Service Bus emulator, a live "
        "test namespace); when set it wins over the namespace, for the Functions host "
        "and OCM alike.",
        json_schema_extra=LOCAL_ONLY,
    )
    APPLICATIONINSIGHTS_CONNECTION_STRING: str | None = Field(
        default=None, description="Sends traces, logs and metrics to Application Insights."
    )
    OCM_ALLOW_PRIVATE_EGRESS: bool = False

    @field_validator("OCM_PUBLIC_BASE_URL", "WEBSITE_HOSTNAME", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # An app setting cannot be null: Terraform writes "" for "not set".
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def public_base_url(self) -> str | None:
        """The public origin: OCM_PUBLIC_BASE_URL, else on Azure the host name the
        platform gives the app (which the platform may change: Azure's newer
        `<name>-<hash>.<region>.azurewebsites.net` names are not known in advance)."""
        if self.OCM_PUBLIC_BASE_URL:
            return self.OCM_PUBLIC_BASE_URL
        host = (self.WEBSITE_HOSTNAME or "").strip()
        if self.OCM_BACKEND == "azure" and host:
            local = host.partition(":")[0] in ("localhost", "127.0.0.1")  # `func start`
            return f"{'http' if local else 'https'}://{host}"
        return None

    @model_validator(mode="after")
    def _production_is_strict(self) -> Settings:
        if self.OCM_ENV == "production" and self.OCM_BACKEND == "embedded":
            key = (self.OCM_SECRET_KEY or "").strip().lower()
            if key in PLACEHOLDERS:
                raise ValueError(
                    "OCM_SECRET_KEY must be set to a real Fernet key in production "
                    "(generate one with `ocm secret-key`)"
                )
        if self.OCM_BACKEND == "azure":
            problems = self._azure_problems()
            if problems:
                raise ValueError("OCM_BACKEND=azure is not configured: " + "; ".join(problems))
        return self

    def _azure_problems(self) -> list[str]:
        problems = []
        if not _https_url(self.OCM_COSMOS_ENDPOINT, plain_ok=self.OCM_ENV != "production"):
            problems.append(
                "OCM_COSMOS_ENDPOINT must be the Cosmos DB endpoint, like "
                "https://<account>.documents.azure.com:443/"
                + ("" if self.OCM_ENV == "production" else " (or http:// for a local server)")
            )
        if not _https_url(self.OCM_KEY_VAULT_URL, plain_ok=False):
            problems.append(
                "OCM_KEY_VAULT_URL must be the Key Vault URI, like https://<vault>.vault.azure.net/"
            )
        namespace = (self.ServiceBusConnection__fullyQualifiedNamespace or "").strip()
        if not (self.ServiceBusConnection or "").strip():  # a connection string wins
            if not namespace:
                problems.append(
                    "ServiceBusConnection__fullyQualifiedNamespace must name the Service Bus "
                    "namespace, like <namespace>.servicebus.windows.net "
                    "(or ServiceBusConnection hold a connection string)"
                )
            elif "." not in namespace or any(c in namespace for c in "/<> "):
                problems.append(
                    "ServiceBusConnection__fullyQualifiedNamespace must be a host name, like "
                    "<namespace>.servicebus.windows.net (not a URL or a placeholder)"
                )
        if self.OCM_ENV == "production" and self.OCM_COSMOS_KEY:
            problems.append(
                "OCM_COSMOS_KEY is for local servers; in production the Function App's "
                "identity reaches Cosmos DB (unset it)"
            )
        return problems

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


def _https_url(value: str | None, *, plain_ok: bool = True) -> bool:
    """An absolute URL with a host; http is allowed only where ``plain_ok``."""
    text = (value or "").strip()
    schemes = ("https://", "http://") if plain_ok else ("https://",)
    scheme = next((s for s in schemes if text.lower().startswith(s)), None)
    return (
        scheme is not None
        and len(text) > len(scheme)
        and text[len(scheme)] not in "/:"
        and not any(c in text for c in "<> ")  # a placeholder left in a sample
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
