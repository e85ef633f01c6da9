"""Setting Gatehouse up in a host app: the short path works, mistakes are explained."""

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from flask_gatehouse import Gatehouse, Model, testing
from tests.conftest import PASSWORD, TEST_CONFIG, csrf_token
from tests.smtp import Mailbox, link_path


def register(client: FlaskClient, mailbox: Mailbox, prefix: str = "") -> str:
    """Sign up as hana and follow the confirmation link; where sign-up redirected to."""
    form = {
        "csrf_token": csrf_token(client.get(f"{prefix}/register")),
        "email": "hana@example.com",
        "username": "hana",
        "password": PASSWORD,
    }
    response = client.post(f"{prefix}/register", data=form)
    assert response.status_code == 302, response.text
    (message,) = mailbox.wait_for(1)
    confirm = link_path(message, f"{prefix}/confirm/")
    confirmed = client.post(confirm, data={"csrf_token": csrf_token(client.get(confirm))})
    assert confirmed.status_code == 302
    return response.headers["Location"]


def sign_in(client: FlaskClient, url: str) -> str:
    form = {"csrf_token": csrf_token(client.get(url)), "email": "hana@example.com"}
    response = client.post(url, data={**form, "password": PASSWORD})
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def test_minimal_host_works_end_to_end(host: Any, mailbox: Mailbox) -> None:
    client = host().test_client()
    to_login = client.get("/dashboard")
    assert to_login.status_code == 302
    assert register(client, mailbox) == "/login"
    assert sign_in(client, to_login.headers["Location"]) == "/dashboard"
    assert client.get("/dashboard").text == "Dashboard of hana"


def test_minimal_host_lands_on_its_root_without_next(host: Any, mailbox: Mailbox) -> None:
    client = host().test_client()
    register(client, mailbox)
    assert sign_in(client, "/login") == "/"


def test_constructor_form_works_too(database_url: str) -> None:
    app = Flask(__name__)
    app.config.update(TEST_CONFIG, SQLALCHEMY_DATABASE_URI=database_url)
    db = SQLAlchemy(model_class=Model)
    db.init_app(app)
    Gatehouse(app, db)
    assert app.test_client().get("/login").status_code == 200
    testing.stop_mail(app)  # the request started the mail worker
    with app.app_context():
        db.engine.dispose()


def test_url_prefix_mounts_every_page_under_it(host: Any, mailbox: Mailbox) -> None:
    client = host(GATEHOUSE_URL_PREFIX="/auth").test_client()
    assert client.get("/login").status_code == 404
    assert client.get("/register").status_code == 404
    to_login = client.get("/dashboard")
    assert to_login.headers["Location"].startswith("/auth/login?next=")
    assert register(client, mailbox, "/auth") == "/auth/login"
    assert sign_in(client, to_login.headers["Location"]) == "/dashboard"
    assert client.get("/auth/account").status_code == 200
    assert client.get("/auth/logout").status_code == 200


def test_flask_session_cookie_is_hardened(host: Any) -> None:
    response = host().test_client().get("/register")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_body_size_limit_defaults_to_one_mebibyte_and_respects_the_host(host: Any) -> None:
    assert host().config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    assert host(MAX_CONTENT_LENGTH=4096).config["MAX_CONTENT_LENGTH"] == 4096


def test_plain_http_development_drops_the_host_prefix_and_secure(
    host: Any, mailbox: Mailbox
) -> None:
    client = host(GATEHOUSE_COOKIE_SECURE=False).test_client()
    register(client, mailbox)
    response = client.post(
        "/login",
        data={
            "csrf_token": csrf_token(client.get("/login")),
            "email": "hana@example.com",
            "password": PASSWORD,
        },
    )
    cookie = next(
        c for c in response.headers.getlist("Set-Cookie") if c.startswith("gatehouse_session=")
    )
    assert "Secure" not in cookie
    assert "HttpOnly" in cookie
    assert client.get("/dashboard").status_code == 200


# Setup mistakes, each refused at init_app with a message saying how to fix it.


def _app(database_url: str, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(TEST_CONFIG, SQLALCHEMY_DATABASE_URI=database_url)
    app.config.update(config)
    return app


def test_sqlalchemy_not_built_on_gatehouse_model(database_url: str) -> None:
    app = _app(database_url)
    db = SQLAlchemy()
    db.init_app(app)
    with pytest.raises(RuntimeError, match=r"SQLAlchemy\(model_class=flask_gatehouse\.Model\)"):
        Gatehouse().init_app(app, db)


def test_db_init_app_not_called_first(database_url: str) -> None:
    app = _app(database_url)
    db = SQLAlchemy(model_class=Model)
    with pytest.raises(RuntimeError, match=r"Call db\.init_app\(app\) before"):
        Gatehouse().init_app(app, db)


def test_db_of_another_app(database_url: str) -> None:
    other = _app(database_url)
    db = SQLAlchemy(model_class=Model)
    db.init_app(other)
    with pytest.raises(RuntimeError, match=r"db\.init_app\(app\)"):
        Gatehouse().init_app(_app(database_url), db)


def test_gatehouse_app_without_db(database_url: str) -> None:
    with pytest.raises(RuntimeError, match="SQLAlchemy object"):
        Gatehouse(_app(database_url))


@pytest.mark.parametrize("secret", [None, "", "fifteen-chars!!"])
def test_missing_or_short_secret_key(database_url: str, secret: str | None) -> None:
    app = _app(database_url, SECRET_KEY=secret)
    db = SQLAlchemy(model_class=Model)
    db.init_app(app)
    with pytest.raises(RuntimeError, match=r"SECRET_KEY.*secrets\.token_hex"):
        Gatehouse().init_app(app, db)


@pytest.mark.parametrize("minimum", [0, 6, 7])
def test_password_minimum_below_eight(database_url: str, minimum: int) -> None:
    app = _app(database_url, GATEHOUSE_PASSWORD_MIN_LENGTH=minimum)
    db = SQLAlchemy(model_class=Model)
    db.init_app(app)
    with pytest.raises(RuntimeError, match="GATEHOUSE_PASSWORD_MIN_LENGTH cannot be below 8"):
        Gatehouse().init_app(app, db)


def test_init_app_twice(database_url: str) -> None:
    app = _app(database_url)
    db = SQLAlchemy(model_class=Model)
    db.init_app(app)
    Gatehouse().init_app(app, db)
    with pytest.raises(RuntimeError, match="already registered"):
        Gatehouse().init_app(app, db)
    with app.app_context():
        db.engine.dispose()
