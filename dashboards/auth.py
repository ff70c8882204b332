"""Who may use the console and what they may do: users, roles, password hashes, sessions, login throttling.

Users live in the monitor's database (``console_users``), so the CLI
(``jukimon console user add``) and a running console see the same accounts.
Passwords are hashed with scrypt (``hashlib.scrypt``, a memory-hard standard KDF)
under a random salt; the parameters are stored with each hash so they can be
raised later without invalidating old ones.

A session is Starlette's signed cookie (HttpOnly, SameSite=Lax): it carries the
user name, role, language and CSRF token — nothing secret. A role change or a
removed account takes effect at the next login; sessions expire after a shift
(``SESSION_MAX_AGE``).

Logins are throttled twice: per client address (a sliding minute, against
guessing across accounts) and per account (``LOCK_AFTER`` failures in a row lock
it for ``LOCK_SECONDS``, persisted so a restart does not reset it).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Awaitable, Callable

from sqlalchemy import Column, Double, Integer, MetaData, String, Table, delete, select, update

from monitor.logs import fields
from monitor.store import Store

log = logging.getLogger("dashboards.auth")

SESSION_MAX_AGE = 12 * 3600  # one NOC shift
LOCK_AFTER = 5  # failed logins in a row
LOCK_SECONDS = 15 * 60
ADDRESS_ATTEMPTS_PER_MINUTE = 20
MIN_PASSWORD_LENGTH = 10

# scrypt cost: n=2**15, r=8 is ~32 MiB and ~0.1 s — slow for a guesser, fine for a login.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2 ** 15, 8, 1


class UserRole(StrEnum):
    NOC_OPERATOR = "noc-operator"
    CALL_CENTER = "call-center"
    DRILL_CONTROLLER = "drill-controller"
    AUDITOR = "auditor"
    ADMIN = "admin"  # may do everything


class AuthError(ValueError):
    """A user cannot be created or changed as asked; the message says why (Japanese)."""


metadata = MetaData()

users_table = Table(
    "console_users", metadata,
    Column("name", String(100), primary_key=True),
    Column("role", String(32), nullable=False),
    Column("password", String(300), nullable=False),  # scrypt$n$r$p$salt$hash (base64)
    Column("created", Double, nullable=False),
    Column("failures", Integer, nullable=False, default=0),  # failed logins in a row
    Column("locked_until", Double, nullable=False, default=0.0),
)


# --- passwords -------------------------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return "$".join(("scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest)))


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(digest)
    return hmac.compare_digest(_scrypt(password, base64.b64decode(salt), int(n), int(r), int(p)), expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=128 * n * r * p + 2 ** 20, dklen=32)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# A hash to check unknown names against, so that "no such user" takes as long as "wrong password".
_DUMMY_HASH = hash_password(secrets.token_hex(16))


# --- users -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: UserRole

    def may(self, roles: tuple[UserRole, ...]) -> bool:
        """No roles named: any signed-in user. The admin may do everything."""
        return not roles or self.role is UserRole.ADMIN or self.role in roles


class LoginResult(StrEnum):
    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"
    LOCKED = "locked"
    THROTTLED = "throttled"


class UserBook:
    """The console's accounts in the store's ``console_users`` table."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._attempts: dict[str, deque[float]] = {}  # client address → recent attempt times

    async def open(self) -> UserBook:
        await self.store.create_tables(metadata)
        return self

    async def add(self, name: str, role: UserRole | str, password: str, *, replace: bool = False) -> User:
        name = name.strip()
        if not name or len(name) > 100 or any(c.isspace() for c in name):
            raise AuthError(f"{name!r}: ユーザー名は空白を含まない 1〜100 文字にしてください")
        try:
            role = UserRole(role)
        except ValueError:
            raise AuthError(f"{role}: ロールは {', '.join(r.value for r in UserRole)} のいずれかです") from None
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AuthError(f"パスワードは {MIN_PASSWORD_LENGTH} 文字以上にしてください")
        if not replace and await self._row(name) is not None:
            raise AuthError(f"{name}: このユーザーは既にあります (変更するには --replace)")
        hashed = await asyncio.to_thread(hash_password, password)
        row = {"name": name, "role": role.value, "password": hashed, "created": self.clock(), "failures": 0,
               "locked_until": 0.0}
        async with self.store.engine.begin() as conn:
            await conn.execute(self.store.upsert(users_table), [row])
        log.info("console user saved", extra=fields(user=name, role=role.value))
        return User(name, role)

    async def remove(self, name: str) -> bool:
        async with self.store.engine.begin() as conn:
            result = await conn.execute(delete(users_table).where(users_table.c.name == name))
        return result.rowcount > 0

    async def unlock(self, name: str) -> bool:
        return await self._set_lock(name, 0, 0.0)

    async def accounts(self) -> list[tuple[User, float]]:
        """Every user with the time their lock ends (0: not locked), by name."""
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(users_table).order_by(users_table.c.name))).all()
        return [(User(r.name, UserRole(r.role)), r.locked_until) for r in rows]

    async def login(self, name: str, password: str, address: str) -> tuple[LoginResult, User | None]:
        """Check a login; count failures, lock the account after ``LOCK_AFTER`` in a row."""
        now = self.clock()
        if not self._allow_attempt(address, now):
            return LoginResult.THROTTLED, None
        row = await self._row(name)
        if row is not None and row.locked_until > now:
            return LoginResult.LOCKED, None
        ok = await asyncio.to_thread(verify_password, password, row.password if row is not None else _DUMMY_HASH)
        if row is None:
            return LoginResult.BAD_CREDENTIALS, None
        if ok:
            if row.failures:
                await self._set_lock(name, 0, 0.0)
            return LoginResult.OK, User(row.name, UserRole(row.role))
        failures = row.failures + 1
        locked = failures >= LOCK_AFTER
        await self._set_lock(name, 0 if locked else failures, now + LOCK_SECONDS if locked else 0.0)
        if locked:
            log.warning("console account locked", extra=fields(user=name, failures=failures, address=address))
            return LoginResult.LOCKED, None
        return LoginResult.BAD_CREDENTIALS, None

    def _allow_attempt(self, address: str, now: float) -> bool:
        recent = self._attempts.setdefault(address, deque())
        while recent and recent[0] <= now - 60:
            recent.popleft()
        if len(recent) >= ADDRESS_ATTEMPTS_PER_MINUTE:
            return False
        recent.append(now)
        return True

    async def _row(self, name: str) -> Any:
        async with self.store.engine.connect() as conn:
            return (await conn.execute(select(users_table).where(users_table.c.name == name))).first()

    async def _set_lock(self, name: str, failures: int, locked_until: float) -> bool:
        async with self.store.engine.begin() as conn:
            result = await conn.execute(update(users_table).where(users_table.c.name == name)
                                        .values(failures=failures, locked_until=locked_until))
        return result.rowcount > 0


