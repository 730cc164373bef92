"""The admin API over real HTTP (uvicorn on 127.0.0.1), real Redis and a real database."""

from __future__ import annotations

import base64
import io
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from gateway.admin import AdminTokenMissing, build_admin_router, require_admin_token
from gateway.analytics import AnalyticsWriter, EventSink
from gateway.shared.settings import Settings

from .app_helpers import serve
from .dataset import RAW_IDS, seed

TOKEN = "s3cret-admin-token"


@pytest.fixture
def settings(redis_url: str, database_url: str, data_dir: Path) -> Settings:
    return Settings(redis_url=redis_url, database_url=database_url, data_dir=data_dir, admin_token=TOKEN)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        yield http


AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/admin/summary"),
        ("GET", "/admin/timeseries"),
        ("GET", "/admin/blocks"),
        ("POST", "/admin/blocks"),
        ("DELETE", "/admin/blocks/user/discord:1"),
        ("GET", "/admin/export?format=csv"),
        ("GET", "/admin/patches"),
        ("POST", "/admin/patches/anything/enable"),
        ("POST", "/admin/patches/anything/rollout"),
    ],
)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}])
async def test_every_route_needs_the_token(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> None:
    response = await client.request(method, path, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_blocks_through_the_api(client: httpx.AsyncClient, redis_client) -> None:  # type: ignore[no-untyped-def]
    created = await client.post(
        "/admin/blocks", headers=AUTH, json={"kind": "user", "id": "slack:T1:U9", "reason": "spam"}
    )
    assert created.status_code == 201 and created.json()["id"] == "slack:T1:U9"
    assert redis_client.hexists("pb:blocks:user", "slack:T1:U9")
    listed = (await client.get("/admin/blocks", headers=AUTH)).json()
    assert [(b["kind"], b["id"], b["reason"]) for b in listed] == [("user", "slack:T1:U9", "spam")]
    bad = await client.post("/admin/blocks", headers=AUTH, json={"kind": "user", "id": "no-platform"})
    assert bad.status_code == 422 and "telegram:no-platform" in bad.json()["detail"]
    # A Slack user id is only unique within its workspace: slack:U9 alone is refused.
    unqualified = await client.post("/admin/blocks", headers=AUTH, json={"kind": "user", "id": "slack:U9"})
    assert unqualified.status_code == 422 and "slack:<workspace id>:<user id>" in unqualified.json()["detail"]
    nocolon = await client.delete("/admin/blocks/user/nocolon", headers=AUTH)
    assert nocolon.status_code == 422 and "discord:nocolon" in nocolon.json()["detail"]  # not a 500
    assert (await client.delete("/admin/blocks/user/slack:T1:U9", headers=AUTH)).status_code == 200
    assert (await client.delete("/admin/blocks/user/slack:T1:U9", headers=AUTH)).status_code == 404


async def test_summary_timeseries_and_exports(
    client: httpx.AsyncClient, sink: EventSink, writer: AnalyticsWriter
) -> None:
    seeded = await seed(sink, base=time.time() - 3600)
    await writer.flush()
    summary = (
        await client.get("/admin/summary", headers=AUTH, params={"since": "1d"})
    ).json()  # m0, two days back, is out
    assert summary["messages"]["by_platform"] == {"discord": 3, "slack": 1, "telegram": 1}
    assert summary["satisfaction"]["rate"] == 0.75
    series = (await client.get("/admin/timeseries", headers=AUTH, params={"since": "2h", "buckets": 4})).json()
    assert sum(sum(counts) for counts in series["platforms"].values()) == 5
    assert (await client.get("/admin/summary", headers=AUTH, params={"since": "someday"})).status_code == 400

    for fmt in ("csv", "jsonl", "parquet"):
        response = await client.get("/admin/export", headers=AUTH, params={"format": fmt})
        assert response.status_code == 200
        assert f'filename="patchbay-events.{fmt}"' in response.headers["content-disposition"]
        body = response.content
        if fmt == "parquet":
            rows = pq.read_table(io.BytesIO(body)).to_pylist()
        elif fmt == "jsonl":
            rows = [json.loads(line) for line in body.decode().splitlines()]
        else:
            rows = body.decode().splitlines()[1:]
        assert len(rows) == len(seeded)
        assert not any(raw.encode() in body for raw in RAW_IDS)
    assert (await client.get("/admin/export", headers=AUTH, params={"format": "xlsx"})).status_code == 422


async def test_patch_routes_call_the_patch_framework(client: httpx.AsyncClient, redis_client) -> None:  # type: ignore[no-untyped-def]
    from patches.control import REGISTERED_KEY

    # A worker publishes what it registered; the admin API must find it there.
    entry = {
        "name": "demo_patch",
        "kind": "llm",
        "description": "demo",
        "config_enabled": False,
        "config_rollout_percent": 100.0,
        "refused": False,
        "refusal_reason": "",
    }
    redis_client.hset(REGISTERED_KEY, "demo_patch", json.dumps(entry))
    listed = (await client.get("/admin/patches", headers=AUTH)).json()
    assert {p["name"]: p["enabled"] for p in listed}["demo_patch"] is False
    enabled = await client.post("/admin/patches/demo_patch/enable", headers=AUTH)
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True
    rolled = await client.post("/admin/patches/demo_patch/rollout", headers=AUTH, json={"percent": 25})
    assert rolled.json()["rollout_percent"] == 25.0
    assert (
        await client.post("/admin/patches/demo_patch/rollout", headers=AUTH, json={"percent": 250})
    ).status_code == 422
    assert (await client.post("/admin/patches/demo_patch/disable", headers=AUTH)).json()["enabled"] is False
    assert (await client.post("/admin/patches/not_installed/enable", headers=AUTH)).status_code == 404
    assert (await client.post("/admin/patches/no_such_patch/enable", headers=AUTH)).status_code == 404


def test_production_refuses_to_start_without_a_token(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.environ.pop("PATCHBAY_ADMIN_TOKEN", None)
    settings = Settings(data_dir=data_dir, admin_token=None)
    with pytest.raises(AdminTokenMissing, match="PATCHBAY_ADMIN_TOKEN is not set"):
        require_admin_token(settings, embedded=False)
    with pytest.raises(AdminTokenMissing):
        build_admin_router(settings)
    generated = require_admin_token(settings, embedded=True)
    assert len(generated) >= 24 and generated in capsys.readouterr().err
    assert require_admin_token(Settings(data_dir=data_dir, admin_token="given"), embedded=False) == "given"


async def test_forgetting_needs_a_qualified_user_and_says_when_no_worker_did_it(
    redis_url: str, database_url: str, data_dir: Path, redis_client
) -> None:  # type: ignore[no-untyped-def]
    # The whole forgetting (a worker process doing it) is tested end to end in tests/security.
    settings = Settings(
        redis_url=redis_url, database_url=database_url, data_dir=data_dir, admin_token=TOKEN, forget_timeout_s=1
    )
    async with serve(settings) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        assert (await client.delete("/admin/users/telegram:1001/memory")).status_code == 401
        bare = await client.delete("/admin/users/1001/memory", headers=AUTH)
        assert bare.status_code == 422
        assert "telegram:1001" in bare.json()["detail"] and "webchat:1001" in bare.json()["detail"]
        assert redis_client.llen("patchbay") == 0  # nothing was sent for a bare id
        waited = await client.delete("/admin/users/telegram:1001/memory", headers=AUTH)
        assert waited.status_code == 504 and "stays queued" in waited.json()["detail"]
        (task,) = redis_client.lrange("patchbay", 0, -1)
        message = json.loads(task)
        assert message["headers"]["task"] == "patchbay.forget_user"
        assert json.loads(base64.b64decode(message["body"]))[0][0] == "telegram:1001"


async def test_operator_turns_voice_on_for_a_conversation(client: httpx.AsyncClient, settings: Settings) -> None:
    from redis.asyncio import Redis

    from workers.voice.preferences import VoicePreferences

    path = "/admin/voice/conversations/discord:42:811"
    assert (await client.put(path, json={"enabled": True})).status_code == 401
    assert (await client.put(path, json={"enabled": "yes"}, headers=AUTH)).status_code == 422
    assert (await client.put(path, json={"enabled": True}, headers=AUTH)).json() == {
        "conversation_key": "discord:42:811",
        "voice": True,
    }
    async with Redis.from_url(settings.effective_redis_url) as redis:
        preferences = VoicePreferences(redis)
        assert await preferences.should_speak("anyone", "discord:42:811", inbound_was_voice=False)
        assert not await preferences.should_speak("anyone", "discord:42:999", inbound_was_voice=False)
