"""Traces: API → queue → dispatch → provider, correlated by message id.

Spans go through the OpenTelemetry API, which does nothing until an SDK is set
up; ``configure`` sets up Azure Monitor when APPLICATIONINSIGHTS_CONNECTION_STRING
is set. A message's trace context (W3C ``traceparent``) is stored on the message
when it is accepted and carried in its dispatch jobs, so the dispatch span — in
another function invocation, maybe on another instance — joins the request's
trace. Every span carries ``ocm.message_id`` (and ``ocm.tenant_id``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace

from shared.config import Settings

log = logging.getLogger(__name__)
tracer = trace.get_tracer("ocm")
_configured = False
_lock = threading.Lock()


def configure(settings: Settings) -> bool:
    """Send traces, logs and metrics to Application Insights when its connection
    string is set (once per process); returns whether telemetry is on."""
    global _configured
    connection = (settings.APPLICATIONINSIGHTS_CONNECTION_STRING or "").strip()
    if not connection:
        return False
    with _lock:
        if not _configured:
            from azure.monitor.opentelemetry import configure_azure_monitor

            # Every logger of ours (shared.*, functions.*, ocm.*) goes out, and the
            # Azure SDKs' own only from WARNING up (they log each HTTP call at INFO).
            logging.getLogger("azure").setLevel(logging.WARNING)
            # A Bot API URL carries the bot token in its path, and httpx spans record
            # the full URL: Telegram calls get no span (docs/providers/telegram.md).
            os.environ.setdefault("OTEL_PYTHON_HTTPX_EXCLUDED_URLS", r"/bot\d+:")
            configure_azure_monitor(connection_string=connection, logger_name="")
            _configured = True
            log.info("telemetry goes to Application Insights")
    return True


OUR_LOGGERS = ("shared", "functions", "ocm")


def apply_log_level(settings: Settings) -> None:
    """OCM_LOG_LEVEL on OCM's own loggers. ``ocm serve`` sets it on the root logger;
    in Azure the Python worker owns the root logger (and host.json its categories),
    so without this the setting did nothing there (azure review C7)."""
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(settings.OCM_LOG_LEVEL)


_sdk_seen = False
_checked_at = -1.0


def enabled() -> bool:
    """Whether an OpenTelemetry SDK is set up (by ``configure``, a host or a test).

    Asking OpenTelemetry reads the environment each time, too slow for the intake
    path; an SDK once set stays set, and its absence is re-checked once a second.
    """
    global _sdk_seen, _checked_at
    if _sdk_seen:
        return True
    now = time.monotonic()
    if now - _checked_at >= 1.0:
        _checked_at = now
        _sdk_seen = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    return _sdk_seen


def traceparent() -> str | None:
    """The current trace context as a W3C traceparent, or None when not tracing."""
    if not enabled() or not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def span(name: str, parent: str | None = None, **attributes: Any) -> Iterator[trace.Span]:
    """A span named ``ocm.<name>``, child of ``parent`` (a traceparent) if given,
    else of the current span; attribute names get the ``ocm.`` prefix. Without an
    SDK it costs nothing (the intake path calls it for every message)."""
    if not enabled():
        yield trace.INVALID_SPAN
        return
    context = propagate.extract({"traceparent": parent}) if parent else None
    with tracer.start_as_current_span(
        f"ocm.{name}",
        context=context,
        attributes={f"ocm.{k}": v for k, v in attributes.items() if v is not None},
    ) as current:
        yield current
