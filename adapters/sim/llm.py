"""An OpenAI-compatible LLM simulator on 127.0.0.1 with injectable faults, for tests and benchmarks.

It answers ``POST /v1/chat/completions`` (plain or ``stream=true`` SSE), ``GET /v1/models``,
``POST /v1/embeddings`` and ``POST /v1/audio/transcriptions`` (the text says how many bytes it heard). Replies are a pure function of the messages, so a test can predict them.
A message's ``content`` may be a list of OpenAI content parts: every image part it receives is
decoded and recorded (``images`` in ``/_stats``: type, bytes, width, height), and the reply names each
image's size (``[image 640x480]``). With ``vision=false`` it refuses images as a text-only model's API
does (400).
Streaming replies come word by word, ``token_delay_ms`` apart, after ``latency_ms`` (the time to the
first token); ``stream_fail_next`` streams fail on purpose, ``stream_fail_at`` tokens in (0 = before
the first token: a 500 answer; more = the connection drops mid-answer). ``/_stats`` keeps each
stream's wall-clock start, first and last token (``streams``), the LLM's own timings for benchmarks.
Faults are drawn from a seeded RNG: ``500``, ``429`` (with ``Retry-After`` and an OpenAI error
body), ``timeout`` (the request is held far longer than any client waits) and ``malformed`` (200
with a broken JSON body). Control at run time: ``POST /_control`` (same keys as the constructor),
``GET /_stats``, ``POST /_reset``.

Tool calling can be scripted: ``tool_script`` is a list of ``{"tool": name, "arguments": {...},
"when": "words", "repeat": false}``. When a request offers a tool the script names (``when``, if
given, must occur in the last user message), the simulator asks for those calls instead of
answering; once the results are in, it answers with them: ``sim tool answer: <tool> said <result>``.
``repeat`` asks again after every result, for tests of the tool loop's limits. Every request's
messages, offered tool names and model are kept in ``recent_requests`` of ``/_stats``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import json
import math
import random
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import click
import httpx
from aiohttp import web
from PIL import Image, UnidentifiedImageError

__all__ = [
    "ERROR_KINDS",
    "LLMSimulator",
    "SimulatorConfig",
    "count_tokens",
    "llm_sim_command",
    "long_reply",
    "sim_reply",
]

ERROR_KINDS = ("500", "429", "401", "timeout", "malformed")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_MAX_REQUEST_TIMES = 1000
_MAX_RECENT_PROMPTS = 20  # what tests need to see what reached the model, without growing under load
_MAX_IMAGES = 100
_IMAGE_TOKENS = 85  # what an image part costs in the usage the simulator reports


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return str(content or "")


def _image_parts(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return []
    return [p for p in content if isinstance(p, dict) and p.get("type") == "image_url"]


def describe_image(part: dict[str, Any]) -> dict[str, Any]:
    """What an image part holds: a data URL's type, byte count and decoded dimensions (or why not)."""
    image_url = part.get("image_url")
    url = str(image_url.get("url", "") if isinstance(image_url, dict) else image_url or "")
    if not url.startswith("data:") or ";base64," not in url:
        return {"url_kind": "remote", "mime_type": None, "bytes": 0, "width": None, "height": None}
    header, _, payload = url.partition(";base64,")
    try:
        data = base64.b64decode(payload, validate=True)
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError):
        return {"url_kind": "data", "mime_type": header[5:], "bytes": 0, "width": None, "height": None}
    return {"url_kind": "data", "mime_type": header[5:], "bytes": len(data), "width": width, "height": height}


def count_tokens(text: str) -> int:
    """A word-piece-like count: close to a BPE tokenizer's for English, and deterministic."""
    return sum(max(1, math.ceil(len(piece) / 4)) for piece in _TOKEN.findall(text))


def sim_reply(messages: list[dict[str, Any]]) -> str:
    """The reply the simulator gives to ``messages``: a pure function of them."""
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:8]
    last: dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    short = " ".join(_text_of(last.get("content", "")).split())[:60]
    seen = [describe_image(part) for part in _image_parts(last.get("content"))]
    saw = "".join(f" [image {d['width']}x{d['height']}]" for d in seen)
    return f"sim reply #{digest}: {short}{saw}"


