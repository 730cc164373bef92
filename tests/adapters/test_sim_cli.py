"""The ``patchbay sim`` commands really serve: start one as a process and drive it over HTTP."""

from __future__ import annotations

import asyncio
import re
import sys

import httpx
import pytest

COMMANDS = ["discord_sim_command", "telegram_sim_command", "slack_sim_command"]
USER_MESSAGES = {
    "discord_sim_command": {"channel_id": "810", "content": "hi", "mention": True},
    "telegram_sim_command": {"chat_id": 42, "text": "hi"},
    "slack_sim_command": {"channel": "C1", "text": "hi", "mention": True},
}


@pytest.mark.parametrize("command", COMMANDS)
async def test_simulator_command_serves_the_control_api(command: str) -> None:
    code = f"from adapters.sim.cli import {command} as c; c(['--port', '0'])"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        origin = match.group(1)
        exports: list[str] = []
        while True:
            more = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            if not more.strip().startswith("export"):
                break
            exports.append(more.strip())
        port = origin.rsplit(":", 1)[-1]
        assert any("_BOT_TOKEN=" in e for e in exports)
        assert any("BASE_URL=" in e and f":{port}" in e for e in exports), "the printed URL is the real port"
        async with httpx.AsyncClient() as client:
            posted = await client.post(f"{origin}/_sim/user_message", json=USER_MESSAGES[command])
            failing = await client.post(f"{origin}/_sim/fail", json={"count": 2, "status": 429})
            sent = await client.get(f"{origin}/_sim/sent")
        assert posted.status_code == 200 and posted.json()["ok"] is True
        assert failing.json() == {"ok": True, "pending": 2}
        assert sent.json() == []
    finally:
        process.terminate()
        await process.wait()
