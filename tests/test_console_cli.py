"""``jukimon console user …`` as an administrator uses it: accounts land in the store the configuration names."""

from __future__ import annotations

import argparse
import asyncio
import io
from pathlib import Path

import pytest

from dashboards import cli
from dashboards.auth import AuthError, UserBook, UserRole
from monitor.store import Store


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="jukimon")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "jukimon.yml"
    path.write_text(f"store:\n  url: sqlite+aiosqlite:///{tmp_path}/jukimon.db\n")
    return path


def accounts(config: Path) -> list[tuple[str, str]]:
    async def read() -> list[tuple[str, str]]:
        async with await Store.open(f"sqlite+aiosqlite:///{config.parent}/jukimon.db") as store:
            return [(u.name, u.role.value) for u, _ in await UserBook(store).accounts()]
    return asyncio.run(read())


def test_add_from_the_environment_and_from_stdin_then_remove(config: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(cli.PASSWORD_ENV, "noc-password-123")
    assert run(["console", "user", "add", "yamada", "--role", "noc-operator", "--config", str(config)]) == 0
    monkeypatch.delenv(cli.PASSWORD_ENV)
    monkeypatch.setattr("sys.stdin", io.StringIO("auditor-password-1\n"))
    assert run(["console", "user", "add", "suzuki", "--role", "auditor", "--config", str(config)]) == 0
    assert accounts(config) == [("suzuki", UserRole.AUDITOR.value), ("yamada", UserRole.NOC_OPERATOR.value)]
    assert run(["console", "user", "list", "--config", str(config)]) == 0
    assert "yamada\tnoc-operator" in capsys.readouterr().out
    assert run(["console", "user", "remove", "suzuki", "--config", str(config)]) == 0
    assert run(["console", "user", "remove", "suzuki", "--config", str(config)]) == 1
    assert accounts(config) == [("yamada", UserRole.NOC_OPERATOR.value)]


def test_a_second_add_of_the_same_name_is_refused(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cli.PASSWORD_ENV, "call-centre-pw-1")
    assert run(["console", "user", "add", "sato", "--role", "call-center", "--config", str(config)]) == 0
    with pytest.raises(AuthError, match="既にあります"):
        run(["console", "user", "add", "sato", "--role", "admin", "--config", str(config)])
    assert run(["console", "user", "add", "sato", "--role", "admin", "--replace", "--config", str(config)]) == 0
    assert accounts(config) == [("sato", UserRole.ADMIN.value)]
