"""The Alembic migrations build exactly the schema the models describe, up and down."""

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from blog import db
from flask import Flask
from flask_migrate import downgrade, upgrade

from tests.conftest import login

VERSION_TABLE = "alembic_version"


def _drop_version_table() -> None:
    with db.engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """env.py runs logging.config.fileConfig, which disables every existing logger; undo
    that so later tests still see the app's log records."""
    manager = logging.root.manager
    disabled = {
        name: logger.disabled
        for name, logger in manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    root_handlers, root_level = logging.root.handlers[:], logging.root.level
    yield
    for name, logger in manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            logger.disabled = disabled.get(name, False)
    logging.root.handlers[:] = root_handlers
    logging.root.setLevel(root_level)


@pytest.fixture
def empty_db(app: Flask, keep_logging: None) -> Iterator[Flask]:
    """The test database with no tables at all; the model tables are back afterwards."""
    with app.app_context():
        db.drop_all()
        _drop_version_table()
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        _drop_version_table()
        db.create_all()


def tables() -> set[str]:
    return set(sa.inspect(db.engine).get_table_names()) - {VERSION_TABLE}


def differences() -> list[Any]:
    """What autogenerate would put in a new migration (the version table aside)."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_name": lambda name, kind, parent: name != VERSION_TABLE,
            },
        )
        return list(compare_metadata(context, db.metadata))


def test_migrations_build_the_models_schema(empty_db: Flask) -> None:
    with empty_db.app_context():
        assert tables() == set()
        upgrade(revision="heads")
        assert tables() == set(db.metadata.tables)
        assert differences() == []


def test_downgrade_to_base_and_upgrade_again(empty_db: Flask) -> None:
    with empty_db.app_context():
        upgrade(revision="heads")
        downgrade(revision="base")
        assert tables() == set()
        upgrade(revision="heads")
        assert differences() == []


def test_migrated_database_serves_sign_in(empty_db: Flask, user_factory: Any) -> None:
    with empty_db.app_context():
        upgrade(revision="heads")
    account = user_factory()
    client = empty_db.test_client()
    assert login(client, account.email).status_code == 302
    assert client.get("/blogs").status_code == 200


def test_a_schema_drift_would_be_detected(empty_db: Flask) -> None:
    """Guards the comparison itself: an index the migrations lack is reported."""
    with empty_db.app_context():
        upgrade(revision="heads")
        with db.engine.begin() as connection:
            connection.execute(sa.text("DROP INDEX ix_gatehouse_sessions_user_id"))
        assert [diff[0] for diff in differences()] == ["add_index"]
