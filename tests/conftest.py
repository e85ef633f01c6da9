"""Fixtures: the demo app on a fresh database, an HTTP client, users, and a live server.

The database is a SQLite file per test unless ``--database-url`` (or the environment
variable GATEHOUSE_TEST_DATABASE_URL) names another, e.g. PostgreSQL. Rate-limit counters
live in that database, as they do by default in a host, unless ``--ratelimit-storage-uri``
(GATEHOUSE_TEST_RATELIMIT_STORAGE_URI) names e.g. Redis or memory://; they are emptied
before each test. A configured database or Redis that cannot be reached fails the run
instead of skipping it.
"""

import logging
import os
import re
import shutil
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from blog import create_app, db
from flask import Flask
from flask.testing import FlaskClient
from flask_login import current_user
from flask_sqlalchemy import SQLAlchemy
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

from flask_gatehouse import Gatehouse, Model, User, login_required, state, testing
from flask_gatehouse.services import users
from tests.smtp import Mailbox, SMTPServer

#: Cheap argon2 parameters: tests exercise the logic, bench/ measures the real cost.
TEST_CONFIG: dict[str, Any] = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-that-is-long-enough",
    "GATEHOUSE_ARGON2_TIME_COST": 1,
    "GATEHOUSE_ARGON2_MEMORY_COST": 8,
    "GATEHOUSE_ARGON2_PARALLELISM": 1,
    "GATEHOUSE_BASE_URL": "https://gatehouse.test",
    "GATEHOUSE_MAIL_SENDER": "no-reply@gatehouse.test",
    "GATEHOUSE_MAIL_RETRY_DELAY": timedelta(milliseconds=20),
    "GATEHOUSE_MAIL_POLL_INTERVAL": timedelta(milliseconds=500),
    "MAIL_BACKEND": "smtp",
    "MAIL_SERVER": "127.0.0.1",
    "MAIL_TIMEOUT": 5,
}

PASSWORD = "correct horse battery staple"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-url",
        default=os.environ.get("GATEHOUSE_TEST_DATABASE_URL"),
        help="SQLAlchemy URL of the database to test against (default: SQLite per test)",
    )
    parser.addoption(
        "--ratelimit-storage-uri",
        default=os.environ.get("GATEHOUSE_TEST_RATELIMIT_STORAGE_URI", "database"),
        help="GATEHOUSE_RATELIMIT_STORAGE_URI for rate limits and lockout (default: database)",
    )


#: The PostgreSQL database the scale-out tests share between app servers, in every run.
SCALE_OUT_DATABASE_URL = os.environ.get(
    "GATEHOUSE_SCALE_OUT_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/test"
)


def _create_missing_database(target: str) -> None:
    """Create the PostgreSQL database ``target`` names when it does not exist yet, so each
    pass of ``make test`` (which run side by side) can have one of its own."""
    url = sa.make_url(target)
    if url.get_backend_name() != "postgresql" or url.database is None:
        return
    engine = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            ).first()
            if exists is None:
                connection.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
    except sa.exc.OperationalError as error:
        pytest.exit(f"database server of {target} is unreachable: {error}", returncode=1)
    finally:
        engine.dispose()


def pytest_sessionstart(session: pytest.Session) -> None:
    url = session.config.getoption("--database-url")
    for target in {url or SCALE_OUT_DATABASE_URL, SCALE_OUT_DATABASE_URL}:
        _create_missing_database(target)
        engine = sa.create_engine(target)
        try:
            with engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    # Start from nothing: tables an earlier run of older or newer code left
                    # (another migration's, with foreign keys to ours) would break drop_all.
                    connection.exec_driver_sql("DROP SCHEMA public CASCADE")
                    connection.exec_driver_sql("CREATE SCHEMA public")
        except sa.exc.OperationalError as error:
            pytest.exit(f"database {target} is unreachable: {error}", returncode=1)
        finally:
            engine.dispose()
    storage = session.config.getoption("--ratelimit-storage-uri")
    if storage.startswith("redis"):
        try:
            redis.Redis.from_url(storage).ping()
        except redis.RedisError as error:
            pytest.exit(f"--ratelimit-storage-uri {storage} is unreachable: {error}", returncode=1)


#: Every connection pool a test connected through, until it is garbage.
_pools: "weakref.WeakSet[sa.pool.Pool]" = weakref.WeakSet()


