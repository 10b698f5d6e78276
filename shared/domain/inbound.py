"""What an inbound message may be, whichever provider reports it: what an outbound
message may be (the same content limits, 256 KiB of JSON at most), from a sender whose
address is one of its type. A signed callback is the provider's word, not proof that
what it carries is safe to keep and fan out to webhooks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from shared.domain.addresses import normalise_address
from shared.domain.errors import CallbackInvalid, PayloadTooLarge
from shared.domain.messages import InboundCreate

MAX_INBOUND_BYTES = 256 * 1024
_FIELDS = ("sender", "receiver", "content", "subject", "provider_message_id")
_SHORT_SENDER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ]{0,14}$")
"""What else texts a number: a short code or an alphanumeric sender id."""


def checked_inbound(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload of an inbound message, its sender's address normalised; a 413
    (INBOUND_TOO_LARGE) or a 400 (CALLBACK_INVALID) if OCM cannot keep it."""
    size = len(orjson.dumps({k: payload.get(k) for k in _FIELDS}))
    if size > MAX_INBOUND_BYTES:
        raise PayloadTooLarge(
            f"An inbound message may be at most {MAX_INBOUND_BYTES} bytes of JSON; this "
            f"one is {size}",
            code="INBOUND_TOO_LARGE",
        )
    try:
        inbound = InboundCreate.model_validate(
            {k: payload[k] for k in _FIELDS if payload.get(k) is not None}
        )
    except ValidationError as exc:
        where = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors()[:5])
        raise CallbackInvalid(f"The inbound message is not one OCM can keep ({where})") from None
    kind, address = inbound.sender.type, inbound.sender.address
    normal = normalise_address(kind, address)
    if normal is None and kind == "phone" and _SHORT_SENDER.match(address):
        normal = address
    if normal is None:
        raise CallbackInvalid(f"The inbound message's sender is not a {kind} address")
    return {**payload, "sender": {**payload["sender"], "address": normal}}
