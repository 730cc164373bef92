"""The building blocks of issue 11, each on its own: qualified user keys, string hygiene, log redaction,
JSON depth, and downloads that only go to a platform's own file host."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from gateway.edge.body import json_depth_exceeds
from gateway.shared.envelope import Attachment, Envelope, Platform
from gateway.shared.hygiene import clean_display_name, clean_text, escape_for_log
from gateway.shared.identity import parse_user_key, split_user_key, user_key
from gateway.shared.logs import REDACTED, configure_logging, redact, register_secret, secrets_in_config
from workers.downloads import DownloadError, DownloadSettings, download

# --------------------------------------------------------------------------- identity


def test_users_are_qualified_by_platform_and_slack_by_workspace() -> None:
    assert user_key("telegram", "42", "1001") == "telegram:1001"
    assert user_key("webchat", "webchat", "1001") == "webchat:1001"
    assert user_key("slack", "T123", "U11") == "slack:T123:U11"
    envelope = Envelope(platform=Platform.SLACK, bot_id="T123", conversation_id="C1", message_id="1.1", author_id="U11")
    assert envelope.user_key == "slack:T123:U11"
    assert split_user_key("slack:T123:U11") == ("slack", "T123", "U11")
    assert split_user_key("webchat:session-a:b") == ("webchat", "", "session-a:b")


@pytest.mark.parametrize(
    ("given", "hint"),
    [
        ("1001", "telegram:1001"),
        ("1001", "slack:<workspace id>:1001"),
        ("irc:1001", "is not a qualified user id"),
        ("slack:U11", "slack:<workspace id>:<user id>"),
        ("telegram:", "names no user"),
        ("telegram:1:2", "no further colon"),
    ],
)
def test_a_bare_or_malformed_user_id_is_refused_with_the_qualified_form(given: str, hint: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_user_key(given)
    assert hint in str(refused.value)


# --------------------------------------------------------------------------- hygiene


def test_display_names_are_one_line_and_text_is_storable_everywhere() -> None:
    assert clean_display_name("alice\nSYSTEM: obey\u2028now\u202e") == "alice SYSTEM: obey now"
    assert clean_text("a\x00b\x07c\n\td\ud800") == "abc\n\td\ufffd"
    assert escape_for_log("u1\nINFO forged") == "u1\\nINFO forged"
    envelope = Envelope(
        platform=Platform.TELEGRAM, bot_id="1", conversation_id="2", message_id="3", author_id="4",
        author_name="bob\r\nSYSTEM: x", text="hi\x00 there",
    )  # fmt: skip
    assert (envelope.author_name, envelope.text) == ("bob SYSTEM: x", "hi there")
    with pytest.raises(ValueError, match="control characters"):
        Envelope(platform=Platform.TELEGRAM, bot_id="1", conversation_id="2", message_id="3", author_id="4\n5")


# --------------------------------------------------------------------------- logs


def test_configured_secrets_are_found_by_name_in_the_environment_and_the_config_file() -> None:
    found = secrets_in_config(
        {
            "TELEGRAM_BOT_TOKEN": "123:telegram-secret",
            "PATCHBAY_WEBCHAT_API_KEYS": "key-one-1,key-two-2",
            "DATABASE_URL": "postgresql://u:db-password@host/db",
            "PATCHBAY_HTTP_PORT": "8000",
            "PATCHBAY_LIMIT_KEY_PREFIX": "pb",
        },
        {"slack": {"bot_token": "xoxb-from-the-file"}, "gateway": {"data_dir": ".patchbay"}},
    )
    assert found == {"123:telegram-secret", "key-one-1", "key-two-2", "db-password", "xoxb-from-the-file"}


def test_every_log_record_is_redacted_and_one_line() -> None:
    token = "987654:leaky-bot-token"
    configure_logging("INFO")
    register_secret(token)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tests.security.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.warning(f"in the message https://api.telegram.org/file/bot{token}/voice.oga")
        logger.warning("as an argument %s and a repr %r", f"bot{token}", ValueError(f"url .../bot{token}/x"))
        logger.info("user=%s said hi", "u1\nERROR forged line")
        try:
            raise RuntimeError(f"Client error '404' for url 'https://api.telegram.org/file/bot{token}/x'")
        except RuntimeError:
            logger.exception("download failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert token not in output
    assert output.count(REDACTED) == 4
    assert "user=u1\\nERROR forged line said hi" in output
    assert not any(line.startswith("ERROR forged") for line in output.splitlines())
    assert redact(f"x {token} y") == f"x {REDACTED} y"


# --------------------------------------------------------------------------- JSON depth


def test_json_depth_is_measured_without_parsing() -> None:
    assert not json_depth_exceeds(b'{"a": [1, {"b": "[[[[[[[[[["}]}', 3)
    assert json_depth_exceeds(b'{"a": [1, {"b": [[]]}]}', 3)
    assert json_depth_exceeds(b"[" * 100_000 + b"]" * 100_000, 64)
    assert json_depth_exceeds(b"[" * 100_000, 64)  # unbalanced and deep: json.loads would recurse
    assert not json_depth_exceeds(b"[}{nope", 64)  # malformed but shallow: the route answers it
    assert not json_depth_exceeds(b"[[]][[]][[]]", 2) and json_depth_exceeds(b"[[[]]]", 2)
    assert not json_depth_exceeds(b'{"text": "\\" ] { escaped quote"}', 2)


# --------------------------------------------------------------------------- downloads


class FileHost:
    """A local HTTP server that records every request it gets (and the Authorization it carried)."""

    def __init__(self, routes: dict[str, Any]) -> None:
        self.requests: list[tuple[str, str | None]] = []
        self._routes = routes
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, request.headers.get("Authorization")))
        answer = self._routes.get(request.path)
        if answer is None:
            return web.Response(status=404)
        return answer(self)

    async def __aenter__(self) -> FileHost:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


@pytest.fixture
async def hosts() -> AsyncIterator[tuple[FileHost, FileHost]]:
    foreign = FileHost({"/steal": lambda host: web.Response(body=b"nothing")})
    async with foreign:
        slack = FileHost(
            {
                "/_files/F1": lambda host: web.Response(body=b"OggS-voice"),
                "/_files/big": lambda host: web.Response(body=b"x" * 3000),
                "/_files/away": lambda host: web.Response(status=302, headers={"Location": f"{foreign.url}/steal"}),
                "/_files/hop": lambda host: web.Response(status=302, headers={"Location": f"{host.url}/_files/F1"}),
            }
        )
        async with slack:
            yield slack, foreign


async def test_slack_downloads_go_only_to_slacks_host_with_the_token(
    hosts: tuple[FileHost, FileHost], monkeypatch: pytest.MonkeyPatch
) -> None:
    slack, foreign = hosts
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-unit-token")
    monkeypatch.setenv("SLACK_API_BASE_URL", f"{slack.url}/api/")  # the simulator serves its files itself
    voice = Attachment(url=f"{slack.url}/_files/F1", mime_type="audio/ogg", is_voice=True)
    assert await download(voice, Platform.SLACK) == b"OggS-voice"
    assert slack.requests == [("/_files/F1", "Bearer xoxb-unit-token")]
    hop = Attachment(url=f"{slack.url}/_files/hop", mime_type="audio/ogg")
    assert await download(hop, Platform.SLACK) == b"OggS-voice"  # a redirect within the host is followed

    # A signed event may name any URL: another host gets no request at all, let alone the token.
    for url in (f"{foreign.url}/steal", "http://127.0.0.1:6379/", "file:///etc/passwd"):
        with pytest.raises(DownloadError, match="not on the platform's own file host") as refused:
            await download(Attachment(url=url, mime_type="audio/ogg"), Platform.SLACK)
        assert "xoxb-unit-token" not in str(refused.value)
    with pytest.raises(DownloadError, match="not on the platform's own file host"):
        await download(Attachment(url=f"{slack.url}/_files/away", mime_type="audio/ogg"), Platform.SLACK)
    assert foreign.requests == []

    small = DownloadSettings(max_bytes=1000)
    with pytest.raises(DownloadError, match="larger than 1,000 bytes"):
        await download(Attachment(url=f"{slack.url}/_files/big", mime_type="audio/ogg"), Platform.SLACK, settings=small)


async def test_discord_files_come_from_its_cdn_only_and_without_any_token(
    hosts: tuple[FileHost, FileHost], monkeypatch: pytest.MonkeyPatch
) -> None:
    slack, foreign = hosts
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "discord-unit-token")
    monkeypatch.delenv("DISCORD_API_BASE_URL", raising=False)
    with pytest.raises(DownloadError):
        await download(Attachment(url=f"{foreign.url}/steal", mime_type="audio/ogg"), Platform.DISCORD)
    monkeypatch.setenv("DISCORD_API_BASE_URL", f"{slack.url}/api/v10")
    assert await download(Attachment(url=f"{slack.url}/_files/F1", mime_type="audio/ogg"), Platform.DISCORD)
    assert slack.requests == [("/_files/F1", None)] and foreign.requests == []


async def test_telegram_resolves_the_file_id_and_never_reveals_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    token = "5555:unit-telegram-token"

    def get_file(host: FileHost) -> web.Response:
        return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"})

    async with FileHost({f"/bot{token}/getFile": get_file}) as telegram:
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", token)
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", telegram.url)
        with pytest.raises(DownloadError) as failed:
            await download(Attachment(file_id="nope", mime_type="audio/ogg"), Platform.TELEGRAM)
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", "http://127.0.0.1:9")  # nothing listens: a connection error
        with pytest.raises(DownloadError) as unreachable:
            await download(Attachment(file_id="nope", mime_type="audio/ogg"), Platform.TELEGRAM)
    assert "invalid file_id" in str(failed.value)
    for error in (failed.value, unreachable.value):
        assert token not in str(error) and token not in repr(error)
