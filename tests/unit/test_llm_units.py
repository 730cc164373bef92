"""Unit tests of the LLM component's pure parts: settings, the cache key, context trimming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workers.components import LLMRequest
from workers.llm.cache import cache_key
from workers.llm.settings import LLMSettings, ProviderConfig
from workers.llm.trimming import count_message_tokens, trim_to_budget


@pytest.fixture
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "patchbay.toml"
    monkeypatch.setenv("PATCHBAY_CONFIG", str(path))
    for name in ("PATCHBAY_LLM_MODEL", "PATCHBAY_LLM_PROVIDERS", "PATCHBAY_LLM_TIMEOUT", "PATCHBAY_LLM_CACHE_TTL"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_defaults_use_the_local_model(isolated_config: Path) -> None:
    settings = LLMSettings()
    assert settings.model == "local/smollm2"
    assert settings.timeout_s == 60
    assert settings.max_tokens == 200
    assert settings.providers == []


def test_providers_from_toml(isolated_config: Path) -> None:
    isolated_config.write_text(
        '[llm]\ncache_ttl_s = 99\n[[llm.providers]]\nmodel = "openai/gpt-4o-mini"\napi_key_env = "OPENAI_API_KEY"\n'
        'timeout = 5\n[[llm.providers]]\nmodel = "local/smollm2"\n'
    )
    settings = LLMSettings()
    assert [p.model for p in settings.providers] == ["openai/gpt-4o-mini", "local/smollm2"]
    assert settings.providers[0].timeout == 5
    assert settings.cache_ttl_s == 99


def test_environment_json_wins_over_toml(isolated_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolated_config.write_text('[[llm.providers]]\nmodel = "openai/from-toml"\n')
    chain = [{"model": "anthropic/claude-3-haiku", "api_key_env": "ANTHROPIC_API_KEY"}, {"model": "local/smollm2"}]
    monkeypatch.setenv("PATCHBAY_LLM_PROVIDERS", json.dumps(chain))
    monkeypatch.setenv("PATCHBAY_LLM_TIMEOUT", "7.5")
    settings = LLMSettings()
    assert [p.model for p in settings.providers] == ["anthropic/claude-3-haiku", "local/smollm2"]
    assert settings.timeout_s == 7.5


def test_provider_key_is_read_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PB_TEST_KEY", "sk-secret")
    assert ProviderConfig(model="openai/x", api_key_env="PB_TEST_KEY").api_key() == "sk-secret"
    assert ProviderConfig(model="openai/x").api_key() is None


def _request(user: str | None, personal: bool = True, text: str = "hello") -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": text}], user_id=user, personal=personal)


def test_cache_key_scopes_personal_requests_to_their_user() -> None:
    chain = ["openai/a", "openai/b"]
    alice = cache_key("ns", chain, _request("alice"), _request("alice").messages)
    bob = cache_key("ns", chain, _request("bob"), _request("bob").messages)
    assert alice != bob
    shared_a = cache_key("ns", chain, _request("alice", personal=False), _request("x").messages)
    shared_b = cache_key("ns", chain, _request("bob", personal=False), _request("x").messages)
    assert shared_a == shared_b
    assert cache_key("ns", chain, _request(None), _request(None).messages) is None


def test_cache_key_normalises_whitespace_and_depends_on_chain_and_parameters() -> None:
    request = _request("u")
    base = cache_key("ns", ["m"], request, [{"role": "user", "content": "hello   world"}])
    assert base == cache_key("ns", ["m"], request, [{"role": "user", "content": " hello world\n"}])
    assert base != cache_key("ns", ["other"], request, [{"role": "user", "content": "hello world"}])
    hotter = LLMRequest(messages=request.messages, user_id="u", temperature=0.1)
    assert base != cache_key("ns", ["m"], hotter, [{"role": "user", "content": "hello world"}])
    assert base is not None and base.startswith("ns:v1:")


def _conversation(turns: int) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "You are a helpful assistant."}]
    for i in range(turns):
        messages.append({"role": "user", "content": f"question number {i} about the weather in a long sentence"})
        messages.append({"role": "assistant", "content": f"answer number {i}, which is also a fairly long sentence"})
    messages.append({"role": "user", "content": "and the final question?"})
    return messages


def test_trimming_keeps_system_and_latest_user_and_drops_oldest_first() -> None:
    messages = _conversation(10)

    def count(msgs: list[dict[str, str]]) -> int:
        return count_message_tokens("gpt-4o-mini", msgs)

    full = count(messages)
    budget = full // 2
    result = trim_to_budget(messages, budget, count)
    assert result.dropped > 0
    assert count(result.messages) <= budget
    assert result.messages[0] == messages[0]
    assert result.messages[-1] == messages[-1]
    # what is kept is a suffix of the conversation: the oldest turns went first
    assert result.messages[1:] == messages[len(messages) - len(result.messages) + 1 :]


def test_trimming_leaves_a_fitting_conversation_alone() -> None:
    messages = _conversation(2)
    result = trim_to_budget(messages, 10_000, lambda msgs: count_message_tokens("gpt-4o-mini", msgs))
    assert result.messages == messages
    assert result.dropped == 0


def test_trimming_never_drops_the_system_prompt_or_latest_message_even_over_budget() -> None:
    messages = _conversation(3)
    result = trim_to_budget(messages, 5, lambda msgs: count_message_tokens("gpt-4o-mini", msgs))
    assert result.messages == [messages[0], messages[-1]]
