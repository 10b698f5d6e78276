"""The baseline server: a bare FastAPI endpoint served by uvicorn as `ocm serve` serves
OCM (one process, default asyncio loop, log_level warning, no access log, no lifespan).

Run as ``python -m bench.bare_app --port N``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import Response

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
_ids = itertools.count(1)


class _Json(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


@app.get("/api/health")
async def health() -> _Json:
    return _Json({"status": "ok"})


@app.post("/api/v1/messages")
async def accept(request: Request) -> _Json:
    body = orjson.loads(await request.body())
    answer = {"id": f"msg_{next(_ids)}", "status": "queued", "channel": body.get("channel")}
    return _Json(answer, status_code=202)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", lifespan="off", access_log=False
    )
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
