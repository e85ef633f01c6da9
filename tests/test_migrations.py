"""The Alembic migrations build exactly the schema the models describe, up and down."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from blog import db
from flask import Flask
from flask_migrate import downgrade, upgrade

from flask_gatehouse.models import UTCDateTime
from tests.conftest import login

VERSION_TABLE = "alembic_version"
#: Gatehouse's own tables: what its migrations build (a host's tables are the host's).
GATEHOUSE_TABLES = {name for name in db.metadata.tables if name.startswith("gatehouse_")}


def _drop_version_table() -> None:
    with db.engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))


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


def _gatehouse_object(
    item: Any, name: str | None, kind: str, reflected: bool, compare_to: Any
) -> bool:
    return kind != "table" or name in GATEHOUSE_TABLES


def differences() -> list[Any]:
    """What autogenerate would put in a new migration for Gatehouse's tables."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": _gatehouse_object,
            },
        )
        return list(compare_metadata(context, db.metadata))


def test_migrations_build_the_models_schema(empty_db: Flask) -> None:
    with empty_db.app_context():
        assert tables() == set()
        upgrade(revision="heads")
        assert tables() == GATEHOUSE_TABLES
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


# gatehouse_0005: SQLite never hands out an account's or a session's id twice. The rows are
# written with plain SQL, in the columns gatehouse_0004 has, as a deployed database holds them.

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _insert(connection: sa.Connection, table: str, **values: Any) -> int:
    """Insert one row; its id."""
    columns = [
        sa.column(name, UTCDateTime()) if isinstance(value, datetime) else sa.column(name)
        for name, value in values.items()
    ]
    target = sa.table(table, sa.column("id"), *columns)
    return int(
        connection.execute(sa.insert(target).values(**values).returning(target.c.id)).scalar_one()
    )


def _add_user(connection: sa.Connection, email: str) -> int:
    return _insert(
        connection,
        "gatehouse_users",
        email=email,
        username=email.partition("@")[0],
        password_hash=None,
        created_at=NOW,
    )


def _add_session(connection: sa.Connection, user_id: int, token: bytes) -> int:
    return _insert(
        connection,
        "gatehouse_sessions",
        token_hash=token.ljust(32, b"."),
        user_id=user_id,
        created_at=NOW,
        authenticated_at=NOW,
        last_seen_at=NOW,
        expires_at=NOW + timedelta(hours=12),
        ip="192.0.2.1",
        device="Firefox on Linux",
        user_agent="Mozilla/5.0",
    )


def _add_event(
    connection: sa.Connection, kind: str, user_id: int | None, detail: str | None = None
) -> int:
    return _insert(
        connection,
        "gatehouse_events",
        created_at=NOW,
        kind=kind,
        outcome="success",
        user_id=user_id,
        ip="192.0.2.1",
        user_agent="Mozilla/5.0",
        detail=detail,
    )


def _add_account_with_history(connection: sa.Connection, email: str) -> int:
    """An account with a session, an event, a "was this you?" link and a pending sign-in."""
    user_id = _add_user(connection, email)
    session_id = _add_session(connection, user_id, email.encode())
    _add_event(connection, "login", user_id)
    _insert(
        connection,
        "gatehouse_tokens",
        token_hash=b"link-" + email.encode().ljust(27, b"."),
        purpose="secure",
        user_id=user_id,
        email=email,
        session_id=session_id,
        created_at=NOW,
        expires_at=NOW + timedelta(days=7),
    )
    _insert(
        connection,
        "gatehouse_pending_logins",
        token_hash=b"pending-" + email.encode().ljust(24, b"."),
        user_id=user_id,
        method="password",
        next_url=None,
        created_at=NOW,
        expires_at=NOW + timedelta(minutes=5),
    )
    return user_id


def _all_rows() -> dict[str, list[Any]]:
    """Every row of every table that references an account (of those the schema has yet)."""
    names = [
        "gatehouse_users",
        "gatehouse_sessions",
        "gatehouse_events",
        "gatehouse_tokens",
        "gatehouse_pending_logins",
    ]
    with db.engine.connect() as connection:
        return {
            name: connection.execute(sa.text(f"SELECT * FROM {name} ORDER BY id")).all()  # noqa: S608
            for name in names
            if name in tables()
        }


def _delete_user(connection: sa.Connection, user_id: int) -> None:
    """Delete an account as Gatehouse does: one DELETE, and an event naming the former id."""
    connection.execute(sa.text("DELETE FROM gatehouse_users WHERE id = :id"), {"id": user_id})
    _add_event(connection, "account_deleted", None, f"user {user_id}")


def _schema_of(name: str) -> str:
    """The CREATE TABLE statement SQLite keeps for a table."""
    with db.engine.connect() as connection:
        sql = connection.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
            {"name": name},
        ).scalar_one()
    return str(sql)


def test_autoincrement_upgrade_keeps_every_row(empty_db: Flask) -> None:
    with empty_db.app_context():
        upgrade(revision="gatehouse_0004")
        with db.engine.begin() as connection:
            alice = _add_account_with_history(connection, "alice@example.com")
            bob = _add_account_with_history(connection, "bob@example.com")
        before = _all_rows()

        upgrade(revision="gatehouse_0005")

        # Rebuilding gatehouse_users with foreign keys on would have deleted every session,
        # link and pending sign-in, and unlinked every event.
        assert _all_rows() == before
        upgrade(revision="heads")
        assert differences() == []
        if db.engine.dialect.name == "sqlite":
            assert "AUTOINCREMENT" in _schema_of("gatehouse_users")
            assert "AUTOINCREMENT" in _schema_of("gatehouse_sessions")

        # Foreign keys are enforced again afterwards: alice's rows go with her account.
        with db.engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM gatehouse_users WHERE id = :id"), {"id": alice})
        after = _all_rows()
        for table in ("gatehouse_sessions", "gatehouse_tokens", "gatehouse_pending_logins"):
            assert [row.user_id for row in after[table]] == [bob], table
        assert [row.user_id for row in after["gatehouse_events"]] == [None, bob]


