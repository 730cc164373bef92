"""The example third-party patch (examples/patchbay-redact-pii): what it masks, what it leaves, and how it applies."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import entry_points

import pytest

from gateway.shared.envelope import Envelope, Platform, Reply
from patches.discovery import discover
from patches.layer import stack_of
from patches.runtime import PatchRuntime
from patches.switches import Switch

patchbay_redact_pii = pytest.importorskip(
    "patchbay_redact_pii", reason="the example package is not installed: `make install` installs it"
)

ALL = ["email", "card", "iban", "phone"]


@pytest.mark.parametrize(
    ("text", "masked", "counts"),
    [
        ("mail fay.k+bot@example.co.uk now", "mail [email removed] now", {"email": 1}),
        ("card 4111 1111 1111 1111.", "card [card number removed].", {"card": 1}),
        ("card 4111-1111-1111-1111", "card [card number removed]", {"card": 1}),
        ("iban GB82 WEST 1234 5698 7654 32", "iban [IBAN removed]", {"iban": 1}),
        (
            "call +44 20 7946 0958 or (020) 7946-0958",
            "call [phone number removed] or [phone number removed]",
            {"phone": 2},
        ),
        # Left alone: not a card (fails Luhn) and not half of it read as a phone; dates, prices, ids.
        ("order 1234 5678 9012 3456", "order 1234 5678 9012 3456", {}),
        ("meet on 2024-05-01 at 10:30, it costs 1,299.00", "meet on 2024-05-01 at 10:30, it costs 1,299.00", {}),
        # A mistyped IBAN is not called one, but its account digits still go (as a phone-like run).
        ("iban GB00 WEST 1234 5698 7654 32", "iban GB00 WEST [phone number removed]", {"phone": 1}),
        ("ticket 12345678901234567890123", "ticket 12345678901234567890123", {}),
    ],
)
def test_what_is_masked_and_what_is_left(text: str, masked: str, counts: dict[str, int]) -> None:
    assert patchbay_redact_pii.redact(text, ALL) == (masked, counts)


def test_only_the_configured_kinds_are_masked_with_the_configured_mask() -> None:
    text = "fay@example.com, +44 20 7946 0958"
    assert patchbay_redact_pii.redact(text, ["phone"], "<{kind}>") == ("fay@example.com, <phone number>", {"phone": 1})


class EchoHandler:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def handle(self, envelope: Envelope) -> Reply:
        self.seen.append(envelope.text)
        return Reply.answering(envelope, f"got: {envelope.text}")


def envelope(text: str) -> Envelope:
    return Envelope(
        platform=Platform.WEBCHAT,
        bot_id="bot",
        conversation_id="c1",
        message_id="m1",
        author_id="fay",
        text=text,
        timestamp=datetime.now(UTC),
    )


async def test_it_is_an_installed_plugin_that_applies_over_the_handler_and_switches() -> None:
    assert "redact_pii" in {point.name for point in entry_points(group="patchbay.patches")}
    registry = discover()
    assert registry.get("redact_pii") is patchbay_redact_pii.SPEC
    runtime = PatchRuntime()
    base = EchoHandler()
    handler = await runtime.apply(patchbay_redact_pii.SPEC, base, patchbay_redact_pii.RedactPiiConfig(enabled=True))
    assert stack_of(handler) == ["redact_pii", "EchoHandler"]
    reply = await handler.handle(envelope("I am fay@example.com"))
    assert (reply.text, base.seen) == ("got: I am [email removed]", ["I am [email removed]"])
    runtime.switches.table = {"redact_pii": Switch(enabled=False)}
    assert (await handler.handle(envelope("I am fay@example.com"))).text == "got: I am fay@example.com"


async def test_a_mask_that_is_not_a_format_string_is_refused_at_apply_time() -> None:
    runtime = PatchRuntime()
    base = EchoHandler()
    config = patchbay_redact_pii.RedactPiiConfig(enabled=True, mask="[{what}]")
    assert await patchbay_redact_pii.apply_redact_pii_patch(base, config, runtime=runtime) is base
    assert "is not a format string" in runtime.refusals["redact_pii"].reason
