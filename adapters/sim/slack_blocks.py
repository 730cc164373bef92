"""What the Slack simulator checks in a message's ``text`` and ``blocks``, as the Web API refuses them.

- ``blocks`` must be a JSON array (else ``invalid_blocks_format``) of at most 50 objects, each of a
  known ``type``; a ``markdown`` block has a non-empty string ``text``, and all ``markdown`` blocks of
  one payload hold at most 12,000 characters together; a ``section``'s text at most 3,000, a
  ``header``'s at most 150. Anything else is ``invalid_blocks`` with an ``errors`` list naming the
  place by JSON pointer, as Slack does.
- ``text`` longer than 40,000 characters is ``msg_too_long``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["BLOCK_TYPES", "MARKDOWN_TOTAL_LIMIT", "blocks_error", "parse_blocks", "shown_text"]

BLOCK_TYPES = frozenset(
    {"markdown", "section", "header", "divider", "context", "rich_text", "image", "actions", "input", "file", "video"}
)
MARKDOWN_TOTAL_LIMIT = 12_000
_MAX_BLOCKS = 50
_TEXT_LIMIT = 40_000
_TEXT_LIMITS = {"section": 3_000, "header": 150}


def parse_blocks(raw: Any) -> Any:
    """Blocks as sent: a list in a JSON body, a JSON string in a form body."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def blocks_error(text: str, raw_blocks: Any) -> dict[str, Any] | None:
    """``None`` when the message is acceptable, else the body Slack answers with (``ok: false``)."""
    if len(text) > _TEXT_LIMIT:
        return {"ok": False, "error": "msg_too_long"}
    if raw_blocks is None:
        return None
    blocks = parse_blocks(raw_blocks)
    if not isinstance(blocks, list):
        return {"ok": False, "error": "invalid_blocks_format"}
    errors: list[str] = []
    if len(blocks) > _MAX_BLOCKS:
        errors.append(f"must be less than {_MAX_BLOCKS + 1} items [json-pointer:/blocks]")
    markdown_chars = 0
    for index, block in enumerate(blocks):
        where = f"[json-pointer:/blocks/{index}"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            kind = block.get("type") if isinstance(block, dict) else None
            errors.append(f"unsupported type: {kind!r} {where}/type]")
            continue
        kind = block["type"]
        if kind == "markdown":
            body = block.get("text")
            if not isinstance(body, str) or not body:
                errors.append(f"must be more than 0 characters {where}/text]")
                continue
            markdown_chars += len(body)
        elif kind in _TEXT_LIMITS:
            body_object = block.get("text")
            body = body_object.get("text") if isinstance(body_object, dict) else None
            if kind == "header" and not isinstance(body, str):
                errors.append(f"missing required field: text {where}]")
            elif isinstance(body, str) and len(body) > _TEXT_LIMITS[kind]:
                errors.append(f"must be less than {_TEXT_LIMITS[kind] + 1} characters {where}/text/text]")
    if markdown_chars > MARKDOWN_TOTAL_LIMIT:
        errors.append(
            f"the markdown blocks hold {markdown_chars} characters, more than {MARKDOWN_TOTAL_LIMIT} [json-pointer:/blocks]"
        )
    if not errors:
        return None
    return {
        "ok": False,
        "error": "invalid_blocks",
        "errors": errors,
        "response_metadata": {"messages": [f"[ERROR] {error}" for error in errors]},
    }


def shown_text(text: str, raw_blocks: Any) -> str:
    """What a user reads: the ``markdown`` blocks' text when there are any, else ``text``."""
    blocks = parse_blocks(raw_blocks)
    if isinstance(blocks, list):
        bodies = [b["text"] for b in blocks if isinstance(b, dict) and b.get("type") == "markdown"]
        if bodies:
            return "\n\n".join(bodies)
    return text
