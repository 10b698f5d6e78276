"""PyPI's JSON API (https://docs.pypi.org/api/json/), as far as the dependency audit
reads it: ``GET /pypi/<project>/json`` (the latest release's ``info.version`` and its
``vulnerabilities``) and ``GET /pypi/<project>/<version>/json`` (that release's).
Either answers 404 for what it does not know; ``per_release=False`` answers 404 to
every release page, as this workplace's network does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.peers.base import Peer


def advisory(id_: str, *, fixed_in: list[str], aliases: list[str] | None = None) -> dict[str, Any]:
    """One entry of ``vulnerabilities`` as PyPI publishes it."""
    return {
        "id": id_,
        "aliases": aliases or [],
        "details": f"{id_}: a flaw",
        "summary": None,
        "fixed_in": fixed_in,
        "link": f"https://osv.dev/vulnerability/{id_}",
        "source": "osv",
        "withdrawn": None,
    }


@dataclass
class PypiPeer(Peer):
    # project → version → that release's vulnerabilities; the highest version is latest
    releases: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    per_release: bool = True

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/pypi/{project}/json", self._project)
        app.router.add_get("/pypi/{project}/{version}/json", self._release)

    def _latest(self, project: str) -> str:
        from packaging.version import Version

        return max(self.releases[project], key=Version)

    async def _project(self, request: web.Request) -> web.Response:
        project = request.match_info["project"]
        if project not in self.releases:
            return web.json_response({"message": "Not Found"}, status=404)
        latest = self._latest(project)
        return web.json_response(
            {
                "info": {"name": project, "version": latest},
                "vulnerabilities": self.releases[project][latest],
            }
        )

    async def _release(self, request: web.Request) -> web.Response:
        project, version = request.match_info["project"], request.match_info["version"]
        if not self.per_release or version not in self.releases.get(project, {}):
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response(
            {
                "info": {"name": project, "version": version},
                "vulnerabilities": self.releases[project][version],
            }
        )
