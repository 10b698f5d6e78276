"""Analytics: rollups of every message's statuses, latency and cost, counted once,
from an ``analytics`` subscription on the events topic, with their compaction timer
and query API (issue 15). Empty until then: a named home, so the modules land in a
room whose rules (``tests/unit/test_layers.py``) are already set."""