_FILLER_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Patchbay splits long answers where a reader would pause anyway.",
    "Every platform has its own limit, so the same answer arrives in pieces of different sizes.",
    "Nothing is cut in the middle of a word unless a single word is longer than the limit.",
)
_FILLER_CODE = "\n".join(
    ["```python", "def total_of_all_the_numbers():", "    total = 0"]
    + [f"    total = total + {n} * {n}  # step {n} of the long sum" for n in range(1, 31)]
    + ["    return total", "```"]
)
_CODE_FROM_CHARS = 1500  # shorter replies are prose only: speech tests want words, not code


def long_reply(chars: int) -> str:
    """A fixed text of exactly ``chars`` characters: paragraphs of sentences, and one fenced code block
    of about 1,700 characters when ``chars`` is large enough.

    The same for every prompt on purpose: splitting tests can rebuild the original from the chunks,
    and speech tests compare two replies whose words are identical. The code block ends well before
    the cut to length, so it is always whole.
    """
    if chars <= 0:
        raise ValueError("chars must be positive")
    paragraphs: list[str] = []
    length = 0
    index = 0
    while length < chars:
        if index == 1 and chars >= _CODE_FROM_CHARS + len(_FILLER_CODE):
            paragraphs.append(_FILLER_CODE)
        else:
            rotated = _FILLER_SENTENCES[index % 4 :] + _FILLER_SENTENCES[: index % 4]
            paragraphs.append(" ".join(rotated) + f" This is paragraph {index + 1}.")
        length = len("\n\n".join(paragraphs))
        index += 1
    return "\n\n".join(paragraphs)[:chars].rstrip().ljust(chars, ".")


@dataclass(slots=True)
class SimulatorConfig:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_kinds: list[str] = field(default_factory=lambda: ["500"])
    retry_after_s: int = 1
    timeout_hold_s: float = 600.0
    fail_next: int = 0  # the next N chat requests fail for sure (with fail_next_kind), before error_rate applies
    fail_next_kind: str = "500"
    seed: int = 0
    model: str = "sim-model"
    reply_chars: int = 0  # > 0: every reply is ``long_reply(reply_chars)`` instead of ``sim_reply(messages)``
    vision: bool = True  # False: a request with an image part is refused (400), as a text-only model's is
    tool_script: list[dict[str, Any]] = field(default_factory=list)  # scripted tool calls (module docstring)
    token_delay_ms: float = 0.0  # streaming: the wait between two tokens (50 = 20 tokens/s)
    stream_fail_next: int = 0  # the next N streamed replies fail on purpose...
    stream_fail_at: int = 0  # ...this many tokens in (0: before the first token, as a 500)

    def validate(self) -> None:
        unknown = {*self.error_kinds, self.fail_next_kind} - set(ERROR_KINDS)
        if unknown:
            raise ValueError(f"unknown error kinds {sorted(unknown)}; known: {', '.join(ERROR_KINDS)}")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error_rate must be within [0, 1]")
        if self.error_rate > 0 and not self.error_kinds:
            raise ValueError("error_rate > 0 needs at least one error kind")
        if self.token_delay_ms < 0 or self.stream_fail_next < 0 or self.stream_fail_at < 0:
            raise ValueError("token_delay_ms, stream_fail_next and stream_fail_at must be >= 0")
        if self.reply_chars < 0:
            raise ValueError("reply_chars must be >= 0 (0 = the usual short reply)")
        for rule in self.tool_script:
            if not isinstance(rule, dict) or not isinstance(rule.get("tool"), str):
                raise ValueError(f"a tool_script rule needs a 'tool' name: {rule!r}")


