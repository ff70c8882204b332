"""Walking several table columns at once with GETBULK, as a poller does every cycle."""

from __future__ import annotations

from typing import Sequence

from collectors.snmp.client import SnmpClient, SnmpError
from monitor.snmp.ber import Oid
from monitor.snmp.message import Missing, Value

MAX_ROUNDS = 64  # 64 × max_repetitions rows is far beyond any device here; stops a looping agent


async def walk_columns(client: SnmpClient, address: str, port: int, columns: Sequence[Oid], *,
                       max_repetitions: int = 16, scalars: Sequence[Oid] = ()
                       ) -> tuple[dict[Oid, Value], dict[Oid, dict[int, Value]]]:
    """Fetch ``scalars`` (as non-repeaters, in the first request) and every row of ``columns``.

    Non-repeaters have GETNEXT semantics: pass a scalar's object OID (sysUpTime),
    and its instance (sysUpTime.0) comes back as the key.

    Returns (scalar values, {column: {row index: value}}); rows are indexed by the
    arc after the column prefix (ifIndex, hrStorageIndex, hrDeviceIndex).
    """
    scalar_values: dict[Oid, Value] = {}
    rows: dict[Oid, dict[int, Value]] = {c: {} for c in columns}
    cursors: dict[Oid, Oid | None] = {c: c for c in columns}
    for round_number in range(MAX_ROUNDS):
        active = [c for c in columns if cursors[c] is not None]
        non_repeaters = list(scalars) if round_number == 0 else []
        if not active and not non_repeaters:
            return scalar_values, rows
        varbinds = await client.get_bulk(address, port, len(non_repeaters), max(1, max_repetitions),
                                         [*non_repeaters, *(cursors[c] for c in active)])
        scalar_values.update(varbinds[: len(non_repeaters)])
        repeated = varbinds[len(non_repeaters):]
        if active and not repeated:
            raise SnmpError("GETBULK returned no rows")
        finished: set[Oid] = set()
        for i, (oid, value) in enumerate(repeated):
            column = active[i % len(active)]
            if column in finished:
                continue
            if value is Missing.END_OF_MIB_VIEW or len(oid) <= len(column) or oid[: len(column)] != column:
                finished.add(column)  # walked off the end of this column
                continue
            rows[column][oid[len(column)]] = value
            cursors[column] = oid
        for column in finished:
            cursors[column] = None
    raise SnmpError(f"table walk did not finish in {MAX_ROUNDS} rounds")
