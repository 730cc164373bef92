"""Prove, before wrapping, that an object really implements a component Protocol.

The wrappers of the system this architecture comes from died of exactly what this catches: sync
methods standing in for async ones, and callers awaiting a method with another signature
(docs/decisions.md, "What went wrong before"). ``typing.runtime_checkable`` only checks that
names exist, so we compare the kind of each method (awaited, streamed, plain) and its parameters.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from patches.spec import interface_methods, is_stream_method

__all__ = ["check_conformance"]

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def check_conformance(obj: object, interface: type, methods: Iterable[str] | None = None) -> list[str]:
    """Every way ``obj`` fails to implement ``interface`` (only ``methods`` of it, when given); [] = conforms."""
    declared = interface_methods(interface)
    wanted = list(declared) if methods is None else list(methods)
    problems: list[str] = []
    for name in wanted:
        expected = declared.get(name)
        if expected is None:
            problems.append(f"{interface.__name__} has no method {name!r}")
            continue
        actual = getattr(obj, name, None)
        if actual is None:
            problems.append(f"{name}: missing")
            continue
        if not callable(actual):
            problems.append(f"{name}: is a {type(actual).__name__}, not a method")
            continue
        problems.extend(f"{name}: {problem}" for problem in _method_problems(expected, actual))
    return problems


def _method_problems(expected: Callable[..., Any], actual: Callable[..., Any]) -> list[str]:
    actual_async = inspect.iscoroutinefunction(actual)
    if is_stream_method(expected):
        # An async generator, or a plain def returning an async iterator (what generated layers are).
        if actual_async:
            return [
                "is a coroutine function, but the interface's is an async iterator (write it as an async generator)"
            ]
    else:
        expected_async = inspect.iscoroutinefunction(expected)
        if inspect.isasyncgenfunction(actual) and expected_async:
            return ["is an async generator, but the interface's is awaited (async def returning one result)"]
        if expected_async and not actual_async:
            return ["is sync (or returns an awaitable without being async def), but the interface's is async"]
        if actual_async and not expected_async:
            return ["is async, but the interface's is sync"]
    try:
        actual_signature = inspect.signature(actual)
    except (TypeError, ValueError) as exc:
        return [f"has no inspectable signature ({exc})"]
    expected_params = list(inspect.signature(expected).parameters.values())[1:]  # drop self
    return _signature_problems(expected_params, list(actual_signature.parameters.values()))


def _signature_problems(expected: list[inspect.Parameter], actual: list[inspect.Parameter]) -> list[str]:
    problems: list[str] = []
    expected_positional = [p.name for p in expected if p.kind in _POSITIONAL]
    actual_positional = [p.name for p in actual if p.kind in _POSITIONAL]
    if actual_positional[: len(expected_positional)] != expected_positional:
        problems.append(f"takes positional parameters {actual_positional}, the interface {expected_positional}")
    expected_required = {p.name for p in expected if p.default is inspect.Parameter.empty and p.kind not in _VARIADIC}
    actual_required = {p.name for p in actual if p.default is inspect.Parameter.empty and p.kind not in _VARIADIC}
    if extra := sorted(actual_required - expected_required):
        problems.append(f"requires parameters the interface does not pass: {extra}")
    actual_names = {p.name for p in actual}
    accepts_any_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in actual)
    missing_keywords = [
        p.name
        for p in expected
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in actual_names and not accepts_any_keyword
    ]
    if missing_keywords:
        problems.append(f"does not accept the keyword parameters {missing_keywords}")
    return problems
