"""``patchbay memory ...``: operator commands of the memory component."""

from __future__ import annotations

import asyncio

import click

from gateway.settings import Settings
from workers.memory.embedder import HashEmbedder
from workers.memory.store import SqlMemory

__all__ = ["memory_group"]


@click.group("memory")
def memory_group() -> None:
    """Long-term memory: inspect and forget."""


async def _forget(database_url: str, user_id: str) -> int:
    # Deleting needs no embeddings: skip loading the model.
    memory = SqlMemory(database_url, embedder=HashEmbedder())
    try:
        await memory.init()
        return await memory.forget_user(user_id)
    finally:
        await memory.aclose()


@memory_group.command("forget")
@click.option("--user", "user_id", required=True, help="platform user id whose memories are deleted")
def forget(user_id: str) -> None:
    """Delete everything remembered of USER: their turns, the bot's answers to them, index entries and vectors."""
    deleted = asyncio.run(_forget(Settings().sqlalchemy_url, user_id))
    click.echo(f"forgot {deleted} turns of user {user_id}")
