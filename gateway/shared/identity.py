"""Who a user is: the platform-qualified user key every component keys its per-user state by.

A platform's user id is only unique within that platform (web chat user ``1001`` and Telegram
user ``1001`` are two people), and on Slack only within a workspace. So voice preferences, the
emotional state, blocks, rate limits, memory, forgetting, analytics pseudonyms and the admin API
all use one spelling, built here and nowhere else:

- ``telegram:1001``, ``discord:81234``, ``webchat:<id>`` — ``<platform>:<user id>``;
- ``slack:T0123:U0456`` — ``slack:<workspace (team) id>:<user id>``.

Operators type these at the admin API and the CLI; ``parse_user_key`` refuses a bare id with a
message that shows the qualified forms, so "forget 1001" can never hit the wrong person.
"""

from __future__ import annotations

__all__ = ["PLATFORMS", "parse_user_key", "split_user_key", "user_key"]

PLATFORMS = ("discord", "slack", "telegram", "webchat")


def user_key(platform: str, bot_id: str, user_id: str) -> str:
    """The qualified key of ``user_id`` on ``platform``; ``bot_id`` is the Slack workspace (team) id."""
    platform = str(platform)
    if platform == "slack":
        return f"slack:{bot_id}:{user_id}"
    return f"{platform}:{user_id}"


def _hint(bare: str) -> str:
    return (
        f"{bare!r} is not a qualified user id: name the platform, e.g. telegram:{bare}, discord:{bare}, "
        f"webchat:{bare}, or slack:<workspace id>:{bare} (Slack user ids are per workspace)"
    )


def parse_user_key(text: str) -> str:
    """``text`` if it is a qualified user key, else ``ValueError`` saying what the qualified form looks like."""
    value = text.strip()
    platform, sep, rest = value.partition(":")
    if not sep or platform not in PLATFORMS:
        raise ValueError(_hint(value))
    if not rest:
        raise ValueError(f"{value!r} names no user after the platform")
    if platform == "slack":
        team, sep, user = rest.partition(":")
        if not sep or not team or not user or ":" in user:
            raise ValueError(
                f"{value!r}: a Slack user is slack:<workspace id>:<user id> (e.g. slack:T0123ABCD:{rest.split(':')[-1]})"
            )
    elif platform in ("telegram", "discord") and ":" in rest:
        raise ValueError(f"{value!r}: a {platform} user is {platform}:<user id>, with no further colon")
    return value


def split_user_key(key: str) -> tuple[str, str, str]:
    """``(platform, workspace, user id)`` of a qualified key; the workspace is "" except on Slack."""
    value = parse_user_key(key)
    platform, _, rest = value.partition(":")
    if platform == "slack":
        team, _, user = rest.partition(":")
        return platform, team, user
    return platform, "", rest
