"""``patchbay blocks add|remove|list``: the same BlockList operations as the admin API."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import click
import redis.asyncio as aioredis

from gateway.limits.blocks import BlockKind, BlockList
from gateway.limits.settings import LimitSettings
from gateway.shared.redis_urls import redis_py_url
from gateway.shared.settings import Settings

__all__ = ["blocks_group"]

T = TypeVar("T")


def _run(action: Callable[[BlockList], Awaitable[T]]) -> T:
    async def main() -> T:
        client = aioredis.Redis.from_url(redis_py_url(Settings().effective_redis_url))
        try:
            return await action(BlockList(client, LimitSettings().key_prefix))
        finally:
            await client.aclose()

    return asyncio.run(main())


def _target(user: str | None, conversation: str | None) -> tuple[BlockKind, str]:
    if bool(user) == bool(conversation):
        raise click.UsageError("give exactly one of --user or --conversation (as <platform>:<id>)")
    return ("user", user) if user else ("conversation", conversation)  # type: ignore[return-value]


_user = click.option("--user", help="qualified user id: discord:81234, telegram:1001, slack:<team>:U0456")
_conversation = click.option("--conversation", help="<platform>:<conversation id>, e.g. slack:C024BE91L")


@click.group("blocks")
def blocks_group() -> None:
    """Block or unblock users and conversations (shared by every gateway through Redis)."""


@blocks_group.command("add")
@_user
@_conversation
@click.option("--reason", default="", help="why; shown by `blocks list` and the admin API")
def add(user: str | None, conversation: str | None, reason: str) -> None:
    kind, ident = _target(user, conversation)
    try:
        _run(lambda blocks: blocks.block(kind, ident, reason))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(f"blocked {kind} {ident}")


@blocks_group.command("remove")
@_user
@_conversation
def remove(user: str | None, conversation: str | None) -> None:
    kind, ident = _target(user, conversation)
    try:
        removed = _run(lambda blocks: blocks.unblock(kind, ident))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if not removed:
        raise click.ClickException(f"{kind} {ident} was not blocked")
    click.echo(f"unblocked {kind} {ident}")


@blocks_group.command("list")
def list_() -> None:
    entries = _run(lambda blocks: blocks.list_blocks())
    if not entries:
        click.echo("nothing is blocked")
    for entry in entries:
        when = datetime.fromtimestamp(entry.added_at, UTC).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{entry.kind:<13} {entry.id:<40} {when}  {entry.reason}")
