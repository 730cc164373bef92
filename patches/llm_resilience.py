"""``llm_resilience``: provider fallback chain, retries, shared cooldowns, response cache, token budget.

``ResilientLLM`` enhances ``LLM.complete`` over the layer below (``below``, by default the base
client: the offline SmolLM2, or the model ``PATCHBAY_LLM_MODEL`` names). For each request it trims
the conversation to the token budget, answers from the Redis cache when it can, and otherwise
walks the provider chain in order: remote providers through litellm's Router (retries with backoff
and jitter, per-attempt timeout, cooldowns shared in Redis), local models in process, and ``below``
as the last resort. When every link fails it returns a short apology marked ``degraded`` with each
link's error: a valid answer, not a fallback. It never raises for a provider; a failure of its own
code falls back, through the framework, to the base client, counted and logged.

Its settings are the LLM's own (``[llm]``, docs/llm.md: providers, retries, cache), shared with the
base client; the patch's config is only its switch, rollout and health. The Router and the cache
are the LLM component's helpers (``workers.llm.router``, ``workers.llm.cache``).

A request that offers tools (``LLMRequest.tools``, the ``tools`` patch) goes with them to every link
whose model can call tools (``workers.llm.capabilities``) and without them to the others, which then
answer in plain text; an answer asking for tool calls is never cached, only finished answers are.
``stream`` walks the same chain: a provider that fails before its first chunk moves on to the next
one (nothing was said yet); one that breaks off after it ends the answer with what was said and a
short note (``STREAM_NOTE``), counted in ``patchbay_llm_streams_cut_total`` and logged, because a
second provider would start the answer over. A cached answer streams as one chunk.

An LLM patch placed *below* this one runs only when the chain falls through to ``below``, i.e.
when every provider before it failed: put a patch that must see every request above it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from patches.runtime import make_apply_function
from patches.spec import DEFAULT_STREAM_NOTE, PatchConfig, PatchSpec
from workers.components import LLM, ComponentKind, Delta, LLMRequest, LLMResult
from workers.llm.accounting import deltas_from_stream, result_from_response
from workers.llm.cache import CacheOutcome, ResponseCache
from workers.llm.capabilities import plain_messages, supports_tools
from workers.llm.client import LiteLLMClient
from workers.llm.failures import Failure, backoff_s, classify, retry_after_s
from workers.llm.local import LOCAL_PROVIDER
from workers.llm.metrics import ALL_PROVIDERS_DOWN, LLM_CALLS, STREAMS_CUT
from workers.llm.router import ProcessLocalRouter, group_name
from workers.llm.settings import LLMSettings, ProviderConfig
from workers.llm.trimming import context_budget, count_message_tokens, trim_to_budget
from workers.vision.capability import link_sees_images
from workers.vision.parts import has_images, text_only

__all__ = [
    "SPEC",
    "STREAM_NOTE",
    "ChainLink",
    "LLMResilienceConfig",
    "ResilientLLM",
    "apply_llm_resilience_patch",
    "build_resilient_llm",
]


class LLMResilienceConfig(PatchConfig, patch="llm_resilience", default_enabled=True):
    """The switch, rollout and health of the chain; the chain itself is ``[llm]`` (docs/llm.md)."""


log = logging.getLogger(__name__)

_ERROR_CHARS = 240
STREAM_NOTE = DEFAULT_STREAM_NOTE


@dataclass(slots=True, frozen=True)
class ChainLink:
    """One step of the chain: a Router model group, or an LLM called directly (local model, the base)."""

    model: str
    group: str | None = None  # set for Router links
    direct: LLM | None = None  # set for in-process links

    @property
    def label(self) -> str:
        """How errors name this link: the group tells two providers serving the same model apart."""
        return self.group or self.model


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:_ERROR_CHARS]}"


def _model_of(llm: LLM) -> str:
    return str(getattr(llm, "model", type(llm).__name__))


class ResilientLLM:
    """``LLM`` with a fallback chain, retries, shared cooldowns, a response cache and a token budget."""

    def __init__(
        self,
        below: LLM,
        settings: LLMSettings,
        redis_url: str | None,
        *,
        config: LLMResilienceConfig | None = None,
        below_model: str | None = None,
    ) -> None:
        self.below = below
        self.settings = settings
        self.config = config
        # The enhancement holds a handle, not the client: the application names the model below it.
        self.links = self._build_links(below, below_model or _model_of(below), settings)
        remote = [(index, p) for index, p in enumerate(settings.providers) if not _is_local(p)]
        self._router = ProcessLocalRouter(remote, settings, redis_url) if remote else None
        self._cache = (
            ResponseCache(redis_url, namespace=settings.cache_namespace, ttl_s=settings.cache_ttl_s)
            if settings.cache_enabled and redis_url
            else None
        )
        if settings.cache_enabled and not redis_url:
            log.warning("LLM response cache is enabled but no Redis URL was given: caching is off")
        self.chain_models = [link.model for link in self.links]
        # Links before this index are the configured chain; after it, only the base as last resort.
        self._providers_end = len(settings.providers) or len(self.links)
        self._budget_model = self.chain_models[0]
        self._budgets: dict[int, int] = {}

    @staticmethod
    def _build_links(below: LLM, below_model: str, settings: LLMSettings) -> list[ChainLink]:
        links: list[ChainLink] = []
        for index, provider in enumerate(settings.providers):
            if _is_local(provider):
                local = LiteLLMClient(provider.model, timeout_s=settings.timeout_s, max_tokens=settings.max_tokens)
                links.append(ChainLink(provider.model, direct=local))
            else:
                links.append(ChainLink(provider.model, group=group_name(index, provider)))
        if not links or (settings.last_resort_base and all(link.model != below_model for link in links)):
            links.append(ChainLink(below_model, direct=below))
        return links

    # ------------------------------------------------------------------ the call

    async def complete(self, request: LLMRequest) -> LLMResult:
        started = time.perf_counter()
        messages = self._trimmed(request)
        lookup = await self._lookup(request, messages, started)
        if lookup is not None and lookup.result is not None:
            return lookup.result
        errors: dict[str, str] = {}  # link label -> its last error; a link that answered on a retry is not listed
        answer: LLMResult | None = None
        retry_last: tuple[ChainLink, BaseException] | None = None  # the last provider that may heal on a retry
        for index, link in enumerate(self.links):
            try:
                answer = await self._call_waiting_short(link, request, messages)
                break
            except Exception as exc:  # any provider failure moves on to the next link at once; each one is recorded
                self._failed(errors, link, exc)
                if link.group is not None and classify(exc) is Failure.TRANSIENT:
                    retry_last = (link, exc)
            if index == self._providers_end - 1 and retry_last is not None:
                # The end of the configured chain and nobody answered: only now is a provider retried
                # with backoff, the last one that could heal (the others were cooling or refused).
                answer = await self._retry(*retry_last, request, messages, errors)
                if answer is not None:
                    break
        if answer is not None:
            result = answer
            result.errors = list(errors.values())
            result.latency_ms = (time.perf_counter() - started) * 1000
            if errors:
                log.warning(
                    "LLM answered by %s after %d failed provider(s): %s", result.model, len(errors), result.errors
                )
            storable = not result.tool_calls  # a step of the tool loop, not an answer
            if storable and lookup is not None and lookup.outcome is CacheOutcome.MISS and lookup.key is not None:
                await self._cache.store(lookup.key, result, user_key=request.user_id)  # type: ignore[union-attr]
            return result
        return self._apology(list(errors.values()), started)

    def _apology(self, errors_list: list[str], started: float) -> LLMResult:
        ALL_PROVIDERS_DOWN.inc()
        log.error("every LLM provider failed; answering with the apology: %s", errors_list)
        return LLMResult(
            text=self.settings.apology,
            model="",
            provider="",
            latency_ms=(time.perf_counter() - started) * 1000,
            errors=errors_list,
            degraded=True,
        )

    @staticmethod
    def _failed(errors: dict[str, str], link: ChainLink, exc: BaseException) -> None:
        errors[link.label] = f"{link.label}: {_describe(exc)}"
        log.info("LLM provider %s failed: %s", link.label, _describe(exc))

    async def _call_waiting_short(
        self, link: ChainLink, request: LLMRequest, messages: list[dict[str, Any]]
    ) -> LLMResult:
        """One call; a 429 whose ``Retry-After`` is short is waited for and retried on the same provider."""
        for retry in range(self.settings.num_retries + 1):
            try:
                return await self._call(link, request, messages)
            except Exception as exc:
                wait = retry_after_s(exc) if link.group is not None else None
                if wait is None or wait > self.settings.retry_after_max_s or retry == self.settings.num_retries:
                    raise
                log.info("LLM provider %s asked to wait %.1f s (429): waiting", link.label, wait)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _retry(
        self,
        link: ChainLink,
        failure: BaseException,
        request: LLMRequest,
        messages: list[dict[str, Any]],
        errors: dict[str, str],
    ) -> LLMResult | None:
        """Retry the last provider that may heal, with litellm's backoff; None when it does not."""
        retries = self.settings.num_retries
        for retry in range(retries):
            if (after := retry_after_s(failure)) is not None and after > self.settings.retry_after_max_s:
                return None  # it asked for longer than a reply may wait: the last resort answers sooner
            await asyncio.sleep(backoff_s(retry, retries, failure))
            try:
                result = await self._call(link, request, messages)
            except Exception as exc:
                self._failed(errors, link, exc)
                if classify(exc) is not Failure.TRANSIENT:
                    return None
                failure = exc
                continue
            errors.pop(link.label, None)
            return result
        return None

    async def _call(self, link: ChainLink, request: LLMRequest, messages: list[dict[str, Any]]) -> LLMResult:
        tools = request.tools if request.tools and supports_tools(link.model) else None
        if tools is None:
            messages = plain_messages(messages)  # a link without tools still answers a request mid-loop
        if link.group is not None and has_images(messages) and not link_sees_images(link.model):
            messages = text_only(
                messages
            )  # this provider cannot see: it answers the text (direct links convert themselves)
        if link.direct is not None:
            if messages is not request.messages or tools is not request.tools:
                request = _with_messages(request, messages, tools)
            return await link.direct.complete(request)
        assert self._router is not None and link.group is not None  # Router links exist only with a Router
        router = self._router.get()
        started = time.perf_counter()
        extra: dict[str, Any] = {"tools": tools} if tools else {}
        try:
            response = await router.acompletion(
                model=link.group,
                messages=messages,
                max_tokens=min(request.max_tokens, self.settings.max_tokens),
                temperature=request.temperature,
                **extra,
                num_retries=0,  # retries are decided here, knowing the rest of the chain (workers/llm/failures.py)
            )
        except Exception:
            LLM_CALLS.labels(provider=link.model, outcome="error").inc()
            raise
        return result_from_response(response, link.model, (time.perf_counter() - started) * 1000)

    async def _lookup(self, request: LLMRequest, messages: list[dict[str, Any]], started: float) -> Any:
        """The cache's lookup of this request (a hit carries its result, its latency set); None without a cache."""
        if self._cache is None:
            return None
        lookup = await self._cache.lookup(self.chain_models, request, messages)
        if lookup.result is not None:
            lookup.result.latency_ms = (time.perf_counter() - started) * 1000
        return lookup

    async def stream(self, request: LLMRequest) -> AsyncIterator[Delta]:
        started = time.perf_counter()
        messages = self._trimmed(request)
        lookup = await self._lookup(request, messages, started)
        if lookup is not None and lookup.result is not None:
            yield Delta(text=lookup.result.text, result=lookup.result)
            return
        errors: list[str] = []
        for link in self.links:
            said: list[str] = []
            result: LLMResult | None = None
            try:
                async for delta in self._stream_link(link, request, messages):
                    if delta.text:
                        said.append(delta.text)
                        yield Delta(text=delta.text)
                    if delta.result is not None:
                        result = delta.result
            except Exception as exc:
                errors.append(f"{link.label}: {_describe(exc)}")
                if not said:  # nothing was said yet: the next provider answers instead
                    log.info("LLM provider %s failed before its first chunk: %s", link.label, _describe(exc))
                    continue
                STREAMS_CUT.labels(provider=link.model).inc()
                log.warning("LLM provider %s broke off mid-answer (%s); ending it with a note", link.label, errors[-1])
                yield Delta(
                    text=STREAM_NOTE,
                    result=LLMResult(
                        text="".join(said) + STREAM_NOTE,
                        model=link.model,
                        latency_ms=(time.perf_counter() - started) * 1000,
                        errors=errors,
                    ),
                )
                return
            if result is None:  # a link that ended without its accounting: still an answer
                result = LLMResult(text="".join(said), model=link.model)
            result.errors = errors
            result.latency_ms = (time.perf_counter() - started) * 1000
            if errors:
                log.warning("LLM streamed by %s after %d failed provider(s): %s", link.model, len(errors), errors)
            if lookup is not None and lookup.outcome is CacheOutcome.MISS and lookup.key is not None and result.text:
                await self._cache.store(lookup.key, result, user_key=request.user_id)  # type: ignore[union-attr]
            yield Delta(result=result)
            return
        apology = self._apology(errors, started)
        yield Delta(text=apology.text, result=apology)

    async def _stream_link(
        self, link: ChainLink, request: LLMRequest, messages: list[dict[str, Any]]
    ) -> AsyncIterator[Delta]:
        if link.direct is not None:
            if messages is not request.messages:
                request = _with_messages(request, messages)
            async for delta in link.direct.stream(request):
                yield delta
            return
        assert self._router is not None and link.group is not None
        router = self._router.get()
        started = time.perf_counter()
        try:
            chunks = await router.acompletion(
                model=link.group,
                messages=messages,
                max_tokens=min(request.max_tokens, self.settings.max_tokens),
                temperature=request.temperature,
                stream=True,
                stream_options={"include_usage": True},
            )
            async for delta in deltas_from_stream(chunks, link.model, messages, started):
                yield delta
        except Exception:
            LLM_CALLS.labels(provider=link.model, outcome="error").inc()
            raise

    def _trimmed(self, request: LLMRequest) -> list[dict[str, Any]]:
        max_tokens = min(request.max_tokens, self.settings.max_tokens)
        budget = self._budgets.get(max_tokens)
        if budget is None:
            budget = context_budget(self._budget_model, self.settings.context_tokens, max_tokens)
            self._budgets[max_tokens] = budget
        model = self._budget_model
        return trim_to_budget(request.messages, budget, lambda msgs: count_message_tokens(model, msgs)).messages

    def warm_up(self) -> None:
        """Build this process's Router now (it is rebuilt after a fork, so this is safe before one)."""
        if self._router is not None:
            self._router.get()

    async def aclose(self) -> None:
        # Only what this enhancement opened: the base client below is its owner's to close (and
        # litellm's pooled HTTP clients, which the local links share with it, close with it).
        if self._cache is not None:
            await self._cache.aclose()


