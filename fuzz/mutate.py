"""Structure-aware inputs: valid messages, then mutated the way hostile or broken senders do.

Each strategy starts from something a parser accepts (a seed from the corpus or a
message built by the project's own encoder) and applies a few mutations: bit flips,
truncation, length fields that lie, huge lengths, spliced copies, NULs and Unicode
oddities — so that cases get past the first check and reach the deep code.
"""

from __future__ import annotations

import random
import string
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

CORPUS = Path(__file__).parent / "corpus"

_INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0x81, 0x82, 0x84, 0xFF, 0x30, 0x04, 0x02, 0x06, 0xA2, 0xA7)
# BER length forms: indefinite, long forms claiming far more than there is, and absurd ones
_LYING_LENGTHS = (b"\x80", b"\x81\xff", b"\x82\xff\xff", b"\x84\xff\xff\xff\xff", b"\x84\x7f\xff\xff\xff",
                  b"\x89\x01\x00\x00\x00\x00\x00\x00\x00\x00", b"\x00", b"\x7f")
_ODD_TEXT = ("\x00", "\ufeff", "\u202e", "\u200b", "\ud800", "\udfff", "\U0010ffff", "\u3000", "\r", "\n",
             "\t", "\x85", "\u2028", "\x1b[31m", "%s%n", "'", '"', "\\", "]", "[", "=", ">", "<", "{", "}",
             "A" * 300, "9" * 40, "-1", "1e999", "NaN", "住基ネット", "ｱｲｳ", "\u0301\u0301\u0301")


def corpus(target: str) -> list[bytes]:
    """The seed files of a target (fuzz/corpus/<target>/*), sorted by name."""
    folder = CORPUS / target
    return [p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()] if folder.is_dir() else []


def corpus_text(target: str) -> list[str]:
    """The seeds as text; bytes that are not UTF-8 become lone surrogates (written back as they were)."""
    return [seed.decode("utf-8", "surrogateescape") for seed in corpus(target)]


# Mutations use one drawn Random rather than a hypothesis draw per choice: hypothesis keeps
# choosing the message's structure, the mutations cost a tenth as much (100,000 cases a target).
_RANDOMS = st.randoms(use_true_random=True)


@st.composite
def mutated_bytes(draw: st.DrawFn, base: st.SearchStrategy[bytes], max_mutations: int = 4) -> bytes:
    data = bytearray(draw(base))
    rng = draw(_RANDOMS)
    for _ in range(rng.randint(0, max_mutations)):
        op = rng.randint(0, 8)
        at = rng.randint(0, len(data))
        if op == 0 and data:  # flip one bit
            data[min(at, len(data) - 1)] ^= 1 << rng.randint(0, 7)
        elif op == 1 and data:  # an interesting byte (tags, length forms)
            data[min(at, len(data) - 1)] = rng.choice(_INTERESTING_BYTES)
        elif op == 2:  # truncate
            del data[at:]
        elif op == 3:  # insert random bytes
            data[at:at] = rng.randbytes(rng.randint(1, 16))
        elif op == 4:  # delete a range
            del data[at:at + rng.randint(1, 16)]
        elif op == 5:  # a lying length field where a length was
            data[at:at + rng.randint(0, 2)] = rng.choice(_LYING_LENGTHS)
        elif op == 6 and data:  # duplicate a slice (repeated fields, nested copies)
            end = rng.randint(at, len(data))
            data[at:at] = data[at:end] * rng.randint(1, 4)
        elif op == 7:  # a run of NULs or 0xff
            data[at:at] = bytes([rng.choice((0, 0xFF))]) * rng.randint(1, 64)
        elif op == 8 and data:  # splice the tail of the input over another place
            data[at:] = data[rng.randrange(len(data)):]
    return bytes(data)


def _random_text(rng: random.Random, size: int) -> str:
    """Mostly ASCII, some Japanese and some anything (surrogates, private use, controls)."""
    pool = rng.choice((string.printable, "住基ネット本人確認情報ｱｲｳ　", None))
    if pool is None:
        return "".join(chr(rng.randrange(0x110000)) for _ in range(size))
    return "".join(rng.choice(pool) for _ in range(size))


@st.composite
def mutated_text(draw: st.DrawFn, base: st.SearchStrategy[str], max_mutations: int = 4) -> str:
    text = draw(base)
    rng = draw(_RANDOMS)
    for _ in range(rng.randint(0, max_mutations)):
        op = rng.randint(0, 6)
        at = rng.randint(0, len(text))
        if op == 0:
            text = text[:at] + rng.choice(_ODD_TEXT) + text[at:]
        elif op == 1:
            text = text[:at]
        elif op == 2:
            text = text[:at] + text[at + rng.randint(1, 12):]
        elif op == 3:
            text = text[:at] + _random_text(rng, rng.randint(1, 12)) + text[at:]
        elif op == 4 and text:  # replace one character
            text = text[:at] + _random_text(rng, 1) + text[at + 1:]
        elif op == 5:  # repeat a slice: long fields, repeated keys
            end = rng.randint(at, min(len(text), at + 40))
            text = text[:at] + text[at:end] * rng.randint(2, 50) + text[at:]
        elif op == 6:  # deep nesting of brackets of any kind
            text = text[:at] + rng.choice("[{(<\"'") * rng.randint(10, 3000) + text[at:]
    return text


def seeds_and_mutants(target: str, max_mutations: int = 4) -> st.SearchStrategy[bytes]:
    """Corpus seeds, mutated; a few purely random inputs too."""
    seeds = corpus(target)
    return st.one_of(mutated_bytes(st.sampled_from(seeds), max_mutations), st.binary(max_size=256))


def text_seeds_and_mutants(target: str, max_mutations: int = 4) -> st.SearchStrategy[str]:
    seeds = corpus_text(target)
    return st.one_of(mutated_text(st.sampled_from(seeds), max_mutations), st.text(max_size=256))


JSON_SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40))
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12)


@st.composite
def mutated_object(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]], max_mutations: int = 3) -> Any:
    """A valid JSON object with keys dropped, values of the wrong type, unknown keys added."""
    obj = dict(draw(base))
    for _ in range(draw(st.integers(0, max_mutations))):
        op = draw(st.integers(0, 3))
        keys = sorted(obj)
        if op == 0 and keys:
            obj.pop(draw(st.sampled_from(keys)))
        elif op == 1 and keys:
            obj[draw(st.sampled_from(keys))] = draw(JSON_VALUES)
        elif op == 2:
            obj[draw(st.text(max_size=12))] = draw(JSON_VALUES)
        elif op == 3 and keys:  # text fields with odd characters
            key = draw(st.sampled_from(keys))
            if isinstance(obj[key], str):
                obj[key] = draw(mutated_text(st.just(obj[key]), 2))
    return obj if draw(st.integers(0, 20)) else draw(JSON_VALUES)  # now and then not an object at all
