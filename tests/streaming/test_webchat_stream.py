"""The web chat's streaming endpoint with real gateway and worker processes and a streaming LLM."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import httpx
import redis

from adapters.sim.llm import SimulatorProcess, long_reply
from adapters.webchat.outbound import reply_key
from tests.e2e.harness import WEBCHAT_API_KEY, Cluster
from tests.e2e.platform_helpers import WebchatTap
from tests.streaming.conftest import REPLY_CHARS


def stream_chat(cluster: Cluster, user_id: str, text: str, message_id: str) -> list[tuple[float, str, dict[str, Any]]]:
    """POST /api/chat/stream; every SSE event with the wall-clock time it arrived."""
    events: list[tuple[float, str, dict[str, Any]]] = []
    body = {"user_id": user_id, "text": text, "message_id": message_id}
    headers = {"Authorization": f"Bearer {WEBCHAT_API_KEY}"}
    with httpx.stream("POST", cluster.url + "/api/chat/stream", json=body, headers=headers, timeout=120) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((time.time(), name, json.loads(line[len("data: ") :])))
    return events


def test_webchat_streams_typing_then_growing_text_then_one_complete_reply(
    make_cluster: Any, slow_env: dict[str, str], slow_llm: SimulatorProcess, redis_client: redis.Redis
) -> None:
    cluster = make_cluster(slow_env).start(workers=1)
    tap = WebchatTap(redis_client)
    try:
        events = stream_chat(cluster, "streamer", "tell me something long", "m1")
    finally:
        tap.close()
    names = [name for _, name, _ in events]
    assert names[0] == "typing", names
    assert names[-1] == "reply" and names.count("reply") == 1
    texts = [(at, data["text"]) for at, name, data in events if name == "text"]
    assert len(texts) >= 5, f"the answer should grow in steps, got {len(texts)}"
    for (_, earlier), (_, later) in itertools.pairwise(texts):
        assert later.startswith(earlier) and len(later) > len(earlier)
    final = events[-1][2]
    expected = long_reply(REPLY_CHARS)
    assert final["text"] == expected and texts[-1][1] in expected
    timing = slow_llm.stats()["streams"][-1]
    first_visible = texts[0][0]
    assert first_visible - timing["first"] < 1.0, "first text more than a second after the LLM's first token"
    assert events[-1][0] - timing["last"] < 1.0
    # exactly one reply, stored once, announced once
    assert list(tap.counts.values()) == [1]
    (key,) = tap.counts
    assert key.endswith(":m1")
    assert json.loads(redis_client.get(reply_key(key)) or "{}")["text"] == expected
    # POST /api/chat keeps its contract: a plain JSON body with the whole answer
    plain = cluster.chat("streamer", "and again", message_id="m2")
    assert plain.status_code == 200 and plain.json()["text"] == expected
