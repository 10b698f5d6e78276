"""Ports: the small interfaces the services depend on; adapters implement them.

Every adapter of a port passes the same contract suite (tests/contract/). The
package is the ports' public face: import from ``shared.ports``, not its modules.
"""

from shared.domain.errors import CallbackInvalid, CallbackRejected, ProviderError
from shared.ports.clock import Clock
from shared.ports.documents import (
    MAX_TRANSACTION_WRITES,
    SYSTEM,
    BatchFailed,
    Conflict,
    ContainerSpec,
    DocumentStore,
    Filter,
    FilterOp,
    InvalidCursor,
    NotFound,
    Page,
    PreconditionFailed,
    Query,
    Scope,
    StoreError,
    SystemScope,
    Write,
    partition_of,
)
from shared.ports.providers import (
    CallbackReply,
    CallbackRequest,
    Callbacks,
    ProviderEnv,
    ProviderEvent,
    ProviderModule,
    Sender,
    SendRequest,
    SendResult,
    receipt,
)
from shared.ports.queues import (
    MessageLockLost,
    MessageTooLarge,
    OutgoingMessage,
    Queue,
    ReceivedMessage,
    Subscription,
    reaches_anyone,
    refuse_oversized,
    subscribers,
)
from shared.ports.secrets import SecretStore
from shared.ports.throttling import Throttled

__all__ = [
    "MAX_TRANSACTION_WRITES",
    "SYSTEM",
    "BatchFailed",
    "CallbackInvalid",
    "CallbackRejected",
    "CallbackReply",
    "CallbackRequest",
    "Callbacks",
    "Clock",
    "Conflict",
    "ContainerSpec",
    "DocumentStore",
    "Filter",
    "FilterOp",
    "InvalidCursor",
    "MessageLockLost",
    "MessageTooLarge",
    "NotFound",
    "OutgoingMessage",
    "Page",
    "PreconditionFailed",
    "ProviderEnv",
    "ProviderError",
    "ProviderEvent",
    "ProviderModule",
    "Query",
    "Queue",
    "ReceivedMessage",
    "Scope",
    "SecretStore",
    "SendRequest",
    "SendResult",
    "Sender",
    "StoreError",
    "Subscription",
    "SystemScope",
    "Throttled",
    "Write",
    "partition_of",
    "reaches_anyone",
    "receipt",
    "refuse_oversized",
    "subscribers",
]
