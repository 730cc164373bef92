"""The guarded layer: the same interface as the component below, a fallback on every call, and a
blame that lands where the failure happened.

For each (interface, enhanced methods) pair we generate, once, a class with one real method per
Protocol method, with the Protocol's exact parameters: no ``__getattr__`` delegation, so the layer
passes the same conformance check as any component and can itself be wrapped again. Methods are
generated from source text (as ``dataclasses`` does) because a ``*args`` forwarder would not have
the interface's signature, and would cost a dict and a tuple on every call.

The enhancement never holds the component below: it gets a **below handle** (a generated class
implementing the same interface) and every call it makes through it is observed, per guarded
call, through a ``ContextVar`` holding that call's state (tasks the enhancement starts share it).
A handle used outside a guarded call passes straight through. For each guarded call:

- the layer below's own exception (or one raised with it in its ``__cause__``/``__context__``
  chain, or anything the enhancement raises after the layer below failed) propagates unchanged.
  It is traced ``below_failed`` and counted as such, never charged to the patch, never fed to its
  health, never retried here: the operator sees where the outage is;
- the time budget (``timeout_s``) covers the enhancement's own work only: while a call below is in
  flight the deadline stands still, and it moves on by the time spent there. A timer is armed only
  when the enhancement waits on something of its own, so a call that only waits on the layer below
  schedules none;
- on the enhancement's own failure (exception, timeout, rejected result) the layer below answers,
  but is called at most once: an answer it already gave the enhancement for the same arguments is
  reused. Every fallback is counted, logged with the patch's name and reason, and traced.

Async-iterator methods (an ``async def`` generator in the Protocol) are guarded too: a failure
before the enhancement's first chunk falls back to the layer below's stream (replaying what the
enhancement already drew from it, so it is still opened once); after the first chunk a failure
ends the stream with what was said plus the patch's ``stream_note`` chunk, counted and logged as
``failed_mid_stream``. The budget covers the enhancement's own time to its first chunk.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from bisect import bisect_left as _bisect
from collections.abc import AsyncIterator, Callable, Mapping
from contextvars import ContextVar
from functools import cache
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final

from patches.context import (
    APPLIED,
    AUTO_DISABLED,
    BELOW_FAILED,
    FAILED_MID_STREAM,
    FALLBACK,
    OUTSIDE_ROLLOUT,
    SKIPPED,
    SWITCHED_OFF,
    CallContext,
    TraceEntry,
    _current,
)
from patches.health import HealthMonitor, HealthState
from patches.metrics import LATENCY_BUCKETS_S, ProcessStats
from patches.rollout import in_rollout
from patches.spec import PatchConfig, PatchSpec, interface_methods, is_stream_method
from patches.switches import SwitchBoard

if TYPE_CHECKING:  # the runtime builds layers; a layer only reads its switches, health and stats
    from patches.runtime import PatchRuntime

__all__ = [
    "OUTSIDE_ROLLOUT",  # kept importable from here; its home is patches.context
    "BudgetExceeded",
    "Guard",
    "PatchLayer",
    "below_handle",
    "build_layer",
    "layer_class",
    "stack_of",
    "wrap",
]

log = logging.getLogger(__name__)

_OK: Final = HealthState.OK
_NO_KWARGS: Final[dict[str, Any]] = {}
_MISSING: Final = object()
_clock = perf_counter


class BudgetExceeded(TimeoutError):
    """The enhancement's own work outlasted ``timeout_s``."""


# The state of one guarded call, shared by the enhancement and every task it starts for it. A list
# with named indices rather than a slotted object: it is built on every guarded call, and a list
# display costs a third of an 11-slot __init__ (measured: 55 ns against 185 ns).
_GUARD = 0  # the layer's Guard; None once the call is over, so late calls below pass straight through
_METHOD = 1
_ARGS = 2
_KWARGS = 3
_ANSWER = 4  # the layer below's answer to exactly (method, args, kwargs), or _MISSING
_ANSWER_ERROR = 5  # ...or its failure on exactly those
_BELOW_ERROR = 6  # the first failure of the layer below in this call
_IN_FLIGHT = 7  # calls below running now (an enhancement may run several at once)
_BELOW_S = 8  # wall time with at least one call below in flight
_SINCE = 9  # when the current stretch with calls below in flight began
_BUDGET = 10  # the running _Budget, or None
_STREAMS = 11  # the _StreamState of a stream call, or None


