"""Analytics as a tenant sees it: messages of known outcomes sent through `ocm serve`,
then the analytics API counts each transition once, per tenant, equal to what the
messages' own timelines say."""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain.facts import TRANSITION_OF
from tests.e2e.conftest import Client, Server, ocm, serving


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(tmp_path_factory, "analytics")


def later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def send_mix(client: Client) -> list[str]:
    """Messages whose outcomes are known: delivered, failed, retried, cancelled, batched."""
    ids = [client.send(tags=["otp", "eu"])["id"] for _ in range(5)]
    ids.append(client.send(options={"sandbox": {"send": "fail", "error_code": "21211"}})["id"])
    ids.append(client.send(options={"sandbox": {"send": "transient", "fail_times": 1}})["id"])
    ids.append(
        client.send(
            receiver={"type": "phone", "address": "+14155550123"},
            options={"sandbox": {"delivery": "failed"}},
        )["id"]
    )
    scheduled = client.send(send_at=later(3600))["id"]
    assert client.post(f"/api/v1/messages/{scheduled}/cancel").status_code == 200
    ids.append(scheduled)
    batch = client.post(
        "/api/v1/messages/batch",
        json={
            "messages": [
                {
                    "channel": "sandbox",
                    "receiver": {"type": "phone", "address": f"+4479460001{i:02d}"},
                    "content": {"type": "text", "text": "hi"},
                    "tags": ["batch"],
                }
                for i in range(20)
            ]
        },
    )
    assert batch.status_code == 202, batch.text
    ids.extend(item["id"] for item in batch.json()["items"])
    return ids


def truth(client: Client, ids: list[str]) -> Counter[str]:
    """Each transition counted once per message, from the messages' timelines."""
    counts: Counter[str] = Counter()
    for message_id in ids:
        message = client.wait_for(message_id)
        counts.update(
            {TRANSITION_OF[e["type"]] for e in message["events"] if e["type"] in TRANSITION_OF}
        )
    return counts


