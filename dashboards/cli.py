"""``jukimon console user add|list|remove|unlock``: the console's accounts, in the monitor's database.

The password of ``add`` comes from ``JUKIMON_CONSOLE_PASSWORD`` or stdin (one
line) — never from the command line, where ``ps`` and shell history would keep
it; on a terminal it is asked for twice without echo.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import os
import sys
from pathlib import Path

from dashboards.auth import UserBook, UserRole

PASSWORD_ENV = "JUKIMON_CONSOLE_PASSWORD"


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("console", help="the web console: user accounts")
    commands = parser.add_subparsers(dest="console_command", metavar="SUBCOMMAND", required=True)
    user = commands.add_parser("user", help="console users (stored in the monitor's database)")
    user_commands = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)

    add = user_commands.add_parser("add", help=f"add a user; password from ${PASSWORD_ENV} or stdin")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in UserRole])
    add.add_argument("--replace", action="store_true", help="change the role and password of an existing user")
    add.set_defaults(handler=_add)
    for name, help_text, handler in (("list", "list users, their roles and locks", _list),
                                     ("remove", "remove a user", _on_named("remove")),
                                     ("unlock", "lift a lock-out after failed logins", _on_named("unlock"))):
        command = user_commands.add_parser(name, help=help_text)
        if name != "list":
            command.add_argument("name")
        command.set_defaults(handler=handler)
    for command in (add, *(user_commands.choices[n] for n in ("list", "remove", "unlock"))):
        command.add_argument("--config", type=Path, help="configuration YAML naming the store (default: embedded)")


def _password() -> str:
    if PASSWORD_ENV in os.environ:
        return os.environ[PASSWORD_ENV]
    if sys.stdin.isatty():
        first = getpass.getpass("パスワード: ")
        if getpass.getpass("パスワード (確認): ") != first:
            raise SystemExit("jukimon: パスワードが一致しません")
        return first
    return sys.stdin.readline().rstrip("\n")


async def _with_users(args: argparse.Namespace, action) -> int:
    from monitor.config import load_config
    from monitor.store import Store

    async with await Store.open(load_config(args.config).store.url) as store:
        return await action(await UserBook(store).open())


def _add(args: argparse.Namespace) -> int:
    password = _password()

    async def add(users: UserBook) -> int:
        user = await users.add(args.name, args.role, password, replace=args.replace)
        print(f"{user.name}: {user.role.value}")
        return 0
    return asyncio.run(_with_users(args, add))


def _list(args: argparse.Namespace) -> int:
    async def show(users: UserBook) -> int:
        for user, locked_until in await users.accounts():
            lock = f"  locked until {dt.datetime.fromtimestamp(locked_until).isoformat(timespec='seconds')}" \
                if locked_until > dt.datetime.now().timestamp() else ""
            print(f"{user.name}\t{user.role.value}{lock}")
        return 0
    return asyncio.run(_with_users(args, show))


def _on_named(action: str):
    """A handler calling ``UserBook.<action>(name)``, which answers false for an unknown user."""
    def handler(args: argparse.Namespace) -> int:
        async def run(users: UserBook) -> int:
            if not await getattr(users, action)(args.name):
                print(f"jukimon: {args.name}: no such user", file=sys.stderr)
                return 1
            return 0
        return asyncio.run(_with_users(args, run))
    return handler
