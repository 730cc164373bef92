"""The tools patch in one process: the allow-list, models without tools, the cache, limits and built-ins.

The model is the real LLM simulator behind the real litellm client and the resilience layer; the
tools are a small in-process source (the MCP transports have their own end-to-end tests).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.sim.llm import LLMSimulator
from gateway.shared.envelope import Envelope, Platform
from patches import PatchRuntime, call_context
from patches.llm_resilience import ResilientLLM
from patches.tools import SPEC, ToolCallingLLM, ToolsConfig
from workers.components import LLMRequest, LLMResult, Memory, Recalled, RecallQuery, Scope, ToolCall, Turn
from workers.llm.client import LiteLLMClient
from workers.llm.settings import LLMSettings
from workers.report import message_report
from workers.tools.base import ToolContext, ToolSpec
from workers.tools.builtins import BuiltinTools, current_time
from workers.tools.settings import AllowRule, ToolsSettings

MODEL = "openai/sim-model"


class Counter:
    """A tool source: ``count`` returns how often it was called (live data); ``double`` is declared pure."""

    name = "demo"

    def __init__(self) -> None:
        self.calls = 0

    async def list_tools(self) -> list[ToolSpec]:
        number = {"type": "object", "properties": {"n": {"type": "integer"}}}
        return [
            ToolSpec("demo", "count", "how many calls so far", {"type": "object", "properties": {}}),
            ToolSpec("demo", "double", "twice n", number, cacheable=True),
        ]

    async def call(self, tool: str, arguments: dict[str, Any], context: ToolContext) -> str:
        self.calls += 1
        return f"count is {self.calls}" if tool == "count" else str(2 * int(arguments.get("n", 0)))


@pytest.fixture
async def sim(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LLMSimulator]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    async with LLMSimulator(port=0) as simulator:
        yield simulator


def _envelope(*, direct: bool, conversation: str = "c1", platform: Platform = Platform.TELEGRAM) -> Envelope:
    return Envelope(
        platform=platform,
        bot_id="bot",
        conversation_id=conversation,
        message_id="m1",
        author_id="42",
        is_direct=direct,
        text="hello",
    )


def _request(envelope: Envelope, text: str = "hello", **fields: Any) -> LLMRequest:
    return LLMRequest(
        messages=[{"role": "user", "content": text}],
        user_id=envelope.user_key,
        conversation_key=envelope.conversation_key,
        metadata={"envelope": envelope},
        **fields,
    )


def _patched(sim: LLMSimulator, settings: ToolsSettings, *sources: Any, below: Any = None) -> ToolCallingLLM:
    base = below or LiteLLMClient(MODEL, api_base=sim.base_url)
    return ToolCallingLLM(base, ToolsConfig(enabled=True), settings, model=MODEL, sources=list(sources))


def _offered(sim: LLMSimulator) -> list[list[str]]:
    return [request["tools"] for request in sim.stats()["recent_requests"]]


async def test_no_tools_outside_direct_messages_unless_a_rule_allows_them(sim: LLMSimulator) -> None:
    settings = ToolsSettings(
        models=[MODEL], allow=[AllowRule(platform="telegram", conversation="ops", tools=["demo.double"])]
    )
    llm = _patched(sim, settings, Counter())

    await llm.complete(_request(_envelope(direct=True)))  # a DM: everything ("*" by default)
    await llm.complete(_request(_envelope(direct=False, conversation="lobby")))  # a group without a rule: nothing
    await llm.complete(_request(_envelope(direct=False, conversation="ops")))  # the rule's group: its tool only
    await llm.complete(_request(_envelope(direct=False, conversation="ops", platform=Platform.DISCORD)))

    assert _offered(sim) == [["demo__count", "demo__double"], [], ["demo__double"], []]


class NamesAForbiddenTool:
    """A model stand-in that asks for a tool it was not offered, then answers with what it heard."""

    def __init__(self) -> None:
        self.requests: list[LLMRequest] = []

    async def complete(self, request: LLMRequest) -> LLMResult:
        self.requests.append(request)
        if len(self.requests) == 1:
            return LLMResult(text="", model=MODEL, tool_calls=[ToolCall("c1", "demo__count", "{}")])
        return LLMResult(text=f"heard: {request.messages[-1]['content']}", model=MODEL)


async def test_a_tool_not_offered_is_never_run_even_when_the_model_names_it(sim: LLMSimulator) -> None:
    source, model = Counter(), NamesAForbiddenTool()
    settings = ToolsSettings(models=[MODEL], direct_messages=["demo.double"])
    llm = _patched(sim, settings, source, below=model)
    result = await llm.complete(_request(_envelope(direct=True)))
    assert source.calls == 0 and "there is no tool named 'demo__count'" in result.text
    offered = [tool["function"]["name"] for tool in model.requests[0].tools or []]
    assert offered == ["demo__double"]


async def test_a_model_without_tool_support_is_offered_none_and_it_is_logged_once(
    sim: LLMSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="patches.tools")
    base = LiteLLMClient(MODEL, api_base=sim.base_url)
    llm = ToolCallingLLM(base, ToolsConfig(enabled=True), ToolsSettings(), model="local/smollm2", sources=[Counter()])
    for _ in range(3):
        await llm.complete(_request(_envelope(direct=True)))
    assert _offered(sim) == [[], [], []]
    assert sum("cannot call tools" in record.getMessage() for record in caplog.records) == 1


async def test_answers_built_on_live_tool_data_are_never_served_from_the_cache(
    sim: LLMSimulator, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATCHBAY_TOOLS_MODELS", MODEL)  # the chain's links read the same [tools] models
    settings = LLMSettings(model=MODEL, api_base=sim.base_url, cache_namespace=f"test:tools:cache:{uuid.uuid4().hex}")
    resilient = ResilientLLM(LiteLLMClient(MODEL, api_base=sim.base_url), settings, redis_url)
    source = Counter()
    llm = _patched(sim, ToolsSettings(models=[MODEL]), source, below=resilient)
    envelope = _envelope(direct=True)

    sim.configure(tool_script=[{"tool": "demo__count"}])
    first = await llm.complete(_request(envelope, "how many?"))
    second = await llm.complete(_request(envelope, "how many?"))
    assert "count is 1" in first.text and "count is 2" in second.text  # live: asked again, answered anew
    assert not second.cached

    sim.configure(tool_script=[{"tool": "demo__double", "arguments": {"n": 21}}])
    before = sim.stats()["chat_requests"]
    third = await llm.complete(_request(envelope, "double 21"))
    fourth = await llm.complete(_request(envelope, "double 21"))
    assert "said 42" in third.text and fourth.text == third.text
    # The pure tool's answer came from the cache the second time: 2 requests, then only the tool call step.
    assert sim.stats()["chat_requests"] - before == 3
    await resilient.aclose()


async def test_tokens_and_cost_of_every_step_are_summed_and_the_calls_recorded(sim: LLMSimulator) -> None:
    sim.configure(tool_script=[{"tool": "demo__count"}])
    llm = _patched(sim, ToolsSettings(models=[MODEL]), Counter())
    with message_report("k1") as report:
        result = await llm.complete(_request(_envelope(direct=True), "count"))
    steps = sim.stats()["recent_requests"]
    assert len(steps) == 2 and result.completion_tokens > 0
    assert result.prompt_tokens > 0 and report.tools is not None
    assert report.tools["steps"] == 2 and report.tools["offered"] == 2
    (call,) = report.tools["calls"]
    assert (call["tool"], call["server"], call["outcome"], call["result_chars"]) == ("demo.count", "demo", "ok", 10)


async def test_a_result_longer_than_the_limit_is_cut_and_says_so(sim: LLMSimulator) -> None:
    class Verbose(Counter):
        async def call(self, tool: str, arguments: dict[str, Any], context: ToolContext) -> str:
            return "x" * 5000

    sim.configure(tool_script=[{"tool": "demo__count"}])
    llm = _patched(sim, ToolsSettings(models=[MODEL], max_result_chars=100), Verbose())
    with message_report("k2") as report:
        await llm.complete(_request(_envelope(direct=True), "count"))
    fed = sim.stats()["recent_requests"][-1]["messages"][-1]["content"]
    assert fed.startswith("x" * 100) and "[cut: 4900 more characters]" in fed and "x" * 101 not in fed
    assert report.tools is not None and report.tools["calls"][0]["truncated"] is True


async def test_the_patch_falls_back_to_the_plain_answer_when_its_own_code_fails(
    sim: LLMSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATCHBAY_TOOLS_BUILTINS", "current_time")
    monkeypatch.setenv("PATCHBAY_TOOLS_MODELS", MODEL)

    async def broken_loop(*args: Any, **kwargs: Any) -> LLMResult:
        raise RuntimeError("a bug in the tool loop")

    monkeypatch.setattr("patches.tools.run_tool_loop", broken_loop)
    sim.configure(tool_script=[{"tool": "current_time"}])
    runtime = PatchRuntime()
    llm = await runtime.apply(
        SPEC, LiteLLMClient(MODEL, api_base=sim.base_url), ToolsConfig(enabled=True), {"base_llm_model": MODEL}
    )
    assert "tools" not in runtime.refusals
    with call_context(user_id="telegram:42") as context:
        result = await llm.complete(_request(_envelope(direct=True)))
    assert result.text.startswith("sim reply") and [e.outcome for e in context.trace] == ["fallback"]
    assert _offered(sim) == [[]]  # the layer below answered the original request: no tools
    assert runtime.stats.patches["tools"].fallbacks == 1


# --------------------------------------------------------------------------- built-ins


class Remembered:
    """A memory that recalls fixed turns, of this user and of someone else, and records the queries."""

    def __init__(self) -> None:
        self.queries: list[RecallQuery] = []

    async def remember(self, turn: Turn) -> None: ...

    async def history(self, conversation_key: str, limit: int) -> list[Turn]:
        return []

    async def forget_user(self, user_id: str) -> int:
        return 0

    async def recall(self, query: RecallQuery) -> list[Recalled]:
        self.queries.append(query)
        mine = Turn(query.conversation_key, "user", "my cat is called Miso", "42", user_id=query.user_id)
        theirs = Turn(query.conversation_key, "user", "my cat is called Rex", "7", user_id="telegram:7")
        said = Turn(query.conversation_key, "assistant", "Miso is a nice name", "bot", user_id=query.user_id)
        return [Recalled(mine, 1.0), Recalled(theirs, 0.9), Recalled(said, 0.8)]


async def test_search_memory_finds_only_the_users_own_words_within_recall_scope() -> None:
    memory = Remembered()
    tools = BuiltinTools(["search_memory", "current_time"], memory, None)
    envelope = _envelope(direct=True)
    context = ToolContext(
        user_key=envelope.user_key,
        conversation_key=envelope.conversation_key,
        platform="telegram",
        bot_id="bot",
        is_direct=True,
    )
    found = await tools.call("search_memory", {"query": "cat"}, context)
    assert "Miso" in found and "Rex" not in found and "nice name" not in found
    (query,) = memory.queries
    assert (query.user_id, query.scope, query.platform) == (envelope.user_key, Scope.PRIVATE, "telegram")
    assert [spec.name for spec in await tools.list_tools()] == ["search_memory", "current_time"]


def test_current_time_uses_the_users_time_zone_when_known() -> None:
    assert "time zone Asia/Tokyo" in current_time("Asia/Tokyo")
    utc = current_time(None)
    assert "UTC" in utc and f"{datetime.now(UTC):%Y-%m-%d}" in utc
    assert "UTC" in current_time("Not/AZone")


async def test_a_forgotten_topic_is_deleted_and_recall_no_longer_finds_it(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers.memory.embedder import HashEmbedder
    from workers.memory.store import SqlMemory

    monkeypatch.setenv("PATCHBAY_DATA_DIR", str(tmp_path))
    from gateway.shared.settings import Settings

    store = SqlMemory(Settings().sqlalchemy_url, embedder=HashEmbedder())
    await store.init()
    envelope = _envelope(direct=True)
    common: dict[str, Any] = {
        "conversation_key": envelope.conversation_key,
        "platform": "telegram",
        "bot_id": "bot",
        "user_id": envelope.user_key,
        "scope": Scope.PRIVATE,
    }
    await store.remember(Turn(role="user", text="my bank pin is 1234", author_id="42", message_id="a", **common))
    await store.remember(Turn(role="assistant", text="noted, 1234", author_id="bot", message_id="re:a", **common))
    await store.remember(Turn(role="user", text="I like green tea", author_id="42", message_id="b", **common))
    await store.flush()
    memory: Memory = store
    tools = BuiltinTools(["forget_memory"], memory, None)
    context = ToolContext(
        user_key=envelope.user_key,
        conversation_key=envelope.conversation_key,
        platform="telegram",
        bot_id="bot",
        is_direct=True,
    )
    said = await tools.call("forget_memory", {"about": "bank pin"}, context)
    assert "Deleted 1" in said and "Confirm" in said
    left = await store.history(envelope.conversation_key, 10)
    assert [turn.text for turn in left] == ["I like green tea"]
    await store.aclose()
    await asyncio.sleep(0)


async def test_a_step_that_only_asks_for_tools_is_an_answer_for_the_resilience_layer(
    sim: LLMSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from patches.llm_resilience import SPEC as RESILIENCE

    monkeypatch.setenv("PATCHBAY_LLM_CACHE", "false")
    monkeypatch.setenv("PATCHBAY_TOOLS_MODELS", MODEL)
    sim.configure(tool_script=[{"tool": "demo__count"}])
    runtime = PatchRuntime()
    resilient = await runtime.apply(
        RESILIENCE, LiteLLMClient(MODEL, api_base=sim.base_url), None, {"base_llm_model": MODEL}
    )
    tools = [(await Counter().list_tools())[0].definition()]
    with call_context(user_id="telegram:42") as context:
        result = await resilient.complete(_request(_envelope(direct=True), "count", tools=tools))
    assert [call.name for call in result.tool_calls] == ["demo__count"] and not result.text
    assert [entry.outcome for entry in context.trace] == ["applied"]  # not "rejected: empty answer"
    assert sim.stats()["chat_requests"] == 1
