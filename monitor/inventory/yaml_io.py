"""The inventory file: YAML, one flow mapping per line, loaded fast and checked thoroughly.

Format (see README.md beside this module)::

    version: 1
    name: jukimon-seed1-2025-04-01
    sites:
    - {id: national, tier: national, name: 全国センター, name_en: National Centre (J-LIS), parent: null}
    devices:
    - {id: national-fw, site: national, role: national_fw, name: 全国ネットワークFW, address: 127.1.0.1, parents: [], ...}
    links:
    - {id: line-pref-01-rt1, circuit_id: NTTE-01-000-A, carrier: NTT東日本, bandwidth_mbps: 1000, a: pref-01-rt1, b: aggregation-fw}

Why two readers: composing 20,000 entries through PyYAML takes several seconds even with
libyaml, because every scalar becomes a Python node and is resolved in Python. Files in the
layout above (what :func:`dumps_inventory` writes) are read line by line by a strict reader
for that subset of YAML (an entry line outside the subset is composed on its own); a file it
does not recognise — block style, anchors, multi-line entries, odd indentation — goes whole
through ``yaml.compose`` (libyaml when available). Both produce the same plain values; one
constructor then checks every field and reports every problem with its 1-based line number.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Union

import yaml
from yaml.constructor import SafeConstructor
from yaml.reader import Reader
from yaml.resolver import Resolver

from monitor.inventory.model import (
    CryptoProfile,
    Device,
    Inventory,
    InventoryError,
    InventoryProblem,
    Lifecycle,
    Link,
    PrefectureNetwork,
    Role,
    Site,
    Subsystem,
    Tier,
)
from monitor.inventory.validate import findings

__all__ = ["FORMAT_VERSION", "dumps_inventory", "load_inventory", "loads_inventory", "save_inventory"]

FORMAT_VERSION = 1
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"
_SECTIONS = ("sites", "devices", "links")


# ---------------------------------------------------------------------------------------------
# Plain values shared by both readers


@dataclass(frozen=True, slots=True)
class Typed:
    """A scalar YAML resolved to something other than a string (int, bool, null, date, …)."""

    tag: str
    text: str

    def __str__(self) -> str:
        return self.text


Raw = Union[str, Typed, list, dict]  # list[Raw], dict[str, Raw]
_KIND_NAMES = {"int": "a number", "bool": "true/false", "null": "null", "float": "a decimal number",
               "timestamp": "a date", "str": "text"}

_resolver = Resolver()
_plain_cache: dict[str, Raw] = {}


def _plain(text: str) -> Raw:
    """What YAML makes of an unquoted scalar; memoised because values repeat a lot."""
    value = _plain_cache.get(text)
    if value is None:
        if len(_plain_cache) > 200_000:
            _plain_cache.clear()
        tag = _resolver.resolve(yaml.ScalarNode, text, (True, False))
        value = _plain_cache[text] = text if tag == _STR_TAG else Typed(tag.rsplit(":", 1)[-1], text)
    return value


# ---------------------------------------------------------------------------------------------
# Fast reader for the one-entry-per-line layout

_DQ = r'"(?:[^"\\]|\\.)*"'
_SQ = r"'(?:[^']|'')*'"
# Conservative plain scalar: no indicator first, none of : ? , [ ] { } # or tab anywhere (PyYAML
# ends a flow scalar at '?'), no edge spaces.
_PLAIN = r"[^ \t\-?:,\[\]{}#&*!|>'\"%@`](?:[^\t?:,\[\]{}#]*[^ \t?:,\[\]{}#])?"
_SCALAR = f"(?:{_DQ}|{_SQ}|{_PLAIN})"
_KEY = r"[A-Za-z_][A-Za-z0-9_]*"
_SCALAR_RE = re.compile(f"({_DQ})|({_SQ})|({_PLAIN})")
_VALUE = (
    f"(?:({_DQ})|({_SQ})|({_PLAIN})"
    f"|\\[ *((?:{_SCALAR}(?: *, *{_SCALAR})*)?) *\\]"
    f"|\\{{ *((?:{_KEY}: +{_SCALAR}(?: *, *{_KEY}: +{_SCALAR})*)?) *\\}})"
)
_PAIR = f"{_KEY}: +{_VALUE}"
# The whole line is checked by one match; pairs are then picked out left to right.
_ENTRY_RE = re.compile(f"- \\{{ *((?:{_PAIR}(?: *, *{_PAIR})*)?) *\\}}(?: *| +#.*)")
_PAIR_RE = re.compile(f"({_KEY}): +{_VALUE}")
_INNER_PAIR_RE = re.compile(f"({_KEY}): +(?:({_DQ})|({_SQ})|({_PLAIN}))")
_TOP_RE = re.compile(f"({_KEY}):(?: +(?:({_DQ})|({_SQ})|({_PLAIN})|(\\[ *\\])))? *(?: #.*)?")
_PLAIN_RE = re.compile(_PLAIN)
_DQ_ESCAPE_RE = re.compile(r"\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)")
_DQ_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v",
               "f": "\f", "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\",
               "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029"}
_ODD_CHARS = re.compile("[\r\x85\u2028\u2029\t\ufeff]")  # breaks, tabs, BOM: general reader


class _NotFast(Exception):
    """The text is not in the one-line layout; use the general YAML reader."""


def _dq(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc[0] in "xuU" and len(esc) > 1:
            code = int(esc[1:], 16)
            if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
                raise _NotFast
            return chr(code)
        if esc not in _DQ_ESCAPES:
            raise _NotFast
        return _DQ_ESCAPES[esc]

    body = text[1:-1]
    return _DQ_ESCAPE_RE.sub(one, body) if "\\" in body else body


def _scalar(dq: str | None, sq: str | None, plain: str | None) -> Raw:
    if plain is not None:
        return _plain(plain)
    if dq is not None:
        return _dq(dq)
    return sq[1:-1].replace("''", "'")  # type: ignore[index]


def _fast_entry(line: str) -> Raw:
    entry = _ENTRY_RE.fullmatch(line)
    if entry is None:
        return _entry_by_yaml(line)
    out: dict[str, Raw] = {}
    pairs = 0
    for m in _PAIR_RE.finditer(line, entry.start(1), entry.end(1)):  # not into a comment
        key, dq, sq, plain, seq, mapping = m.groups()
        pairs += 1
        if seq is not None:
            out[key] = [_scalar(*s.groups()) for s in _SCALAR_RE.finditer(seq)]
        elif mapping is not None:
            inner: dict[str, Raw] = {}
            for p in _INNER_PAIR_RE.finditer(mapping):
                if p.group(1) in inner:
                    raise _NotFast  # a key given twice: the general reader reports it
                inner[p.group(1)] = _scalar(*p.groups()[1:])
            out[key] = inner
        else:
            out[key] = _scalar(dq, sq, plain)
    if len(out) != pairs:
        raise _NotFast
    return out


def _entry_by_yaml(line: str) -> Raw:
    """A hand-edited entry outside the strict subset, still on one line: compose just that line."""
    if not line.startswith("- {"):
        raise _NotFast
    try:
        node = yaml.compose(line[2:], Loader=_SafeLoader)
    except (yaml.YAMLError, RecursionError):
        raise _NotFast from None
    problems: list[InventoryProblem] = []
    value = _node_value(node, problems, 1) if isinstance(node, yaml.MappingNode) else None
    if value is None or problems:
        raise _NotFast  # the general reader reports it with its line
    return value


def _read_fast(text: str) -> dict[str, tuple[int, Any]]:
    """Top-level key → (line, value); section values are lists of (line, entry)."""
    text = text.replace("\r\n", "\n")
    if Reader.NON_PRINTABLE.search(text) or _ODD_CHARS.search(text):
        raise _NotFast
    top: dict[str, tuple[int, Any]] = {}
    bare: set[str] = set()  # "key:" with nothing after it: a section, or null if no entries follow
    section: list[tuple[int, Raw]] | None = None
    for number, line in enumerate(text.split("\n"), start=1):
        if line.startswith("- "):
            if section is None:
                raise _NotFast
            section.append((number, _fast_entry(line)))
            continue
        if not line.strip(" ") or line.lstrip(" ").startswith("#"):
            continue
        m = _TOP_RE.fullmatch(line)
        if m is None or m.group(1) in top:
            raise _NotFast
        key, dq, sq, plain, empty = m.groups()
        section = None
        if empty is not None:
            top[key] = (number, [])
        elif dq is None and sq is None and plain is None:
            section = []
            bare.add(key)
            top[key] = (number, section)
        else:
            top[key] = (number, _scalar(dq, sq, plain))
    for key in bare:
        if not top[key][1]:
            top[key] = (top[key][0], Typed("null", ""))
    return top


# ---------------------------------------------------------------------------------------------
# General reader: yaml.compose, nodes turned into the same plain values


def _read_general(text: str, problems: list[InventoryProblem]) -> dict[str, tuple[int, Any]] | None:
    try:
        root = yaml.compose(text, Loader=_SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = "; ".join(str(x) for x in (exc.context, exc.problem) if x) or str(exc)
        problems.append(InventoryProblem(f"not valid YAML: {what}", None, line))
        return None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        line = _line_of_offset(text, exc.position)
        char = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "\0")
        problems.append(InventoryProblem(f"not valid YAML: {exc.reason} (U+{char:04X})", None, line))
        return None
    except (yaml.YAMLError, RecursionError, UnicodeError) as exc:
        problems.append(InventoryProblem(f"not valid YAML: {exc}"))
        return None
    if root is None:
        problems.append(InventoryProblem("the file is empty", None, 1))
        return None
    if not isinstance(root, yaml.MappingNode):
        problems.append(InventoryProblem(
            "the top level must be a mapping with version, name, sites, devices, links", None,
            root.start_mark.line + 1))
        return None
    top: dict[str, tuple[int, Any]] = {}
    for key_node, value_node in root.value:
        line = key_node.start_mark.line + 1
        key = _key(key_node)
        if key is None:
            problems.append(InventoryProblem("top-level keys must be text", None, line))
        elif key in top:
            problems.append(InventoryProblem(f"top-level key {key!r} given twice (first at line {top[key][0]})", None, line))
        elif isinstance(value_node, yaml.SequenceNode) and key in _SECTIONS:
            top[key] = (line, [(n.start_mark.line + 1, _node_value(n, problems, n.start_mark.line + 1))
                               for n in value_node.value])
        else:
            top[key] = (line, _node_value(value_node, problems, line))
    return top


def _node_value(node: yaml.Node, problems: list[InventoryProblem], line: int, depth: int = 0) -> Raw:
    """Node → plain value. Depth-limited: entries need two levels, aliases may loop forever."""
    if isinstance(node, yaml.ScalarNode):
        return node.value if node.tag == _STR_TAG else Typed(node.tag.rsplit(":", 1)[-1], node.value)
    if depth >= 3:
        problems.append(InventoryProblem("nested too deeply", None, line))
        return Typed("null", "")
    if isinstance(node, yaml.SequenceNode):
        return [_node_value(n, problems, line, depth + 1) for n in node.value]
    out: dict[str, Raw] = {}
    for key_node, value_node in node.value:
        key = _key(key_node)
        if key is None:
            problems.append(InventoryProblem("field names must be text", None, key_node.start_mark.line + 1))
        elif key in out:
            problems.append(InventoryProblem(f"field {key!r} given twice", _id_of(out), key_node.start_mark.line + 1))
        else:
            out[key] = _node_value(value_node, problems, line, depth + 1)
    return out


def _key(node: yaml.Node) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) and node.tag == _STR_TAG else None


def _line_of_offset(text: str, position: int) -> int:
    """Line of a reader error: libyaml counts UTF-8 bytes, the Python reader characters."""
    if _SafeLoader is yaml.SafeLoader:
        return text.count("\n", 0, max(0, position)) + 1
    return text.encode("utf-8", "surrogatepass").count(b"\n", 0, max(0, position)) + 1


def _id_of(entry: dict[str, Raw]) -> str | None:
    value = entry.get("id")
    return value if isinstance(value, str) else None


# ---------------------------------------------------------------------------------------------
# Constructing the model, field by field


class _FieldError(Exception):
    pass


_constructor = SafeConstructor()


def _describe(raw: Raw) -> str:
    if isinstance(raw, Typed):
        kind = _KIND_NAMES.get(raw.tag, raw.tag)
        return f"{kind} {raw.text}" if raw.tag != "null" else "null"
    if isinstance(raw, list):
        return "a list"
    if isinstance(raw, dict):
        return "a mapping"
    return f"text {raw!r}"


def _as_str(raw: Raw) -> str:
    if isinstance(raw, str):
        return raw
    hint = " (quote it)" if isinstance(raw, Typed) and raw.tag in ("int", "float", "bool", "timestamp", "null") else ""
    raise _FieldError(f"expected text, got {_describe(raw)}{hint}")


def _as_int(raw: Raw) -> int:
    if isinstance(raw, Typed) and raw.tag == "int":
        if raw.text.isdigit() and raw.text[0] != "0":
            return int(raw.text)
        try:
            return int(_constructor.construct_yaml_int(yaml.ScalarNode(raw.tag, raw.text)))
        except ValueError:
            pass
    raise _FieldError(f"expected a whole number, got {_describe(raw)}")


def _as_bool(raw: Raw) -> bool:
    if isinstance(raw, Typed) and raw.tag == "bool":
        return bool(_constructor.bool_values[raw.text.lower()])
    raise _FieldError(f"expected true or false, got {_describe(raw)}")


_DATE_RE = re.compile(r"(\d{4})-(\d\d?)-(\d\d?)")


_date_cache: dict[str, dt.date] = {}


def _as_date(raw: Raw) -> dt.date:
    if isinstance(raw, Typed) and raw.text in _date_cache:
        return _date_cache[raw.text]
    text = raw.text if isinstance(raw, Typed) and raw.tag == "timestamp" else raw if isinstance(raw, str) else None
    m = _DATE_RE.fullmatch(text) if text is not None else None
    if m is None:
        raise _FieldError(f"expected a date YYYY-MM-DD, got {_describe(raw)}")
    try:
        day = dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError as exc:
        raise _FieldError(f"invalid date {text}: {exc}") from None
    if isinstance(raw, Typed) and len(_date_cache) < 100_000:
        _date_cache[raw.text] = day
    return day


def _as_enum(kind: type[enum.StrEnum]) -> Callable[[Raw], Any]:
    def convert(raw: Raw) -> Any:
        try:
            return kind(_as_str(raw))
        except (ValueError, _FieldError):
            allowed = ", ".join(m.value for m in kind)
            raise _FieldError(f"{_describe(raw)} is not one of: {allowed}") from None

    return convert


def _as_str_list(raw: Raw) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise _FieldError(f"expected a list of ids, got {_describe(raw)}")
    return tuple(_as_str(item) for item in raw)


def _as_crypto(raw: Raw) -> CryptoProfile:
    if not isinstance(raw, dict):
        raise _FieldError(f"expected a mapping {{algorithm, key_size, signature_hash}}, got {_describe(raw)}")
    values = _fields(raw, _CRYPTO_FIELDS, "crypto.")
    key_size = values["key_size"]
    if key_size <= 0:
        raise _FieldError(f"key_size must be positive, not {key_size}")
    return CryptoProfile(**values)


def _optional(convert: Callable[[Raw], Any]) -> Callable[[Raw], Any]:
    def maybe(raw: Raw) -> Any:
        return None if isinstance(raw, Typed) and raw.tag == "null" else convert(raw)

    return maybe


_REQUIRED = object()


class _Spec:
    """The fields of one kind of entry: name → (converter, default or _REQUIRED), in write order."""

    def __init__(self, fields: dict[str, tuple[Callable[[Raw], Any], Any]]) -> None:
        self.fields = fields
        self.convert = {key: convert for key, (convert, _default) in fields.items()}
        self.defaults = {key: default for key, (_c, default) in fields.items() if default is not _REQUIRED}
        self.required = frozenset(key for key, (_c, default) in fields.items() if default is _REQUIRED)


_CRYPTO_FIELDS = _Spec({"algorithm": (_as_str, _REQUIRED), "key_size": (_as_int, _REQUIRED),
                        "signature_hash": (_as_str, _REQUIRED)})
_SITE_FIELDS = _Spec({
    "id": (_as_str, _REQUIRED), "tier": (_as_enum(Tier), _REQUIRED), "name": (_as_str, _REQUIRED),
    "name_en": (_as_str, _REQUIRED), "parent": (_optional(_as_str), _REQUIRED),
    "prefecture": (_optional(_as_str), None), "network": (_optional(_as_enum(PrefectureNetwork)), None),
    "redundant_lines": (_as_bool, True),
})
_DEVICE_FIELDS = _Spec({
    "id": (_as_str, _REQUIRED), "site": (_as_str, _REQUIRED), "role": (_as_enum(Role), _REQUIRED),
    "name": (_as_str, _REQUIRED), "address": (_optional(_as_str), None),
    "parents": (_as_str_list, _REQUIRED), "subsystem": (_optional(_as_enum(Subsystem)), None),
    "prefecture": (_optional(_as_str), None), "cluster": (_optional(_as_str), None),
    "vein_reader": (_as_bool, False),
    # Lifecycle, flattened into the device entry:
    "model": (_as_str, _REQUIRED), "installed": (_as_date, _REQUIRED),
    "hw_support_end": (_as_date, _REQUIRED), "sw_support_end": (_as_date, _REQUIRED),
    "crypto": (_optional(_as_crypto), None), "cert_not_after": (_optional(_as_date), None),
})
_LIFECYCLE_KEYS = ("model", "installed", "hw_support_end", "sw_support_end", "crypto", "cert_not_after")
_LINK_FIELDS = _Spec({
    "id": (_as_str, _REQUIRED), "circuit_id": (_as_str, _REQUIRED), "carrier": (_as_str, _REQUIRED),
    "bandwidth_mbps": (_as_int, _REQUIRED), "a": (_as_str, _REQUIRED), "b": (_as_str, _REQUIRED),
})


class _EntryErrors(Exception):
    def __init__(self, messages: list[str]) -> None:
        self.messages = messages


def _fields(raw: dict[str, Raw], spec: _Spec, prefix: str = "") -> dict[str, Any]:
    """Convert every field of an entry; on any problem, :func:`_fields_slowly` says what."""
    convert = spec.convert
    try:
        values = {key: convert[key](value) for key, value in raw.items()}
    except (KeyError, _FieldError, _EntryErrors):
        return _fields_slowly(raw, spec, prefix)
    if len(values) < len(convert):
        if not spec.required <= values.keys():
            return _fields_slowly(raw, spec, prefix)
        values = {**spec.defaults, **values}
    return values


def _fields_slowly(raw: dict[str, Raw], spec: _Spec, prefix: str) -> dict[str, Any]:
    """Every message about an entry, rather than stopping at the first."""
    values: dict[str, Any] = {}
    messages: list[str] = []
    for key, (convert, default) in spec.fields.items():
        if key not in raw:
            if default is _REQUIRED:
                messages.append(f"missing field {prefix}{key}")
            else:
                values[key] = default
            continue
        try:
            values[key] = convert(raw[key])
        except _EntryErrors as exc:
            messages += exc.messages
        except _FieldError as exc:
            messages.append(f"{prefix}{key}: {exc}")
    for key in raw:
        if key not in spec.fields:
            messages.append(f"unknown field {prefix}{key!r} (known: {', '.join(spec.fields)})")
    if messages:
        raise _EntryErrors(messages)
    return values


def _make_site(values: dict[str, Any]) -> Site:
    return Site(**values)


def _make_device(values: dict[str, Any]) -> Device:
    lifecycle = Lifecycle(**{k: values.pop(k) for k in _LIFECYCLE_KEYS})
    return Device(lifecycle=lifecycle, **values)


def _make_link(values: dict[str, Any]) -> Link:
    return Link(**values)


_KINDS: dict[str, tuple[str, _Spec, Callable[[dict[str, Any]], Any]]] = {
    "sites": ("site", _SITE_FIELDS, _make_site),
    "devices": ("device", _DEVICE_FIELDS, _make_device),
    "links": ("link", _LINK_FIELDS, _make_link),
}


def _build(top: dict[str, tuple[int, Any]], problems: list[InventoryProblem]) -> Inventory:
    """Top-level values → Inventory; every problem appended, located by line."""
    for key, (line, _value) in top.items():
        if key not in ("version", "name", *_SECTIONS):
            problems.append(InventoryProblem(f"unknown top-level key {key!r} (known: version, name, sites, devices, links)", None, line))
    version_line, version = top.get("version", (1, None))
    if version is None:
        problems.append(InventoryProblem(f"missing 'version: {FORMAT_VERSION}'", None, 1))
    elif not (isinstance(version, Typed) and version.tag == "int" and version.text == str(FORMAT_VERSION)):
        problems.append(InventoryProblem(f"unsupported version {version!s} (this reader knows {FORMAT_VERSION})", None, version_line))
    name = "inventory"
    if "name" in top:
        try:
            name = _as_str(top["name"][1])
        except _FieldError as exc:
            problems.append(InventoryProblem(f"name: {exc}", None, top["name"][0]))

    built: dict[str, dict[str, Any]] = {}
    lines: dict[tuple[str, str], int] = {}
    broken: set[str] = set()
    for section, (kind, spec, make) in _KINDS.items():
        built[section] = {}
        if section not in top:
            problems.append(InventoryProblem(f"missing top-level key {section!r}", None, 1))
            continue
        line, entries = top[section]
        if isinstance(entries, Typed) and entries.tag == "null":
            continue
        if not isinstance(entries, list):
            problems.append(InventoryProblem(f"{section} must be a list of entries, got {_describe(entries)}", None, line))
            continue
        for line, raw in entries:
            _build_entry(kind, spec, make, line, raw, built[section], lines, broken, problems)

    inv = Inventory(built["sites"], built["devices"], built["links"], name=name)
    for finding in findings(inv):
        if finding.missing is not None and finding.missing in broken:
            continue  # the referenced entry exists but is itself broken; reported there
        problems.append(finding.problem(lines.get((finding.kind, finding.entry))))
    return inv


def _build_entry(
    kind: str, spec: _Spec, make: Callable[[dict[str, Any]], Any], line: int, raw: Raw,
    into: dict[str, Any], lines: dict[tuple[str, str], int], broken: set[str],
    problems: list[InventoryProblem],
) -> None:
    if not isinstance(raw, dict):
        problems.append(InventoryProblem(f"a {kind} entry must be a mapping, got {_describe(raw)}", None, line))
        return
    entry_id = _id_of(raw)
    if entry_id is not None and (kind, entry_id) in lines:
        problems.append(InventoryProblem(
            f"duplicate {kind} id (first defined at line {lines[(kind, entry_id)]})", entry_id, line))
        return
    try:
        obj = make(_fields(raw, spec))
    except _EntryErrors as exc:
        problems.extend(InventoryProblem(f"{kind}: {m}", entry_id, line) for m in exc.messages)
        if entry_id is not None:
            lines[(kind, entry_id)] = line
            broken.add(entry_id)
        return
    lines[(kind, obj.id)] = line
    into[obj.id] = obj


# ---------------------------------------------------------------------------------------------
# Public API


def loads_inventory(text: str, source: str = "<string>") -> Inventory:
    """Parse and validate an inventory; raise :class:`InventoryError` listing every problem."""
    problems: list[InventoryProblem] = []
    try:
        top: dict[str, tuple[int, Any]] | None = _read_fast(text)
    except _NotFast:
        top = _read_general(text, problems)
    if top is None:
        raise InventoryError(source, problems)
    inv = _build(top, problems)
    if problems:
        problems.sort(key=lambda p: (p.line if p.line is not None else 0))
        raise InventoryError(source, problems)
    return inv


def load_inventory(path: str | os.PathLike[str]) -> Inventory:
    """Read a file. ``OSError`` if unreadable; :class:`InventoryError` if it is not a valid inventory."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InventoryError(str(path), [InventoryProblem(f"not UTF-8 text: {exc.reason}", None, line)]) from None
    return loads_inventory(text, source=str(path))


