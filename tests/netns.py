"""Test hosts in network namespaces this test run creates itself (root only), joined by veth pairs.

Addresses come from 169.254.0.0/16 (link-local) inside the namespaces: traffic
never leaves this machine.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import uuid
from dataclasses import dataclass

_subnets = itertools.count(1)


def available() -> bool:
    return os.geteuid() == 0 and subprocess.run(["ip", "netns", "list"], capture_output=True).returncode == 0


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass
class NamespaceHost:
    name: str
    host_if: str
    address: str  # inside the namespace
    local_address: str  # our end of the veth pair

    @classmethod
    def create(cls) -> "NamespaceHost":
        tag = uuid.uuid4().hex[:6]
        name, host_if, peer_if = f"jk-{tag}", f"jk{tag}a", f"jk{tag}b"
        subnet = next(_subnets) % 250
        local, remote = f"169.254.{subnet}.1", f"169.254.{subnet}.2"
        _ip("netns", "add", name)
        try:
            _ip("link", "add", host_if, "type", "veth", "peer", "name", peer_if)
            _ip("link", "set", peer_if, "netns", name)
            _ip("addr", "add", f"{local}/30", "dev", host_if)
            _ip("link", "set", host_if, "up")
            _ip("-n", name, "addr", "add", f"{remote}/30", "dev", peer_if)
            _ip("-n", name, "link", "set", peer_if, "up")
            _ip("-n", name, "link", "set", "lo", "up")
        except subprocess.CalledProcessError:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            raise
        return cls(name, host_if, remote, local)

    def link(self, up: bool) -> None:
        _ip("link", "set", self.host_if, "up" if up else "down")

    def destroy(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
