"""Personal access tokens: made at /account/tokens, sent as ``Authorization: Bearer gth_...``,
taken only by routes that opt in (``login_required(scopes=...)``), never by the pages that
change how the account signs in."""

import re
import zlib
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask, jsonify
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_gatehouse import login_required
from flask_gatehouse.models import AccessToken, User
from flask_gatehouse.services import access_tokens
from flask_gatehouse.services import tokens as links
from flask_gatehouse.services.database import db
from tests.conftest import Account, all_mail_sent, csrf_token, login, logout
from tests.smtp import Mailbox

TOKEN = re.compile(r"gth_[0-9A-Za-z]{36}")
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def create_token(
    client: FlaskClient,
    name: str = "backup script",
    scopes: tuple[str, ...] = ("read",),
    **extra: str,
) -> str:
    page = client.get("/account/tokens")
    assert page.status_code == 200
    form = {"csrf_token": csrf_token(page), "name": name, "scopes": list(scopes), **extra}
    answer = client.post("/account/tokens", data=form)
    assert answer.status_code == 200, answer.text
    (token,) = TOKEN.findall(answer.text)
    return token


def bearer(client: FlaskClient, token: str, path: str = "/api/v1/account") -> Any:
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


def stored(app: Flask) -> list[AccessToken]:
    with app.app_context():
        return list(db().session.scalars(select(AccessToken)))


def test_the_format_is_checkable_offline() -> None:
    token = access_tokens.generate()
    assert access_tokens.PATTERN.match(token)
    random_part, checksum = token[4:34], token[34:]
    number = zlib.crc32(random_part.encode())
    digits = ""
    while number:
        number, digit = divmod(number, 62)
        digits = ALPHABET[digit] + digits
    assert checksum == digits.rjust(6, "0")
    assert access_tokens.well_formed(token)
    typo = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    assert not access_tokens.well_formed(typo)
    assert not access_tokens.well_formed(token + "x")


def test_a_token_reads_the_account_and_is_stored_only_as_a_hash(
    app: Flask, logged_in: FlaskClient, user: Account, mailbox: Mailbox
) -> None:
    token = create_token(logged_in)
    (record,) = stored(app)
    assert record.prefix == token[:8]
    assert token.encode() not in record.token_hash
    assert token not in repr(vars(record))
    # Shown once: the list shows the prefix only.
    listed = logged_in.get("/account/tokens").text
    assert token not in listed
    assert f"{token[:8]}…" in listed
    assert all_mail_sent()
    assert [m["Subject"] for m in mailbox.to(user.email)][-1].endswith(
        "A personal access token was created"
    )

    stranger = app.test_client()
    answer = bearer(stranger, token)
    assert answer.status_code == 200
    assert answer.json["email"] == user.email
    assert answer.json["username"] == user.username
    assert stranger.get_cookie("__Host-gatehouse_session") is None  # no session was made


def test_the_api_answers_a_browser_session_and_refuses_strangers(
    app: Flask, logged_in: FlaskClient, user: Account
) -> None:
    assert logged_in.get("/api/v1/account").json["username"] == user.username
    nobody = app.test_client().get("/api/v1/account")
    assert nobody.status_code == 401
    assert nobody.json["error"]["code"] == 401


@pytest.mark.parametrize(
    "value",
    [
        "gth_" + "a" * 36,  # the pattern, a wrong checksum
        "ghp_" + "a" * 36,
        "",
        "x" * 5000,
    ],
)
def test_a_wrong_token_is_a_401(app: Flask, value: str) -> None:
    answer = bearer(app.test_client(), value)
    assert answer.status_code == 401
    assert answer.json["error"]["code"] == 401


def test_a_token_needs_the_scope(app: Flask, logged_in: FlaskClient) -> None:
    token = create_token(logged_in, scopes=("write",))
    answer = bearer(app.test_client(), token)
    assert answer.status_code == 403
    assert "read" in answer.json["error"]["message"]


def test_a_token_expires(app: Flask, logged_in: FlaskClient) -> None:
    token = create_token(logged_in, lifetime="7")
    with time_machine.travel(timedelta(days=7, seconds=-60)):
        assert bearer(app.test_client(), token).status_code == 200
    with time_machine.travel(timedelta(days=7, seconds=1)):
        assert bearer(app.test_client(), token).status_code == 401


def test_the_lifetime_is_one_of_the_offered_ones(logged_in: FlaskClient) -> None:
    page = logged_in.get("/account/tokens")
    assert 'value="never"' not in page.text
    form = {"csrf_token": csrf_token(page), "name": "x", "scopes": ["read"], "lifetime": "never"}
    assert logged_in.post("/account/tokens", data=form).status_code == 400
    form["lifetime"] = "999"
    assert logged_in.post("/account/tokens", data=form).status_code == 400


def test_a_host_may_allow_tokens_that_never_expire(make_app: Any, user_factory: Any) -> None:
    app = make_app(GATEHOUSE_ACCESS_TOKENS_MAY_NOT_EXPIRE=True)
    user = user_factory(email="kim@example.com", username="kim")
    client = app.test_client()
    login(client, user.email)
    token = create_token(client, lifetime="never")
    with time_machine.travel(timedelta(days=3650)):
        assert bearer(app.test_client(), token).status_code == 200


def test_a_revoked_token_stops_working(
    app: Flask, logged_in: FlaskClient, user_factory: Any
) -> None:
    token = create_token(logged_in)
    (record,) = stored(app)
    bob = user_factory(email="bob@example.com", username="bob")
    other = app.test_client()
    login(other, bob.email)
    token_form = {"csrf_token": csrf_token(other.get("/account/tokens"))}
    other.post(f"/account/tokens/{record.id}/revoke", data=token_form)
    assert bearer(app.test_client(), token).status_code == 200  # not Bob's to revoke

    form = {"csrf_token": csrf_token(logged_in.get("/account/tokens"))}
    logged_in.post(f"/account/tokens/{record.id}/revoke", data=form)
    assert bearer(app.test_client(), token).status_code == 401


