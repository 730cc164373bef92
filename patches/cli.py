"""``patchbay patches``: list the patches and flip their runtime switches (mounted by gateway.cli)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
import redis

from gateway.shared.redis_urls import redis_py_url
from gateway.shared.settings import Settings
from patches import control
from patches.control import PatchStatus, UnknownPatchError

__all__ = ["format_table", "patches_group"]

_redis_option = click.option(
    "--redis-url",
    default=None,
    metavar="URL",
    help="Redis to talk to (default: REDIS_URL, or the embedded server in PATCHBAY_DATA_DIR).",
)


@contextmanager
def _client(url: str | None) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(
        redis_py_url(url or Settings().effective_redis_url), socket_timeout=5.0, socket_connect_timeout=5.0
    )
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise click.ClickException(f"cannot reach Redis ({exc}); is patchbay running, or REDIS_URL set?") from exc
    try:
        yield client
    finally:
        client.close()


def _age(since: float | None) -> str:
    if since is None:
        return ""
    seconds = max(0, int(time.time() - since))
    return f" ({seconds}s)" if seconds < 120 else f" ({seconds // 60}m)"


def format_table(statuses: list[PatchStatus], stacks: dict[str, list[str]] | None = None) -> str:
    """One row per patch, then each kind's stack from the top down (as the workers built it)."""
    if not statuses:
        return "no patches published yet (every worker publishes its patches when it starts)"
    header = ("PATCH", "KIND", "ENABLED", "ROLLOUT", "HEALTH", "CALLS", "FALLBACKS", "RATE", "BELOW-FAILED", "NOTE")
    rows = [header]
    for status in statuses:
        enabled = ("on" if status.enabled else "off") + (" (switch)" if status.enabled_by == "switch" else "")
        rollout = f"{status.rollout_percent:g}%" + (" (switch)" if status.rollout_by == "switch" else "")
        health = status.health + (_age(status.health_since) if status.health != "ok" else "")
        if status.broken:
            note = f"BROKEN: {status.refusal_reason.removeprefix('broken: ')}"
        elif status.refused:
            note = f"REFUSED: {status.refusal_reason}"
        else:
            note = status.description
        rows.append(
            (
                status.name,
                status.kind,
                enabled,
                rollout,
                health,
                str(status.calls),
                str(status.fallbacks),
                f"{status.fallback_rate:.1%}",
                str(status.below_failed),
                note,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    ]
    if stacks:
        lines.append("")
        lines += [f"stack {kind}: {' → '.join(names)}" for kind, names in sorted(stacks.items())]
    return "\n".join(lines)


@click.group("patches")
def patches_group() -> None:
    """List the patch layers and switch them at runtime (every worker follows within 2 s)."""


@patches_group.command("list")
@_redis_option
def list_command(redis_url: str | None) -> None:
    """Show every patch: kind, enabled, rollout %, health, calls, fallbacks; then each stack's order."""
    with _client(redis_url) as client:
        click.echo(format_table(control.list_patches(client), control.list_stacks(client)))


@patches_group.command("enable")
@click.argument("name")
@_redis_option
def enable_command(name: str, redis_url: str | None) -> None:
    """Switch NAME on in every worker."""
    with _client(redis_url) as client:
        _run(lambda: control.enable(client, name))
    click.echo(f"{name}: enabled")


@patches_group.command("disable")
@click.argument("name")
@_redis_option
def disable_command(name: str, redis_url: str | None) -> None:
    """Switch NAME off in every worker: calls go straight to the layer below."""
    with _client(redis_url) as client:
        _run(lambda: control.disable(client, name))
    click.echo(f"{name}: disabled")


@patches_group.command("rollout")
@click.argument("name")
@click.argument("percent", type=float)
@_redis_option
def rollout_command(name: str, percent: float, redis_url: str | None) -> None:
    """Serve NAME to PERCENT of users (sticky per user; raising it only adds users)."""
    with _client(redis_url) as client:
        _run(lambda: control.rollout(client, name, percent))
    click.echo(f"{name}: rollout {percent:g}%")


@patches_group.command("reset")
@click.argument("name")
@_redis_option
def reset_command(name: str, redis_url: str | None) -> None:
    """Drop NAME's runtime switches: its configuration decides again."""
    with _client(redis_url) as client:
        _run(lambda: control.clear(client, name))
    click.echo(f"{name}: back to its configuration")


def _run(operation: Callable[[], None]) -> None:
    try:
        operation()
    except (UnknownPatchError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