# -- writing ----------------------------------------------------------------------------------

# Outside YAML's printable set, YAML line breaks (U+2028/9), the BOM, and the quote characters.
_NEEDS_ESCAPE = re.compile("[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]|[\"\\\\]")


def _quote(text: str) -> str:
    def escape(m: re.Match[str]) -> str:
        ch = m.group(0)
        if ch in '"\\':
            return "\\" + ch
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"

    return '"' + _NEEDS_ESCAPE.sub(escape, text) + '"'


def _scalar_text(text: str) -> str:
    """Plain when YAML reads it back as the same string, double-quoted otherwise."""
    if _PLAIN_RE.fullmatch(text) and not _NEEDS_ESCAPE.search(text) and isinstance(_plain(text), str):
        return text
    return _quote(text)


def _value_text(value: Any) -> str:
    if isinstance(value, str):  # also StrEnum members
        return _scalar_text(str(value.value if isinstance(value, enum.Enum) else value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None:
        return "null"
    if isinstance(value, tuple):
        return "[" + ", ".join(_value_text(v) for v in value) + "]"
    if isinstance(value, CryptoProfile):
        return "{" + ", ".join(f"{k}: {_value_text(getattr(value, k))}" for k in _CRYPTO_FIELDS.fields) + "}"
    raise TypeError(f"cannot write {value!r}")


def _entry_line(values: dict[str, Any], spec: _Spec) -> str:
    parts = []
    for key, (_convert, default) in spec.fields.items():
        value = values[key]
        if default is not _REQUIRED and value == default and type(value) is type(default):
            continue
        parts.append(f"{key}: {_value_text(value)}")
    return "- {" + ", ".join(parts) + "}"


def _device_values(device: Device) -> dict[str, Any]:
    values = {f.name: getattr(device, f.name) for f in dataclasses.fields(device) if f.name != "lifecycle"}
    values.update({k: getattr(device.lifecycle, k) for k in _LIFECYCLE_KEYS})
    return values


def _lines(inv: Inventory) -> Iterator[str]:
    yield "# Jukimon inventory of 住基ネット — one entry per line; format: monitor/inventory/README.md"
    yield f"version: {FORMAT_VERSION}"
    yield f"name: {_scalar_text(inv.name)}"
    sections: tuple[tuple[str, dict[str, Any], Callable[[Any], dict[str, Any]], _Spec], ...] = (
        ("sites", inv.sites, lambda s: {f.name: getattr(s, f.name) for f in dataclasses.fields(s)}, _SITE_FIELDS),
        ("devices", inv.devices, _device_values, _DEVICE_FIELDS),
        ("links", inv.links, lambda l: {f.name: getattr(l, f.name) for f in dataclasses.fields(l)}, _LINK_FIELDS),
    )
    for section, entries, values_of, spec in sections:
        if not entries:
            yield f"{section}: []"
            continue
        yield f"{section}:"
        for entry in entries.values():
            yield _entry_line(values_of(entry), spec)


def dumps_inventory(inv: Inventory) -> str:
    """The inventory as text; :func:`loads_inventory` gives back an equal inventory."""
    return "\n".join(_lines(inv)) + "\n"


def save_inventory(inv: Inventory, path: str | os.PathLike[str]) -> None:
    """Write atomically (temp file + rename) so a reader never sees half a file."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    tmp.write_text(dumps_inventory(inv), encoding="utf-8")
    os.replace(tmp, target)