def _is_local(provider: ProviderConfig) -> bool:
    return provider.model.startswith(f"{LOCAL_PROVIDER}/")


def _with_messages(
    request: LLMRequest, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> LLMRequest:
    fields: dict[str, Any] = {name: getattr(request, name) for name in LLMRequest.__slots__}  # type: ignore[attr-defined]
    fields["messages"] = messages
    fields["tools"] = tools
    return LLMRequest(**fields)


def build_resilient_llm(below: LLM, settings: LLMSettings | None = None, redis_url: str | None = None) -> ResilientLLM:
    """The resilience enhancement over ``below``; nothing is connected or imported until the first call."""
    return ResilientLLM(below, settings or LLMSettings(), redis_url)


def _build(below: LLM, config: LLMResilienceConfig, deps: Mapping[str, Any]) -> ResilientLLM:
    layer = ResilientLLM(
        below, LLMSettings(), deps.get("redis_url"), config=config, below_model=deps.get("base_llm_model")
    )
    # The stack is built in the worker process before it says it is ready: build the Router now
    # (litellm's import and the Router's set-up), not on the first message (docs/decisions.md).
    layer.warm_up()
    return layer


def _validate(method: str, result: LLMResult) -> str | None:
    # A step of the tool loop asks for tool calls and may say nothing: that is an answer too.
    return None if result.text.strip() or result.tool_calls else "empty answer"


SPEC = PatchSpec(
    name="llm_resilience",
    kind=ComponentKind.LLM,
    interface=LLM,
    config_cls=LLMResilienceConfig,
    factory=_build,
    enhances=("complete", "stream"),
    validate=_validate,
    note_chunk=lambda note: Delta(text=note),
    description="provider fallback chain, retry with backoff, shared cooldowns, response cache, token budget",
)
apply_llm_resilience_patch = make_apply_function(SPEC)
