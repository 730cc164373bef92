"""The emotion classifier, the decaying shared state, and the tone-guidance layer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bench import emotion_goemotions
from patches.emotion_tone import EmotionToneConfig, ToneGuidedLLM
from tests.voice.helpers import RecordingLLM, closed_port_url, reading
from workers.components import LLMRequest
from workers.emotion import EMOTIONS, EmotionManager, EmotionSettings, LexiconEmotionClassifier

HALF_LIFE = 100.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def manager(redis_url: str, redis_client: redis.Redis, clock: Clock) -> AsyncIterator[EmotionManager]:
    settings = EmotionSettings(half_life_s=HALF_LIFE, observation_weight=1.0)
    async with EmotionManager(redis_url, settings=settings, clock=clock) as built:
        yield built


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thank you so much, this is wonderful!", "joy"),
        ("I'm so sad, I really miss her.", "sadness"),
        ("I hate this, it's so stupid and annoying.", "anger"),
        ("I'm terrified and scared of what will happen.", "fear"),
        ("Ew, that is disgusting and gross.", "disgust"),
        ("Wow, I did not expect that! Why would they do that?", "surprise"),
        ("The meeting is on Tuesday at three.", "neutral"),
    ],
)
def test_classifier_reads_clear_sentences(text: str, expected: str) -> None:
    result = LexiconEmotionClassifier().classify(text)
    assert result.label == expected, result.scores
    assert set(result.scores) == set(EMOTIONS)
    assert result.confidence == pytest.approx(max(result.scores.values()))
    assert sum(result.scores.values()) == pytest.approx(1.0)


def test_empty_text_is_neutral() -> None:
    assert LexiconEmotionClassifier().classify("   ").label == "neutral"


async def test_state_decays_toward_neutral_with_the_half_life(manager: EmotionManager, clock: Clock) -> None:
    observed = await manager.observe("u1", reading("joy"))
    assert observed.label == "joy" and observed.confidence == pytest.approx(1.0)

    clock.now += HALF_LIFE
    half = await manager.state("u1")
    assert half.scores["joy"] == pytest.approx(0.5)
    assert half.scores["neutral"] == pytest.approx(0.5)

    clock.now += 2 * HALF_LIFE
    later = await manager.state("u1")
    assert later.scores["joy"] == pytest.approx(0.125)
    assert later.label == "neutral"


async def test_unknown_user_is_neutral(manager: EmotionManager) -> None:
    state = await manager.state("nobody")
    assert state.label == "neutral" and state.confidence == pytest.approx(1.0)


async def test_observation_blends_with_the_decayed_state(redis_url: str, redis_client: redis.Redis) -> None:
    clock = Clock()
    settings = EmotionSettings(half_life_s=HALF_LIFE, observation_weight=0.5)
    async with EmotionManager(redis_url, settings=settings, clock=clock) as manager:
        await manager.observe("u2", reading("sadness"))  # neutral 1.0 → sadness 0.5, neutral 0.5
        clock.now += HALF_LIFE  # sadness 0.25, neutral 0.75
        state = await manager.observe("u2", reading("sadness"))
    assert state.scores["sadness"] == pytest.approx(0.5 * 0.25 + 0.5)
    assert state.scores["neutral"] == pytest.approx(0.5 * 0.75)


async def test_every_worker_sees_the_same_state(redis_url: str, redis_client: redis.Redis, clock: Clock) -> None:
    settings = EmotionSettings(half_life_s=HALF_LIFE)
    async with (
        EmotionManager(redis_url, settings=settings, clock=clock) as first,
        EmotionManager(redis_url, settings=settings, clock=clock) as second,
    ):
        await first.observe("u3", await first.read("Thank you so much, this is wonderful!"))
        assert (await second.state("u3")).label == "joy"


async def test_tone_guidance_line_follows_the_state(manager: EmotionManager) -> None:
    below = RecordingLLM()
    llm = ToneGuidedLLM(below, EmotionToneConfig(), manager)
    messages = [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"}]

    await llm.complete(LLMRequest(messages=messages, user_id="calm-user"))
    assert below.requests[-1].messages == messages  # neutral: nothing added

    await manager.observe("sad-user", reading("sadness"))
    await llm.complete(LLMRequest(messages=messages, user_id="sad-user"))
    guided = below.requests[-1].messages
    assert [m["role"] for m in guided] == ["system", "system", "user"]
    assert guided[0]["content"] == "be nice"
    assert "down" in guided[1]["content"]


async def test_tone_guidance_raises_when_emotion_fails() -> None:
    below = RecordingLLM()
    async with EmotionManager(closed_port_url()) as broken:
        with pytest.raises(RedisConnectionError):
            await ToneGuidedLLM(below, EmotionToneConfig(), broken).complete(LLMRequest(messages=[], user_id="u"))
    assert below.requests == []


def test_evaluation_prints_one_json_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = tmp_path / "ekman-labels.txt"
    labels.write_text("\n".join(EMOTIONS) + "\n")
    data = tmp_path / "sample.tsv"
    rows = [
        ("Thank you so much, this is wonderful!", "3"),
        ("I'm so sad, I really miss her.", "5"),
        ("The meeting is on Tuesday at three.", "4"),
        ("Wow, really? I did not expect that.", "6,3"),
    ]
    data.write_text("".join(f"{text}\t{ids}\tid{i}\n" for i, (text, ids) in enumerate(rows)))
    emotion_goemotions.main(["--data", str(data), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["messages"] == 4
    assert result["trained_on_this_file"] is False
    assert result["accuracy"] == pytest.approx(1.0)
    assert result["majority_accuracy"] == pytest.approx(0.5)  # joy is gold in two of four
    assert 0.0 <= result["macro_f1"] <= 1.0 and result["p50_ms"] > 0
