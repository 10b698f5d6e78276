"""Failed authentications are limited per source address (security review, finding 9):
600 bad keys and 600 wrong client secrets from one address were all answered 401."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from shared.api.deps import forwarded_address
from shared.config import Settings
from shared.services.deps import Deps
from shared.services.identity.failures import FAILURE_BURST
from shared.services.onboarding import signup

BAD_KEY = "ocm_000000000000_" + "y" * 43


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(OCM_DATA_DIR=tmp_path, OCM_TRUST_FORWARDED_FOR=True)


def source(address: str, **headers: str) -> dict[str, str]:
    return {"X-Forwarded-For": address, **headers}


async def test_a_source_presenting_bad_keys_is_slowed_and_others_are_not(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    good = (await signup.create_tenant(deps, "acme")).api_key
    statuses = [
        (
            await api.get(
                "/api/v1/channels", headers=source("203.0.113.7", **{"X-API-Key": BAD_KEY})
            )
        ).status_code
        for _ in range(int(FAILURE_BURST) + 5)
    ]
    assert statuses[: int(FAILURE_BURST)] == [401] * int(FAILURE_BURST)
    assert set(statuses[int(FAILURE_BURST) :]) == {429}
    refused = await api.get(
        "/api/v1/channels", headers=source("203.0.113.7", **{"X-API-Key": BAD_KEY})
    )
    assert refused.json()["code"] == "RATE_LIMITED" and int(refused.headers["retry-after"]) >= 1
    other = await api.get("/api/v1/channels", headers=source("198.51.100.9", **{"X-API-Key": good}))
    assert other.status_code == 200


async def test_wrong_client_secrets_are_slowed_per_source(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    form = {"grant_type": "client_credentials", "client_id": "app_x", "client_secret": "ocs_no"}
    statuses = [
        (
            await api.post("/api/v1/oauth/token", data=form, headers=source("203.0.113.8"))
        ).status_code
        for _ in range(int(FAILURE_BURST) + 2)
    ]
    assert statuses[: int(FAILURE_BURST)] == [401] * int(FAILURE_BURST)
    assert statuses[-1] == 429


@pytest.mark.parametrize(
    "hop",
    ["203.0.113.9:{port}", "[2001:db8::9]:{port}"],
    ids=["ipv4-with-port", "ipv6-with-port"],
)
async def test_a_source_is_one_source_whatever_port_the_front_end_writes(
    api: httpx.AsyncClient, deps: Deps, hop: str
) -> None:
    """Azure review L6: the App Service front end appends `ip:port` to X-Forwarded-For,
    a new port per connection, so keying on the whole hop never limited anyone."""
    statuses = [
        (
            await api.get(
                "/api/v1/channels",
                headers=source("10.0.0.1, " + hop.format(port=40000 + i), **{"X-API-Key": BAD_KEY}),
            )
        ).status_code
        for i in range(int(FAILURE_BURST) + 3)
    ]
    assert statuses[-1] == 429
    bare = hop.split("]")[0].lstrip("[") if hop.startswith("[") else hop.split(":")[0]
    again = await api.get("/api/v1/channels", headers=source(bare, **{"X-API-Key": BAD_KEY}))
    assert again.status_code == 429  # the same source, with or without a port


@pytest.mark.parametrize(
    ("hop", "address"),
    [
        ("198.51.100.4", "198.51.100.4"),
        ("198.51.100.4:61598", "198.51.100.4"),
        ("[2001:db8::4]:443", "2001:db8::4"),
        ("[2001:db8::4]", "2001:db8::4"),
        ("2001:db8::4", "2001:db8::4"),
        ("2001:DB8:0::4", "2001:db8::4"),
        ("not an address", None),
        ("", None),
    ],
)
def test_a_forwarded_hop_is_read_as_its_address(hop: str, address: str | None) -> None:
    assert forwarded_address(hop) == address
