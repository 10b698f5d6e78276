"""Traces span API → queue → dispatch → provider and carry the message id."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import telemetry
from shared.config import Settings
from shared.domain.jobs import DispatchJob
from shared.services.delivery import dispatch
from shared.services.messaging import intake
from tests.unit.conftest import SETTINGS, World, sandbox_message

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    # The global provider can be set once per process; the exporter is cleared per test.
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
        telemetry._checked_at = -1.0  # look again now, not within the second
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


async def test_dispatch_joins_the_trace_of_the_request_that_accepted_the_message(
    world: World, spans: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("POST /api/v1/messages") as request:
        doc = await intake.accept_message(world.deps, world.tenant_id, sandbox_message())
    request_trace = request.get_span_context().trace_id

    # Later, in another invocation (no current span): the job carries the context.
    received = (await world.queue.receive(SETTINGS.OCM_OUTBOUND_QUEUE))[0]
    job = DispatchJob.decode(received.body)
    assert job.traceparent is not None
    await dispatch.dispatch(world.deps, job)

    by_name = {s.name: s for s in spans.get_finished_spans()}
    accept, run, send = by_name["ocm.accept"], by_name["ocm.dispatch"], by_name["ocm.provider.send"]
    assert {accept.context.trace_id, run.context.trace_id, send.context.trace_id} == {request_trace}
    enqueue = by_name["ocm.enqueue"]
    assert enqueue.parent is not None and enqueue.parent.span_id == accept.context.span_id
    assert run.parent is not None and run.parent.span_id == accept.context.span_id
    assert send.parent is not None and send.parent.span_id == run.context.span_id
    for span in (accept, enqueue, run, send):
        assert span.attributes is not None
        assert span.attributes["ocm.message_id"] == doc["id"]
    assert send.attributes is not None and send.attributes["ocm.provider"] == "sandbox"


async def test_the_trace_context_stays_internal(world: World, spans: InMemorySpanExporter) -> None:
    doc = await intake.accept_message(world.deps, world.tenant_id, sandbox_message())
    assert "traceparent" not in doc  # the API's view
    assert "traceparent" in (await world.deps.store.read("messages", world.tenant_id, doc["id"]))  # type: ignore[operator]


def test_telemetry_is_off_without_a_connection_string() -> None:
    assert telemetry.configure(Settings(APPLICATIONINSIGHTS_CONNECTION_STRING="")) is False
