"""``patchbay sim discord|telegram|slack``: run a platform simulator to try the bot without any account.

Each command prints the environment the gateway needs to talk to it, then serves until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import click

from adapters.sim.common import SimServer, run_forever
from adapters.sim.discord import DEFAULT_DISCORD_TOKEN, DiscordSimulator
from adapters.sim.slack import DEFAULT_SIGNING_SECRET, DEFAULT_SLACK_TOKEN, SlackSimulator
from adapters.sim.telegram import DEFAULT_TELEGRAM_TOKEN, TelegramSimulator

__all__ = ["discord_sim_command", "slack_sim_command", "telegram_sim_command"]


def _serve(server: SimServer, environment: dict[str, str], example: str) -> None:
    async def announce(running: SimServer) -> None:
        click.echo(f"{running.name} simulator on {running.origin}. Start the gateway with:")
        for key, value in environment.items():
            click.echo(f"  export {key}={value.format(origin=running.origin, port=running.port)}")
        click.echo(f"Write as a user:  curl -X POST {running.origin}/_sim/user_message -d '{example}'")
        click.echo(f"See the replies:  curl {running.origin}/_sim/sent")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_forever(server, announce))


@click.command("discord")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8101, show_default=True)
@click.option("--token", default=DEFAULT_DISCORD_TOKEN, show_default=True, help="the bot token it accepts")
def discord_sim_command(host: str, port: int, token: str) -> None:
    """A local Discord: REST API and gateway websocket."""
    server = DiscordSimulator(token=token, host=host, port=port)
    _serve(
        server,
        {
            "DISCORD_BOT_TOKEN": token,
            "DISCORD_API_BASE_URL": "{origin}/api/v10",
            "DISCORD_GATEWAY_URL": f"ws://{host}:{{port}}/gateway",
        },
        '{"channel_id": "810", "content": "hello", "mention": true}',
    )


@click.command("telegram")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8102, show_default=True)
@click.option("--token", default=DEFAULT_TELEGRAM_TOKEN, show_default=True, help="the bot token it accepts")
def telegram_sim_command(host: str, port: int, token: str) -> None:
    """A local Telegram Bot API with long polling and webhook delivery."""
    server = TelegramSimulator(token=token, host=host, port=port)
    _serve(
        server,
        {"TELEGRAM_BOT_TOKEN": token, "TELEGRAM_API_BASE_URL": "{origin}"},
        '{"chat_id": 42, "text": "hello"}',
    )


@click.command("slack")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8103, show_default=True)
@click.option("--token", default=DEFAULT_SLACK_TOKEN, show_default=True, help="the bot token it accepts")
@click.option("--signing-secret", default=DEFAULT_SIGNING_SECRET, show_default=True)
@click.option(
    "--events-url",
    default="http://127.0.0.1:8000/slack/events",
    show_default=True,
    help="where to deliver signed events: the gateway's POST /slack/events",
)
def slack_sim_command(host: str, port: int, token: str, signing_secret: str, events_url: str) -> None:
    """A local Slack Web API with signed Events API delivery."""
    server = SlackSimulator(token=token, signing_secret=signing_secret, events_url=events_url, host=host, port=port)
    _serve(
        server,
        {"SLACK_BOT_TOKEN": token, "SLACK_SIGNING_SECRET": signing_secret, "SLACK_API_BASE_URL": "{origin}/api/"},
        '{"channel": "C1", "text": "hello", "mention": true}',
    )
