"""The gateway process lists, switches and exports patches without loading the layer machinery or any worker code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]

# A real gateway: create_app, its lifespan started, and the patch-related routes called as an operator
# and a Prometheus scraper would; then every project module the process holds.
GATEWAY = """
import asyncio, json, os, sys
import httpx
from gateway.app import create_app
from gateway.shared.settings import Settings

settings = Settings(redis_url=os.environ["REDIS_URL"], data_dir=os.environ["PATCHBAY_DATA_DIR"], admin_token="t")
app = create_app(settings)
auth = {"Authorization": "Bearer t"}

async def main():
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            statuses = {
                "list": (await client.get("/admin/patches", headers=auth)).status_code,
                "stacks": (await client.get("/admin/patches/stacks", headers=auth)).status_code,
                "enable": (await client.post("/admin/patches/memory_enhancement/enable", headers=auth)).status_code,
                "metrics": (await client.get("/metrics")).status_code,
                "health": (await client.get("/healthz")).status_code,
            }
    print(json.dumps({"statuses": statuses, "modules": sorted(sys.modules)}))

asyncio.run(main())
"""


def test_the_gateway_process_does_not_import_the_pipeline_the_handler_or_the_layer(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    redis_client.hset(
        "patchbay:patches:registered",
        "memory_enhancement",
        json.dumps({"name": "memory_enhancement", "kind": "memory", "config_enabled": True}),
    )  # as a worker publishes it
    result = subprocess.run(
        [sys.executable, "-c", GATEWAY],
        env={**os.environ, "REDIS_URL": redis_url, "PATCHBAY_DATA_DIR": str(tmp_path)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["statuses"] == {"list": 200, "stacks": 200, "enable": 200, "metrics": 200, "health": 503}
    modules = set(report["modules"])
    assert "patches.control" in modules and "patches.metrics" in modules  # the routes really ran the framework
    for forbidden in ("workers.pipeline", "workers.handler", "patches.layer", "patches.runtime"):
        assert forbidden not in modules, f"the gateway imported {forbidden}"
    assert not sorted(m for m in modules if m == "workers" or m.startswith("workers."))
    assert not sorted(m for m in modules if m.startswith("patches.") and m.split(".")[1] in _BUILT_IN_PATCHES)


_BUILT_IN_PATCHES = {"llm_resilience", "emotion_tone", "memory_enhancement", "emotion_voice"}
