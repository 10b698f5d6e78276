"""The HTTP API: the FastAPI app, built without touching any backend."""

from __future__ import annotations

from shared.api.app import create_app
from shared.bootstrap import get_deps

asgi_app = create_app(get_deps)
