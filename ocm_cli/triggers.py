"""The triggers a Functions app declares, found by introspection, and the objects
the Functions host would hand them: what ``ocm serve`` runs locally, as Azure would."""

from __future__ import annotations

import functools
import inspect
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.functions.decorators.function_app import Function, FunctionRegister
from azure.functions.servicebus import ServiceBusMessage

from shared.config import Settings
from shared.ports import ReceivedMessage

_SETTING = re.compile(r"%([A-Za-z0-9_]+)%")


def resolve(expression: str, settings: Settings) -> str:
    """Expand ``%NAME%`` binding expressions from settings, then the environment."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        value = getattr(settings, name, os.environ.get(name))
        if value is None:
            raise KeyError(f"binding expression %{name}% names no setting")
        return str(value)

    return _SETTING.sub(lookup, expression)


@dataclass(frozen=True)
class Trigger:
    name: str
    kind: str  # "queue" or "timer"
    target: str  # queue entity or NCRONTAB schedule
    function: Callable[..., Any]
    many: bool = False
    """Given a list of messages at a time (``cardinality="many"``)."""


@functools.cache
def app_functions(app: FunctionRegister) -> tuple[Function, ...]:
    """The app's functions (the SDK lets ``get_functions`` run once per app)."""
    return tuple(app.get_functions())


def discover(app: FunctionRegister, settings: Settings) -> list[Trigger]:
    """Every Service Bus and timer trigger the app declares."""
    triggers = []
    for fn in app_functions(app):
        binding = fn.get_trigger()
        if binding is None:
            continue
        data = binding.get_dict_repr()
        user_fn = fn.get_user_function()
        name = fn.get_function_name() or user_fn.__name__
        if data["type"] == "serviceBusTrigger":
            if "topicName" in data:
                entity = f"{data['topicName']}/subscriptions/{data['subscriptionName']}"
            else:
                entity = data["queueName"]
            many = str(data.get("cardinality") or "").lower().endswith("many")
            target = resolve(entity, settings)
            triggers.append(Trigger(name, "queue", target, user_fn, many=many))
        elif data["type"] == "timerTrigger":
            schedule = resolve(data["schedule"], settings)
            triggers.append(Trigger(name, "timer", schedule, user_fn))
    return triggers


def to_functions_message(msg: ReceivedMessage) -> ServiceBusMessage:
    """The object the Functions host would pass (its concrete class, not the ABC)."""
    return ServiceBusMessage(
        body=msg.body,
        message_id=msg.message_id,
        delivery_count=msg.delivery_count,
        enqueued_time_utc=msg.enqueued_at,
        lock_token=msg.lock_token,
        subject=msg.subject,
        label=msg.subject,
        dead_letter_reason=msg.dead_letter_reason,
        application_properties=dict(msg.application_properties),
        user_properties=dict(msg.application_properties),
    )


async def call(function: Callable[..., Any], argument: Any) -> None:
    result = function(argument)
    if inspect.isawaitable(result):
        await result