@sa.event.listens_for(sa.engine.Engine, "engine_connect")
def _remember_pool(connection: sa.Connection) -> None:
    _pools.add(connection.engine.pool)


@pytest.fixture(autouse=True)
def _close_idle_connections() -> Iterator[None]:
    """After each test, close the idle connections of every pool it used. An app a test built
    and dropped without disposing its engine holds them until the garbage collector runs,
    which may be during any later test: psycopg then warns that an open connection was
    deleted, and that warning (an error here) would fail whichever test it lands in."""
    yield
    for pool in list(_pools):
        # Not an in-memory SQLite database's one connection (StaticPool): it is the database.
        if isinstance(pool, sa.pool.QueuePool):
            pool.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file holding Gatehouse's empty tables, built once per run: each test gets a
    copy, which is much cheaper than creating the tables again."""
    path = tmp_path_factory.mktemp("template") / "schema.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        # The app's own setting (services/database.py), kept in the file: no switch per test.
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    Model.metadata.create_all(engine)
    engine.dispose()
    return path


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """The configured database, or a fresh SQLite file with the tables already in it."""
    url: str | None = request.config.getoption("--database-url")
    if url:
        return url
    shutil.copyfile(sqlite_template, tmp_path / "test.db")
    return f"sqlite:///{tmp_path / 'test.db'}"


#: Databases whose tables were seen with every column of today's models in this run.
_schema_checked: set[str] = set()


def empty_database() -> None:
    """Give the current app's test database Gatehouse's tables, empty: DELETEs, and on
    PostgreSQL its id sequences restarted (about 3 ms, against 19 for TRUNCATE and 35 for
    creating the tables again). A database missing a table or a column (a new file, a test
    that changed the schema, or one a run of older code left behind) is rebuilt."""
    engine = db.engine
    tables = Model.metadata.sorted_tables
    try:
        with engine.begin() as connection:
            if engine.url.render_as_string() not in _schema_checked:
                for table in tables:
                    connection.execute(sa.select(*table.columns).limit(0))
                _schema_checked.add(engine.url.render_as_string())
            for table in reversed(tables):
                connection.execute(table.delete())
            if engine.dialect.name == "postgresql":
                restart = sa.text("SELECT setval(pg_get_serial_sequence(:table, 'id'), 1, false)")
                for table in tables:
                    connection.execute(restart, {"table": table.name})
    except sa.exc.DBAPIError:
        db.drop_all()
        db.create_all()


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
def ratelimit_storage_uri(request: pytest.FixtureRequest) -> str:
    uri: str = request.config.getoption("--ratelimit-storage-uri")
    return uri


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SMTPServer]:
    """One real SMTP server for the whole run."""
    server = SMTPServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mailbox(smtp_server: SMTPServer) -> Iterator[Mailbox]:
    """The SMTP server's mailbox, empty at the start of the test."""
    smtp_server.mailbox.clear()
    yield smtp_server.mailbox
    smtp_server.mailbox.clear()


#: The apps ``make_app`` built for the running test.
_apps: list[Flask] = []


def all_mail_sent(timeout: float = 10.0) -> bool:
    """Wait until no message of the running test's apps is pending (for helpers that hold
    no app; ``flask_gatehouse.testing.wait_for_mail`` waits for one).

    The apps share one outbox table, so this waits through the apps whose workers already
    run (the last app built if none does): starting another app's worker could send a
    message with that app's mail settings."""
    running = [app for app in _apps if state.get(app).outbox.running] or _apps[-1:]
    return all(testing.wait_for_mail(app, timeout) for app in running)


@pytest.fixture
def make_app(
    database_url: str, ratelimit_storage_uri: str, smtp_server: SMTPServer, mailbox: Mailbox
) -> Iterator[Any]:
    """Build demo apps on the test database, counter storage and SMTP server (database and
    counters emptied for the first app of the test); after the test, wait for pending mail,
    stop the apps' mail workers (so none reaches into the next test's database) and dispose
    them."""
    apps = _apps
    apps.clear()

    def make(**config: Any) -> Flask:
        app = create_app(
            {
                **TEST_CONFIG,
                "SQLALCHEMY_DATABASE_URI": database_url,
                "GATEHOUSE_RATELIMIT_STORAGE_URI": ratelimit_storage_uri,
                "MAIL_PORT": smtp_server.port,
                **config,
            }
        )
        if not apps:
            with app.app_context():
                # A test's own SQLite copy of the template is empty already.
                if app.config["SQLALCHEMY_DATABASE_URI"] != database_url or database_url.startswith(
                    "postgresql"
                ):
                    empty_database()
                state.get(app).limiter.reset()
        apps.append(app)
        return app

    yield make
    try:
        # Only apps whose worker runs can have mail to finish (a request started it).
        running = [app for app in apps if state.get(app).outbox.running]
        assert all(testing.wait_for_mail(app) for app in running), "mail still pending"
    finally:
        for app in apps:
            testing.stop_mail(app)
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    apps.clear()