def totals(client: Client, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/analytics/messages", params={"interval": "day", **params})
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_for_counts(client: Client, expected: Counter[str], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = totals(client)
        (line,) = found["series"]
        counted = {k: v for k, v in line["totals"].items() if v}
        if counted == dict(expected):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"analytics says {counted}, the messages say {dict(expected)}")
        time.sleep(0.2)


def test_each_transition_is_counted_once_per_message_and_per_tenant(server: Server) -> None:
    acme, globex = server.tenant("acme"), server.tenant("globex")
    for tenant in (acme, globex):
        tenant.channel("sandbox")
    acme_ids = send_mix(acme)
    globex_ids = [globex.send()["id"] for _ in range(3)]
    expected = truth(acme, acme_ids)
    assert expected["accepted"] == 29 and expected["cancelled"] == 1 and expected["failed"] == 2
    wait_for_counts(acme, expected)
    wait_for_counts(globex, truth(globex, globex_ids))

    by_country = totals(acme, group_by="country", metrics="accepted")
    accepted = {s["group"]: s["totals"]["accepted"] for s in by_country["series"]}
    assert accepted == {"NO": 8, "US": 1, "GB": 20}
    by_tag = totals(acme, group_by="tag", filter="tag:otp|batch", metrics="accepted")
    assert {s["group"]: s["totals"]["accepted"] for s in by_tag["series"]} == {
        "otp": 5,
        "batch": 20,
    }
    failed = totals(acme, group_by="error", metrics="failed")
    assert {s["group"]: s["totals"]["failed"] for s in failed["series"]} == {
        "21211": 1,
        "SANDBOX_UNDELIVERED": 1,
    }


def test_latency_counts_every_delivered_message_with_percentiles(server: Server) -> None:
    client = server.tenant("latency")
    client.channel("sandbox")
    ids = [client.send()["id"] for _ in range(10)]
    expected = truth(client, ids)
    wait_for_counts(client, expected)
    response = client.get("/api/v1/analytics/latency", params={"group_by": "channel"})
    assert response.status_code == 200, response.text
    (group,) = response.json()["groups"]
    assert group["group"] == "sandbox" and group["count"] == expected["delivered"] == 10
    assert 0 < group["p50"] <= group["p95"] <= group["p99"] < 30
    assert group["within"]["60"] == 1.0


def test_any_query_answers_as_csv(server: Server) -> None:
    client = server.tenant("csv")
    client.channel("sandbox")
    wait_for_counts(client, truth(client, [client.send()["id"]]))
    response = client.get(
        "/api/v1/analytics/messages",
        params={"interval": "hour", "metrics": "accepted,delivered"},
        headers={"Accept": "text/csv"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["start", "group", "accepted", "delivered"]
    assert sum(int(r[2]) for r in rows[1:]) == 1 and sum(int(r[3]) for r in rows[1:]) == 1


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"from": "2020-01-01T00:00:00Z"}, "ANALYTICS_BEYOND_RETENTION"),
        ({"tz": "Mars/Olympus"}, "VALIDATION_FAILED"),
        ({"interval": "fortnight"}, "VALIDATION_FAILED"),
        ({"group_by": "channel", "filter": "country:NO"}, "ANALYTICS_FILTER_NOT_GROUPED"),
        ({"metrics": "delivered,bounced"}, "VALIDATION_FAILED"),
        ({"from": "2026-12-07T10:00:00Z", "to": "2026-12-07T09:00:00Z"}, "VALIDATION_FAILED"),
    ],
)
def test_a_bad_query_is_a_422_problem(server: Server, params: dict[str, str], code: str) -> None:
    client = server.tenant(f"bad-{abs(hash(code)) % 10_000}-{len(params)}")
    response = client.get("/api/v1/analytics/messages", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


def test_an_operator_reads_a_tenants_counts_in_the_terminal(server: Server) -> None:
    client = server.tenant("terminal")
    client.channel("sandbox")
    ids = [client.send()["id"] for _ in range(4)]
    ids.append(client.send(options={"sandbox": {"send": "fail"}})["id"])
    wait_for_counts(client, truth(client, ids))
    shown = ocm("analytics", client.tenant_id, "--by", "channel", env=server.env)
    assert shown.returncode == 0, shown.stderr
    header, row = shown.stdout.splitlines()[1:3]
    assert header.split()[:4] == ["channel", "accepted", "sent", "delivered"]
    cells = row.split()
    assert cells[0] == "sandbox" and cells[1:4] == ["5", "4", "4"]
    assert "80.0%" in cells
    as_json = ocm("analytics", client.tenant_id, "--json", env=server.env)
    assert json.loads(as_json.stdout)["messages"]["series"][0]["totals"]["failed"] == 1


def test_a_saved_report_is_run_by_name_as_json_and_csv(server: Server) -> None:
    client = server.tenant("reports")
    client.channel("sandbox")
    wait_for_counts(client, truth(client, [client.send(tags=["otp"])["id"] for _ in range(3)]))
    body = {"name": "weekly by tag", "days": 7, "interval": "day", "group_by": "tag"}
    made = client.post("/api/v1/analytics/reports", json=body)
    assert made.status_code == 201, made.text
    report = made.json()
    assert report["id"].startswith("rpt_") and report["name"] == "weekly by tag"
    assert client.post("/api/v1/analytics/reports", json=body).json()["code"] == "REPORT_EXISTS"
    bad = client.post("/api/v1/analytics/reports", json={**body, "name": "x", "tz": "Nowhere/At"})
    assert bad.status_code == 422
    listed = client.get("/api/v1/analytics/reports").json()["items"]
    assert [r["id"] for r in listed] == [report["id"]]
    ran = client.get(f"/api/v1/analytics/reports/{report['id']}")
    assert ran.status_code == 200
    assert ran.json()["series"][0]["group"] == "otp"
    assert ran.json()["series"][0]["totals"]["accepted"] == 3
    as_csv = client.get(f"/api/v1/analytics/reports/{report['id']}", headers={"Accept": "text/csv"})
    assert as_csv.text.splitlines()[0].startswith("start,group,accepted")
    other = server.tenant("reports-other")
    assert other.get(f"/api/v1/analytics/reports/{report['id']}").status_code == 404
    assert client.request("DELETE", f"/api/v1/analytics/reports/{report['id']}").status_code == 204
    assert client.get(f"/api/v1/analytics/reports/{report['id']}").status_code == 404


def test_the_batch_triggers_run_in_a_process_of_their_own_that_stops_with_serve(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    import os
    import re

    servers = serving(tmp_path_factory, "apart")
    srv = next(servers)
    client = srv.tenant("apart")
    client.channel("sandbox")
    wait_for_counts(client, truth(client, [client.send()["id"]]))  # counted over there
    found = re.search(r"batch triggers \(count_events\) run in process (\d+)", srv.log())
    assert found, srv.log()
    child = int(found.group(1))
    assert child != srv.process.pid if srv.process else False
    os.kill(child, 0)  # alive
    assert srv.stop() == 0
    with pytest.raises(ProcessLookupError):
        for _ in range(50):
            os.kill(child, 0)
            time.sleep(0.1)
    next(servers, None)
