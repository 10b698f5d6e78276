"""The provider catalogue: every provider module is discovered, documented, listed in
the README, and described by GET /api/v1/channel-types with its secrets marked."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from shared.adapters.providers import discover

ROOT = Path(__file__).resolve().parents[2]


def test_every_provider_has_its_docs_page_and_a_readme_row() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = set(re.findall(r"^\| `(\w+)` \| `(\w+)`", readme, re.MULTILINE))
    for module in discover():
        assert (ROOT / "docs" / "providers" / f"{module.name}.md").is_file(), module.name
        for spec in module.specs:
            assert (spec.type, spec.provider) in rows, f"README lacks {spec.type}/{spec.provider}"


def test_each_type_has_one_default_provider() -> None:
    defaults: dict[str, list[str]] = {}
    for module in discover():
        for spec in module.specs:
            if spec.default:
                defaults.setdefault(spec.type, []).append(spec.provider)
    assert all(len(v) == 1 for v in defaults.values()), defaults
    assert set(defaults) == {"sandbox", "sms", "whatsapp", "telegram", "email", "push", "chat"}


async def test_channel_types_describe_every_provider_with_secrets_marked(
    api: httpx.AsyncClient,
) -> None:
    answer = await api.get("/api/v1/channel-types")
    assert answer.status_code == 200
    items = {(i["type"], i["provider"]): i for i in answer.json()["items"]}
    specs = {(s.type, s.provider): s for m in discover() for s in m.specs}
    assert set(items) == set(specs)
    for key, spec in specs.items():
        item = items[key]
        assert {c["name"]: c["secret"] for c in item["credentials"]} == {
            c.name: c.secret for c in spec.credentials
        }
        assert item["settings"]["type"] == "object"
        assert item["directions"] and item["receiver_types"] and item["content_types"]
    assert items[("sms", "twilio")]["rate_per_second"] == 1.0
    twilio_secrets = {c["name"] for c in items[("sms", "twilio")]["credentials"] if c["secret"]}
    assert "auth_token" in twilio_secrets
    assert items[("whatsapp", "meta")]["callbacks"] is True
