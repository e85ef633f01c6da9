"""The host's Flask-SQLAlchemy object as Gatehouse uses it, and the engine settings it needs."""

import os
from pathlib import Path
from typing import Any, cast

from flask import Flask, current_app
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine

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
