"""/api/v1/opt-outs: (being written)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/opt-outs", tags=["opt-outs"])
