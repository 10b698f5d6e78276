"""The events log subscription's lines: one per event, never for analytics' own
gathered messages (which a log of every type, "*", also receives)."""

from __future__ import annotations

import logging

import orjson
import pytest

from shared.services.events import facts_out
from shared.services.events import log as event_log


def test_an_event_is_a_line_and_a_gathered_analytics_message_is_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ocm.events")
    failed = {"id": "evt_1", "type": "message.failed", "tenant_id": "tn_1", "data": {}}
    event_log.record(orjson.dumps(failed))
    gathered = facts_out.messages([orjson.dumps({"id": "evt_2", "type": "message.sent"})])
    event_log.record(gathered[0].body)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) == 1 and "evt_1 message.failed" in lines[0]
