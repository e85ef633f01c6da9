"""SQLite: account and session ids are never handed out twice (AUTOINCREMENT).

Without AUTOINCREMENT, SQLite gives a new row the highest id in its table plus one, so the id
of the newest account, once deleted, goes to the next sign-up: its rate-limit counters
(``user:<id>``), audit details ("user 7") and the host's rows would then name someone else.
Session ids are the same kind of handle (revoke URLs, "session 7" in the log, the session a
"was this you?" link names). PostgreSQL's sequences never reuse a value: nothing to do there.

SQLite cannot add AUTOINCREMENT to a table, so both tables are rebuilt (Alembic batch mode),
following SQLite's own recipe: foreign keys off, one transaction, a foreign key check,
foreign keys back on. With foreign keys on, dropping the old ``gatehouse_users`` would run
its ON DELETE actions: every session, link and pending sign-in deleted, every event unlinked.
``PRAGMA foreign_keys`` does nothing inside a transaction, so the rebuild runs in an
autocommit block (which commits the revisions before it) with its own BEGIN and COMMIT.
Running it twice does no harm.

Revision ID: gatehouse_0005
Revises: gatehouse_0004
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.engine import Connection

revision = "gatehouse_0005"
down_revision = "gatehouse_0004"
branch_labels = None
depends_on = None

#: The rebuilt tables, and queries for ids their deleted rows had that are still named
#: elsewhere: the sequence starts above those too, so they are not handed out again.
FORMER_IDS = {
    "gatehouse_users": [
        "SELECT max(CAST(substr(detail, 6) AS INTEGER)) FROM gatehouse_events"
        " WHERE kind = 'account_deleted' AND detail LIKE 'user %'",
    ],
    "gatehouse_sessions": [
        "SELECT max(session_id) FROM gatehouse_tokens",
        "SELECT max(CAST(substr(detail, 9) AS INTEGER)) FROM gatehouse_events"
        " WHERE kind = 'session_revoked' AND detail LIKE 'session %'",
    ],
}


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)


def _rebuild(*, autoincrement: bool) -> None:
    context = op.get_context()
    if context.dialect.name != "sqlite":
        return
    if context.as_sql:
        raise RuntimeError(
            "gatehouse_0005 rebuilds SQLite tables in steps that read the data; "
            "run it against the database (without --sql)."
        )
    with context.autocommit_block():
        connection = op.get_bind()
        foreign_keys = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                for table in FORMER_IDS:
                    with op.batch_alter_table(
                        table,
                        recreate="always",
                        table_kwargs={"sqlite_autoincrement": autoincrement},
                        # SQLite writes an AUTOINCREMENT key without its name: put it back.
                        naming_convention={"pk": "pk_%(table_name)s"},
                    ):
                        pass
                    if autoincrement:
                        _seed_sequence(connection, table)
                _check_foreign_keys(connection)
            except BaseException:
                connection.exec_driver_sql("ROLLBACK")
                raise
            connection.exec_driver_sql("COMMIT")
        finally:
            connection.exec_driver_sql(f"PRAGMA foreign_keys={int(foreign_keys or 0)}")


def _seed_sequence(connection: Connection, table: str) -> None:
    """Start ``table``'s sequence at its highest id, current or still named elsewhere."""
    queries = [f"SELECT max(id) FROM {table}", *FORMER_IDS[table]]  # noqa: S608 (constants)
    highest = max((connection.exec_driver_sql(query).scalar() or 0) for query in queries)
    connection.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
    if highest > 0:
        connection.exec_driver_sql(
            "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, highest)
        )


def _check_foreign_keys(connection: Connection) -> None:
    problems = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if problems:
        raise RuntimeError(
            f"Rows whose foreign keys point nowhere: {problems} (table, rowid, parent, key). "
            "Nothing was changed; repair or delete those rows and upgrade again."
        )
