"""Private data at rest: the data directory is 0700 and every file Patchbay writes in it is 0600.

The data directory holds every remembered turn (``patchbay.db`` and its WAL), the embedded Redis'
AOF and RDB (queued messages, replies, preferences), the session secret and the analytics key. The
processes set a umask of 077 before creating anything (``private_umask``), so SQLite, Redis and our
own key files come out 0600 whichever library creates them, and children inherit it. A directory
left world-readable by an older version is tightened on start (``secure_data_dir``), with a warning.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

__all__ = ["PRIVATE_UMASK", "load_or_create_secret", "private_umask", "secure_data_dir", "write_private"]

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077


def private_umask() -> None:
    """From now on this process (and every child it starts) creates files 0600 and directories 0700."""
    os.umask(PRIVATE_UMASK)


def secure_data_dir(path: Path) -> Path:
    """Create ``path`` 0700, or tighten it and what is in it when it exists with looser permissions."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    loosened: list[str] = []
    for current, dirs, files in os.walk(path):
        for name in [".", *dirs, *files]:
            target = Path(current) if name == "." else Path(current) / name
            try:
                info = target.lstat()
            except FileNotFoundError:
                continue  # removed while we walked (a WAL checkpoint, a Redis rewrite)
            if stat.S_ISLNK(info.st_mode):
                continue
            wanted = 0o700 if stat.S_ISDIR(info.st_mode) else 0o600
            if stat.S_ISSOCK(info.st_mode):
                wanted = 0o700  # Redis sets its socket's mode itself (--unixsocketperm 700)
            if stat.S_IMODE(info.st_mode) & 0o077:
                os.chmod(target, stat.S_IMODE(info.st_mode) & wanted)
                loosened.append(str(target))
    if loosened:
        log.warning("made %d path(s) in %s private (0700/0600): %s", len(loosened), path, ", ".join(loosened[:5]))
    return path


def write_private(path: Path, data: bytes) -> bool:
    """Create ``path`` 0600 with ``data``; False when it already existed (another process won the race)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return True


def load_or_create_secret(configured: str | None, path: Path, *, purpose: str) -> bytes:
    """``configured`` if set; else the key in ``path``, created (0600, 32 random bytes as hex) on first use.

    Every process reading the same data directory gets the same key: the first one to create the file
    wins and the others read theirs. A key must outlive restarts (sessions, pseudonyms depend on it).
    """
    if configured:
        return configured.encode()
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    if not write_private(path, key):
        return path.read_bytes().strip()
    log.warning("generated the %s in %s; back it up with the data directory", purpose, path)
    return key
