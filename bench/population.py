"""Databases with many users, for the benchmark suite (``suite.py``).

Each app gets its own database per population: Gatehouse's schema comes from the demo's
Alembic migrations (``flask --app blog db upgrade``), the tutorial's from its own
``db.create_all()`` at import. The users are then inserted with plain SQL, all sharing ONE
password hash computed once (argon2id with Gatehouse's default parameters for Gatehouse,
``werkzeug.security.generate_password_hash`` for the tutorial): hashing a million passwords
would take hours and changes nothing in what is measured. User ``n`` is
``user{n}@example.com``, username ``user{n}``, password ``blogs.PASSWORD``.

SQLite: ``executemany`` in one transaction. PostgreSQL: ``INSERT ... SELECT`` from
``generate_series`` on the server, then ``VACUUM ANALYZE``, as a database that has been in
use would have statistics. PostgreSQL databases are created here (``bench_*`` names only;
nothing else on the server is touched) and dropped by `drop_postgres`.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import blogs
import psycopg
from argon2 import PasswordHasher
from werkzeug.security import generate_password_hash

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=10"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1/{name}"
#: Only databases with this prefix are ever created or dropped.
PG_PREFIX = "bench_"
TUTORIAL_DIR = blogs.APPS_DIR / "tutorial"
#: Gatehouse's defaults (src/flask_gatehouse/config.py): the hash then needs no upgrade.
ARGON2_PARAMS = {"time_cost": 2, "memory_cost": 19 * 1024, "parallelism": 1}
CREATED_AT = "2026-11-01 00:00:00.000000"
BATCH = 50_000


def email(number: int) -> str:
    return f"user{number}@example.com"


def username(number: int) -> str:
    return f"user{number}"


def argon2_hash() -> str:
    return PasswordHasher(**ARGON2_PARAMS).hash(blogs.PASSWORD)


def werkzeug_hash() -> str:
    return generate_password_hash(blogs.PASSWORD)


def short(users: int) -> str:
    """1000 -> "1k", 1000000 -> "1M"."""
    if users % 1_000_000 == 0:
        return f"{users // 1_000_000}M"
    if users % 1_000 == 0:
        return f"{users // 1_000}k"
    return str(users)


@dataclasses.dataclass
class Population:
    """One app's database for one scenario (database kind x number of users)."""

    app: str  # "gatehouse" or "tutorial"
    database: str  # "sqlite" or "postgresql"
    users: int
    tmp: Path

    @property
    def pg_name(self) -> str | None:
        if self.database != "postgresql":
            return None
        return f"{PG_PREFIX}{self.app}_{short(self.users).lower()}"

    @property
    def sqlite_path(self) -> Path:
        return self.tmp / f"{self.app}-{short(self.users)}.db"

    @property
    def uri(self) -> str:
        if self.database == "postgresql":
            return PG_URL.format(name=self.pg_name)
        return f"sqlite:///{self.sqlite_path}"


