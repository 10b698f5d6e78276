"""The real clock."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """Clock port on the system time, always timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)
