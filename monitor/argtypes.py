"""Argument types shared by the ``jukimon`` subcommands: each rejects bad input with a message argparse shows."""

from __future__ import annotations

import argparse
import datetime as dt


def host_port(text: str) -> tuple[str, int]:
    """HOST:PORT (a control channel, a trap receiver, an SMTP relay, a broker)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def iso_date(text: str) -> dt.date:
    """YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None
