"""Isolation you can prove: walking the route table from the OpenAPI document, tenant
B's credentials (holding every scope) get 404 on every read, update and delete of each
resource tenant A owns, list endpoints never show it, and A's resources are intact
afterwards. A route the table below does not know fails the test, so a new route
must say how it is reached; one that does not scope by tenant fails it too."""

from __future__ import annotations

import re
from typing import Any

import httpx

from shared.services.deps import Deps
from shared.services.onboarding import signup
from tests.integration.public_routes import PUBLIC

# GET routes without a parameter that are not lists (the caller's own record).
OWN = {("get", "/api/v1/users/me")}
# What each create route needs (the resources A makes), and a valid body for every
# route that takes one, so B's calls fail for the right reason: not found.
BODIES: dict[tuple[str, str], Any] = {
    ("post", "/api/v1/messages"): {
        "channel": "a-channel",
        "receiver": {"type": "phone", "address": "+4791234567"},
        "content": {"type": "text", "text": "hi"},
        "send_at": "2099-01-01T00:00:00Z",
    },
    ("post", "/api/v1/messages/batch"): {"messages": [{"channel": "a-channel"}]},
    ("post", "/api/v1/messages/{message_id}/cancel"): None,
    ("post", "/api/v1/channels"): {"name": "b-channel", "type": "sandbox"},
    ("patch", "/api/v1/channels/{name}"): {"description": "taken over"},
    ("put", "/api/v1/channels/{name}/credentials"): {"username": "u", "password": "p"},
    ("post", "/api/v1/channels/{name}/simulate-inbound"): {
        "sender": {"type": "phone", "address": "+4791234567"},
        "content": {"type": "text", "text": "hi"},
    },
    ("post", "/api/v1/apps"): {"name": "b-app", "scopes": ["read:message"]},
    ("patch", "/api/v1/apps/{app_id}"): {"name": "taken over"},
    ("post", "/api/v1/apps/{app_id}/keys/{slot}"): None,
    ("post", "/api/v1/apps/{app_id}/client-secret"): None,
    ("post", "/api/v1/users"): {"email": "b@example.com", "role": "viewer"},
    ("post", "/api/v1/tenants"): {"name": "b-child"},
    ("patch", "/api/v1/users/{user_id}"): {"name": "taken over"},
    ("patch", "/api/v1/terminals/{terminal_id}"): {"display_name": "taken over"},
    ("post", "/api/v1/templates"): {"name": "b-template", "variants": {"default": {"text": "hi"}}},
    ("patch", "/api/v1/templates/{name}"): {"description": "taken over"},
    ("post", "/api/v1/templates/{name}/preview"): {"channel_type": "sms", "data": {}},
    ("patch", "/api/v1/webhooks/{webhook_id}"): {"description": "taken over"},
    ("post", "/api/v1/webhooks/{webhook_id}/rotate-secret"): None,
    ("post", "/api/v1/webhooks/{webhook_id}/test"): None,
    ("post", "/api/v1/webhooks/{webhook_id}/replay"): {
        "since": "2026-01-01T00:00:00Z",
        "until": "2026-01-02T00:00:00Z",
    },
    ("post", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"): None,
}
# Routes that create (B may call them: they make B's own resources, never A's).
CREATES = {
    ("post", "/api/v1/messages"),
    ("post", "/api/v1/messages/batch"),
    ("post", "/api/v1/channels"),
    ("post", "/api/v1/apps"),
    ("post", "/api/v1/users"),
    ("post", "/api/v1/tenants"),
    ("post", "/api/v1/terminals"),
    ("post", "/api/v1/opt-outs"),
    ("post", "/api/v1/templates"),
    ("post", "/api/v1/webhooks"),
    ("post", "/api/v1/analytics/reports"),
    ("put", "/api/v1/analytics/thresholds"),
    ("put", "/api/v1/analytics/retention"),
}


async def call(
    api: httpx.AsyncClient, key: str, method: str, path: str, body: Any = None
) -> httpx.Response:
    return await api.request(
        method, path, json=body, headers={"X-API-Key": key, "Content-Type": "application/json"}
    )


async def test_tenant_b_never_reaches_tenant_a(api: httpx.AsyncClient, deps: Deps) -> None:
    tenant_a = await signup.create_tenant(deps, "a")
    a = tenant_a.api_key
    b = (await signup.create_tenant(deps, "b")).api_key
    # A's resources, one of each kind.
    channel = (
        await call(api, a, "POST", "/api/v1/channels", {"name": "a-channel", "type": "sandbox"})
    ).json()
    await call(api, b, "POST", "/api/v1/channels", {"name": "b-channel", "type": "sandbox"})
    message = (
        await call(api, a, "POST", "/api/v1/messages", BODIES[("post", "/api/v1/messages")])
    ).json()
    app = (
        await call(api, a, "POST", "/api/v1/apps", {"name": "a-app", "scopes": ["read:message"]})
    ).json()["app"]
    # A's template, named like A's channel so {name} reaches both.
    template = (
        await call(
            api,
            a,
            "POST",
            "/api/v1/templates",
            {"name": "a-channel", "variants": {"default": {"text": "hi"}}},
        )
    ).json()
    invited = (
        await call(api, a, "POST", "/api/v1/users", {"email": "a@example.com", "role": "viewer"})
    ).json()["user"]
    terminal = (
        await call(
            api,
            a,
            "POST",
            "/api/v1/terminals",
            {"channel": "a-channel", "type": "phone", "address": "+4791112222"},
        )
    ).json()
    opt_out = (
        await call(
            api, a, "POST", "/api/v1/opt-outs", {"channel_type": "sms", "address": "+4798765432"}
        )
    ).json()
    webhook = (
        await call(
            api, a, "POST", "/api/v1/webhooks", {"url": "https://hooks.invalid/a", "events": ["*"]}
        )
    ).json()["webhook"]
    delivery = (await call(api, a, "POST", f"/api/v1/webhooks/{webhook['id']}/test")).json()
    report = (await call(api, a, "POST", "/api/v1/analytics/reports", {"name": "a-report"})).json()
    values = {
        "report_id": report["id"],
        "webhook_id": webhook["id"],
        "delivery_id": delivery["delivery_id"],
        "terminal_id": terminal["id"],
        "channel_type": "sms",
        "address": "+4798765432",
        "user_id": invited["id"],
        "name": channel["name"],
        "message_id": message["id"],
        "app_id": app["id"],
        "slot": "primary",
    }
    child = (await call(api, a, "POST", "/api/v1/tenants", {"name": "a-child"})).json()
    a_ids = {
        child["tenant_id"],
        channel["id"],
        message["id"],
        app["id"],
        app["keys"]["primary"]["prefix"],
        invited["id"],
        "a@example.com",
        terminal["id"],
        opt_out["id"],
        template["id"],
        webhook["id"],
        delivery["delivery_id"],
        report["id"],
    }

    spec = (await api.get("/api/openapi.json")).json()
    checked = 0
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if (method, path) in PUBLIC:
                assert not op.get("security"), (method, path)
                continue
            assert op.get("security"), f"{method} {path} declares no scope"
            params = re.findall(r"{(\w+)}", path)
            if (method, path) in OWN:
                answer = await call(api, b, "GET", path)
                assert not any(i in answer.text for i in a_ids), (path, answer.text)
                checked += 1
                continue
            if not params:
                if method == "get":  # a list: never shows A's resources
                    answer = await call(api, b, "GET", path)
                    assert answer.status_code == 200, (path, answer.text)
                    assert not any(i in answer.text for i in a_ids), (path, answer.text)
                else:
                    assert (method, path) in CREATES, f"{method} {path}: add it to the table"
                checked += 1
                continue
            assert all(p in values for p in params), f"{method} {path}: add its parameters"
            assert method == "get" or method == "delete" or (method, path) in BODIES, (
                f"{method} {path}: add a valid body to the table"
            )
            concrete = path.format(**values)
            answer = await call(api, b, method.upper(), concrete, BODIES.get((method, path)))
            assert answer.status_code == 404, (method, concrete, answer.status_code, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
            checked += 1
    assert checked >= 19

    # B cannot act for A, nor for A's child, by naming them.
    for target in (child["tenant_id"], (await call(api, a, "GET", "/api/v1/users/me")).text and ""):
        if not target:
            continue
        answer = await api.get("/api/v1/channels", headers={"X-API-Key": b, "OCM-Tenant": target})
        assert answer.status_code == 404 and answer.json()["code"] == "TENANT_NOT_FOUND"

    # A's resources are untouched, and A reaches each of them.
    for path in (
        f"/api/v1/templates/{template['name']}",
        f"/api/v1/users/{invited['id']}",
        f"/api/v1/channels/{channel['name']}",
        f"/api/v1/messages/{message['id']}",
        f"/api/v1/apps/{app['id']}",
        f"/api/v1/terminals/{terminal['id']}",
        "/api/v1/opt-outs/sms/%2B4798765432",
        f"/api/v1/webhooks/{webhook['id']}",
        f"/api/v1/webhooks/{webhook['id']}/deliveries/{delivery['delivery_id']}",
    ):
        answer = await call(api, a, "GET", path)
        assert answer.status_code == 200, (path, answer.text)
        assert "taken over" not in answer.text
    assert (await call(api, a, "GET", f"/api/v1/messages/{message['id']}")).json()[
        "status"
    ] == "scheduled"
