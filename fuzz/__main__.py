"""``python -m fuzz``: the long, on-demand fuzz run (the bounded one is tests/test_fuzz.py).

    python -m fuzz --cases 100000                       every target
    python -m fuzz --cases 5000 --target syslog_line    one (repeatable)
    python -m fuzz --json fuzz-results.json             the table as JSON too
    python -m fuzz --target pcap_replay --replay fuzz/crashes/pcap_replay-0123abcd.bin

Prints target × cases × accepted × rejected (by reason) × crashes × hangs. Failing
inputs are saved under fuzz/crashes/ with a .why file holding the replay command.
Exit status 1 if any target crashed or hung.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor, as_completed
import json
import logging
import sys
import time
import warnings
from pathlib import Path

from fuzz import all_targets
from fuzz.core import Tally, Target, decode_input, run_case, run_target


def main(argv: list[str] | None = None) -> int:
    targets = all_targets()
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="cases per target (default 100000)")
    parser.add_argument("--target", action="append", choices=sorted(targets), metavar="NAME",
                        help=f"only this target (repeatable): {', '.join(sorted(targets))}")
    parser.add_argument("--family", action="append", help="only the targets of this family (snmp, logs, traffic, "
                                                          "files, bus, console)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="first hypothesis seed (default: now)")
    parser.add_argument("--replay", type=Path, help="run one saved input (with --target) and show what happens")
    parser.add_argument("--jobs", type=int, default=1, help="targets run in this many processes at once")
    parser.add_argument("--verbose", action="store_true", help="show the parsers' own log lines")
    args = parser.parse_args(argv)
    if not args.verbose:  # rejections are logged by the services, thousands of times here
        logging.getLogger().addHandler(logging.NullHandler())
        warnings.simplefilter("ignore")  # e.g. re's FutureWarning for a fuzzed pcre: not a finding
    else:
        logging.basicConfig(level=logging.INFO)
    chosen = [targets[name] for name in args.target] if args.target else list(targets.values())
    if args.family:
        chosen = [t for t in chosen if t.family in args.family]
    if args.replay:
        if len(chosen) != 1:
            parser.error("--replay needs exactly one --target")
        return _replay(chosen[0], args.replay)
    print(_header(), flush=True)
    if args.jobs > 1:
        results = _in_parallel([t.name for t in chosen], args.cases, args.seed, args.jobs)
    else:
        results = []
        for target in chosen:
            results.append(run_target(target, args.cases, first_seed=args.seed, progress=_progress))
            print(("\r" if sys.stdout.isatty() else "") + _row(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"seed": args.seed, "cases_per_target": args.cases,
                                         "targets": [t.to_json() for t in results]}, indent=2, ensure_ascii=False),
                             encoding="utf-8")
    failed = [t for t in results if t.crashes or t.hangs]
    for tally in failed:
        for what, count in tally.crashes.items():
            print(f"{tally.target}: {count} × {what}", file=sys.stderr)
        if tally.hangs:
            print(f"{tally.target}: {tally.hangs} × HANG", file=sys.stderr)
        for path in sorted(set(tally.saved))[:5]:
            print(f"  saved {path}", file=sys.stderr)
    return 1 if failed else 0


def _in_parallel(names: list[str], cases: int, seed: int, jobs: int) -> list[Tally]:
    """One target per worker process (each builds its own rigs: inventory, cascade, console)."""
    with ProcessPoolExecutor(max_workers=jobs, initializer=_quiet) as pool:
        futures = {pool.submit(_run_named, name, cases, seed): name for name in names}
        for future in as_completed(futures):
            print(_row(future.result()), flush=True)
    return [future.result() for future in sorted(futures, key=lambda f: names.index(futures[f]))]


def _run_named(name: str, cases: int, seed: int) -> Tally:
    return run_target(all_targets()[name], cases, first_seed=seed)


def _quiet() -> None:
    logging.getLogger().addHandler(logging.NullHandler())
    warnings.simplefilter("ignore")


def _replay(target: Target, path: Path) -> int:
    logging.basicConfig(level=logging.INFO)
    outcome, failure, took = run_case(target, decode_input(path, target), target.deadline)
    print(f"{target.name} {path}: {failure or outcome} in {took * 1000:.1f} ms")
    if failure and failure.startswith("CRASH"):
        target.call(decode_input(path, target))  # again, unguarded: the traceback
    return 1 if failure else 0


_COLUMNS = "{:<24} {:>8} {:>8} {:>8} {:>7} {:>5} {:>7}  {}"


def _header() -> str:
    return _COLUMNS.format("target", "cases", "accepted", "rejected", "crashes", "hangs", "seconds",
                           "rejections by reason (top 4)")


def _row(tally: Tally) -> str:
    reasons = ", ".join(f"{reason} {count}" for reason, count in tally.rejected.most_common(4))
    return _COLUMNS.format(tally.target, tally.cases, tally.accepted, sum(tally.rejected.values()),
                           sum(tally.crashes.values()), tally.hangs, f"{tally.seconds:.0f}", reasons)


def _progress(tally: Tally) -> None:
    if sys.stdout.isatty():
        print(f"\r{tally.target}: {tally.cases} cases…", end="", flush=True)


if __name__ == "__main__":
    sys.exit(main())