@dataclass(slots=True)
class _Stats:
    requests: int = 0
    chat_requests: int = 0
    successes: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    request_times: list[float] = field(default_factory=list)  # monotonic start of each chat request
    recent_prompts: list[list[dict[str, Any]]] = field(default_factory=list)  # the last chat requests' messages
    images: list[dict[str, Any]] = field(default_factory=list)  # every image part received: type, bytes, size
    recent_requests: list[dict[str, Any]] = field(default_factory=list)  # ...with the tools offered and the model
    tool_calls_requested: int = 0
    transcriptions: int = 0
    streams: list[dict[str, float]] = field(default_factory=list)  # wall clock: start, first, last token

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class LLMSimulator:
    """In-process: ``async with LLMSimulator(port=0, error_rate=0.3) as sim: sim.base_url``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **config: Any) -> None:
        self.host = host
        self.port = port
        self.config = SimulatorConfig(**config)
        self.config.validate()
        self._rng = random.Random(self.config.seed)
        self._stats = _Stats()
        self._runner: web.AppRunner | None = None
        self._held: set[asyncio.Event] = set()

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/audio/transcriptions", self._transcription)
        app.router.add_post("/_control", self._control)
        app.router.add_get("/_stats", self._stats_handler)
        app.router.add_post("/_reset", self._reset)
        return app

    async def start(self) -> LLMSimulator:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        addresses = self._runner.addresses  # the bound port, when port 0 asked for any free one
        if addresses:
            self.port = int(addresses[0][1])
        return self

    async def stop(self) -> None:
        for event in self._held:
            event.set()  # release held "timeout" requests so shutdown does not wait for them
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> LLMSimulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ control

    def configure(self, **changes: Any) -> None:
        """Change any ``SimulatorConfig`` field at run time; a new ``seed`` restarts the fault sequence."""
        unknown = set(changes) - set(SimulatorConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        candidate = SimulatorConfig(**{**asdict(self.config), **changes})
        candidate.validate()
        self.config = candidate
        if "seed" in changes:
            self._rng = random.Random(candidate.seed)

    def stats(self) -> dict[str, Any]:
        return self._stats.as_json()

    def reset(self) -> None:
        self._stats = _Stats()
        self._rng = random.Random(self.config.seed)

    # ------------------------------------------------------------------ handlers

    def _pick_fault(self) -> str | None:
        if self.config.fail_next > 0:
            self.config.fail_next -= 1
            return self.config.fail_next_kind
        if self.config.error_rate > 0 and self._rng.random() < self.config.error_rate:
            return self._rng.choice(self.config.error_kinds)
        return None

    async def _delay(self) -> None:
        delay_ms = self.config.latency_ms
        if self.config.jitter_ms:
            delay_ms += self._rng.uniform(0, self.config.jitter_ms)
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self._stats.requests += 1
        self._stats.chat_requests += 1
        self._stats.request_times.append(time.monotonic())
        del self._stats.request_times[:-_MAX_REQUEST_TIMES]
        try:
            body = await request.json()
            messages = body["messages"]
            self._stats.recent_prompts.append(messages)
            del self._stats.recent_prompts[:-_MAX_RECENT_PROMPTS]
            offered = [str(t.get("function", {}).get("name", "")) for t in body.get("tools") or []]
            self._stats.recent_requests.append({"messages": messages, "tools": offered, "model": body.get("model")})
            del self._stats.recent_requests[:-_MAX_RECENT_PROMPTS]
            if not isinstance(messages, list) or not messages:
                raise ValueError("messages must be a non-empty list")
        except (ValueError, KeyError, TypeError) as exc:
            return self._error(400, "invalid_request_error", f"bad request: {exc}")
        parts = [part for m in messages if isinstance(m, dict) for part in _image_parts(m.get("content"))]
        for part in parts:
            self._stats.images.append(describe_image(part))
        del self._stats.images[:-_MAX_IMAGES]
        if parts and not self.config.vision:
            return self._error(400, "invalid_request_error", "this model does not support image input")
        started = time.time()
        streamed_failure = None
        if body.get("stream") and self.config.stream_fail_next > 0:
            self.config.stream_fail_next -= 1
            streamed_failure = self.config.stream_fail_at
            if streamed_failure == 0:
                self._stats.errors["stream_before_first"] = self._stats.errors.get("stream_before_first", 0) + 1
                return self._error(500, "server_error", "simulated failure before the first token")
        fault = self._pick_fault()
        if fault is not None:
            self._stats.errors[fault] = self._stats.errors.get(fault, 0) + 1
            return await self._fault(fault)
        await self._delay()
        self._stats.successes += 1
        calls = _scripted_calls(self.config.tool_script, messages, offered, self._stats.chat_requests)
        if calls:
            self._stats.tool_calls_requested += len(calls)
            text = ""
        elif self.config.reply_chars:
            text = long_reply(self.config.reply_chars)
        else:
            text = _tool_answer(messages) or sim_reply(messages)
        prompt_tokens = sum(count_tokens(_text_of(m.get("content", ""))) + 4 for m in messages) + 2
        prompt_tokens += _IMAGE_TOKENS * len(parts)
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        completion_tokens = count_tokens(text)
        if isinstance(max_tokens, int) and max_tokens > 0:
            completion_tokens = min(completion_tokens, max_tokens)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        model = str(body.get("model") or self.config.model)
        completion_id = "chatcmpl-sim" + hashlib.sha256(text.encode()).hexdigest()[:12]
        if calls:
            usage["completion_tokens"] = sum(count_tokens(json.dumps(call)) for call in calls)
            usage["total_tokens"] = prompt_tokens + usage["completion_tokens"]
            message = {"role": "assistant", "content": None, "tool_calls": calls}
            choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
            return web.json_response(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [choice],
                    "usage": usage,
                }
            )
        if body.get("stream"):
            return await self._stream(request, completion_id, model, text, usage, started, streamed_failure)
        return web.json_response(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": usage,
            }
        )

    async def _stream(
        self,
        request: web.Request,
        completion_id: str,
        model: str,
        text: str,
        usage: dict[str, int],
        started: float,
        fail_at: int | None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        base = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        timing = {"start": started, "first": 0.0, "last": 0.0}
        self._stats.streams.append(timing)
        del self._stats.streams[:-_MAX_REQUEST_TIMES]
        pieces = re.findall(r"\S+\s*|\s+", text) if self.config.token_delay_ms else [text]
        for index, piece in enumerate(pieces):
            if index and self.config.token_delay_ms:
                await asyncio.sleep(self.config.token_delay_ms / 1000)
            if fail_at is not None and index == fail_at:
                self._stats.errors["stream_cut"] = self._stats.errors.get("stream_cut", 0) + 1
                assert request.transport is not None
                request.transport.close()  # the connection drops mid-answer, as a crashed provider's would
                return response
            delta: dict[str, str] = {"content": piece}
            if index == 0:
                delta["role"] = "assistant"
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            timing["last"] = time.time()
            if index == 0:
                timing["first"] = timing["last"]
        end = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage}
        await response.write(f"data: {json.dumps(end)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _fault(self, kind: str) -> web.StreamResponse:
        if kind == "500":
            return self._error(500, "server_error", "simulated internal error")
        if kind == "429":
            return self._error(
                429,
                "rate_limit_exceeded",
                "simulated rate limit",
                headers={"Retry-After": str(self.config.retry_after_s)},
            )
        if kind == "401":  # a revoked key: no retry helps, and the Router cools the provider down at once
            return self._error(401, "invalid_api_key", "simulated invalid API key")
        if kind == "timeout":
            released = asyncio.Event()
            self._held.add(released)
            try:
                await asyncio.wait_for(released.wait(), timeout=self.config.timeout_hold_s)
            except TimeoutError:
                pass  # held for the whole hold time, as a hung provider would be
            finally:
                self._held.discard(released)
            return self._error(504, "timeout", "simulated timeout released")
        # "malformed": a 200 whose body is cut mid-JSON, as a proxy dropping the connection would leave it
        return web.Response(
            status=200, text='{"id": "chatcmpl-broken", "choices": [{"mess', content_type="application/json"
        )

    @staticmethod
    def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
        body = {"error": {"message": message, "type": code, "param": None, "code": code}}
        return web.json_response(body, status=status, headers=headers)

    async def _models(self, request: web.Request) -> web.Response:
        self._stats.requests += 1
        model = {"id": self.config.model, "object": "model", "created": 0, "owned_by": "patchbay-sim"}
        return web.json_response({"object": "list", "data": [model]})

    async def _embeddings(self, request: web.Request) -> web.Response:
        self._stats.requests += 1
        body = await request.json()
        inputs = body.get("input", [])
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        data = []
        for index, text in enumerate(texts):
            digest = hashlib.sha256(str(text).encode()).digest()
            vector = [(byte - 127.5) / 127.5 for byte in digest[:16]]
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(count_tokens(str(t)) for t in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return web.json_response({"object": "list", "data": data, "model": body.get("model"), "usage": usage})

    async def _transcription(self, request: web.Request) -> web.Response:
        """Whisper's shape: a multipart ``file``; the "transcript" is a pure function of its size."""
        self._stats.requests += 1
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return self._error(400, "invalid_request_error", "a multipart 'file' is required")
        heard = len(upload.file.read())
        self._stats.transcriptions += 1
        return web.json_response({"text": f"a voice message of {heard} bytes"})

    async def _control(self, request: web.Request) -> web.Response:
        try:
            self.configure(**(await request.json()))
        except (ValueError, TypeError) as exc:
            return self._error(400, "invalid_control", str(exc))
        return web.json_response(asdict(self.config))

    async def _stats_handler(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


def _since_last_user(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    return messages[last_user + 1 :]


def _scripted_calls(
    script: list[dict[str, Any]], messages: list[dict[str, Any]], offered: list[str], serial: int
) -> list[dict[str, Any]]:
    """The tool calls the script asks for at this point of the conversation (none: answer in text)."""
    if not script or not offered:
        return []
    after = _since_last_user(messages)
    results_in = any(m.get("role") == "tool" for m in after)
    last_user = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
    calls = []
    for index, rule in enumerate(script):
        if rule["tool"] not in offered or (results_in and not rule.get("repeat")):
            continue
        if rule.get("when") and str(rule["when"]).lower() not in last_user.lower():
            continue
        arguments = json.dumps(rule.get("arguments") or {})
        calls.append(
            {
                "id": f"call_{serial}_{index}",
                "type": "function",
                "function": {"name": rule["tool"], "arguments": arguments},
            }
        )
    return calls


def _tool_answer(messages: list[dict[str, Any]]) -> str:
    """After tool results: an answer that quotes them, so a test sees the result reached the model."""
    results = [m for m in _since_last_user(messages) if m.get("role") == "tool"]
    if not results:
        return ""
    said = "; ".join(
        f"{m.get('name') or m.get('tool_call_id')} said {' '.join(str(m.get('content')).split())}" for m in results
    )
    return f"sim tool answer: {said}"


class SimulatorProcess:
    """The simulator in a process of its own (tests, benchmarks), so its CPU is not charged to the code under test."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "adapters.sim.llm", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        if not line or line[0] != "READY":
            self.process.kill()
            raise RuntimeError(f"the LLM simulator did not start: {line!r}")
        self.port = int(line[1])
        self.root_url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.root_url + "/v1"

    def stats(self) -> dict[str, Any]:
        return httpx.get(self.root_url + "/_stats", timeout=10).json()

    def configure(self, **changes: Any) -> None:
        httpx.post(self.root_url + "/_control", json=changes, timeout=10).raise_for_status()

    def reset(self) -> None:
        httpx.post(self.root_url + "/_reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


async def _serve_forever(simulator: LLMSimulator) -> None:
    async with simulator:
        click.echo(f"LLM simulator listening on {simulator.base_url}", err=True)
        # The benchmark reads this line from stdout to learn the port when it asked for port 0.
        click.echo(f"READY {simulator.port}")
        await asyncio.Event().wait()


@click.command("llm", help="Run an OpenAI-compatible LLM simulator with injectable faults.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8400, show_default=True, type=int, help="0 picks a free port")
@click.option("--latency-ms", default=0.0, show_default=True, type=float)
@click.option("--jitter-ms", default=0.0, show_default=True, type=float)
@click.option("--error-rate", default=0.0, show_default=True, type=float)
@click.option(
    "--error-kinds", default="500", show_default=True, help=f"comma-separated subset of {','.join(ERROR_KINDS)}"
)
@click.option("--retry-after", "retry_after_s", default=1, show_default=True, type=int)
@click.option("--token-delay-ms", default=0.0, show_default=True, type=float, help="streaming: wait between tokens")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--model", default="sim-model", show_default=True)
@click.option(
    "--reply-chars", default=0, show_default=True, type=int, help="> 0: every reply is a fixed text this long"
)
@click.option("--vision/--no-vision", default=True, show_default=True, help="accept image parts (else 400)")
@click.option(
    "--tool-script",
    default="",
    help='JSON list of scripted tool calls, e.g. \'[{"tool": "example__add", "arguments": {"a": 2, "b": 3}}]\'',
)
def llm_sim_command(
    host: str,
    port: int,
    latency_ms: float,
    jitter_ms: float,
    error_rate: float,
    error_kinds: str,
    retry_after_s: int,
    token_delay_ms: float,
    seed: int,
    model: str,
    reply_chars: int,
    vision: bool,
    tool_script: str,
) -> None:
    kinds = [kind.strip() for kind in error_kinds.split(",") if kind.strip()]
    try:
        script = json.loads(tool_script) if tool_script.strip() else []
    except ValueError as exc:
        raise click.BadParameter(f"--tool-script is not JSON: {exc}") from exc
    try:
        simulator = LLMSimulator(
            host=host,
            port=port,
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            error_rate=error_rate,
            error_kinds=kinds,
            retry_after_s=retry_after_s,
            token_delay_ms=token_delay_ms,
            seed=seed,
            model=model,
            reply_chars=reply_chars,
            vision=vision,
            tool_script=script,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    try:
        asyncio.run(_serve_forever(simulator))
    except KeyboardInterrupt:
        pass  # Ctrl-C is the normal way to stop it


if __name__ == "__main__":
    llm_sim_command()
