"""The sandbox provider: behaves as a real one would, as each message asks.

``options.sandbox`` (see SandboxOptions) chooses success, a permanent failure, a
transient failure or a throttle (a 429 with Retry-After), optionally only for the
first ``fail_times`` calls; on success a delivery receipt follows after
``delay_ms``, through the same provider-events path real callbacks take.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.channels import ProviderSpec
from shared.domain.errors import ProviderError
from shared.domain.ids import new_id
from shared.domain.messages import CONTENT_TYPES, TERMINAL_TYPES
from shared.ports import Clock, ProviderModule, SendRequest, SendResult, receipt


class SandboxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    send: Literal["success", "fail", "transient", "throttle"] | None = Field(
        default=None,
        description="Simulate the whole channel's provider (an outage: transient; a "
        "rejection: fail); unset: each message's options.sandbox decides.",
    )


class SandboxSender:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def send(self, request: SendRequest) -> SendResult:
        options: dict[str, Any] = (request.message.get("options") or {}).get("sandbox") or {}
        outage = (request.channel.get("settings") or {}).get("send")
        mode = outage or options.get("send", "success")
        if outage:
            options = {**options, "fail_times": None}
        calls_before = request.attempt - 1 + request.throttles
        fail_times = options.get("fail_times")
        if mode != "success" and (fail_times is None or calls_before < fail_times):
            raise self._error(mode, options)
        provider_id = new_id("sbx", self.clock.now())
        delivery = options.get("delivery", "delivered")
        if delivery == "none":
            return SendResult(provider_message_id=provider_id)
        code = reason = None
        if delivery == "failed":
            code = options.get("error_code") or "SANDBOX_UNDELIVERED"
            reason = options.get("error_reason") or "Simulated delivery failure"
        delay = timedelta(milliseconds=options.get("delay_ms", 0))
        event = receipt(
            f"{provider_id}:{delivery}",
            delivery,
            delivery,
            provider_message_id=provider_id,
            message_id=request.message["id"],
            error_code=code,
            error_reason=reason,
            deliver_at=self.clock.now() + delay if delay else None,
            tenant_id=request.tenant_id,
            channel_id=request.channel["id"],
        )
        return SendResult(provider_message_id=provider_id, followups=(event,))

    @staticmethod
    def _error(mode: str, options: dict[str, Any]) -> ProviderError:
        code = options.get("error_code")
        reason = options.get("error_reason")
        if mode == "fail":
            return ProviderError(
                "permanent",
                code or "SANDBOX_REJECTED",
                reason or "Simulated rejection",
                provider_status="400",
            )
        if mode == "throttle":
            return ProviderError(
                "throttled",
                code or "SANDBOX_THROTTLED",
                reason or "Simulated 429 Too Many Requests",
                retry_after=options.get("retry_after_ms", 1000) / 1000,
                provider_status="429",
            )
        return ProviderError(
            "transient",
            code or "SANDBOX_TRANSIENT",
            reason or "Simulated 503",
            provider_status="503",
        )

    async def close(self) -> None:
        return None


PROVIDER = ProviderModule(
    name="sandbox",
    specs=(
        ProviderSpec(
            provider="sandbox",
            type="sandbox",
            description="Simulates a provider; driven per message by options.sandbox.",
            settings=SandboxSettings,
            credentials=(),
            receiver_types=TERMINAL_TYPES,
            sender_types=TERMINAL_TYPES,
            content_types=CONTENT_TYPES,
            directions=("outbound", "inbound"),
            receipts=True,
            attachments=True,
            default=True,
        ),
    ),
    build=lambda env: SandboxSender(env.clock),
)
