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
@click.option("--user", "user_id", required=True, help="platform user id whose memories are deleted")
def forget(user_id: str) -> None:
    """Delete everything remembered of USER: turns, the bot's answers to them, vectors, emotion state, voice choice."""
    from workers.forget import forget_user

    done = asyncio.run(forget_user(Settings(), user_id))
    click.echo(f"forgot user {user_id}: {done.memory_turns} memory turns, emotional state and voice preference")
