"""Names people read hold no control, text-direction or invisible characters (security
review, finding 9): an app name took NUL, U+202E and zero-width characters unchanged."""

from __future__ import annotations

import httpx
import pytest

from shared.services.deps import Deps
from shared.services.onboarding import signup

TRICKS = {
    "NUL": "crm\x00",
    "right-to-left override": "invoice\u202egnp.exe",
    "zero-width space": "pay\u200bpal",
    "isolate": "a\u2066b\u2069",
    "byte-order mark": "\ufeffcrm",
}


@pytest.fixture
async def key(deps: Deps) -> dict[str, str]:
    return {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}


@pytest.mark.parametrize("name", TRICKS.values(), ids=TRICKS.keys())
async def test_every_name_field_refuses_invisible_and_direction_characters(
    api: httpx.AsyncClient, key: dict[str, str], name: str
) -> None:
    attempts = [
        ("/api/v1/apps", {"name": name, "scopes": ["send:message"]}, "name"),
        ("/api/v1/users", {"email": "n@example.com", "role": "viewer", "name": name}, "name"),
        ("/api/v1/tenants", {"name": name}, "name"),
        (
            "/api/v1/messages",
            {
                "channel": "sandbox",
                "receiver": {"type": "phone", "address": "+4791234567", "display_name": name},
                "content": {"type": "text", "text": "x"},
            },
            "receiver.display_name",
        ),
    ]
    for path, body, field in attempts:
        answer = await api.post(path, json=body, headers=key)
        assert answer.status_code == 422, (path, answer.text)
        assert field in [e["field"] for e in answer.json()["errors"]], (path, answer.text)


async def test_names_in_any_script_and_with_emoji_are_kept(
    api: httpx.AsyncClient, key: dict[str, str]
) -> None:
    persian = "\u0645\u0631\u06a9\u0632 \u067e\u06cc\u0627\u0645\u200c\u0647\u0627"  # a ZWNJ
    for name in ("Ålesund Café", persian, "ops 👩\u200d💻"):
        answer = await api.post(
            "/api/v1/apps", json={"name": name, "scopes": ["send:message"]}, headers=key
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["app"]["name"] == name
