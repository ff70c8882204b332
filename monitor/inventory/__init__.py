"""Inventory of the watched network: the domain model, the file format, checks and a generator.

Other packages import from here only::

    from monitor.inventory import Inventory, Role, load_inventory, default_inventory
"""

from monitor.inventory.generate import default_inventory, generate_inventory, load_prefectures
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
from monitor.inventory.stats import inventory_stats, is_weak_crypto, render_stats
from monitor.inventory.validate import validate
from monitor.inventory.yaml_io import dumps_inventory, load_inventory, loads_inventory, save_inventory

__all__ = [
    "CryptoProfile",
    "Device",
    "Inventory",
    "InventoryError",
    "InventoryProblem",
    "Lifecycle",
    "Link",
    "PrefectureNetwork",
    "Role",
    "Site",
    "Subsystem",
    "Tier",
    "default_inventory",
    "dumps_inventory",
    "generate_inventory",
    "inventory_stats",
    "is_weak_crypto",
    "load_inventory",
    "load_prefectures",
    "loads_inventory",
    "render_stats",
    "save_inventory",
    "validate",
]
