"""Writing files that must never be seen half-written or by the wrong user: keys, passwords, head records."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    """Write a secret readable by the owner only (0600 from creation, not chmod'ed later)."""
    write_atomic(path, data, mode=0o600)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write via a temporary file + rename so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(fd, mode)  # umask may have narrowed the mode, or the file pre-existed
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