def test_ids_deleted_before_or_after_the_upgrade_are_never_given_again(empty_db: Flask) -> None:
    with empty_db.app_context():
        upgrade(revision="gatehouse_0004")
        with db.engine.begin() as connection:
            alice = _add_account_with_history(connection, "alice@example.com")
            # The newest account and the newest session are gone before the upgrade; only
            # the audit log still names their ids.
            revoked = _add_session(connection, alice, b"revoked")
            connection.execute(
                sa.text("DELETE FROM gatehouse_sessions WHERE id = :id"), {"id": revoked}
            )
            _add_event(connection, "session_revoked", alice, f"session {revoked}")
            bob = _add_user(connection, "bob@example.com")
            _delete_user(connection, bob)

        upgrade(revision="heads")

        with db.engine.begin() as connection:
            carol = _add_user(connection, "carol@example.com")
            assert carol > bob
            assert _add_session(connection, carol, b"carol") > revoked
            _delete_user(connection, carol)
            assert _add_user(connection, "dave@example.com") > carol


def test_autoincrement_downgrade_keeps_every_row(empty_db: Flask) -> None:
    with empty_db.app_context():
        upgrade(revision="gatehouse_0004")
        with db.engine.begin() as connection:
            _add_account_with_history(connection, "alice@example.com")
            _add_account_with_history(connection, "bob@example.com")
        before = _all_rows()
        upgrade(revision="gatehouse_0005")

        downgrade(revision="gatehouse_0004")

        assert _all_rows() == before
        if db.engine.dialect.name == "sqlite":
            users = _schema_of("gatehouse_users")
            assert "AUTOINCREMENT" not in users
            assert "CONSTRAINT pk_gatehouse_users PRIMARY KEY (id)" in users
        upgrade(revision="gatehouse_0005")
        assert _all_rows() == before
        upgrade(revision="heads")
        assert differences() == []


def test_imported_accounts_migration_keeps_every_row_both_ways(empty_db: Flask) -> None:
    """gatehouse_0007 adds ``imported_at`` with a plain ADD COLUMN: a batch rebuild of the
    users table would run the ON DELETE actions of every table that references it."""
    with empty_db.app_context():
        upgrade(revision="gatehouse_0006")
        with db.engine.begin() as connection:
            _add_account_with_history(connection, "alice@example.com")
        before = _all_rows()
        upgrade(revision="gatehouse_0007")
        after = _all_rows()
        assert [row[:-1] for row in after["gatehouse_users"]] == before["gatehouse_users"]
        assert [row.imported_at for row in after["gatehouse_users"]] == [None]
        assert {k: v for k, v in after.items() if k != "gatehouse_users"} == {
            k: v for k, v in before.items() if k != "gatehouse_users"
        }
        downgrade(revision="gatehouse_0006")
        assert _all_rows() == before


def test_two_factor_migration_keeps_every_row_both_ways(empty_db: Flask) -> None:
    """gatehouse_0008 adds its tables, and a counter and a stage on pending sign-ins (0 and
    the password change for the ones in progress) without rebuilding any table; a downgrade
    drops only what it added."""
    with empty_db.app_context():
        upgrade(revision="gatehouse_0007")
        with db.engine.begin() as connection:
            _add_account_with_history(connection, "alice@example.com")
        before = _all_rows()
        upgrade(revision="gatehouse_0008")
        after = _all_rows()
        pending = after.pop("gatehouse_pending_logins")
        assert [row[:-2] for row in pending] == before["gatehouse_pending_logins"]
        # Before 0008 the password change was the only stage with a page.
        assert [(row.code_attempts, row.stage) for row in pending] == [(0, "password_change")]
        assert after == {k: v for k, v in before.items() if k != "gatehouse_pending_logins"}
        assert {"gatehouse_totp_factors", "gatehouse_recovery_codes"} <= tables()
        downgrade(revision="gatehouse_0007")
        assert _all_rows() == before
        assert not {"gatehouse_totp_factors", "gatehouse_recovery_codes"} & tables()


def test_upgrade_from_0003_keeps_every_row(empty_db: Flask) -> None:
    with empty_db.app_context():
        upgrade(revision="gatehouse_0003")
        with db.engine.begin() as connection:
            alice = _add_user(connection, "alice@example.com")
            session = _add_session(connection, alice, b"alice")
            _add_event(connection, "login", alice)
            _insert(
                connection,
                "gatehouse_tokens",
                token_hash=b"link".ljust(32, b"."),
                purpose="secure",
                user_id=alice,
                email="alice@example.com",
                session_id=session,
                created_at=NOW,
                expires_at=NOW + timedelta(days=7),
            )
        before = _all_rows()

        upgrade(revision="heads")

        after = _all_rows()
        for table in ("gatehouse_sessions", "gatehouse_events", "gatehouse_tokens"):
            assert [row.user_id for row in after[table]] == [alice], table
        assert len(after["gatehouse_users"]) == len(before["gatehouse_users"])