# Written into the generated handle methods as constants (see _HANDLE_AWAITED).
_CALL_FIELDS = {
    "GUARD": _GUARD,
    "METHOD": _METHOD,
    "ARGS": _ARGS,
    "KWARGS": _KWARGS,
    "ANSWER": _ANSWER,
    "IN_FLIGHT": _IN_FLIGHT,
    "BELOW_S": _BELOW_S,
    "SINCE": _SINCE,
    "BUDGET": _BUDGET,
}


def _new_call(guard: Guard, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    return [guard, method, args, kwargs, _MISSING, None, None, 0, 0.0, 0.0, None, None]


def _failed_below(
    call: list[Any], exc: BaseException, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    if call[_BELOW_ERROR] is None:
        call[_BELOW_ERROR] = exc
    if (
        call[_ANSWER] is _MISSING
        and call[_ANSWER_ERROR] is None
        and method == call[_METHOD]
        and args == call[_ARGS]
        and kwargs == call[_KWARGS]
    ):
        call[_ANSWER_ERROR] = exc


def _entered_below(call: list[Any]) -> None:
    if not call[_IN_FLIGHT]:
        call[_SINCE] = _clock()
    call[_IN_FLIGHT] += 1


def _left_below(call: list[Any]) -> None:
    call[_IN_FLIGHT] -= 1
    if not call[_IN_FLIGHT]:
        now = _clock()
        spent = now - call[_SINCE]
        call[_BELOW_S] += spent
        if call[_BUDGET] is not None:
            call[_BUDGET].moved(spent, now)


class _Budget:
    """``timeout_s`` of the enhancement's own time, with a deadline that stands still while the layer below works.

    Like ``asyncio.timeout``: cancel the task when the time is up, turn its CancelledError into a
    timeout, leave an outside cancellation alone. Unlike it, the awaitable is driven step by step
    here, and a timer is armed only when the enhancement suspends on something of its own (no call
    below in flight): a call that finishes without waiting, or waits only on the layer below, never
    schedules one. Like any asyncio timeout, it can only fire while the enhancement waits.
    """

    __slots__ = ("call", "cancelling", "due", "expires", "iterator", "pending", "task", "timed_out", "timer")

    def __init__(self, call: list[Any]) -> None:
        self.call = call
        self.expires: float | None = None  # on _clock; None once the budgeted await is over
        self.due = False
        self.timed_out = False
        self.task: asyncio.Task[Any] | None = None
        self.cancelling = 0
        self.timer: asyncio.TimerHandle | None = None
        self.iterator: Any = None
        self.pending: Any = None

    async def run(self, awaitable: Any, budget_s: float) -> Any:
        self.call[_BUDGET] = self
        self.expires = _clock() + budget_s
        iterator = awaitable.__await__()
        try:
            try:
                pending = iterator.send(None)
            except StopIteration as done:
                return done.value  # finished without waiting: there was nothing to time
            self.iterator, self.pending = iterator, pending
            return await self
        except asyncio.CancelledError:
            if self.timed_out and self.task is not None and self.task.uncancel() <= self.cancelling:
                raise BudgetExceeded(f"no answer within {budget_s}s of its own work") from None
            raise
        finally:
            self.expires = None
            self.call[_BUDGET] = None
            self.iterator = self.pending = None
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None

    def __await__(self) -> Any:
        """What ``await`` does (``yield from``), plus arming the timer when the enhancement waits on its own."""
        iterator, pending = self.iterator, self.pending
        while True:
            if self.timer is None and not self.call[_IN_FLIGHT]:
                self._arm(_clock())
            try:
                received = yield pending
            except BaseException as exc:  # the task throws in what it was told (a cancellation): pass it on
                try:
                    pending = iterator.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    pending = iterator.send(received)
                except StopIteration as done:
                    return done.value

    def moved(self, spent: float, now: float) -> None:
        """The layer below worked ``spent`` seconds: not the enhancement's time."""
        if self.expires is None:
            return
        self.expires += spent
        if self.due:  # it came due while below was working: look again from now
            self.due = False
            self._arm(now)

    def _arm(self, now: float) -> None:
        assert self.expires is not None
        if self.task is None:
            self.task = asyncio.current_task()
            assert self.task is not None, "a guarded call runs in a task"
            self.cancelling = self.task.cancelling()
        loop = asyncio.get_running_loop()
        self.timer = loop.call_at(loop.time() + max(0.0, self.expires - now), self._on_deadline)

    def _on_deadline(self) -> None:
        self.timer = None
        if self.expires is None or self.task is None:
            return
        if self.call[_IN_FLIGHT]:
            self.due = True  # below is working; _left_below looks again when it returns
            return
        now = _clock()
        if now < self.expires:  # time spent below moved the deadline on
            self._arm(now)
            return
        self.timed_out = True
        self.task.cancel()


class _StreamState:
    """The streams of the layer below that one guarded stream call opened."""

    __slots__ = ("memo", "opened")

    def __init__(self) -> None:
        self.opened: list[_ObservedStream] = []
        self.memo: _ObservedStream | None = None  # the one opened with the call's own arguments, kept for a replay


def _observe_stream(call: list[Any], method: str, args: tuple[Any, ...], kwargs: dict[str, Any], source: Any) -> Any:
    state = call[_STREAMS]
    if state is None:  # an awaited guarded call whose enhancement streams from below: observed, never replayed
        state = call[_STREAMS] = _StreamState()
    same = state.memo is None and method == call[_METHOD] and args == call[_ARGS] and kwargs == call[_KWARGS]
    stream = _ObservedStream(call, source, buffer=[] if same else None)
    if same:
        state.memo = stream
    state.opened.append(stream)
    return stream


class _ObservedStream:
    """A stream of the layer below as the enhancement sees it: observed, and kept for a replay."""

    __slots__ = ("buffer", "call", "close_requested", "done", "failed", "source")

    def __init__(self, call: list[Any], source: Any, buffer: list[Any] | None) -> None:
        self.call = call
        self.source = source
        self.buffer = buffer  # chunks drawn so far, while a fallback may still replay them
        self.done = False
        self.failed: BaseException | None = None
        self.close_requested = False

    def __aiter__(self) -> _ObservedStream:
        return self

    async def __anext__(self) -> Any:
        call = self.call
        _entered_below(call)
        try:
            chunk = await self.source.__anext__()
        except StopAsyncIteration:
            self.done = True
            raise
        except Exception as exc:
            self.failed = exc
            if call[_BELOW_ERROR] is None:
                call[_BELOW_ERROR] = exc
            raise
        finally:
            _left_below(call)
        if self.buffer is not None:
            self.buffer.append(chunk)
        return chunk

    async def aclose(self) -> None:
        if self.buffer is not None:  # a fallback may still replay it: the guard closes it when the call ends
            self.close_requested = True
            return
        await _aclose(self.source)

    async def replay(self) -> AsyncIterator[Any]:
        """What the enhancement already drew, then the rest: the layer below's stream, opened once."""
        buffered, self.buffer = self.buffer or [], None
        for chunk in buffered:
            yield chunk
        if not self.done:
            async for chunk in self.source:
                yield chunk


async def _aclose(source: Any) -> None:
    close = getattr(source, "aclose", None)
    if close is not None:
        await close()


_guarded: ContextVar[list[Any] | None] = ContextVar("patchbay_guarded_call", default=None)
_guarded_get = _guarded.get
_guarded_set = _guarded.set
_guarded_reset = _guarded.reset
_new_entry = tuple.__new__  # TraceEntry's generated __new__ is a Python frame; this is the C one


class Guard:
    """Everything one layer's calls need, resolved once at build time so the hot path only looks up."""

    __slots__ = (
        "board",
        "config",
        "config_enabled",
        "config_percent",
        "enabled",
        "health",
        "name",
        "note",
        "percent",
        "stats",
        "table",
        "timeout_s",
        "validate",
    )

    def __init__(
        self, spec: PatchSpec, config: PatchConfig, board: SwitchBoard, health: HealthMonitor, stats: ProcessStats
    ) -> None:
        self.name = spec.name
        self.config = config
        self.config_enabled = config.enabled
        self.config_percent = config.rollout_percent
        self.timeout_s = config.timeout_s
        self.validate = spec.validate
        self.note = spec.note_chunk(spec.stream_note) if spec.note_chunk is not None else spec.stream_note
        self.board = board
        self.table: Any = None  # the switch table enabled/percent were resolved from
        self.enabled = self.config_enabled
        self.percent = self.config_percent
        self.health = health.track(spec.name, config)
        self.stats = stats.for_patch(spec.name)
        for method in spec.enhances:
            self.stats.calls_by_method.setdefault(method, 0)

    def _resolve(self, table: Mapping[str, Any]) -> None:
        """The board swaps its table whole when a switch moves: resolve this patch's state once per table."""
        switch = table.get(self.name)
        if switch is None:
            self.enabled, self.percent = self.config_enabled, self.config_percent
        else:
            self.enabled = self.config_enabled if switch.enabled is None else switch.enabled
            self.percent = self.config_percent if switch.rollout_percent is None else switch.rollout_percent
        self.table = table

    def skip_reason(self, user_id: str | None) -> str | None:
        """None when the enhancement should run for this call, else why not."""
        table = self.board.table
        if table is not self.table:
            self._resolve(table)
        if not self.enabled:
            return SWITCHED_OFF
        if self.percent < 100.0 and not in_rollout(self.name, user_id, self.percent):
            return OUTSIDE_ROLLOUT
        # Last, so the one probe call after a cool-down goes to a call that will really run.
        if self.health.state is not _OK and not self.health.allow():
            return AUTO_DISABLED
        return None

    def _trace(self, outcome: str, method: str, reason: str, own_s: float) -> None:
        context = _current.get()
        if context is not None:
            context.trace.append(_new_entry(TraceEntry, (self.name, method, outcome, reason, own_s * 1000.0)))

    def _applied(self, own_s: float) -> None:
        stats = self.stats
        stats.latency_buckets[_bisect(LATENCY_BUCKETS_S, own_s)] += 1
        stats.latency_s_sum += own_s
        self.health.record_ok()

    def _own_failure(self, method: str, failure: str, detail: str, own_s: float) -> None:
        self.stats.observe(own_s)
        self.stats.errors_by_reason[failure] += 1
        self.health.record(False)
        outcome = FAILED_MID_STREAM if failure == FAILED_MID_STREAM else FALLBACK
        reason = f"{failure}: {detail}"
        log.warning("%s patch=%s method=%s reason=%s", outcome, self.name, method, reason)
        self._trace(outcome, method, reason, own_s)

    def _below_failed(self, method: str, exc: BaseException, own_s: float) -> None:
        self.stats.below_failed += 1
        reason = f"{type(exc).__name__}: {exc}"
        log.info("below failed patch=%s method=%s error=%s (propagated, not charged to the patch)", self.name,
                 method, reason)  # fmt: skip
        self._trace(BELOW_FAILED, method, reason, own_s)

    # ------------------------------------------------------------------ awaited methods
    # The hot path of an awaited guarded call is generated into the layer's method (_AWAITED_ENHANCED
    # below: one coroutine frame less per call, measured ~0.2 µs); what it does not do inline is here.

    def skipped(self, method: str, context: CallContext | None, reason: str) -> None:
        self.stats.skipped += 1
        if context is not None:
            context.trace.append(_new_entry(TraceEntry, (self.name, method, SKIPPED, reason, 0.0)))

    async def failed(
        self, call: list[Any], error: Exception | None, rejection: Any, below: Callable[..., Any], own_s: float
    ) -> Any:
        """The enhancement did not give an accepted answer: blame whoever failed, answer from below at most once."""
        method, args, kwargs = call[_METHOD], call[_ARGS], call[_KWARGS]
        if error is None:
            failure, detail = "rejected", str(rejection)
        elif isinstance(error, BudgetExceeded):
            failure, detail = "timeout", f"no answer within {self.timeout_s}s of its own work"
        elif call[_BELOW_ERROR] is not None:
            self._below_failed(method, call[_BELOW_ERROR], own_s)
            raise error
        else:
            failure, detail = "exception", f"{type(error).__name__}: {error}"
        self._own_failure(method, failure, detail, own_s)
        stats = self.stats
        if call[_ANSWER] is not _MISSING:
            result = call[_ANSWER]  # the layer below already answered these very arguments: no second call
        elif call[_ANSWER_ERROR] is not None:
            stats.below_failed += 1  # ...or already failed on them: that failure is its answer
            raise call[_ANSWER_ERROR]
        else:
            try:
                result = await below(*args, **kwargs)
            except Exception:
                stats.below_failed += 1
                raise
        stats.fallbacks_by_reason[failure] += 1
        return result

    # ------------------------------------------------------------------ async-iterator methods

    def stream(
        self,
        method: str,
        enhanced: Callable[..., Any],
        below: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        context = _current.get()
        self.stats.calls_by_method[method] += 1
        skip = self.skip_reason(context.user_id if context is not None else None)
        if skip is not None:
            self.skipped(method, context, skip)
            return below(*args, **kwargs)  # the stream below itself, not a copy of it
        return self._guarded_stream(method, enhanced, below, args, kwargs)

    async def _guarded_stream(
        self,
        method: str,
        enhanced: Callable[..., Any],
        below: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> AsyncIterator[Any]:
        call = _new_call(self, method, args, kwargs)
        state = call[_STREAMS] = _StreamState()
        busy_s = 0.0  # time inside the enhancement's __anext__; the consumer's time between chunks is not its
        source: Any = None
        settled = False  # the outcome is traced and counted
        try:
            # Between chunks the consumer's context is current, so the call state is set around each step.
            previous = _guarded_get()
            _guarded_set(call)
            started = _clock()
            try:
                source = enhanced(*args, **kwargs)
                if self.timeout_s is None:
                    first = await source.__anext__()
                else:
                    first = await _Budget(call).run(source.__anext__(), self.timeout_s)
            except StopAsyncIteration:
                error: Exception | None = None
                empty = True
            except Exception as exc:
                error, empty = exc, False
            else:
                error, empty = None, False
            finally:
                _guarded_set(previous)
                busy_s += _clock() - started

            if error is not None:
                own_s = max(0.0, busy_s - call[_BELOW_S])
                if isinstance(error, BudgetExceeded):
                    failure, detail = "timeout", f"no first chunk within {self.timeout_s}s of its own work"
                elif call[_BELOW_ERROR] is not None:
                    settled = True
                    self._below_failed(method, call[_BELOW_ERROR], own_s)
                    raise error
                else:
                    failure, detail = "exception", f"{type(error).__name__}: {error}"
                settled = True
                self._own_failure(method, failure, detail, own_s)
                fallback = self._fallback_stream(state, below, args, kwargs)
                try:
                    async for chunk in fallback:
                        yield chunk
                finally:
                    await _aclose(fallback)
                self.stats.fallbacks_by_reason[failure] += 1
                return
            if empty:
                return

            # The first chunk goes out: from here on a fallback would repeat what was said.
            memo, state.memo = state.memo, None
            if memo is not None:
                memo.buffer = None
                if memo.close_requested:
                    await _aclose(memo.source)
            yield first
            while True:
                previous = _guarded_get()
                _guarded_set(call)
                started = _clock()
                try:
                    chunk = await source.__anext__()
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    own_s = max(0.0, busy_s + _clock() - started - call[_BELOW_S])
                    settled = True
                    if call[_BELOW_ERROR] is not None:
                        self._below_failed(method, call[_BELOW_ERROR], own_s)
                        raise
                    self._own_failure(method, FAILED_MID_STREAM, f"{type(exc).__name__}: {exc}", own_s)
                    yield self.note
                    return
                finally:
                    _guarded_set(previous)
                    busy_s += _clock() - started
                yield chunk
        finally:
            call[_GUARD] = None
            if not settled and source is not None:  # done, or the consumer stopped early: applied
                own_s = max(0.0, busy_s - call[_BELOW_S])
                self._applied(own_s)
                self._trace(APPLIED, method, "", own_s)
            if source is not None:
                await _aclose(source)
            for stream in state.opened:
                if not stream.done:
                    await _aclose(stream.source)

    async def _fallback_stream(
        self, state: _StreamState, below: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> AsyncIterator[Any]:
        memo = state.memo
        if memo is not None and memo.failed is not None:
            self.stats.below_failed += 1
            raise memo.failed
        stream = memo.replay() if memo is not None else below(*args, **kwargs)
        try:
            async for chunk in stream:
                yield chunk
        except Exception:
            self.stats.below_failed += 1
            raise
        finally:
            await _aclose(stream)


class PatchLayer:
    """Base of every generated layer class: what a layer exposes besides the interface."""

    __slots__ = ("_guard", "below", "below_handle", "config", "enhancement", "spec")

    below: Any  # the component below (the base, or the next layer down)
    spec: PatchSpec
    enhancement: Any
    config: PatchConfig
    below_handle: Any  # what the enhancement holds instead of ``below``
    _guard: Guard

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {' > '.join(stack_of(self))}>"


def stack_of(component: object) -> list[str]:
    """Patch names from the top of a stack down, then the base's class name."""
    names: list[str] = []
    while isinstance(component, PatchLayer):
        names.append(component.spec.name)
        component = component.below
    names.append(type(component).__name__)
    return names


# ---------------------------------------------------------------------- generated classes

# An awaited guarded call (what Guard.skip_reason, Guard.skipped and Guard.failed complete): is the
# patch on for this call? then run the enhancement with the call state current, under its budget,
# validate; an accepted answer is counted, fed to the health and traced right here.
_AWAITED_ENHANCED = """async def {name}(self{sep}{params}):
    _guard = self._guard
    _context = _current_get()
    _stats = _guard.stats
    _stats.calls_by_method[{name!r}] += 1
    _skip = _guard.skip_reason(_context.user_id if _context is not None else None)
    if _skip is not None:
        _guard.skipped({name!r}, _context, _skip)
        return await self._below_{name}({call})
    _call = [_guard, {name!r}, {args}, {kwargs}, _MISSING, None, None, 0, 0.0, 0.0, None, None]
    _token = _guarded_set(_call)
    _started = _clock()
    try:
        if _guard.timeout_s is None:
            _result = await self._enhanced_{name}({call})
        else:
            _result = await _Budget(_call).run(self._enhanced_{name}({call}), _guard.timeout_s)
        _rejection = _guard.validate({name!r}, _result) if _guard.validate is not None else None
    except Exception as _exc:
        _error = _exc
    else:
        _error = None
    finally:
        _guarded_reset(_token)
        _call[{GUARD}] = None
    _own = _clock() - _started - _call[{BELOW_S}]
    if _error is None and _rejection is None:
        _stats.latency_buckets[_bisect(_LATENCY_BUCKETS_S, _own)] += 1
        _stats.latency_s_sum += _own
        _guard.health.record_ok()
        if _context is not None:
            _context.trace.append(_new_entry(_TraceEntry, (_guard.name, {name!r}, _APPLIED, "", _own * 1000.0)))
        return _result
    return await _guard.failed(_call, _error, _rejection if _error is None else None, self._below_{name}, _own)
"""
_STREAM_ENHANCED = "def {name}(self{sep}{params}):\n    return self._guard.stream({name!r}, self._enhanced_{name}, self._below_{name}, {args}, {kwargs})\n"
_AWAITED_PASS = "async def {name}(self{sep}{params}):\n    return await self.below.{name}({call})\n"
_PLAIN_PASS = "def {name}(self{sep}{params}):\n    return self.below.{name}({call})\n"

# The handle's awaited method: straight through outside a guarded call of its own layer; else the
# call is timed (its time is not the enhancement's), its failure recorded, and its answer kept
# when the arguments are the guarded call's own (the fallback then reuses it). The call state's
# indices (_GUARD, _IN_FLIGHT...) are written in as constants: a global lookup each is measurable.
_HANDLE_AWAITED = """async def {name}(self{sep}{params}):
    _call = _guarded_get()
    if _call is None or _call[{GUARD}] is not self._owner:
        return await self._b_{name}({call_args})
    if not _call[{IN_FLIGHT}]:
        _call[{SINCE}] = _clock()
    _call[{IN_FLIGHT}] += 1
    try:
        _result = await self._b_{name}({call_args})
    except Exception as _exc:
        _failed_below(_call, _exc, {name!r}, {args}, {kwargs})
        raise
    finally:
        _call[{IN_FLIGHT}] -= 1
        if not _call[{IN_FLIGHT}]:
            _now = _clock()
            _call[{BELOW_S}] += _now - _call[{SINCE}]
            if _call[{BUDGET}] is not None:
                _call[{BUDGET}].moved(_now - _call[{SINCE}], _now)
    if _call[{ANSWER}] is _MISSING and _call[{METHOD}] == {name!r} and _call[{ARGS}] == {args} and _call[{KWARGS}] == {kwargs}:
        _call[{ANSWER}] = _result
    return _result
"""
_HANDLE_STREAM = """def {name}(self{sep}{params}):
    _call = _guarded_get()
    if _call is None or _call[{GUARD}] is not self._owner:
        return self._b_{name}({call_args})
    return _observe_stream(_call, {name!r}, {args}, {kwargs}, self._b_{name}({call_args}))
"""
_HANDLE_PLAIN = "def {name}(self{sep}{params}):\n    return self._b_{name}({call_args})\n"


def _method_kind(function: Callable[..., Any]) -> str:
    if is_stream_method(function):
        return "stream"
    return "awaited" if inspect.iscoroutinefunction(function) else "plain"


def _generate(interface: type, templates: Callable[[str, str], str], suffix: str) -> dict[str, Any]:
    """Compile one method per interface method from ``templates(name, kind)``."""
    methods = interface_methods(interface)
    namespace: dict[str, Any] = {
        "_NO_KWARGS": _NO_KWARGS,
        "_MISSING": _MISSING,
        "_guarded_get": _guarded_get,
        "_clock": _clock,
        "_failed_below": _failed_below,
        "_observe_stream": _observe_stream,
        "_current_get": _current.get,
        "_guarded_set": _guarded_set,
        "_guarded_reset": _guarded_reset,
        "_Budget": _Budget,
        "_bisect": _bisect,
        "_new_entry": _new_entry,
        "_TraceEntry": TraceEntry,
        "_APPLIED": APPLIED,
        "_LATENCY_BUCKETS_S": LATENCY_BUCKETS_S,
    }
    sources: list[str] = []
    for name, function in methods.items():
        params, defaults, positional, keywords = _parameters(function)
        namespace.update(defaults)
        fields = {
            "name": name,
            "sep": ", " if params else "",
            "params": params,
            "args": f"({positional},)" if positional else "()",
            "kwargs": "{" + ", ".join(f"{k!r}: {k}" for k in keywords) + "}" if keywords else "_NO_KWARGS",
            "call": ", ".join(filter(None, [positional, ", ".join(f"{k}={k}" for k in keywords)])),
        }
        fields["call_args"] = fields["call"]
        fields |= {name: str(index) for name, index in _CALL_FIELDS.items()}
        sources.append(templates(name, _method_kind(function)).format(**fields))
    exec(compile("\n".join(sources), f"<{suffix} of {interface.__name__}>", "exec"), namespace)
    generated: dict[str, Any] = {}
    for name, function in methods.items():
        method = namespace[name]
        method.__qualname__ = f"{interface.__name__}{suffix}.{name}"
        method.__doc__ = function.__doc__
        method.__annotations__ = dict(getattr(function, "__annotations__", {}))
        generated[name] = method
    return generated


@cache
def layer_class(interface: type, enhances: tuple[str, ...]) -> type[PatchLayer]:
    """The generated layer class for ``interface`` with ``enhances`` guarded (built once, then cached)."""
    kinds = {name: _method_kind(function) for name, function in interface_methods(interface).items()}
    clashes = sorted(set(kinds) & {"below", "below_handle", "config", "enhancement", "spec"})
    if clashes:
        raise TypeError(f"{interface.__name__} declares {clashes}: those names are the layer's own attributes")
    for name in enhances:
        if kinds.get(name) == "plain":
            raise TypeError(f"{interface.__name__}.{name} is neither async nor a stream: a layer cannot guard it")

    def template(name: str, kind: str) -> str:
        if name in enhances:
            return _STREAM_ENHANCED if kind == "stream" else _AWAITED_ENHANCED
        return _AWAITED_PASS if kind == "awaited" else _PLAIN_PASS

    namespace: dict[str, Any] = dict(_generate(interface, template, "Layer"))
    namespace["__slots__"] = tuple(slot for name in enhances for slot in (f"_enhanced_{name}", f"_below_{name}"))
    namespace["__module__"] = __name__
    return type(f"{interface.__name__}Layer", (PatchLayer,), namespace)


@cache
def _handle_class(interface: type) -> type:
    def template(name: str, kind: str) -> str:
        return {"awaited": _HANDLE_AWAITED, "stream": _HANDLE_STREAM, "plain": _HANDLE_PLAIN}[kind]

    namespace: dict[str, Any] = dict(_generate(interface, template, "Below"))
    namespace["__slots__"] = ("_owner", *(f"_b_{name}" for name in interface_methods(interface)))
    namespace["__module__"] = __name__
    namespace["__repr__"] = lambda self: f"<{interface.__name__} below handle>"
    return type(f"{interface.__name__}Below", (), namespace)


def below_handle(interface: type, below: object) -> Any:
    """What an enhancement gets instead of the component below: the same interface, observed per guarded call.

    Until its layer exists (while the factory runs and the smoke check calls the enhancement) a
    handle passes every call straight through.
    """
    cls: Any = _handle_class(interface)
    handle = cls.__new__(cls)
    handle._owner = None
    for name in interface_methods(interface):
        setattr(handle, f"_b_{name}", getattr(below, name))  # bound once: a lookup per call is measurable
    return handle


def _parameters(function: Callable[..., Any]) -> tuple[str, dict[str, Any], str, list[str]]:
    """(parameter list text, default values by placeholder, positional forwarding text, keyword names)."""
    parameters = list(inspect.signature(function).parameters.values())[1:]  # drop self
    text: list[str] = []
    defaults: dict[str, Any] = {}
    positional: list[str] = []
    keywords: list[str] = []
    star_written = False
    for index, parameter in enumerate(parameters):
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(f"{function.__qualname__}: component interfaces may not take *args or **kwargs")
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and not star_written:
            text.append("*")
            star_written = True
        entry = parameter.name
        if parameter.default is not inspect.Parameter.empty:
            placeholder = f"_default_{function.__name__}_{index}"
            defaults[placeholder] = parameter.default
            entry += f"={placeholder}"
        text.append(entry)
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            keywords.append(parameter.name)
        else:
            positional.append(parameter.name)
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY and (
            index + 1 == len(parameters) or parameters[index + 1].kind is not inspect.Parameter.POSITIONAL_ONLY
        ):
            text.append("/")
    return ", ".join(text), defaults, ", ".join(positional), keywords


# ---------------------------------------------------------------------- building one layer


def wrap(
    spec: PatchSpec, config: PatchConfig, below: object, handle: Any, enhancement: object, runtime: PatchRuntime
) -> Any:
    """The guarded layer of ``spec`` over ``below``, reporting to ``runtime``; ``enhancement`` was built over ``handle``.

    Conformance is the caller's job (``PatchRuntime.apply`` checks it before wrapping).
    """
    cls = layer_class(spec.interface, tuple(sorted(spec.enhances)))
    layer = cls.__new__(cls)
    layer.below = below
    layer.spec = spec
    layer.enhancement = enhancement
    layer.config = config
    layer.below_handle = handle
    layer._guard = Guard(spec, config, runtime.switches, runtime.health, runtime.stats)
    for name in spec.enhances:
        # Bound once: a bound-method lookup per call is measurable on the hot path.
        setattr(layer, f"_enhanced_{name}", getattr(enhancement, name))
        setattr(layer, f"_below_{name}", getattr(below, name))
    handle._owner = layer._guard
    return layer


def build_layer(
    spec: PatchSpec, config: PatchConfig, below: object, runtime: PatchRuntime, deps: Mapping[str, Any] | None = None
) -> Any:
    """Build the enhancement over a handle of ``below`` and wrap it, with none of apply's checks (tests, benchmarks)."""
    handle = below_handle(spec.interface, below)
    enhancement = spec.factory(handle, config, dict(deps or {}))
    return wrap(spec, config, below, handle, enhancement, runtime)
