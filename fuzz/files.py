"""Files an operator writes: the inventory, drill scenarios, the routing tree and the configuration.

Two kinds of input per file: the text mutated (bytes, quoting, indentation, deep
nesting, odd characters) and the parsed YAML tree mutated then written back out
(keys dropped, values of the wrong type, unknown keys) — the second reaches the
semantic checks behind the YAML parser. Each is read by the same function the
commands use; the documented rejection is the module's error type naming file
and key.
"""

from __future__ import annotations

import random
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import yaml
from hypothesis import strategies as st

from alerting.routing import RoutingError, load_routing
from drills.loader import ScenarioError, load_scenario
from fuzz.core import Accepted, Outcome, Rejected, Target, reason_of
from fuzz.mutate import corpus_text, mutated_text
from monitor.config import load_config
from monitor.configerror import ConfigError
from monitor.inventory.model import InventoryError
from monitor.inventory.yaml_io import load_inventory
from monitor.yaml_nodes import SAFE_LOADER

_VALUES: tuple[Any, ...] = (None, True, 0, -1, 2**64, 1e308, float("nan"), "", "x" * 300, "env:NOPE", "住基",
                            [], {}, [1, [2, [3]]], {"a": {"b": None}}, "1970-01-01", "2026-13-45T99:00+09:00",
                            "10s", "-5m", "0s", "99999999999h", "kind=root_cause", "a!=b", "\x00")


_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _mutate_tree(rng: random.Random, node: Any, depth: int = 0) -> Any:
    """A copy of a YAML tree with a few changes, more often near the leaves."""
    if isinstance(node, dict) and node:
        node = dict(node)
        key = rng.choice(list(node))
        choice = rng.randrange(6)
        if choice == 0:
            del node[key]
        elif choice == 1:
            node[key] = rng.choice(_VALUES)
        elif choice == 2:
            node[rng.choice(("unknown", "name", "id", "type", key + "_"))] = rng.choice(_VALUES)
        else:
            node[key] = _mutate_tree(rng, node[key], depth + 1)
        return node
    if isinstance(node, list) and node:
        node = list(node)
        i = rng.randrange(len(node))
        choice = rng.randrange(5)
        if choice == 0:
            del node[i]
        elif choice == 1:
            node.append(node[i])  # duplicates: ids used twice
        elif choice == 2:
            node[i] = rng.choice(_VALUES)
        else:
            node[i] = _mutate_tree(rng, node[i], depth + 1)
        return node
    return rng.choice(_VALUES) if rng.randrange(3) else node


def yaml_mutants(corpus: str) -> st.SearchStrategy[str]:
    """The corpus texts mutated as text, or as trees written back as YAML."""
    texts = corpus_text(corpus)
    trees = [tree for tree in map(_tree, texts) if isinstance(tree, (dict, list))]

    @st.composite
    def tree_mutant(draw: st.DrawFn) -> str:
        rng = draw(st.randoms(use_true_random=True))
        tree = rng.choice(trees)
        for _ in range(rng.randint(1, 4)):
            tree = _mutate_tree(rng, tree)
        return yaml.dump(tree, Dumper=_DUMPER, allow_unicode=True, default_flow_style=rng.choice((None, True, False)))

    return st.one_of(mutated_text(st.sampled_from(texts)), tree_mutant())


def _tree(text: str) -> Any:
    """A seed's YAML tree, or None for the regression seeds that are not YAML at all."""
    try:
        return yaml.load(text, Loader=SAFE_LOADER)
    except (yaml.YAMLError, RecursionError, UnicodeError):
        return None


@lru_cache(maxsize=1)
def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="jukimon-fuzz-files-"))


def _written(text: str) -> Path:
    """The case as a file (text with lone surrogates becomes bytes that are not UTF-8)."""
    path = _scratch() / "case.yml"
    try:
        data = text.encode("utf-8", "surrogateescape")  # the corpus's non-UTF-8 bytes, as they were
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogatepass")
    path.write_bytes(data)
    return path


def inventory_text(text: str) -> Outcome:
    try:
        load_inventory(_written(text))
    except InventoryError as exc:
        return Rejected(reason_of(exc.problems[0].message) if exc.problems else "no problems listed")
    return Accepted()


def scenario_text(text: str) -> Outcome:
    try:
        load_scenario(_written(text))
    except ScenarioError as exc:
        problems = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
        return Rejected(reason_of(problems[0].message) if problems else reason_of(str(exc)))
    return Accepted()


def _loaded_by(load: Callable[[Path], Any], error: type[Exception]) -> Callable[[str], Outcome]:
    """A target for a file whose loader raises one error type with a message naming file and key."""
    def call(text: str) -> Outcome:
        try:
            load(_written(text))
        except error as exc:
            return Rejected(reason_of(str(exc)))
        return Accepted()

    return call


def _target(name: str, corpus: str, call: Callable[[str], Outcome], doc: str) -> Target:
    return Target(name, "files", yaml_mutants(corpus), call, doc, slow=True, corpus=corpus,
                  corpus_text=True)


def targets() -> list[Target]:
    return [
        _target("inventory_file", "inventory", inventory_text,
                "inventory files (monitor/inventory/yaml_io.py, validate.py)"),
        _target("scenario_file", "scenario", scenario_text, "drill scenario files (drills/loader.py)"),
        _target("routing_file", "routing", _loaded_by(load_routing, RoutingError),
                "the alert routing tree (alerting/routing.py)"),
        _target("config_file", "config", _loaded_by(load_config, ConfigError),
                "jukimon.yaml (monitor/config.py load_config)"),
    ]
