"""Deleting the account and downloading its data."""

import json
from typing import Any

import sqlalchemy as sa
from blog import db
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_gatehouse import User, UserSession
from flask_gatehouse.models import Event, Token
from tests.conftest import PASSWORD, all_mail_sent, csrf_token, login, session_cookie, user_row
from tests.smtp import Mailbox, link_path, text


def delete_account(client: FlaskClient, password: str = PASSWORD) -> TestResponse:
    token = csrf_token(client.get("/account/delete"))
    return client.post("/account/delete", data={"csrf_token": token, "password": password})


def rows(app: Flask, model: Any) -> list[Any]:
    with app.app_context():
        return list(db.session.scalars(sa.select(model)))


def test_delete_page_warns_first(logged_in: FlaskClient) -> None:
    page = logged_in.get("/account/delete")
    assert page.status_code == 200
    assert "cannot be undone" in page.text
    assert 'type="password"' in page.text


def test_wrong_password_deletes_nothing(
    app: Flask, logged_in: FlaskClient, user: Any, mailbox: Mailbox
) -> None:
    response = delete_account(logged_in, "not it, but long enough")
    assert response.status_code == 400
    assert "Incorrect password." in response.text
    assert user_row(app, user.email) is not None
    assert logged_in.get("/blogs").status_code == 200
    assert all_mail_sent()
    assert mailbox.messages == []


def test_delete_removes_the_account_its_sessions_and_links(
    app: Flask, client: FlaskClient, user: Any, user_factory: Any, mailbox: Mailbox
) -> None:
    bob = user_factory(email="bob@example.com", username="bob")
    bobs_browser = app.test_client()
    login(bobs_browser, bob.email)
    phone = app.test_client()
    login(phone, user.email, remember=True)
    login(client, user.email)
    stolen = session_cookie(client)
    client.post(  # leaves a change-email link behind
        "/account/email",
        data={
            "csrf_token": csrf_token(client.get("/account/email")),
            "email": "new@example.com",
            "current_password": PASSWORD,
        },
    )

    assert {row.user_id for row in rows(app, Token)} == {user.id}

    response = delete_account(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert "Your account has been deleted." in client.get("/login").text
    assert any(
        c.startswith("__Host-gatehouse_session=;") for c in response.headers.getlist("Set-Cookie")
    )
    assert client.get("/blogs").status_code == 302
    assert phone.get("/blogs").status_code == 302
    thief = app.test_client()
    thief.set_cookie("__Host-gatehouse_session", stolen)
    assert thief.get("/blogs").status_code == 302

    assert [row.email for row in rows(app, User)] == [bob.email]
    assert {row.user_id for row in rows(app, UserSession)} == {bob.id}
    assert rows(app, Token) == []
    assert bobs_browser.get("/blogs").status_code == 200

    assert all_mail_sent()
    (goodbye,) = [m for m in mailbox.to(user.email) if "account was deleted" in m["Subject"]]
    assert "Hello alice," in text(goodbye)


def test_the_record_outlives_the_account_and_the_address_is_free_again(
    app: Flask, logged_in: FlaskClient, user: Any
) -> None:
    delete_account(logged_in)
    events = rows(app, Event)
    assert all(event.user_id is None for event in events)
    (deleted,) = [event for event in events if event.kind == "account_deleted"]
    assert deleted.identifier == user.email
    assert deleted.detail == f"user {user.id}"
    assert "login" in {event.kind for event in events}

    again = app.test_client()
    form = {"email": user.email, "username": "alice", "password": "a new life, a new password"}
    signed_up = again.post(
        "/register", data={"csrf_token": csrf_token(again.get("/register")), **form}
    )
    assert signed_up.status_code == 302
    row = user_row(app, user.email)
    assert row is not None
    assert row.email_confirmed_at is None  # a new, unconfirmed account


def test_data_download_holds_everything_but_secrets(
    app: Flask, client: FlaskClient, user: Any, user_factory: Any
) -> None:
    bob = user_factory(email="bob@example.com", username="bob")
    login(app.test_client(), bob.email)
    login(app.test_client(), user.email, "a wrong password, long enough")
    login(client, user.email)
    response = client.get("/account/data")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    assert response.headers["Content-Disposition"].endswith('.json"')
    assert "no-store" in response.headers["Cache-Control"]
    data = json.loads(response.text)

    profile = data["profile"]
    assert profile["id"] == user.id
    assert profile["email"] == user.email
    assert profile["username"] == "alice"
    assert profile["password_set"] is True
    for moment in ("created_at", "email_confirmed_at", "last_login_at"):
        assert profile[moment]
    (this_session,) = data["sessions"]
    assert {"created_at", "last_seen_at", "expires_at", "remembered", "ip", "device"} <= set(
        this_session
    )
    # Newest first, as on the account page.
    assert [(e["event"], e["outcome"]) for e in data["security_events"]] == [
        ("login", "success"),
        ("login", "failure"),
    ]
    assert data["email_links"] == []

    body = response.text
    row = user_row(app, user.email)
    assert row is not None
    assert row.password_hash
    assert row.password_hash not in body
    assert "argon2" not in body
    assert session_cookie(client) not in body
    (record,) = [r for r in rows(app, UserSession) if r.user_id == user.id]
    assert record.token_hash.hex() not in body
    assert "hash" not in body
    assert bob.email not in body


def test_pending_links_are_listed_without_their_token(
    app: Flask, logged_in: FlaskClient, mailbox: Mailbox
) -> None:
    logged_in.post(
        "/account/email",
        data={
            "csrf_token": csrf_token(logged_in.get("/account/email")),
            "email": "new@example.com",
            "current_password": PASSWORD,
        },
    )
    links = json.loads(logged_in.get("/account/data").text)["email_links"]
    assert sorted((link["purpose"], link["email"]) for link in links) == [
        ("change_email", "new@example.com"),
        ("secure", "alice@example.com"),
    ]
    assert all_mail_sent()
    body = logged_in.get("/account/data").text
    for message in mailbox.messages:
        for url in text(message).split():
            if "/account/email/confirm/" in url or "/secure/" in url:
                assert url.rsplit("/", 1)[1] not in body


def test_a_freed_address_does_not_hand_over_its_history(
    app: Flask, logged_in: FlaskClient, user: Any, user_factory: Any, mailbox: Mailbox
) -> None:
    """Alice moves to a new address; whoever signs up with the old one gets none of her data."""
    logged_in.post(
        "/account/email",
        data={
            "csrf_token": csrf_token(logged_in.get("/account/email")),
            "email": "new@example.com",
            "current_password": PASSWORD,
        },
    )
    assert all_mail_sent()
    (message,) = [m for m in mailbox.to("new@example.com") if "Confirm" in m["Subject"]]
    path = link_path(message, "/account/email/confirm/")
    logged_in.post(path, data={"csrf_token": csrf_token(logged_in.get(path))})
    assert user_row(app, "new@example.com") is not None

    newcomer = user_factory(email=user.email, username="mallory")
    browser = app.test_client()
    login(browser, newcomer.email)
    data = json.loads(browser.get("/account/data").text)
    assert [(e["event"], e["user_id"]) for e in data["security_events"]] == [("login", newcomer.id)]
    assert "new@example.com" not in json.dumps(data)
