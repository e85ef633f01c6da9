"""Rate-limit counters in the app's own database: the default counter storage.

Counters kept in a process's memory (``memory://``) are that process's alone: under a server
running four workers, the lockout and the route limits let four times the documented attempts
through. This ``limits`` storage keeps them in two tables of the app's database
(``gatehouse_rate_limit_counters``, ``gatehouse_rate_limit_entries``), which every process
on the database shares, so one machine needs no further service. Redis stays the faster
choice for a busy site.

Each operation is its own short transaction on its own connection, not the request's: an
attempt stays counted when the request's work rolls back. One exception, on SQLite: a
request that has already written holds the database's only write lock until it commits, so
a transaction of the counters' own would wait for it in vain (the busy timeout, then an
error); an operation made then joins the request's transaction. Reading a moving window and
adding to it happen under the key's lock (SQLite's write lock; a PostgreSQL advisory lock on
the key); an increment is one atomic upsert. Expired rows go as their key is next used, and
all of them at most once a minute, so the tables hold little more than the live counts.
"""

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from flask import Flask, has_app_context
from limits.errors import ConfigurationError
from limits.storage import MovingWindowSupport, Storage
from sqlalchemy import (
    Double,
    Integer,
    String,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import scoped_session
from sqlalchemy.sql.elements import BindParameter

from ..models import RateLimitCounter, RateLimitEntry
from .database import db

#: GATEHOUSE_RATELIMIT_STORAGE_URI's value for this storage.
DATABASE = "database"
#: The scheme ``limits`` knows this storage by (Flask-Limiter builds it from a URI).
SCHEME = "gatehouse+database"
#: How often each process deletes every expired row, in seconds.
PRUNE_EVERY = 60.0

_COUNTERS = cast(Table, RateLimitCounter.__table__)
_ENTRIES = cast(Table, RateLimitEntry.__table__)
_KEY_LENGTH = 255
_DIALECTS = ("postgresql", "sqlite")

# Statements built once: building one costs several times more than running it.
_KEY = bindparam("key_", type_=String())
_NOW: BindParameter[float] = bindparam("now", type_=Double())
_UNTIL: BindParameter[float] = bindparam("until", type_=Double())
_COUNTER_LIVE = _COUNTERS.c.expires_at > _NOW
_ENTRY_LIVE = _ENTRIES.c.expires_at >= _NOW
_GET = select(_COUNTERS.c.value).where(_COUNTERS.c.key == _KEY, _COUNTER_LIVE)
_GET_EXPIRY = select(_COUNTERS.c.expires_at).where(_COUNTERS.c.key == _KEY, _COUNTER_LIVE)
_WINDOW = select(func.min(_ENTRIES.c.expires_at), func.count()).where(
    _ENTRIES.c.key == _KEY, _ENTRY_LIVE
)
_DROP_EXPIRED_ENTRIES = delete(_ENTRIES).where(_ENTRIES.c.key == _KEY, ~_ENTRY_LIVE)
_COUNT_ENTRIES = select(func.count()).where(_ENTRIES.c.key == _KEY)
_ADD_ENTRY = insert(_ENTRIES).values(key=_KEY, expires_at=_UNTIL)
_CLEAR = [
    delete(_COUNTERS).where(_COUNTERS.c.key == _KEY),
    delete(_ENTRIES).where(_ENTRIES.c.key == _KEY),
]
_PRUNE = [delete(_COUNTERS).where(~_COUNTER_LIVE), delete(_ENTRIES).where(~_ENTRY_LIVE)]

# PostgreSQL: fewer round trips (each costs about 0.1 ms), and commits that do not wait for the
# disk (a few ms when it is busy): counts are short-lived, and a crash of the database server
# can lose the last moment's counts, never corrupt them.
_NO_FLUSH_WAIT = text("SELECT set_config('synchronous_commit', 'off', true)")
#: The same, and a lock on one key until the transaction ends (writers of other keys go on).
_LOCK_KEY = text(
    "SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(hashtext(:key_))"
)
#: A moving-window hit in one statement, run under the key's lock: the key's expired entries
#: go, and ``amount`` entries come when the live ones leave room for them.
_ACQUIRE_POSTGRESQL = text(
    """
    WITH expired AS (
        DELETE FROM gatehouse_rate_limit_entries WHERE key = :key_ AND expires_at < :now
    )
    INSERT INTO gatehouse_rate_limit_entries (key, expires_at)
    SELECT :key_, :until FROM generate_series(1, :amount)
    WHERE (
        SELECT count(*) FROM gatehouse_rate_limit_entries
        WHERE key = :key_ AND expires_at >= :now
    ) + :amount <= :limit
    """
)


def limiter_storage(app: Flask) -> tuple[str, dict[str, Any]]:
    """Flask-Limiter's ``storage_uri`` and ``storage_options`` for the app's
    GATEHOUSE_RATELIMIT_STORAGE_URI: "database" is this storage on the app's engine (or
    process memory for an in-memory SQLite database, which one process holds anyway); any
    other value is a ``limits`` storage URI ("memory://", "redis://...")."""
    uri: str = app.config["GATEHOUSE_RATELIMIT_STORAGE_URI"]
    # Storage failures surface as limits' StorageError, which errors.py turns into a 503.
    options: dict[str, Any] = {"wrap_exceptions": True}
    if uri != DATABASE:
        return uri, options
    with app.app_context():
        sqlalchemy = db()
        engine = sqlalchemy.engine
    if engine.dialect.name == "sqlite" and _in_memory(engine):
        return "memory://", options
    return f"{SCHEME}://", {**options, "engine": engine, "session": sqlalchemy.session}


def _in_memory(engine: Engine) -> bool:
    database = engine.url.database
    return not database or database == ":memory:" or "mode=memory" in database


class DatabaseStorage(Storage, MovingWindowSupport):
    """A ``limits`` storage on SQLAlchemy Core: counters (``incr``, the fixed-window API) and
    moving windows (``acquire_entry``, Flask-Limiter's "moving-window" strategy), on
    PostgreSQL or SQLite. Build it with ``storage_options={"engine": engine}``, and on SQLite
    the app's ``"session"`` (Flask-SQLAlchemy's ``db.session``), whose write lock it must not
    wait for."""

    STORAGE_SCHEME = [SCHEME]  # noqa: RUF012 (limits' own declaration)

    def __init__(
        self,
        uri: str | None = None,
        wrap_exceptions: bool = False,
        engine: Engine | None = None,
        session: "scoped_session[Any] | None" = None,
        **options: float | str | bool,
    ) -> None:
        if engine is None:
            raise ConfigurationError(f'{SCHEME} needs storage_options={{"engine": engine}}.')
        dialect = engine.dialect.name
        if dialect not in _DIALECTS:
            raise ConfigurationError(
                f"Rate-limit counters can live in PostgreSQL or SQLite, not {dialect}: "
                "set GATEHOUSE_RATELIMIT_STORAGE_URI to a Redis URL."
            )
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.engine = engine
        self._session = session
        self._postgresql = dialect == "postgresql"
        # One statement needs no transaction around it: on PostgreSQL, autocommit saves the
        # BEGIN and COMMIT round trips (SQLite's driver opens none for a read anyway).
        self._single: Engine = engine
        if self._postgresql:
            self._single = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._incr = _increment(dialect)
        self._prune_at = 0.0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` (negative to take away) to the counter and return the new value.

        As limits' Redis and memory storages do, a counter that is new, expired, or at zero
        before the change (re)starts its ``expiry`` seconds; one already counting keeps its
        expiry."""
        now = time.time()
        values = {"key_": _stored(key), "amount": amount, "now": now, "until": now + expiry}
        # One statement, atomic: on PostgreSQL it runs as its own transaction (autocommit).
        with self._writing(single=True) as connection:
            value = int(connection.execute(self._incr, values).scalar_one())
        self._prune(now)
        return value

    def get(self, key: str) -> int:
        with self._reading() as connection:
            value = connection.execute(_GET, {"key_": _stored(key), "now": time.time()}).scalar()
        return int(value or 0)

    def get_expiry(self, key: str) -> float:
        now = time.time()
        with self._reading() as connection:
            expiry = connection.execute(_GET_EXPIRY, {"key_": _stored(key), "now": now}).scalar()
        return now if expiry is None else float(expiry)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Add ``amount`` entries to the key's window of ``expiry`` seconds unless that would
        hold more than ``limit``; whether they were added."""
        if amount > limit:
            return False
        now, stored = time.time(), _stored(key)
        values = {"key_": stored, "now": now, "until": now + expiry}
        with self._writing(stored) as connection:
            if self._postgresql:
                added = connection.execute(
                    _ACQUIRE_POSTGRESQL, {**values, "amount": amount, "limit": limit}
                )
                acquired = added.rowcount > 0
            else:
                # This DELETE, the transaction's first statement and a write, takes SQLite's
                # write lock before anything is read (waiting out the busy timeout), so the
                # count cannot go stale before the INSERT.
                connection.execute(_DROP_EXPIRED_ENTRIES, values)
                held = connection.execute(_COUNT_ENTRIES, values).scalar_one()
                acquired = bool(held + amount <= limit)
                if acquired:
                    connection.execute(_ADD_ENTRY, [values] * amount)
        self._prune(now)
        return acquired

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """When the key's oldest live entry was added, and how many are live."""
        now = time.time()
        with self._reading() as connection:
            oldest_expiry, count = connection.execute(
                _WINDOW, {"key_": _stored(key), "now": now}
            ).one()
        return (now, 0) if not count else (float(oldest_expiry) - expiry, int(count))

    def clear(self, key: str) -> None:
        with self._writing() as connection:
            for statement in _CLEAR:
                connection.execute(statement, {"key_": _stored(key)})

    def reset(self) -> int | None:
        """Delete every counter and entry; how many rows there were."""
        with self._writing() as connection:
            return sum(
                connection.execute(delete(table)).rowcount for table in (_COUNTERS, _ENTRIES)
            )

    def check(self) -> bool:
        """Whether the database answers and holds the counters' tables."""
        try:
            with self._single.connect() as connection:
                connection.execute(_GET, {"key_": "", "now": 0.0})
                connection.execute(_COUNT_ENTRIES, {"key_": ""})
        except SQLAlchemyError:
            return False
        return True

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection of its own, or the request's when that holds SQLite's write lock (so
        that what this request counted is seen)."""
        joined = self._writing_request()
        if joined is not None:
            yield joined
            return
        with self._single.connect() as connection:
            yield connection

    @contextmanager
    def _writing(self, key: str | None = None, *, single: bool = False) -> Iterator[Connection]:
        """A writing transaction of its own, holding ``key``'s lock on PostgreSQL when given
        (on SQLite, the first write takes the database's); or the request's transaction when
        that holds SQLite's write lock already. ``single``: one statement, which PostgreSQL
        runs as a transaction of its own."""
        joined = self._writing_request()
        if joined is not None:
            yield joined
            return
        if single and self._postgresql:
            with self._single.connect() as connection:
                yield connection
            return
        with self.engine.begin() as connection:
            if self._postgresql:
                if key is None:
                    connection.execute(_NO_FLUSH_WAIT)
                else:
                    connection.execute(_LOCK_KEY, {"key_": key})
            yield connection

    def _writing_request(self) -> Connection | None:
        """On SQLite, the current request's connection when its transaction has written (the
        driver begins one only to write), None otherwise."""
        if self._postgresql or self._session is None or not has_app_context():
            return None
        if not self._session.registry.has() or not self._session().in_transaction():
            return None
        connection = self._session().connection(bind_arguments={"bind": self.engine})
        dbapi_connection = cast(sqlite3.Connection, connection.connection.dbapi_connection)
        return connection if dbapi_connection.in_transaction else None

    def _prune(self, now: float) -> None:
        """Delete every expired row, at most once per PRUNE_EVERY in this process: keys that
        are never used again (a client IP seen once) would otherwise stay forever."""
        if now < self._prune_at:
            return
        self._prune_at = now + PRUNE_EVERY
        with self._writing() as connection:
            for statement in _PRUNE:
                connection.execute(statement, {"now": now})


def _increment(dialect: str) -> Any:
    """The dialect's one-statement increment (INSERT ... ON CONFLICT DO UPDATE ... RETURNING):
    atomic however many processes increment the key at once."""
    live = _COUNTER_LIVE
    amount = bindparam("amount", type_=Integer())
    statement: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        # The row comes through a subquery that turns off the wait for the disk: the
        # statement is its own transaction, and its commit reads the setting.
        no_flush_wait = select(func.set_config("synchronous_commit", "off", True)).subquery()
        row = select(_KEY, amount, _UNTIL).select_from(no_flush_wait)
        statement = postgresql.insert(_COUNTERS).from_select(["key", "value", "expires_at"], row)
    else:
        statement = sqlite.insert(_COUNTERS).values(key=_KEY, value=amount, expires_at=_UNTIL)
    return statement.on_conflict_do_update(
        index_elements=[_COUNTERS.c.key],
        set_={
            "value": case((live, _COUNTERS.c.value + amount), else_=amount),
            "expires_at": case(
                (live & (_COUNTERS.c.value != 0), _COUNTERS.c.expires_at), else_=_UNTIL
            ),
        },
    ).returning(_COUNTERS.c.value)


def _stored(key: str) -> str:
    """The key as stored: a key too long for the column (a host's long key prefix) is
    replaced by its SHA-256."""
    if len(key) <= _KEY_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
