"""TRUSTED_PROXIES through the real HTTP server: the per-IP rate limit, the access log and the
/metrics loopback decision use the client behind a trusted reverse proxy, and ignore forwarding
headers from anyone else. The test client connects from 127.0.0.1: in the direct deployment that
is the client; in the proxied one (TRUSTED_PROXIES=127.0.0.0/8) it plays the reverse proxy."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.clock import ManualClock
from core.settings import Settings, load_settings
from tests.miniapp_harness import NOW
from webapp.app import create_app


@pytest.fixture
async def direct(settings, db, redis) -> AsyncIterator[TestClient]:
    config = settings.model_copy(update={"api_rate_per_ip": 2})
    async with TestClient(TestServer(create_app(config, pool=db, redis=redis, clock=ManualClock(NOW)))) as c:
        yield c


@pytest.fixture
async def proxied(settings, db, redis) -> AsyncIterator[TestClient]:
    proxies = load_settings(trusted_proxies="127.0.0.0/8, ::1").trusted_proxies
    config = settings.model_copy(update={"api_rate_per_ip": 2, "trusted_proxies": proxies})
    async with TestClient(TestServer(create_app(config, pool=db, redis=redis, clock=ManualClock(NOW)))) as c:
        yield c


async def _statuses(client: TestClient, path: str, *header_sets: dict[str, str]) -> list[int]:
    return [(await client.get(path, headers=headers)).status for headers in header_sets]


# --- direct: no proxy is trusted, the socket is the client ----------------------------------


async def test_direct_a_client_cannot_pick_its_rate_limit_bucket_with_forwarding_headers(
    direct: TestClient,
) -> None:
    sent = [
        {"X-Forwarded-For": "198.51.100.1"},
        {"Forwarded": "for=198.51.100.2"},
        {"X-Real-IP": "198.51.100.3"},
    ]
    assert await _statuses(direct, "/api/plans", *sent) == [200, 200, 429]


@pytest.mark.parametrize(
    "headers",
    [{"X-Forwarded-For": "203.0.113.9"}, {"X-Real-IP": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"}],
    ids=["x-forwarded-for", "x-real-ip", "forwarded"],
)
async def test_direct_metrics_refuse_a_loopback_socket_that_forwards_someone(
    direct: TestClient, headers: dict[str, str]
) -> None:
    """An untrusted local proxy forwarding the internet: its socket is loopback, the client is not."""
    response = await direct.get("/metrics", headers=headers)
    assert response.status == 403 and (await response.json())["error"] == "forbidden"
    assert (await direct.get("/metrics")).status == 200  # a scraper on this host


def test_a_malformed_trusted_proxies_setting_names_the_variable() -> None:
    with pytest.raises(Exception, match="TRUSTED_PROXIES"):
        load_settings(trusted_proxies="10.0.0.0/8, not-a-network")
    assert load_settings(trusted_proxies="").trusted_proxies == ()
    assert isinstance(load_settings(), Settings)


# --- proxied: 127.0.0.0/8 is the trusted reverse proxy ---------------------------------------


async def test_proxied_each_client_behind_the_proxy_has_its_own_bucket(proxied: TestClient) -> None:
    ada = {"X-Forwarded-For": "198.51.100.1"}
    bob = {"X-Forwarded-For": "198.51.100.2"}
    assert await _statuses(proxied, "/api/plans", ada, ada, ada) == [200, 200, 429]
    assert await _statuses(proxied, "/api/plans", bob) == [200]
    # What a client writes left of what the proxy appended is not believed: still Ada's bucket.
    spoofed = {"X-Forwarded-For": "10.9.9.9, 198.51.100.1"}
    assert await _statuses(proxied, "/api/plans", spoofed) == [429]


async def test_proxied_forwarded_and_x_real_ip_name_the_client_too(proxied: TestClient) -> None:
    carol = {"Forwarded": 'for="[2001:db8::7]:4711";proto=https'}
    dave = {"Forwarded": "for=198.51.100.4"}
    erin = {"X-Real-IP": "198.51.100.5"}
    assert await _statuses(proxied, "/api/plans", carol, carol, carol) == [200, 200, 429]
    assert await _statuses(proxied, "/api/plans", dave, erin, dave, erin, erin) == [200, 200, 200, 200, 429]


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "203.0.113.9"},
        {"X-Forwarded-For": "127.0.0.1, 203.0.113.9"},
        {"Forwarded": "for=203.0.113.9"},
        {"X-Real-IP": "203.0.113.9"},
    ],
)
async def test_proxied_metrics_refuse_an_internet_client(
    proxied: TestClient, headers: dict[str, str]
) -> None:
    assert (await proxied.get("/metrics", headers=headers)).status == 403


async def test_proxied_metrics_answer_a_scraper_on_the_proxy_host(proxied: TestClient) -> None:
    assert (await proxied.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})).status == 200


async def test_proxied_access_log_names_the_client(
    proxied: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="webapp.access")
    await proxied.get("/api/plans", headers={"X-Forwarded-For": "198.51.100.9"})
    [line] = [r for r in caplog.records if r.name == "webapp.access" and r.__dict__["path"] == "/api/plans"]
    assert line.__dict__["remote"] == "198.51.100.9"