# --- sessions and guards -----------------------------------------------------------------------------------------


def current_user(request: Any) -> User | None:
    """The signed-in user of this request's session, or None."""
    session = request.session
    name, role = session.get("user"), session.get("role")
    if not name or role not in UserRole._value2member_map_:
        return None
    if session.get("since", 0) + SESSION_MAX_AGE < time.time():
        return None
    return User(name, UserRole(role))


def sign_in(request: Any, user: User) -> None:
    """A fresh session for the user (keeping only the language), with a fresh CSRF token."""
    lang = request.session.get("lang")
    request.session.clear()
    request.session.update({"user": user.name, "role": user.role.value, "since": time.time(),
                            "csrf": secrets.token_urlsafe(32)})
    if lang:
        request.session["lang"] = lang


def sign_out(request: Any) -> None:
    lang = request.session.get("lang")
    request.session.clear()
    if lang:
        request.session["lang"] = lang


class LoginRequired(Exception):
    """No signed-in user: the app answers with the login page (``create_app`` installs the handler)."""


class Forbidden(Exception):
    """A signed-in user without a role the endpoint needs: the app answers 403 and audits the refusal."""

    def __init__(self, user: User, roles: tuple[UserRole, ...]) -> None:
        super().__init__(f"{user.name} ({user.role}) needs one of {', '.join(roles)}")
        self.user, self.roles = user, roles


Endpoint = Callable[[Any], Awaitable[Any]]


def require(*roles: UserRole) -> Callable[[Endpoint], Endpoint]:
    """Guard an endpoint: ``LoginRequired`` without a session, ``Forbidden`` without one of ``roles``.

    ``@require()`` admits any signed-in user. The user is put on ``request.state.user``.
    """
    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Any) -> Any:
            request.state.user = check(request, roles)
            return await endpoint(request)

        guarded.roles = roles  # type: ignore[attr-defined]
        return guarded
    return wrap


def check(request: Any, roles: tuple[UserRole, ...] = ()) -> User:
    """The signed-in user if they hold one of ``roles`` (for a check inside an endpoint); raises otherwise."""
    user = current_user(request)
    if user is None:
        raise LoginRequired()
    if not user.may(roles):
        raise Forbidden(user, roles)
    return user
