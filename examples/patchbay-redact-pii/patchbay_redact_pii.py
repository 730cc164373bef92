"""``redact_pii``: mask e-mail addresses, phone, card and IBAN numbers before the bot stores or sends a message.

A Patchbay patch in one module: its config, its enhancement and its spec. It wraps the message
handler (kind ``handler``), so the masked text is what the memory remembers, what every language
model and the response cache see, and what analytics count; the user's words never leave the
handler unmasked. Card numbers must pass the Luhn check and IBANs the mod-97 check, so order
numbers and dates are left alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import Field

from gateway.shared.envelope import Envelope, Reply
from patches import PatchConfig, PatchSpec, make_apply_function
from workers.components import Handler

__all__ = ["SPEC", "PiiRedactingHandler", "RedactPiiConfig", "apply_redact_pii_patch", "redact"]

log = logging.getLogger(__name__)

Kind = Literal["email", "card", "iban", "phone"]
_LABELS: dict[str, str] = {"email": "email", "card": "card number", "iban": "IBAN", "phone": "phone number"}

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# A run of digits is taken whole (a separator between two digits does not end it): a 16-digit
# number that fails the card check must not then be half-read as a phone number.
_CARD = re.compile(r"(?<![\d\w])(?<!\d[ -])\d(?:[ -]?\d){12,18}(?![\w]|[ -]?\d)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_PHONE = re.compile(r"(?<![\d\w+])(?<!\d[ ().-])\+?\(?\d(?:[ ().-]{0,2}\d){8,14}(?![\w]|[ ().-]{1,2}\d)")


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _luhn(number: str) -> bool:
    total = 0
    for index, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _iban_valid(text: str) -> bool:
    compact = text.replace(" ", "")
    rotated = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rotated)) % 97 == 1


def _phone_like(text: str) -> bool:
    return 9 <= len(_digits(text)) <= 15


# In this order: a card number or an IBAN is also a long run of digits a phone pattern would take.
_CHECKS: dict[str, tuple[re.Pattern[str], Callable[[str], bool]]] = {
    "email": (_EMAIL, lambda text: True),
    "card": (_CARD, lambda text: _luhn(_digits(text))),
    "iban": (_IBAN, _iban_valid),
    "phone": (_PHONE, _phone_like),
}


def redact(text: str, kinds: list[str], mask: str = "[{kind} removed]") -> tuple[str, dict[str, int]]:
    """``text`` with every match of ``kinds`` masked, and how many of each kind were."""
    counts: dict[str, int] = {}
    for kind, (pattern, valid) in _CHECKS.items():
        if kind not in kinds:
            continue

        def replace(match: re.Match[str], kind: str = kind, valid: Callable[[str], bool] = valid) -> str:
            if not valid(match.group(0)):
                return match.group(0)
            counts[kind] = counts.get(kind, 0) + 1
            return mask.format(kind=_LABELS[kind])

        text = pattern.sub(replace, text)
    return text, counts


class RedactPiiConfig(PatchConfig, patch="redact_pii", default_enabled=False):
    kinds: list[Kind] = Field(default_factory=lambda: ["email", "card", "iban", "phone"])
    mask: str = "[{kind} removed]"
    timeout_s: float | None = 0.5  # its own work is a few regular expressions; the handler below is not counted


class PiiRedactingHandler:
    """Enhances ``Handler.handle``: the handler below gets the message with its personal data masked."""

    def __init__(self, below: Handler, config: RedactPiiConfig) -> None:
        self.below = below
        self.config = config

    async def handle(self, envelope: Envelope) -> Reply:
        text, counts = redact(envelope.text, list(self.config.kinds), self.config.mask)
        if counts:
            log.info("redact_pii masked %s in message %s", counts, envelope.dedupe_key)
            envelope = envelope.model_copy(update={"text": text})
        return await self.below.handle(envelope)


def _build(below: Handler, config: RedactPiiConfig, deps: Mapping[str, Any]) -> PiiRedactingHandler:
    return PiiRedactingHandler(below, config)


def _prerequisite(config: RedactPiiConfig, deps: Mapping[str, Any]) -> str | None:
    try:
        config.mask.format(kind="email")
    except (KeyError, IndexError, ValueError) as exc:
        return f"mask {config.mask!r} is not a format string with only {{kind}}: {exc!r}"
    return None


SPEC = PatchSpec(
    name="redact_pii",
    kind="handler",
    interface=Handler,
    config_cls=RedactPiiConfig,
    factory=_build,
    enhances=("handle",),
    prerequisite=_prerequisite,
    description="masks e-mail addresses, phone, card and IBAN numbers before anything stores or sends them",
)
apply_redact_pii_patch = make_apply_function(SPEC)