def _run(command: list[str], cwd: Path, env: dict[str, str], what: str) -> None:
    result = subprocess.run(
        command,
        cwd=cwd,
        env=blogs.clean_env(env),
        capture_output=True,
        text=True,
        timeout=blogs.SETUP_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise blogs.BenchError(
            f"{what} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )


def gatehouse_env(population: Population, secret_key: str) -> dict[str, str]:
    return {
        "FLASK_SECRET_KEY": secret_key,
        "FLASK_SQLALCHEMY_DATABASE_URI": population.uri,
        "FLASK_GATEHOUSE_BASE_URL": "http://localhost:5000",
        # Mail is rendered in the background as usual, then dropped (no SMTP server here).
        "FLASK_MAIL_BACKEND": "dummy",
    }


def create_schema(population: Population, secret_key: str) -> None:
    if population.app == "gatehouse":
        _run(
            [sys.executable, "-m", "flask", "--app", "blog", "db", "upgrade"],
            blogs.BLOG_DIR,
            gatehouse_env(population, secret_key),
            f"flask db upgrade ({population.uri})",
        )
    else:
        # The tutorial creates its tables when app.py is imported, as its server does.
        _run(
            [sys.executable, "-c", "import app"],
            TUTORIAL_DIR,
            {"TUTORIAL_DATABASE_URI": population.uri},
            f"tutorial create_all ({population.uri})",
        )


def _rows(population: Population, password_hash: str) -> Iterator[tuple[object, ...]]:
    for number in range(1, population.users + 1):
        if population.app == "gatehouse":
            yield (
                number,
                email(number),
                username(number),
                password_hash,
                1,
                CREATED_AT,
                CREATED_AT,
                CREATED_AT,
            )
        else:
            yield (number, email(number), username(number), password_hash)


_COLUMNS = {
    "gatehouse": (
        "gatehouse_users",
        # Confirmed, and signed in before: every login of the suite comes from a fresh
        # browser, so each one is a "new device" and mails a notice (the costly case).
        "id, email, username, password_hash, active, created_at, email_confirmed_at, last_login_at",
    ),
    "tutorial": ("users", "id, email, username, password_hash"),
}


def _fill_sqlite(population: Population, password_hash: str) -> None:
    table, columns = _COLUMNS[population.app]
    marks = ", ".join("?" * len(columns.split(",")))
    connection = sqlite3.connect(population.sqlite_path)
    try:
        # Only this loading connection skips fsync; the servers use SQLite's defaults.
        connection.execute("PRAGMA synchronous = OFF")
        with connection:
            connection.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({marks})",  # noqa: S608 (constants)
                _rows(population, password_hash),
            )
        connection.execute("ANALYZE")
    finally:
        connection.close()


def _fill_postgres(population: Population, password_hash: str) -> None:
    table, columns = _COLUMNS[population.app]
    extra = (
        ", true, %(created)s::timestamp, %(created)s::timestamp, %(created)s::timestamp"
        if population.app == "gatehouse"
        else ""
    )
    insert = (
        f"INSERT INTO {table} ({columns}) "  # noqa: S608 (constants)
        f"SELECT n, 'user' || n || '@example.com', 'user' || n, %(hash)s{extra} "
        "FROM generate_series(1, %(users)s) AS n"
    )
    with psycopg.connect(admin_dsn(population.pg_name or ""), autocommit=True) as connection:
        connection.execute(
            insert, {"hash": password_hash, "created": CREATED_AT, "users": population.users}
        )
        # Keep the id sequence past the inserted ids (a sign-up would otherwise collide).
        connection.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)",
            (population.users,),
        )
        connection.execute(f"VACUUM ANALYZE {table}")


def admin_dsn(database: str = "postgres") -> str:
    return PG_ADMIN.replace("dbname=postgres", f"dbname={database}")


def _check_pg_name(name: str) -> None:
    if not name.startswith(PG_PREFIX) or not name.replace("_", "").isalnum():
        raise blogs.BenchError(f"refusing to create or drop PostgreSQL database {name!r}")


def create_postgres(name: str) -> None:
    _check_pg_name(name)
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")


def drop_postgres(name: str) -> None:
    _check_pg_name(name)
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def count_users(population: Population) -> int:
    table = _COLUMNS[population.app][0]
    query = f"SELECT count(*), max(id) FROM {table}"  # noqa: S608 (constant)
    if population.database == "postgresql":
        with psycopg.connect(admin_dsn(population.pg_name or "")) as connection:
            row = connection.execute(query).fetchone()
    else:
        connection = sqlite3.connect(population.sqlite_path)
        try:
            row = connection.execute(query).fetchone()
        finally:
            connection.close()
    if row is None or row[0] != row[1]:
        raise blogs.BenchError(f"{population.uri}: unexpected users {row}")
    return int(row[0])


def build(population: Population, password_hash: str, secret_key: str) -> float:
    """Create the database, its schema and its users; returns the seconds it took."""
    start = time.monotonic()
    if population.pg_name is not None:
        create_postgres(population.pg_name)
    create_schema(population, secret_key)
    if population.database == "postgresql":
        _fill_postgres(population, password_hash)
    else:
        _fill_sqlite(population, password_hash)
    if count_users(population) != population.users:
        raise blogs.BenchError(f"{population.uri}: wrong number of users after loading")
    return time.monotonic() - start
