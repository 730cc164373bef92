"""Looking for a secret everywhere it could have been left: raw, or inside base64 (Celery task bodies are)."""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path

import redis

__all__ = ["contains", "redis_contents", "tree_contents"]

_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]{16,}={0,2}")
_MAX_DEPTH = 3  # base64 inside JSON inside base64 is as deep as Patchbay's data goes


def _decoded_runs(blob: bytes) -> list[bytes]:
    decoded = []
    for match in _BASE64_RUN.finditer(blob):
        run = match.group()
        try:
            decoded.append(base64.b64decode(run + b"=" * (-len(run) % 4)))
        except (binascii.Error, ValueError):
            continue
    return decoded


def contains(blob: bytes, needle: str, _depth: int = 0) -> bool:
    """``needle`` in ``blob`` as is, or in any base64 run of it (recursively, a few levels deep)."""
    wanted = needle.encode()
    if wanted in blob:
        return True
    if _depth >= _MAX_DEPTH:
        return False
    return any(contains(part, needle, _depth + 1) for part in _decoded_runs(blob))


def redis_contents(client: redis.Redis) -> bytes:
    """Every key and every value of every type, as one blob."""
    parts: list[bytes] = []
    for key in client.scan_iter(count=1000):
        parts.append(key)
        kind = client.type(key)
        if kind == b"string":
            parts.append(client.get(key) or b"")
        elif kind == b"list":
            parts += client.lrange(key, 0, -1)
        elif kind == b"hash":
            for field, value in client.hgetall(key).items():
                parts += [field, value]
        elif kind == b"set":
            parts += list(client.smembers(key))
        elif kind == b"zset":
            parts += [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            for _, fields in client.xrange(key):
                for field, value in fields.items():
                    parts += [field, value]
    return b"\n".join(parts)


def tree_contents(root: Path) -> dict[Path, bytes]:
    """Every regular file under ``root`` (sockets skipped)."""
    return {path: path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}
