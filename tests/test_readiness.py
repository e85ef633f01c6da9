"""/readyz answers 503 until the database holds the schema this code expects: Gatehouse's
tables with their columns and, where Alembic keeps a version table, Gatehouse's head revision
(read from its scripts, never written here) applied."""

import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine
from alembic.script import ScriptDirectory
from blog import db
from flask import Flask
from flask_migrate import Migrate, upgrade
from flask_sqlalchemy import SQLAlchemy

from flask_gatehouse import Gatehouse, Model, testing
from flask_gatehouse.services.database import VERSIONS_DIR
from flask_gatehouse.views.health import SCHEMA_TRUSTED_FOR
from tests.conftest import TEST_CONFIG

DEMO_MIGRATIONS = Path(__file__).parent.parent / "examples" / "blog" / "migrations"
GATEHOUSE = ScriptDirectory(str(VERSIONS_DIR.parent), version_locations=[str(VERSIONS_DIR)])
HEAD = GATEHOUSE.get_current_head()
assert HEAD is not None
#: The revision before Gatehouse's head: a database one release behind.
PREVIOUS = GATEHOUSE.get_revision(HEAD).down_revision
assert isinstance(PREVIOUS, str)


def readiness(app: Flask) -> tuple[int, dict[str, str]]:
    response = app.test_client().get("/readyz")
    return response.status_code, response.json or {}


def execute(app: Flask, *statements: str) -> None:
    with app.app_context(), db.engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))


def stamp(app: Flask, revision: str) -> None:
    """Alembic's version table holding ``revision`` alone, as ``flask db stamp`` leaves it."""
    version = sa.table("alembic_version", sa.column("version_num"))
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) PRIMARY KEY)"
            )
        )
        connection.execute(version.delete())
        connection.execute(version.insert().values(version_num=revision))


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """The SQL this thread (the test client's requests, not the mail worker) sends to
    ``app``'s database meanwhile."""
    seen: list[str] = []
    thread = threading.get_ident()

    def record(_connection: object, _cursor: object, statement: str, *_: object) -> None:
        if threading.get_ident() == thread:
            seen.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def rebuilt(app: Flask, keep_logging: None) -> Iterator[Flask]:
    """The demo on the test database, whose tables the test may drop, alter or migrate:
    rebuilt from the models afterwards (and the version table dropped)."""
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        execute(app, "DROP TABLE IF EXISTS alembic_version")
        db.create_all()


def test_ready_when_the_tables_are_as_the_models_say(app: Flask) -> None:
    """The test database comes from db.create_all(): no version table, every column."""
    assert readiness(app) == (
        200,
        {"status": "ok", "database": "ok", "schema": "ok", "ratelimit_storage": "ok"},
    )


@pytest.mark.parametrize(
    "change",
    [
        "DROP TABLE gatehouse_outbox",
        "ALTER TABLE gatehouse_outbox DROP COLUMN error",
    ],
)
def test_not_ready_while_a_table_or_column_is_missing(
    rebuilt: Flask, change: str, caplog: pytest.LogCaptureFixture
) -> None:
    execute(rebuilt, change)
    status, body = readiness(rebuilt)
    assert (status, body["database"], body["schema"]) == (503, "ok", "unavailable")
    assert "gatehouse_outbox" not in str(body)
    assert "gatehouse_outbox" in caplog.text


def test_not_ready_without_any_table(rebuilt: Flask) -> None:
    with rebuilt.app_context():
        db.drop_all()
    assert readiness(rebuilt)[0] == 503


def test_not_ready_one_migration_behind_and_ready_once_upgraded(rebuilt: Flask) -> None:
    with rebuilt.app_context():
        db.drop_all()
        upgrade(revision=PREVIOUS)
    assert readiness(rebuilt)[0] == 503
    with rebuilt.app_context():
        upgrade(revision="heads")
    assert readiness(rebuilt)[0] == 200


