"""Sharded collectors: N processes share the inventory through the MQTT broker (see README.md here)."""

from .assignment import assign, owner, score, share
from .membership import Members, Membership
from .process import ShardedCollector, ShardOptions, default_member_id, run_until_signal

__all__ = ["Members", "Membership", "ShardOptions", "ShardedCollector", "assign", "default_member_id", "owner",
           "run_until_signal", "score", "share"]
