"""The unified envelope: JSON round trips, and bad envelopes refused with a clear error."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from gateway.shared.envelope import Attachment, Envelope, EnvelopeError, Platform, Reply, parse_envelope, parse_reply


def _envelope(**changes: object) -> Envelope:
    data: dict[str, object] = {
        "platform": "telegram",
        "bot_id": "42",
        "conversation_id": "-100",
        "thread_id": "7",
        "message_id": "9001",
        "author_id": "555",
        "author_name": "Ada",
        "text": "hello",
        "mentions": ["42"],
        "attachments": [{"url": "https://example.invalid/a.png", "mime_type": "image/png", "size": 10}],
        "voice": {"url": "https://example.invalid/v.ogg", "mime_type": "audio/ogg", "is_voice": True},
        "reply_to": "9000",
        "timestamp": "2026-01-02T03:04:05Z",
        "raw": {"update_id": 1},
    }
    data.update(changes)
    return parse_envelope(data)


def test_envelope_round_trips_through_json() -> None:
    envelope = _envelope()
    again = parse_envelope(json.loads(json.dumps(envelope.to_json())))
    assert again == envelope
    assert again.platform is Platform.TELEGRAM and again.timestamp == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert again.dedupe_key == "telegram:42:-100:9001" and again.conversation_key == "telegram:42:-100"


def test_reply_answering_addresses_the_same_conversation_and_thread() -> None:
    envelope = _envelope()
    audio = Attachment.from_bytes(b"OggS....", "audio/ogg", is_voice=True)
    reply = Reply.answering(envelope, "hi", attachments=[audio])
    again = parse_reply(json.loads(json.dumps(reply.to_json())))
    assert (again.platform, again.conversation_id, again.thread_id, again.reply_to) == ("telegram", "-100", "7", "9001")
    assert again.in_reply_to_key == envelope.dedupe_key and again.attachments[0].data() == b"OggS...."


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"platform": "irc"}, "platform"),
        ({"message_id": ""}, "message_id"),
        ({"author_id": None}, "author_id"),
        ({"unknown_field": 1}, "unknown_field"),
        ({"schema_version": 2}, "schema_version 2 is not supported"),
        ({"attachments": [{"mime_type": "image/png"}]}, "a url, a file_id or data_b64"),
        ({"timestamp": "yesterday"}, "timestamp"),
    ],
)
def test_bad_envelopes_are_refused_naming_the_field(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(EnvelopeError) as error:
        _envelope(**changes)
    assert fragment in str(error.value)


def test_not_an_object_is_refused() -> None:
    with pytest.raises(EnvelopeError, match="JSON object"):
        parse_envelope(["not", "an", "envelope"])