def test_last_use_is_written_at_most_once_a_minute(app: Flask, logged_in: FlaskClient) -> None:
    token = create_token(logged_in)
    with time_machine.travel(timedelta(minutes=5), tick=False):
        bearer(app.test_client(), token)
        (first,) = stored(app)
    with time_machine.travel(timedelta(minutes=5, seconds=30), tick=False):
        bearer(app.test_client(), token)
        (same,) = stored(app)
    with time_machine.travel(timedelta(minutes=6, seconds=1), tick=False):
        bearer(app.test_client(), token)
        (later,) = stored(app)
    assert first.last_used_at is not None
    assert same.last_used_at == first.last_used_at
    assert later.last_used_at is not None
    assert later.last_used_at > first.last_used_at
    assert later.last_used_ip == "127.0.0.1"


@pytest.mark.parametrize(
    "path",
    [
        "/account",
        "/account/password",
        "/account/email",
        "/account/two-factor",
        "/account/passkeys",
        "/account/tokens",
        "/account/delete",
        "/account/data",
    ],
)
def test_a_token_never_opens_the_account_pages(
    app: Flask, logged_in: FlaskClient, path: str
) -> None:
    token = create_token(logged_in, scopes=("read", "write"))
    answer = bearer(app.test_client(), token, path)
    assert answer.status_code == 401
    assert answer.json["error"]["code"] == 401


def test_a_token_cannot_post_to_the_account_pages(app: Flask, logged_in: FlaskClient) -> None:
    token = create_token(logged_in, scopes=("read", "write"))
    client = app.test_client()
    answer = client.post(
        "/account/tokens",
        data={"name": "sneaky", "scopes": ["read"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code in (400, 401)
    assert len(stored(app)) == 1


def test_a_password_change_keeps_tokens_and_deletion_removes_them(
    app: Flask, logged_in: FlaskClient, user: Account
) -> None:
    token = create_token(logged_in)
    page = logged_in.get("/account/password")
    form = {
        "csrf_token": csrf_token(page),
        "current_password": user.password,
        "password": "another long passphrase 99",
    }
    assert logged_in.post("/account/password", data=form).status_code == 302
    assert bearer(app.test_client(), token).status_code == 200
    assert "does not revoke your tokens" in logged_in.get("/account/tokens").text

    page = logged_in.get("/account/delete")
    delete = {"csrf_token": csrf_token(page), "password": "another long passphrase 99"}
    assert logged_in.post("/account/delete", data=delete).status_code == 302
    assert stored(app) == []
    assert bearer(app.test_client(), token).status_code == 401


def test_host_routes_opt_in_with_scopes(make_app: Any, user_factory: Any) -> None:
    app = make_app()

    @login_required(scopes=["write"])
    def host_write() -> Any:
        return jsonify(ok=True)

    @login_required
    def host_page() -> Any:
        return "a page"

    app.add_url_rule("/host/write", view_func=host_write)
    app.add_url_rule("/host/page", view_func=host_page)
    user = user_factory(email="lee@example.com", username="lee")
    client = app.test_client()
    login(client, user.email)
    reader = create_token(client, scopes=("read",))
    writer = create_token(client, scopes=("write",))
    logout(client)
    assert bearer(client, writer, "/host/write").json == {"ok": True}
    assert bearer(client, reader, "/host/write").status_code == 403
    assert bearer(client, writer, "/host/page").status_code == 401


# --- CORS --------------------------------------------------------------------------------------


def test_no_cross_origin_access_by_default(app: Flask, logged_in: FlaskClient) -> None:
    answer = logged_in.get("/api/v1/account", headers={"Origin": "https://app.example.com"})
    assert answer.status_code == 200
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_cross_origin_access_only_for_the_named_origins(make_app: Any, user_factory: Any) -> None:
    app = make_app(GATEHOUSE_CORS_ORIGINS=["https://app.example.com"])
    user = user_factory(email="max@example.com", username="max")
    client = app.test_client()
    login(client, user.email)
    token = create_token(client)
    allowed = client.get(
        "/api/v1/account",
        headers={"Origin": "https://app.example.com", "Authorization": f"Bearer {token}"},
    )
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in allowed.headers["Vary"]

    other = client.get("/api/v1/account", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers

    preflight = client.options(
        "/api/v1/account",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()

    page = client.get("/account", headers={"Origin": "https://app.example.com"})
    assert "Access-Control-Allow-Origin" not in page.headers  # the pages never


@pytest.mark.parametrize("origins", [["*"], ["app.example.com"]])
def test_cors_takes_exact_origins_only(make_app: Any, origins: list[str]) -> None:
    with pytest.raises(RuntimeError, match="exact origins"):
        make_app(GATEHOUSE_CORS_ORIGINS=origins)


def test_this_wasnt_me_revokes_the_tokens(app: Flask, logged_in: FlaskClient) -> None:
    """Whoever was in may have made a token: the "this wasn't me" link stops it too."""
    token = create_token(logged_in)
    with app.app_context():
        (record,) = db().session.scalars(select(User))
        path = f"/secure/{links.issue('secure', record)}"
        db().session.commit()
    inbox = app.test_client()
    page = inbox.get(path)
    assert inbox.post(path, data={"csrf_token": csrf_token(page)}).status_code == 302
    assert bearer(app.test_client(), token).status_code == 401
