"""Webhook targets: private addresses refused unless allowed, at submission and at every delivery."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpx
import pytest

from orchestrator.db import WebhookStatus
from orchestrator.services.webhook_targets import GuardedTransport, TargetPolicy, TargetRefused, not_public
from orchestrator.settings import load_settings
from tests.aio import run
from tests.asgi import serve_asgi
from tests.databases import migrate_to_head
from tests.orchestrator.api.conftest import StartApi
from tests.orchestrator.test_webhooks import (
    Receiver,
    add_events,
    eventually,
    settled_deliveries,
    webhooks_running,
)

_SECRETS = {"login_secret": "a-real-secret-7f3a9c", "webhook_secret": "another-real-secret-2b8e"}


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.10", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 to 169.254.169.254
        ("64:ff9b::a00:5", "private"),  # NAT64 to 10.0.0.5
        ("64:ff9b:1::1", "local NAT64"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
        ("::7f00:1", "loopback"),  # IPv4-compatible 127.0.0.1
        ("::ffff:0:7f00:1", "IPv4-translated"),
        ("fec0::1", "site-local"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo tunnel"),
        ("93.184.216.34", None),
        ("64:ff9b::5db8:d822", None),  # NAT64 to that public address
        ("2606:2800:220:1:248:1893:25c8:1946", None),
    ],
)
def test_only_public_addresses_are_targets(address: str, reason: str | None) -> None:
    assert not_public(ipaddress.ip_address(address)) == reason


def test_the_policy_allows_private_targets_in_dev_only_unless_told() -> None:
    assert TargetPolicy.from_settings(load_settings(env="dev")).allow_private
    assert not TargetPolicy.from_settings(load_settings(env="prod", auth=_SECRETS)).allow_private
    allowed = load_settings(env="prod", auth=_SECRETS, webhooks={"allow_private_targets": True})
    assert TargetPolicy.from_settings(allowed).allow_private
    refused = load_settings(env="dev", webhooks={"allow_private_targets": False})
    assert not TargetPolicy.from_settings(refused).allow_private


def test_a_private_webhook_url_is_refused_at_submission(start_api: StartApi, migrated_pg_url: str) -> None:
    api = start_api(migrated_pg_url, webhooks={"allow_private_targets": False})
    caller = api.caller()
    for url in [
        "http://127.0.0.1:9/hook",
        "http://[::ffff:10.0.0.1]/h",
        "https://localhost/h",
        "https://LocalHost./h",
        "http://169.254.169.254/",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "http://2130706433/",  # 127.0.0.1 spelled as one number
    ]:
        answer = caller.http.post("/api/v1/tasks", json={"instruction": "x", "webhook_url": url})
        assert answer.status_code == 422, (url, answer.text)
        body = answer.json()
        assert body["error"] == "webhook_target_refused" and "ALLOW_PRIVATE_TARGETS" in body["message"], body
    # A name is checked when a delivery resolves it, not at submission.
    named = caller.http.post(
        "/api/v1/tasks", json={"instruction": "x", "webhook_url": "https://hooks.example.com/"}
    )
    assert named.status_code == 202, named.text
    # Where private targets are allowed (dev, the default), the same URL is taken.
    dev = start_api(migrated_pg_url).caller()
    assert (
        dev.http.post(
            "/api/v1/tasks", json={"instruction": "x", "webhook_url": "http://127.0.0.1:9/hook"}
        ).status_code
        == 202
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_delivery_to_a_private_address_fails_at_once_and_sends_nothing(tmp_path: Path, host: str) -> None:
    """Through the transport ``phonefleet pool`` builds from the policy, against a real receiver."""
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'phonefleet.db'}"
    migrate_to_head(db_url)
    hook = Receiver()
    with serve_asgi(hook, lifespan="off") as base:
        hook_url = base.replace("127.0.0.1", host) + "/hooks/phonefleet"

        async def scenario() -> list:
            async with webhooks_running(
                db_url, transport=TargetPolicy(allow_private=False).transport()
            ) as sessions:
                await add_events(sessions, hook_url, ["task.created"])
                return await eventually(
                    lambda: settled_deliveries(sessions, 1),
                    "the delivery ends without waiting for its retries",
                )

        (row,) = run(scenario())
    # one attempt, failed for good: not max_attempts with backoff
    assert (row.status, row.attempts, row.last_status_code) == (WebhookStatus.FAILED, 1, None)
    assert "loopback address" in row.last_error and "ALLOW_PRIVATE_TARGETS" in row.last_error, row.last_error
    assert hook.requests == []  # nothing reached the receiver


def test_the_transport_connects_to_the_address_it_checked() -> None:
    """The name resolves once; the request goes to that address with the name kept for Host and TLS.

    The inner transport is httpx's MockTransport: a public receiver is what this checks, and nothing
    public can be reached from here (no internet), so the request is recorded instead of sent.
    """
    seen: list[httpx.Request] = []
    lookups: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async def resolver(host: str, port: int) -> list[str]:
        lookups.append(f"{host}:{port}")
        return ["93.184.216.34"]

    async def post() -> int:
        transport = GuardedTransport(httpx.MockTransport(answer), resolver=resolver)
        async with httpx.AsyncClient(transport=transport) as client:
            return (await client.post("https://hooks.example.com/in?x=1", content=b"{}")).status_code

    assert run(post()) == 204
    assert lookups == ["hooks.example.com:443"]
    (request,) = seen
    assert str(request.url) == "https://93.184.216.34/in?x=1"
    assert request.headers["host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"


def test_a_name_with_any_private_address_is_refused() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.7"]  # one bad answer is enough (the client might pick it)

    async def post() -> None:
        transport = GuardedTransport(httpx.MockTransport(lambda r: httpx.Response(204)), resolver=resolver)
        async with httpx.AsyncClient(transport=transport) as client:
            await client.post("http://hooks.example.com/in", content=b"{}")

    with pytest.raises(
        TargetRefused, match=r"hooks\.example\.com resolves to 10\.0\.0\.7, a private address"
    ):
        run(post())


def test_the_name_resolved_and_sent_is_the_idna_encoded_one() -> None:
    """ß is IDNA 2008 (xn--fa-hia.de); Python's own codec would look up fass.de, another domain."""
    lookups: list[str] = []
    seen: list[httpx.Request] = []

    async def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["93.184.216.34"]

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async def post() -> None:
        transport = GuardedTransport(httpx.MockTransport(answer), resolver=resolver)
        async with httpx.AsyncClient(transport=transport) as client:
            await client.post("https://faß.de/in", content=b"{}")

    run(post())
    assert lookups == ["xn--fa-hia.de"]
    assert (
        seen[0].extensions["sni_hostname"] == "xn--fa-hia.de" and seen[0].headers["host"] == "xn--fa-hia.de"
    )


def test_the_guarded_client_keeps_no_connection_and_the_open_one_is_httpx_default() -> None:
    """A kept connection is found by address only: reused for another name it would skip the
    certificate check. Allowed private targets leave httpx as it is (environment proxies too)."""
    assert TargetPolicy(allow_private=True).transport() is None
    guarded = TargetPolicy(allow_private=False).transport()
    assert isinstance(guarded, GuardedTransport)
    assert guarded.inner._pool._max_keepalive_connections == 0  # httpcore's pool setting
