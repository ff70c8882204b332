"""Process limits the simulation needs: one socket per simulated device."""

from __future__ import annotations

import logging
import os

from monitor.logs import fields

logger = logging.getLogger(__name__)


def ensure_fd_limit(extra: int, *, headroom: int = 1024) -> None:
    """Raise the soft RLIMIT_NOFILE (often 1,024) so ``extra`` more sockets fit.

    A national fleet is ~3,600 listeners before a single connection; the hard limit
    is the ceiling, and hitting it is left to fail loudly at bind time.
    """
    try:
        import resource
    except ImportError:  # not POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        in_use = 64
    need = in_use + extra + headroom
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    target = need if hard == resource.RLIM_INFINITY else min(hard, need)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        logger.info("raised open-file limit", extra=fields(soft=target, was=soft, hard=hard))