@pytest.fixture
def app(make_app: Any) -> Flask:
    app: Flask = make_app()
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


@dataclass
class Account:
    id: int
    email: str
    username: str
    password: str


@pytest.fixture
def user_factory(app: Flask) -> Any:
    """Create accounts straight through the library (the sign-up form has its own tests),
    with a confirmed address unless ``confirmed=False``."""
    count = 0

    def make(
        email: str | None = None,
        username: str = "alice",
        password: str = PASSWORD,
        *,
        confirmed: bool = True,
    ) -> Account:
        nonlocal count
        count += 1
        email = email or f"user{count}@example.com"
        with app.app_context():
            user = users.register(
                email=email, username=username, password=password, confirmed=confirmed
            )
            assert user is not None
            db.session.commit()
            return Account(user.id, user.email, user.username, password)

    return make


@pytest.fixture
def user(user_factory: Any) -> Account:
    account: Account = user_factory(email="alice@example.com", username="alice")
    return account


def csrf_token(response: TestResponse) -> str:
    """The CSRF token of the (first) form on a page."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', response.text)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(
    client: FlaskClient,
    email: str,
    password: str = PASSWORD,
    *,
    remember: bool = False,
    next: str | None = None,
) -> TestResponse:
    """Sign in through the login form, as a browser would."""
    url = "/login" if next is None else f"/login?next={next}"
    form = {"csrf_token": csrf_token(client.get(url)), "email": email, "password": password}
    if remember:
        form["remember"] = "y"
    return client.post(url, data=form)


def logout(client: FlaskClient) -> TestResponse:
    return client.post("/logout", data={"csrf_token": csrf_token(client.get("/logout"))})


def session_cookie(client: FlaskClient) -> str | None:
    cookie = client.get_cookie("__Host-gatehouse_session")
    return cookie.value if cookie else None


@pytest.fixture
def logged_in(client: FlaskClient, user: Account) -> FlaskClient:
    assert login(client, user.email).status_code == 302
    return client


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app served over real HTTP by a threaded Werkzeug server; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_port}"
    server.shutdown()
    thread.join()


def user_row(app: Flask, email: str) -> User | None:
    with app.app_context():
        return db.session.scalar(sa.select(User).where(User.email == email))


# A host app as the README writes one, for tests of Gatehouse inside someone else's app.


def minimal_host(database_url: str, **config: Any) -> tuple[Flask, SQLAlchemy]:
    """The host app of the README: about ten lines."""
    app = Flask(__name__)
    app.config.update(TEST_CONFIG, SQLALCHEMY_DATABASE_URI=database_url, **config)
    db = SQLAlchemy(model_class=Model)
    db.init_app(app)
    Gatehouse().init_app(app, db)

    @app.get("/dashboard")
    @login_required
    def dashboard() -> str:
        return f"Dashboard of {current_user.username}"

    return app, db


@pytest.fixture
def host(database_url: str, smtp_server: SMTPServer) -> Iterator[Any]:
    """Build minimal hosts on a fresh database, mailing the test SMTP server; dispose their
    engines after."""
    built: list[tuple[Flask, SQLAlchemy]] = []

    def make(**config: Any) -> Flask:
        app, db = minimal_host(database_url, MAIL_PORT=smtp_server.port, **config)
        if not built:
            with app.app_context():
                db.drop_all()
                db.create_all()
        built.append((app, db))
        return app

    yield make
    try:
        for app, _ in built:
            assert testing.wait_for_mail(app)
    finally:
        for app, _ in built:
            testing.stop_mail(app)
    for app, host_db in built:
        with app.app_context():
            host_db.session.remove()
            host_db.engine.dispose()
