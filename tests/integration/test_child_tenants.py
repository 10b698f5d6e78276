"""Child tenants: a parent's credentials manage its children (OCM-Tenant), never the
reverse, and siblings never see each other; tenant statuses gate credentials."""

from __future__ import annotations

import httpx

from shared.services.deps import Deps
from shared.services.identity import tenants
from shared.services.onboarding import signup


def names(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [c["name"] for c in answer.json()["items"]]


async def test_a_parent_manages_its_children_and_never_the_reverse(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    parent = await signup.create_tenant(deps, "parent")
    p_key = {"X-API-Key": parent.api_key}
    made = await api.post("/api/v1/tenants", json={"name": "child"}, headers=p_key)
    assert made.status_code == 201, made.text
    child_id, c_key = made.json()["tenant_id"], {"X-API-Key": made.json()["api_key"]}
    sibling = (await api.post("/api/v1/tenants", json={"name": "sib"}, headers=p_key)).json()

    # The parent acts in the child with the header, with its own scopes.
    in_child = {**p_key, "OCM-Tenant": child_id}
    made_channel = await api.post(
        "/api/v1/channels", json={"name": "kid-sms", "type": "sandbox"}, headers=in_child
    )
    assert made_channel.status_code == 201
    await api.post("/api/v1/channels", json={"name": "own-sms", "type": "sandbox"}, headers=p_key)
    assert names(await api.get("/api/v1/channels", headers=c_key)) == ["kid-sms"]
    assert names(await api.get("/api/v1/channels", headers=p_key)) == ["own-sms"]
    assert names(await api.get("/api/v1/channels", headers=in_child)) == ["kid-sms"]
    children = (await api.get("/api/v1/tenants", headers=p_key)).json()["items"]
    assert [c["name"] for c in children] == ["child", "sib"]

    # Never upwards, never sideways.
    for headers in (
        {**c_key, "OCM-Tenant": parent.tenant["id"]},
        {**c_key, "OCM-Tenant": sibling["tenant_id"]},
        {"X-API-Key": sibling["api_key"], "OCM-Tenant": child_id},
    ):
        refused = await api.get("/api/v1/channels", headers=headers)
        assert refused.status_code == 404 and refused.json()["code"] == "TENANT_NOT_FOUND"
    assert (await api.get("/api/v1/tenants", headers=c_key)).json()["items"] == []

    # A grandchild: the grandparent reaches it too.
    grand = (await api.post("/api/v1/tenants", json={"name": "grand"}, headers=in_child)).json()
    deep = {**p_key, "OCM-Tenant": grand["tenant_id"]}
    assert (await api.get("/api/v1/channels", headers=deep)).status_code == 200
    # Actions taken for a child are audited in the child.
    audit = (await api.get("/api/v1/audit", headers=c_key)).json()["items"]
    assert "channel.create" in [r["action"] for r in audit]


async def test_a_tenant_not_active_yet_cannot_act(api: httpx.AsyncClient, deps: Deps) -> None:
    created = await signup.create_tenant(deps, "new")
    key = {"X-API-Key": created.api_key}
    for status, code in (
        ("provisioning", "TENANT_NOT_ACTIVE"),
        ("pending_confirmation", "TENANT_NOT_ACTIVE"),
        ("suspended", "TENANT_SUSPENDED"),
    ):
        await tenants.set_status(deps, created.tenant["id"], status)
        refused = await api.get("/api/v1/channels", headers=key)
        assert refused.status_code == 403 and refused.json()["code"] == code
    await tenants.set_status(deps, created.tenant["id"], "active")
    assert (await api.get("/api/v1/channels", headers=key)).status_code == 200


async def test_a_parent_reads_a_childs_analytics_and_the_child_never_the_parents(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    from shared.services.analytics import consumer
    from shared.services.events import facts_out

    parent = await signup.create_tenant(deps, "holding")
    p_key = {"X-API-Key": parent.api_key}
    made = await api.post("/api/v1/tenants", json={"name": "brand"}, headers=p_key)
    child_id, c_key = made.json()["tenant_id"], {"X-API-Key": made.json()["api_key"]}
    in_child = {**p_key, "OCM-Tenant": child_id}
    body = {"name": "s", "type": "sandbox"}
    assert (await api.post("/api/v1/channels", json=body, headers=c_key)).status_code == 201
    message = {
        "channel": "s",
        "receiver": {"type": "phone", "address": "+4791234567"},
        "content": {"type": "text", "text": "hi"},
    }
    for _ in range(2):
        assert (await api.post("/api/v1/messages", json=message, headers=c_key)).status_code == 202
    await facts_out.flush(deps)
    entity = (
        f"{deps.settings.OCM_EVENTS_TOPIC}/subscriptions/{deps.settings.OCM_ANALYTICS_SUBSCRIPTION}"
    )
    received = await deps.queue.receive(entity, max_messages=10)
    await consumer.count(deps, [m.body for m in received])

    def accepted(answer: httpx.Response) -> int:
        assert answer.status_code == 200, answer.text
        return sum(s["totals"]["accepted"] for s in answer.json()["series"])

    path = "/api/v1/analytics/messages"
    assert accepted(await api.get(path, headers=in_child)) == 2
    assert accepted(await api.get(path, headers=p_key)) == 0  # its own, not its children's
    refused = await api.get(path, headers={**c_key, "OCM-Tenant": parent.tenant["id"]})
    assert refused.status_code in (403, 404)
