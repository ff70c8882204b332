"""Naming a YAML node in an error message, for the readers that report file:line problems (routing, scenarios)."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

# libyaml when installed: ten times faster on hostile input, and it stops at 1,000 nesting levels
# where the pure-Python reader takes seconds, then overflows the stack (found by fuzz/files.py).
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def describe_node(node: Node) -> str:
    """What the file holds where something else was expected: "a mapping", "a list", "nothing", or the value."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag.endswith(":null"):
        return "nothing"
    return repr(node.value) if node.tag.endswith(":str") else node.value
