"""``patchbay memory ...``: operator commands of the memory component."""

from __future__ import annotations

import asyncio

import click

from gateway.shared.settings import Settings

__all__ = ["memory_group"]


@click.group("memory")
def memory_group() -> None:
    """Long-term memory: inspect and forget."""


@memory_group.command("forget")
@click.option(
    "--user", "user_id", required=True, help="qualified user id: telegram:1001, discord:81234, slack:<team>:U0456"
)
def forget(user_id: str) -> None:
    """Delete everything kept of USER: turns, the bot's answers, vectors, emotion state, voice choice, caches."""
    from gateway.shared.identity import parse_user_key
    from workers.forget import forget_user

    try:
        user_key = parse_user_key(user_id)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--user") from None
    done = asyncio.run(forget_user(Settings(), user_key))
    click.echo(
        f"forgot user {user_key}: {done.memory_turns} memory turns, emotional state, voice preference, "
        f"{done.webchat_replies} stored web chat replies, {done.llm_cache_entries} LLM cache entries "
        f"(Redis persistence: {done.redis_persistence})"
    )
