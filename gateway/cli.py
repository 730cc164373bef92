"""The ``patchbay`` command. Each package contributes its own click group; this file only mounts them.

Groups are mounted by name and imported only when they run (``LazyGroup``), so that ``patchbay
gateway`` never imports worker code and ``patchbay worker`` never imports the HTTP app.
"""

from __future__ import annotations

import importlib
import os
import sys
import uuid
from typing import TYPE_CHECKING

import click

from gateway.shared.blas import one_blas_thread
from gateway.shared.files import private_umask, secure_data_dir
from gateway.shared.logs import configure_logging
from gateway.shared.settings import Settings, SettingsConflict

if TYPE_CHECKING:
    import httpx
# Every process this command starts, before any of them loads numpy (none of the imports above does).
one_blas_thread()

__all__ = ["cli", "main"]


class LazyGroup(click.Group):
    """A click group whose subcommands named in ``lazy`` ("name": "module:attribute") load on first use."""

    def __init__(self, *args: object, lazy: dict[str, str] | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, attribute = self.lazy[cmd_name].split(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    lazy={
        "patches": "patches.cli:patches_group",
        "analytics": "gateway.analytics.cli:analytics_group",
        "blocks": "gateway.limits.cli:blocks_group",
        "memory": "workers.memory.cli:memory_group",
    },
)
def cli() -> None:
    """Patchbay: one AI assistant on Discord, Telegram, Slack and a built-in web chat."""
    # Every command may create files in the data directory (SQLite, keys): they are private (0600).
    private_umask()


@cli.command()
@click.option("--workers", type=int, default=None, help="worker processes (default PATCHBAY_WORKERS or 1)")
@click.option("--host", default=None, help="HTTP host (default PATCHBAY_HTTP_HOST or 127.0.0.1)")
@click.option("--port", type=int, default=None, help="HTTP port (default PATCHBAY_HTTP_PORT or 8000)")
def run(workers: int | None, host: str | None, port: int | None) -> None:
    """Everything in one command: embedded Redis (unless REDIS_URL is set), workers and the gateway."""
    # Through the environment, so the worker processes we start see the same values.
    for variable, value in (("PATCHBAY_WORKERS", workers), ("PATCHBAY_HTTP_HOST", host), ("PATCHBAY_HTTP_PORT", port)):
        if value is not None:
            os.environ[variable] = str(value)
    from gateway.launcher import run_embedded

    settings = Settings()
    configure_logging(settings.log_level)
    _check(settings)
    sys.exit(run_embedded(settings))


@cli.command()
def gateway() -> None:
    """The gateway alone (HTTP + platform connections); needs REDIS_URL and separate workers."""
    settings = Settings()
    configure_logging(settings.log_level)
    secure_data_dir(settings.data_dir)
    _check(settings)
    if not settings.redis_url:
        raise click.UsageError(
            "patchbay gateway needs REDIS_URL (shared with the workers); for one process use `patchbay run`"
        )
    from gateway.launcher import run_gateway

    run_gateway(settings)


@cli.command()
@click.option("--concurrency", type=int, default=None, help="messages in flight per process")
@click.option("--name", default=None, help="worker name prefix")
def worker(concurrency: int | None, name: str | None) -> None:
    """A worker process; run as many as you like, on as many machines as you like."""
    settings = Settings()
    configure_logging(settings.log_level)
    secure_data_dir(settings.data_dir)
    _check(settings)
    from workers.main import run_worker

    run_worker(settings, concurrency=concurrency, name=name)


@cli.command()
@click.option("--url", default=None, help="gateway URL (default http://PATCHBAY_HTTP_HOST:PATCHBAY_HTTP_PORT)")
@click.option(
    "--user",
    "user_id",
    default=None,
    help="act for this web chat user id; needs a web chat API key (--api-key or PATCHBAY_WEBCHAT_API_KEY)",
)
@click.option("--api-key", envvar="PATCHBAY_WEBCHAT_API_KEY", default=None, help="a key of PATCHBAY_WEBCHAT_API_KEYS")
def chat(url: str | None, user_id: str | None, api_key: str | None) -> None:
    """Chat with the bot in the terminal, over the same pipeline as the web chat.

    Without --user the terminal is a browser-like session: the gateway issues its identity (a cookie).
    ``/image <path> [text]`` sends a picture (uploaded first: POST /api/upload) with the text.
    """
    import httpx

    settings = Settings()
    base = url or f"http://{settings.http_host}:{settings.http_port}"
    headers: dict[str, str] = {}
    if user_id is not None:
        if not api_key:
            raise click.UsageError("--user names a user, which only a web chat API key may do: pass --api-key")
        headers["Authorization"] = f"Bearer {api_key}"
    with httpx.Client(base_url=base, timeout=settings.reply_timeout_s + 10, headers=headers) as client:
        who = user_id or "a new web chat session"
        click.echo(f"Chatting with {base} as {who}. Ctrl-D to leave.")
        while True:
            try:
                text = input("you> ").strip()
            except (EOFError, KeyboardInterrupt):
                click.echo()
                return
            if not text:
                continue
            body: dict[str, object] = {"text": text, "message_id": uuid.uuid4().hex}
            if user_id is not None:
                body["user_id"] = user_id
            if text.startswith("/image "):
                path, _, rest = text.removeprefix("/image ").strip().partition(" ")
                upload_id = _upload_image(client, path, user_id)
                if upload_id is None:
                    continue
                body.update(text=rest.strip(), images=[upload_id])
            try:
                response = client.post("/api/chat", json=body)  # the client keeps the session cookie
            except httpx.HTTPError as exc:
                click.echo(f"! gateway unreachable at {base}: {exc}", err=True)
                continue
            data = response.json()
            if response.is_success:
                click.echo(f"bot> {data['text']}")
            else:
                click.echo(f"! {response.status_code} {data.get('notice') or data.get('detail')}", err=True)


def _upload_image(client: httpx.Client, path: str, user_id: str | None) -> str | None:
    """Upload the image at ``path`` for the next message; its id, or None after saying what went wrong."""
    import mimetypes
    from pathlib import Path

    import httpx

    mime = mimetypes.guess_type(path)[0] or ""
    if not mime.startswith("image/"):
        click.echo(f"! {path} does not look like an image (.jpg, .png, .gif, .webp)", err=True)
        return None
    try:
        data = Path(path).expanduser().read_bytes()
        params = {"user_id": user_id} if user_id is not None else {}
        response = client.post("/api/upload", content=data, headers={"Content-Type": mime}, params=params)
    except (OSError, httpx.HTTPError) as exc:
        click.echo(f"! could not upload {path}: {exc}", err=True)
        return None
    answer = response.json()
    if not response.is_success:
        click.echo(f"! {response.status_code} {answer.get('notice') or answer.get('detail')}", err=True)
        return None
    return str(answer["upload_id"])


@cli.group(
    cls=LazyGroup,
    lazy={
        "llm": "adapters.sim.llm:llm_sim_command",
        "discord": "adapters.sim.cli:discord_sim_command",
        "telegram": "adapters.sim.cli:telegram_sim_command",
        "slack": "adapters.sim.cli:slack_sim_command",
    },
)
def sim() -> None:
    """Local simulators of the platforms and of an LLM provider, for trying Patchbay without accounts."""


def _check(settings: Settings) -> None:
    try:
        settings.check()
    except SettingsConflict as exc:
        raise click.UsageError(str(exc)) from None


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