def test_not_ready_when_the_version_table_says_behind_though_the_columns_are_there(
    rebuilt: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """A revision may change no column (gatehouse_0005 only rebuilt SQLite tables): the
    version table is what tells it was not applied."""
    stamp(rebuilt, PREVIOUS)
    assert readiness(rebuilt)[0] == 503
    assert f"before Gatehouse's {HEAD}: run flask db upgrade" in caplog.text
    stamp(rebuilt, HEAD)
    assert readiness(rebuilt)[0] == 200
    # Migrations run before a new release's servers start: the old ones, still serving, do
    # not know the new revision and stay in the pool.
    stamp(rebuilt, "gatehouse_9999")
    assert readiness(rebuilt)[0] == 200


def test_a_ready_schema_is_trusted_a_while_then_checked_again(rebuilt: Flask) -> None:
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        assert readiness(rebuilt)[0] == 200
        execute(rebuilt, "DROP TABLE gatehouse_outbox")
        clock.shift(SCHEMA_TRUSTED_FOR - timedelta(seconds=1))
        with statements(rebuilt) as seen:
            assert readiness(rebuilt)[0] == 200
        assert "SELECT 1" in seen
        assert not [sql for sql in seen if "alembic_version" in sql or "gatehouse_outbox" in sql]
        clock.shift(timedelta(seconds=1))
        assert readiness(rebuilt)[0] == 503
        with rebuilt.app_context():
            db.create_all()
        assert readiness(rebuilt)[0] == 200  # a schema found wanting is not trusted


# A host with its own migrations: a host revision that depends on Gatehouse's stands in the
# version table in its place.


HOST_REVISION = """\
import sqlalchemy as sa
from alembic import op

revision = "host_0001"
down_revision = None
branch_labels = ("host",)
depends_on = "{depends_on}"


def upgrade():
    op.create_table("profiles", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("profiles")
"""


@pytest.fixture
def migrated_host(tmp_path: Path, keep_logging: None) -> Iterator[Callable[[str], Flask]]:
    """Build a host app with Flask-Migrate, its own revision ``host_0001`` (depending on the
    Gatehouse revision given) and an SQLite database of its own."""
    built: list[Flask] = []

    def make(depends_on: str) -> Flask:
        directory = tmp_path / "migrations"
        shutil.copytree(DEMO_MIGRATIONS, directory)
        (directory / "versions" / "host_0001_profiles.py").write_text(
            HOST_REVISION.format(depends_on=depends_on)
        )
        app = Flask(__name__)
        app.config.update(
            TEST_CONFIG,
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'h.db'}",
            GATEHOUSE_RATELIMIT_STORAGE_URI="memory://",
        )
        host_db = SQLAlchemy(model_class=Model)
        host_db.init_app(app)
        Migrate(app, host_db, directory=str(directory))
        Gatehouse(app, host_db)
        built.append(app)
        return app

    yield make
    for app in built:
        testing.stop_mail(app)
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()


def versions(app: Flask) -> set[str]:
    with app.app_context(), app.extensions["sqlalchemy"].engine.connect() as connection:
        return set(connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def test_a_host_revision_depending_on_gatehouses_head_is_ready(
    migrated_host: Callable[[str], Flask],
) -> None:
    app = migrated_host(HEAD)
    assert readiness(app)[0] == 503  # a new database: no table yet
    with app.app_context():
        upgrade(revision="heads")
    assert versions(app) == {"host_0001"}  # Gatehouse's head is below it
    assert readiness(app)[0] == 200


def test_a_host_revision_depending_on_an_older_gatehouse_revision_is_behind(
    migrated_host: Callable[[str], Flask],
) -> None:
    """The host's branch applied, with the Gatehouse revisions it needs, but not
    Gatehouse's newest."""
    app = migrated_host(PREVIOUS)
    with app.app_context():
        upgrade(revision="host@head")
    assert versions(app) == {"host_0001"}
    assert readiness(app)[0] == 503
    with app.app_context():
        upgrade(revision="heads")
    assert versions(app) == {"host_0001", HEAD}
    assert readiness(app)[0] == 200
