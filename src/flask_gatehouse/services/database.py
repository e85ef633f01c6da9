"""The host's Flask-SQLAlchemy object as Gatehouse uses it, the engine settings it needs, and
whether the database holds the schema this code expects."""

import os
from functools import cache
from pathlib import Path
from typing import Any, cast

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError, RevisionError
from alembic.util import CommandError
from flask import Flask, current_app
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Connection, Table, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from ..models import Model

#: Gatehouse's own Alembic revisions (branch label ``gatehouse``), added to the host's.
VERSIONS_DIR = Path(__file__).parent.parent / "migrations" / "versions"


def db() -> SQLAlchemy:
    """The Flask-SQLAlchemy extension of the current app."""
    return cast(SQLAlchemy, current_app.extensions["sqlalchemy"])


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers work beside a writer; with WAL, synchronous=NORMAL syncs at
    checkpoints instead of on every commit (still safe against corruption; a power cut can
    lose only the last commits); the busy timeout waits out a short write lock instead of
    failing; SQLite ignores foreign keys unless asked."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def configure_engines(app: Flask, sqlalchemy: SQLAlchemy) -> list[Engine]:
    """Apply the SQLite pragmas to every SQLite engine of ``app``; return the engines."""
    with app.app_context():
        engines: list[Engine] = list(sqlalchemy.engines.values())
    for engine in engines:
        if engine.dialect.name == "sqlite" and not event.contains(
            engine, "connect", _sqlite_pragmas
        ):
            event.listen(engine, "connect", _sqlite_pragmas)
    return engines


def add_version_location(config: Any) -> Any:
    """A Flask-Migrate ``configure`` callback: run Gatehouse's revisions beside the host's."""
    script_location = config.get_main_option("script_location")
    config.set_main_option("path_separator", "os")
    config.set_main_option(
        "version_locations",
        f"{Path(script_location) / 'versions'}{os.pathsep}{VERSIONS_DIR}",
    )
    return config


def schema_problem() -> str | None:
    """What keeps the current app's database from serving Gatehouse, for the log; None when
    the schema is as this code expects.

    Where Alembic's version table has rows (``flask db upgrade`` ran), Gatehouse's head
    revision, read from its scripts, must be among them or below one of them (a host
    revision may depend on it, and then stands in its place). A revision the scripts do not
    know was written by a newer release (migrations run before new servers start) and counts
    as ahead. Whatever made the tables, ``db.create_all()`` included, every Gatehouse table
    must answer a query of the columns this code uses.
    """
    with db().engine.connect() as connection:
        return _revision_problem(connection) or _table_problem(connection)


def _revision_problem(connection: Connection) -> str | None:
    migrate = current_app.extensions.get("migrate")
    options = migrate.configure_args if migrate is not None else {}
    context = MigrationContext.configure(
        connection,
        opts={
            key: options[key] for key in ("version_table", "version_table_schema") if key in options
        },
    )
    current = context.get_current_heads()
    if not current:
        return None
    head = _gatehouse_scripts().get_current_head()
    scripts = _scripts()
    known = tuple(revision for revision in current if _knows(scripts, revision))
    try:
        below = {
            script.revision
            for script in scripts.revision_map.iterate_revisions(
                known, "base", inclusive=True, assert_relative_length=False
            )
        }
    except RevisionError as error:
        return f"Alembic's version table ({', '.join(current)}) is inconsistent: {error}"
    if head in below:
        return None
    if len(known) < len(current) and not set(current) & set(_gatehouse_revisions()):
        # Revisions these scripts do not know, and no older one of Gatehouse's: a newer
        # release migrated the database before its servers started. The tables decide.
        return None
    return (
        f"the database is at revision {', '.join(current)}, before Gatehouse's {head}: "
        "run flask db upgrade"
    )


def _table_problem(connection: Connection) -> str | None:
    for table in _gatehouse_tables():
        try:
            connection.execute(select(*table.columns).limit(0))
        except DBAPIError as error:
            return f"table {table.name} is missing or lacks a column: {error.orig}"
    return None


def _scripts() -> ScriptDirectory:
    """The revisions the version table may name: the host's and Gatehouse's under
    Flask-Migrate, else Gatehouse's alone."""
    migrate = current_app.extensions.get("migrate")
    if migrate is not None:
        try:
            return ScriptDirectory.from_config(migrate.migrate.get_config())
        except CommandError:  # no migrations folder: the tables came from create_all
            pass
    return _gatehouse_scripts()


@cache
def _gatehouse_scripts() -> ScriptDirectory:
    """Gatehouse's own revisions, read once: they ship with the code."""
    return ScriptDirectory(str(VERSIONS_DIR.parent), version_locations=[str(VERSIONS_DIR)])


@cache
def _gatehouse_revisions() -> tuple[str, ...]:
    return tuple(script.revision for script in _gatehouse_scripts().walk_revisions())


def _knows(scripts: ScriptDirectory, revision: str) -> bool:
    """Whether ``scripts`` hold exactly ``revision`` (Alembic also resolves a prefix)."""
    try:
        found = scripts.revision_map.get_revision(revision)
    except ResolutionError:
        return False
    return found is not None and found.revision == revision


def _gatehouse_tables() -> list[Table]:
    """Gatehouse's tables (a host's models share the metadata; theirs are the host's)."""
    return [table for table in Model.metadata.sorted_tables if table.name.startswith("gatehouse_")]
