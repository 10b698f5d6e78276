"""/api/v1/templates: (being written)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/templates", tags=["templates"])
