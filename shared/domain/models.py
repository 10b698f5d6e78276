"""Shared type aliases for stored documents."""

from __future__ import annotations

from typing import Any

Document = dict[str, Any]
"""A stored JSON document: always has ``id`` and ``tenant_id``; ``_etag`` when read."""
