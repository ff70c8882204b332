"""Rendezvous assignment: every collector computes the same shares, even, and moving as little as possible."""

from __future__ import annotations

from collectors.shard import assign, owner, share

DEVICES = [f"muni-{p:02d}-{m:03d}-{kind}" for p in range(1, 48) for m in range(1, 30) for kind in ("rt1", "fw1")]


def members(*ids: str, weight: float = 1.0) -> dict[str, float]:
    return {i: weight for i in ids}


def test_every_device_has_exactly_one_owner_and_shares_partition_the_inventory() -> None:
    live = members("a", "b", "c")
    shares = assign(DEVICES, live)
    assert sum(len(s) for s in shares.values()) == len(DEVICES)
    assert set().union(*shares.values()) == set(DEVICES)
    for member in live:
        assert share(member, DEVICES, live) == shares[member]


def test_same_answer_whatever_the_order_members_are_known_in() -> None:
    forward = {"c1": 1.0, "c2": 1.0, "c3": 1.0}
    backward = dict(reversed(list(forward.items())))
    assert all(owner(d, forward) == owner(d, backward) for d in DEVICES)


def test_shares_are_even() -> None:
    for n in (2, 3, 4, 8):
        shares = assign(DEVICES, members(*(f"collector-{i}" for i in range(n))))
        expected = len(DEVICES) / n
        for member, devices in shares.items():
            assert abs(len(devices) - expected) < 0.1 * expected, (n, member, len(devices))


def test_killing_one_moves_only_its_devices_spread_over_the_others() -> None:
    before = assign(DEVICES, members("a", "b", "c", "d"))
    after = assign(DEVICES, members("a", "b", "c"))
    for member in ("a", "b", "c"):
        assert before[member] <= after[member]  # nobody loses a device
    moved = {m: len(after[m] - before[m]) for m in ("a", "b", "c")}
    assert sum(moved.values()) == len(before["d"])
    assert min(moved.values()) > 0.2 * len(before["d"])  # spread, not dumped on one survivor


def test_adding_one_takes_about_a_fair_share_from_everybody_and_moves_nothing_else() -> None:
    before = assign(DEVICES, members("a", "b", "c"))
    after = assign(DEVICES, members("a", "b", "c", "d"))
    for member in ("a", "b", "c"):
        assert after[member] <= before[member]  # nobody gains: every move goes to the newcomer
        assert len(before[member] - after[member]) > 0.15 * len(before[member])
    assert abs(len(after["d"]) - len(DEVICES) / 4) < 0.1 * len(DEVICES) / 4


def test_weight_gives_a_proportional_share() -> None:
    shares = assign(DEVICES, {"big": 2.0, "small-1": 1.0, "small-2": 1.0})
    assert abs(len(shares["big"]) - len(DEVICES) / 2) < 0.1 * len(DEVICES) / 2


def test_nobody_alive_owns_nothing() -> None:
    assert owner("muni-01-001-rt1", {}) is None
    assert share("a", DEVICES, members("b")) == set()
