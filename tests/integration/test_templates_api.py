"""Message templates through the HTTP API: create (idempotent), list, read, change,
delete, preview; bad input is a 4xx problem with a stable code, never a 5xx; another
tenant's template is not found."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from shared.domain.template_budget import MAX_VALUE
from shared.services.deps import Deps
from shared.services.onboarding import signup

TEMPLATES = "/api/v1/templates"
PROBLEM = "application/problem+json"
WELCOME: dict[str, Any] = {
    "name": "welcome",
    "description": "Sent after sign-up",
    "variables": [
        {"name": "name", "description": "The customer's first name"},
        {"name": "code", "type": "number", "required": False},
    ],
    "variants": {
        "email": {
            "subject": "Welcome, {{ name }}",
            "html": "<p>Hello {{ name }}</p>{% if code %}<p>Code {{ code }}</p>{% endif %}",
            "text": "Hello {{ name }}",
        },
        "whatsapp": {
            "text": "Hello {{ name }}",
            "whatsapp_template": {"name": "welcome", "language": "en_US", "parameters": ["name"]},
        },
        "default": {"text": "Hello {{ name }}"},
    },
}


async def tenant_key(deps: Deps, name: str = "acme") -> str:
    return (await signup.create_tenant(deps, name)).api_key


def auth(key: str, **headers: str) -> dict[str, str]:
    return {"X-API-Key": key, **headers}


async def create(api: httpx.AsyncClient, key: str, body: dict[str, Any] = WELCOME) -> Any:
    answer = await api.post(TEMPLATES, json=body, headers=auth(key))
    assert answer.status_code == 201, answer.text
    return answer.json()


def problem(answer: httpx.Response, status: int, code: str) -> Any:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body = answer.json()
    assert body["code"] == code, body
    return body


async def test_a_template_is_created_read_and_listed(api: httpx.AsyncClient, deps: Deps) -> None:
    key = await tenant_key(deps)
    created = await create(api, key)
    assert created["id"].startswith("tpl_") and created["name"] == "welcome"
    assert created["variables"][1] == {
        "name": "code",
        "required": False,
        "type": "number",
        "description": None,
    }
    read = await api.get(f"{TEMPLATES}/WELCOME", headers=auth(key))  # names ignore case
    assert read.status_code == 200 and read.json() == created
    await create(api, key, {**WELCOME, "name": "reminder"})
    names: list[str] = []
    cursor = None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await api.get(TEMPLATES, params=params, headers=auth(key))).json()
        names += [t["name"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == ["welcome", "reminder"]
    bad_cursor = await api.get(TEMPLATES, params={"cursor": "nope"}, headers=auth(key))
    problem(bad_cursor, 400, "INVALID_CURSOR")


async def test_a_name_is_unique_per_tenant_and_creates_replay_by_idempotency_key(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key, other = await tenant_key(deps, "a"), await tenant_key(deps, "b")
    headers = auth(key, **{"Idempotency-Key": "k-1"})
    first = await api.post(TEMPLATES, json=WELCOME, headers=headers)
    again = await api.post(TEMPLATES, json=WELCOME, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    problem(await api.post(TEMPLATES, json=WELCOME, headers=auth(key)), 409, "TEMPLATE_NAME_TAKEN")
    reused = await api.post(TEMPLATES, json={**WELCOME, "name": "other"}, headers=headers)
    problem(reused, 409, "IDEMPOTENCY_KEY_REUSED")
    await create(api, other)  # the same name in another tenant


async def test_a_preview_renders_each_channel_type(api: httpx.AsyncClient, deps: Deps) -> None:
    key = await tenant_key(deps)
    await create(api, key)

    async def preview(**body: Any) -> Any:
        answer = await api.post(f"{TEMPLATES}/welcome/preview", json=body, headers=auth(key))
        assert answer.status_code == 200, answer.text
        return answer.json()

    email = await preview(channel_type="email", data={"name": "<Ann>", "code": 42})
    assert email == {
        "content": {
            "type": "html",
            "html": "<p>Hello &lt;Ann&gt;</p><p>Code 42</p>",
            "text": "Hello <Ann>",
        },
        "subject": "Welcome, <Ann>",
    }
    sms = await preview(channel_type="sms", data={"name": "Ann"})
    assert sms == {"content": {"type": "text", "text": "Hello Ann"}, "subject": None}
    outside = await preview(
        channel_type="whatsapp", data={"name": "Ann"}, in_window=False, language="nb"
    )
    assert outside["content"] == {
        "type": "template",
        "template": "welcome",
        "language": "nb",
        "data": {"parameters": ["Ann"]},
    }


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"channel_type": "sms", "data": {}}, "TEMPLATE_VARIABLE_MISSING", "data.name"),
        (
            {"channel_type": "sms", "data": {"name": "A", "x": 1}},
            "TEMPLATE_VARIABLE_UNKNOWN",
            "data.x",
        ),
        (
            {"channel_type": "sms", "data": {"name": "A", "code": "1"}},
            "TEMPLATE_VARIABLE_INVALID",
            "data.code",
        ),
        ({"channel_type": "sms", "data": {"name": 1}}, "TEMPLATE_VARIABLE_INVALID", "data.name"),
        ({"channel_type": "SMS!", "data": {}}, "VALIDATION_FAILED", "channel_type"),
        ({"channel_type": "sms", "data": [1]}, "VALIDATION_FAILED", "data"),
        ({"channel_type": "sms", "language": "english"}, "VALIDATION_FAILED", "language"),
    ],
)
async def test_a_preview_refuses_bad_data_with_the_codes_a_message_gets(
    api: httpx.AsyncClient, deps: Deps, body: dict[str, Any], code: str, field: str
) -> None:
    key = await tenant_key(deps)
    await create(api, key)
    answer = await api.post(f"{TEMPLATES}/welcome/preview", json=body, headers=auth(key))
    assert field in [e["field"] for e in problem(answer, 422, code)["errors"]]


async def test_a_render_failure_and_a_missing_variant_are_problems(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key = await tenant_key(deps)
    body = {
        "name": "fragile",
        "variables": [{"name": "order", "type": "any"}],
        "variants": {"sms": {"text": "{{ order.total }} {{ order['__class__'] }}"}},
    }
    await create(api, key, body)
    path = f"{TEMPLATES}/fragile/preview"
    missing = await api.post(
        path, json={"channel_type": "sms", "data": {"order": {}}}, headers=auth(key)
    )
    detail = problem(missing, 422, "TEMPLATE_RENDER_FAILED")["detail"]
    assert "has no attribute 'total'" in detail and "Traceback" not in detail
    escape = {"channel_type": "sms", "data": {"order": {"total": 1}}}
    problem(await api.post(path, json=escape, headers=auth(key)), 422, "TEMPLATE_RENDER_FAILED")
    no_variant = {"channel_type": "email", "data": {"order": {}}}
    problem(
        await api.post(path, json=no_variant, headers=auth(key)), 422, "TEMPLATE_VARIANT_MISSING"
    )


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"variants": {"sms": {"text": "{% if name %}"}}}, "TEMPLATE_INVALID"),
        ({"variants": {"sms": {"text": "{{ ''.__class__.__mro__ }}"}}}, "TEMPLATE_INVALID"),
        ({"variants": {"sms": {"text": "{{ name.format(1) }}"}}}, "TEMPLATE_INVALID"),
        ({"variants": {"sms": {"text": "x", "html": "<p>x</p>"}}}, "TEMPLATE_INVALID"),
        ({"variants": {"default": {"html": "<p>{{ name }}</p>"}}}, "TEMPLATE_INVALID"),
        ({"variants": {"sms": {"text": "{{ nickname }}"}}}, "TEMPLATE_VARIABLE_UNDECLARED"),
        ({"variables": [{"name": "name"}, {"name": "name"}]}, "TEMPLATE_INVALID"),
        ({"variables": [{"name": "first name"}]}, "VALIDATION_FAILED"),
        ({"variables": [{"name": "n", "type": "date"}]}, "VALIDATION_FAILED"),
        ({"variants": {"fax": {"text": "x"}}}, "VALIDATION_FAILED"),
        ({"variants": {}}, "VALIDATION_FAILED"),
        ({"name": "Not A Name"}, "VALIDATION_FAILED"),
        ({"name": ""}, "VALIDATION_FAILED"),
        ({"extra": 1}, "VALIDATION_FAILED"),
        (
            {
                "variants": {
                    "whatsapp": {
                        "whatsapp_template": {"name": "w", "language": "en_US", "parameters": ["x"]}
                    }
                }
            },
            "TEMPLATE_VARIABLE_UNDECLARED",
        ),
        (
            {"variants": {"whatsapp": {"whatsapp_template": {"name": "W!", "language": "en"}}}},
            "VALIDATION_FAILED",
        ),
    ],
)
async def test_a_bad_template_is_refused_with_a_stable_code_and_nothing_is_kept(
    api: httpx.AsyncClient, deps: Deps, change: dict[str, Any], code: str
) -> None:
    key = await tenant_key(deps)
    body = {"name": "bad", "variables": [{"name": "name"}], "variants": {"sms": {"text": "x"}}}
    answer = await api.post(TEMPLATES, json={**body, **change}, headers=auth(key))
    assert problem(answer, 422, code)["errors"]
    assert (await api.get(TEMPLATES, headers=auth(key))).json()["items"] == []


async def test_malformed_json_is_a_400(api: httpx.AsyncClient, deps: Deps) -> None:
    key = await tenant_key(deps)
    answer = await api.post(
        TEMPLATES, content=b"{", headers=auth(key, **{"Content-Type": "application/json"})
    )
    problem(answer, 400, "MALFORMED_JSON")


async def test_a_change_merges_variants_replaces_variables_and_is_audited(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key = await tenant_key(deps)
    created = await create(api, key)
    change = {
        "description": None,
        "variables": [{"name": "name"}],
        "variants": {
            "email": None,
            "whatsapp": None,
            "sms": {"text": "Hi {{ name }}"},
        },
    }
    answer = await api.patch(f"{TEMPLATES}/welcome", json=change, headers=auth(key))
    assert answer.status_code == 200, answer.text
    changed = answer.json()
    assert changed["description"] is None and changed["id"] == created["id"]
    assert sorted(changed["variants"]) == ["default", "sms"]
    assert changed["variables"] == [
        {"name": "name", "required": True, "type": "string", "description": None}
    ]
    assert changed["updated_at"] >= created["updated_at"]
    breaking = {"variables": [], "variants": {"sms": {"text": "Hi"}}}
    refused = await api.patch(f"{TEMPLATES}/welcome", json=breaking, headers=auth(key))
    problem(refused, 422, "TEMPLATE_VARIABLE_UNDECLARED")  # the default variant still uses it
    renamed = await api.patch(f"{TEMPLATES}/welcome", json={"name": "x"}, headers=auth(key))
    problem(renamed, 422, "VALIDATION_FAILED")  # names are immutable

    assert (await api.delete(f"{TEMPLATES}/welcome", headers=auth(key))).status_code == 204
    problem(await api.get(f"{TEMPLATES}/welcome", headers=auth(key)), 404, "TEMPLATE_NOT_FOUND")
    problem(await api.delete(f"{TEMPLATES}/welcome", headers=auth(key)), 404, "TEMPLATE_NOT_FOUND")
    await create(api, key)  # the name is free again

    audit = (await api.get("/api/v1/audit", headers=auth(key))).json()["items"]
    actions = [(a["action"], a["target"].get("fields")) for a in reversed(audit)]
    assert actions == [
        ("template.create", None),
        ("template.update", ["description", "variables", "variants"]),
        ("template.delete", None),
        ("template.create", None),
    ]


async def test_another_tenants_template_is_not_found(api: httpx.AsyncClient, deps: Deps) -> None:
    mine, theirs = await tenant_key(deps, "a"), await tenant_key(deps, "b")
    created = await create(api, mine)
    for method, path, body in (
        ("GET", f"{TEMPLATES}/welcome", None),
        ("PATCH", f"{TEMPLATES}/welcome", {"description": "taken over"}),
        ("DELETE", f"{TEMPLATES}/welcome", None),
        ("POST", f"{TEMPLATES}/welcome/preview", {"channel_type": "sms", "data": {"name": "x"}}),
    ):
        answer = await api.request(method, path, json=body, headers=auth(theirs))
        problem(answer, 404, "TEMPLATE_NOT_FOUND")
    listed = (await api.get(TEMPLATES, headers=auth(theirs))).json()
    assert listed == {"items": [], "next_cursor": None}
    mine_now = (await api.get(f"{TEMPLATES}/welcome", headers=auth(mine))).json()
    assert mine_now == created


async def test_each_route_needs_its_scope(api: httpx.AsyncClient, deps: Deps) -> None:
    root = await tenant_key(deps)
    await create(api, root)
    made = await api.post(
        "/api/v1/apps", json={"name": "reader", "scopes": ["read:template"]}, headers=auth(root)
    )
    reader = made.json()["api_key"]
    assert (await api.get(f"{TEMPLATES}/welcome", headers=auth(reader))).status_code == 200
    preview = {"channel_type": "sms", "data": {"name": "A"}}
    answer = await api.post(f"{TEMPLATES}/welcome/preview", json=preview, headers=auth(reader))
    assert answer.status_code == 200
    for method, path, body in (
        ("POST", TEMPLATES, {**WELCOME, "name": "mine"}),
        ("PATCH", f"{TEMPLATES}/welcome", {"description": "x"}),
        ("DELETE", f"{TEMPLATES}/welcome", None),
    ):
        answer = await api.request(method, path, json=body, headers=auth(reader))
        problem(answer, 403, "SCOPE_MISSING")
    problem(await api.get(TEMPLATES), 401, "CREDENTIALS_MISSING")


async def test_a_hostile_preview_value_is_refused_or_rendered_at_once(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    """Security review, finding 1: ``{{ code % 1 }}`` with ``code = "%(" * 60000`` held
    the process 3.9 s; a value past the sandbox's value limit is refused outright."""
    key = await tenant_key(deps)
    hostile = {"name": "redos", "variables": [{"name": "code"}]}
    await create(api, key, {**hostile, "variants": {"default": {"text": "{{ code % 1 }}"}}})
    path = f"{TEMPLATES}/redos/preview"
    started = time.perf_counter()
    answer = await api.post(
        path, json={"channel_type": "sms", "data": {"code": "%(" * 60_000}}, headers=auth(key)
    )
    assert time.perf_counter() - started < 1.0
    assert answer.status_code in (200, 422), answer.text
    too_large = {"channel_type": "sms", "data": {"code": "x" * (MAX_VALUE + 1)}}
    answer = await api.post(path, json=too_large, headers=auth(key))
    assert problem(answer, 422, "TEMPLATE_VALUE_TOO_LARGE")["errors"] == [
        {"field": "data.code", "message": f"at most {MAX_VALUE} characters"}
    ]
