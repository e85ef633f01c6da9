"""The signed-in request's one query, on a lean path: a DBAPI connection of the thread's own
and the statement compiled once per engine, with no ORM Session in between.

Every signed-in page view runs this query and nothing else needs the database on most
pages. Through the ORM Session it cost more than the query itself (the Session's
transaction, a pool checkout and a reset at teardown, the Core execution machinery, about
200 us a request here); the database's own statement caches (sqlite3's, psycopg's prepared
statements after a few runs) need only the same SQL text on the same connection.

Exactness: the connection reads in autocommit (each query sees what is committed, as a new
Session's transaction would), and the writes the look-up may lead to (the "last seen"
touch, deleting an expired session) still go through the Session. The lean path is skipped,
and the ordinary one taken, wherever it could differ: an in-memory SQLite database (one
connection, shared), a pool that is not a queue of connections, and an engine with
execution listeners (a host's tracing or query logging would not see the query otherwise).
A database error on the lean path drops the connection and retries on the ordinary path,
which reports it as usual (503).

The connections are outside the engine's pool (as many per worker as look-ups ever ran at
once in it, at most its threads: count them in the database's connection limit), closed when
the engine is disposed or the app dropped, and never used in a forked child (which disposes
its engines: the parent's connections are forgotten there, not closed).
"""

import os
import weakref
from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy import Select, event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

from .. import state

#: Listeners that watch statements: with any of these, the ordinary path runs.
_EXECUTION_EVENTS = (
    "before_execute",
    "after_execute",
    "before_cursor_execute",
    "after_cursor_execute",
)


class Lane:
    """One engine's lean path: its compiled SQL, its result processors, and its idle
    connections. A query takes one (or opens one) and gives it back: as many exist as
    look-ups ever ran at once in this process, whatever the server's threads do (a thread
    per request included)."""

    def __init__(self, engine: Engine, statement: Select[Any]) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self.positions = compiled.positiontup
        self.keys = [str(column.key) for column in statement.selected_columns]
        # What the ORM would make of each raw value (SQLite's dates are text, say).
        self.processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        ]
        self.errors: type[Exception] = dialect.loaded_dbapi.Error
        self.engine = engine
        #: Idle connections; list.pop and list.append are atomic, so no lock is needed.
        self._idle: list[Any] = []
        # Closed when the lane goes, however it goes (an app dropped without disposing).
        self._finalizer = weakref.finalize(self, _close_each, self._idle, os.getpid())

    def _take(self) -> Any:
        try:
            return self._idle.pop()
        except IndexError:
            pooled = self.engine.raw_connection()
            pooled.detach()  # ours alone, outside the pool
            dbapi: Any = pooled.dbapi_connection
            if self.engine.dialect.name == "postgresql":
                dbapi.autocommit = True  # no transaction left open between requests
            return dbapi

    def close_all(self) -> None:
        """Close every idle connection (the engine was disposed)."""
        self._finalizer()

    def first(self, params: dict[str, Any]) -> Mapping[str, Any] | None:
        """Raises the driver's error after closing the connection it broke on."""
        values: Any = params
        if self.positions is not None:
            values = tuple(params[name] for name in self.positions)
        connection = self._take()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self.sql, values)
                row = cursor.fetchone()
            finally:
                cursor.close()
        except self.errors:
            _close_quietly(connection)
            raise
        self._idle.append(connection)
        if row is None:
            return None
        return {
            key: (process(value) if process is not None else value)
            for key, process, value in zip(self.keys, self.processors, row, strict=True)
        }


def _close_each(connections: list[Any], pid: int) -> None:
    """Close the connections this process opened (a forked child only forgets them)."""
    while connections:
        connection = connections.pop()
        if os.getpid() == pid:
            _close_quietly(connection)


def _close_quietly(dbapi: Any) -> None:
    try:
        dbapi.close()
    except Exception:  # noqa: BLE001 - a connection already broken closes as it can
        return


def lane_for(engine: Engine, statement: Select[Any]) -> Lane | None:
    """The lean path of ``statement`` on ``engine`` (None where it does not apply), built
    once and kept in the app's state until the engine is disposed (a forked child disposes
    its engines, ``state.State.after_fork``, so it never sees its parent's lane)."""
    lanes = state.get().session_lanes
    if engine in lanes:
        return lanes[engine]
    usable = (
        isinstance(engine.pool, QueuePool)
        and engine.url.database not in (None, "", ":memory:")
        and engine.dialect.name in ("sqlite", "postgresql")
    )
    lane = Lane(engine, statement) if usable else None
    if lanes.setdefault(engine, lane) is lane:  # not built meanwhile by another thread

        def forget(disposed: Engine) -> None:
            gone = lanes.pop(engine, None)
            if gone is not None:
                gone.close_all()

        event.listen(engine, "engine_disposed", forget)
    return lanes[engine]


def first_row(
    engine: Engine, statement: Select[Any], params: dict[str, Any]
) -> Mapping[str, Any] | Literal[False] | None:
    """The first row of ``statement`` (bind parameters only) on the lean path, by column
    key: None for no row, or False where the lean path does not apply (the caller takes the
    ordinary one)."""
    if any(getattr(engine.dispatch, name) for name in _EXECUTION_EVENTS):
        return False
    lane = lane_for(engine, statement)
    if lane is None:
        return False
    try:
        return lane.first(params)
    except lane.errors:
        return False
