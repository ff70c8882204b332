"""What the collectors need from an SNMP client, whatever library sits underneath.

Two operations (GET, GETBULK) addressed by numeric OID tuples, values decoded to
plain Python (int, bytes, OID tuple) or one of three markers; failures raised as
one of three exceptions the scheduler can tell apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from monitor.snmp.ber import Oid
from monitor.snmp.message import Value

VarBind = tuple[Oid, Value]


class SnmpError(Exception):
    """The agent answered with an error, or the answer could not be used."""


class SnmpTimeout(SnmpError):
    """No answer within the timeout (after retries): the device or the path to it is silent."""


class SnmpAuthError(SnmpError):
    """The agent refused our credentials (wrong community is a timeout; v3 reports say so)."""


@dataclass(frozen=True)
class Credentials:
    version: str  # "2c" | "3"
    community: str = "public"
    user: str = ""
    auth_protocol: str = "SHA"
    auth_key: str = ""
    priv_protocol: str = "AES"
    priv_key: str = ""

    def __repr__(self) -> str:  # never print secrets
        return f"Credentials(version={self.version!r}, user={self.user!r})"


class SnmpClient(Protocol):
    async def get(self, address: str, port: int, oids: Sequence[Oid]) -> list[VarBind]: ...

    async def get_bulk(self, address: str, port: int, non_repeaters: int, max_repetitions: int,
                       oids: Sequence[Oid]) -> list[VarBind]: ...

    def round_trip_ms(self, address: str, port: int) -> float | None:
        """The last answered exchange's round trip with this agent, if the client measures it (else None)."""
        ...

    async def close(self) -> None: ...
