"""How Gatehouse sits in a host app: it brings its own login manager, keeps its headers and
error pages to its own pages unless asked, and tells the host what happened (signals)."""

from typing import Any

import pytest
from flask import Flask, abort
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy

from flask_gatehouse import Gatehouse, Model, signals
from tests.conftest import PASSWORD, TEST_CONFIG, csrf_token, login
from tests.smtp import Mailbox


def test_an_app_with_its_own_login_manager_is_refused(database_url: str) -> None:
    app = Flask(__name__)
    app.config.update(TEST_CONFIG, SQLALCHEMY_DATABASE_URI=database_url)
    LoginManager(app)
    db = SQLAlchemy(model_class=Model)
    db.init_app(app)
    with pytest.raises(RuntimeError, match="already has a Flask-Login LoginManager"):
        Gatehouse().init_app(app, db)
    with app.app_context():
        db.engine.dispose()


def with_missing_page(app: Flask) -> Flask:
    """A host route that answers 404 itself."""

    @app.get("/missing")
    def missing() -> str:
        abort(404)

    return app


def test_host_routes_keep_their_own_headers_and_error_pages(host: Any) -> None:
    client = with_missing_page(host()).test_client()
    page = client.get("/missing")
    assert page.status_code == 404
    assert "Content-Security-Policy" not in page.headers
    assert "There is no page at this address." not in page.text
    own = client.get("/login")
    assert "script-src 'self'" in own.headers["Content-Security-Policy"]
    assert own.headers["X-Frame-Options"] == "DENY"


def test_hardening_the_whole_app_covers_host_routes(host: Any) -> None:
    client = with_missing_page(host(GATEHOUSE_HARDEN_WHOLE_APP=True)).test_client()
    page = client.get("/missing")
    assert page.status_code == 404
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "There is no page at this address." in page.text


def test_signals_follow_each_committed_event(host: Any, mailbox: Mailbox) -> None:
    app = host()
    heard: list[tuple[str, str, str | None]] = []

    def on_event(sender: Flask, user: Any, event: Any, **extra: Any) -> None:
        heard.append((event.kind, event.outcome, user.username if user else None))

    registered: list[str] = []

    def on_registered(sender: Flask, user: Any, event: Any, **extra: Any) -> None:
        registered.append(user.email)

    client = app.test_client()
    with (
        signals.security_event.connected_to(on_event, app),
        signals.user_registered.connected_to(on_registered, app),
    ):
        form = {
            "csrf_token": csrf_token(client.get("/register")),
            "email": "hana@example.com",
            "username": "hana",
            "password": PASSWORD,
        }
        assert client.post("/register", data=form).status_code == 302
        assert login(client, "hana@example.com", "a wrong password, long enough").status_code == 400
    assert heard == [("register", "success", "hana"), ("login", "failure", None)]
    assert registered == ["hana@example.com"]


def test_a_taken_address_signals_no_registration(host: Any) -> None:
    app = host()
    registered: list[str] = []

    def on_registered(sender: Flask, user: Any, **extra: Any) -> None:
        registered.append(user.email)

    client = app.test_client()
    with signals.user_registered.connected_to(on_registered, app):
        for _ in range(2):
            form = {
                "csrf_token": csrf_token(client.get("/register")),
                "email": "hana@example.com",
                "username": "hana",
                "password": PASSWORD,
            }
            assert client.post("/register", data=form).status_code == 302
    assert registered == ["hana@example.com"]
