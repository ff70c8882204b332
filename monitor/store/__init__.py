"""The monitor's persistence: states, conditions, history, maintenance windows and checkpoints across restarts.

SQLite by default (``sqlite+aiosqlite:///state/jukimon.db``), PostgreSQL by
configuration (``postgresql+asyncpg://…``), one code path (SQLAlchemy 2 async)::

    async with await Store.open(url) as store:
        await store.save_states(records)
        conditions = await store.load_conditions()

``PrivatePostgres`` starts a scratch PostgreSQL server for tests and demos.
"""

from monitor.store.postgres import PrivatePostgres, postgres_bindir
from monitor.store.schema import SCHEMA_VERSION
from monitor.store.store import DEFAULT_URL, SchemaTooNewError, Store, StoreError, StoreUnavailable

__all__ = ["DEFAULT_URL", "SCHEMA_VERSION", "PrivatePostgres", "SchemaTooNewError", "Store", "StoreError",
           "StoreUnavailable", "postgres_bindir"]
