"""/api/v1/terminals: (being written)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/terminals", tags=["terminals"])
