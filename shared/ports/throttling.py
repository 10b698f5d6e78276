"""Back-pressure from a store or a queue: not a failure of the work, a request to
come back later."""

from __future__ import annotations

DEFAULT_RETRY_AFTER = 1.0
"""Seconds to wait when the service gave no advice."""


class Throttled(Exception):
    """The store or queue refused for now (Cosmos DB 429, 503 or 408 past the SDK's
    own retries; Service Bus ServerBusy); ``retry_after`` is its advice, in seconds."""

    def __init__(self, what: str, retry_after: float | None = None) -> None:
        self.retry_after = DEFAULT_RETRY_AFTER if retry_after is None else max(retry_after, 0.0)
        super().__init__(f"{what} (retry after {self.retry_after:g} s)")
