"""Changing the email address: a link to the new address, a notice to the old one, and every
way the link can be misused."""

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
import time_machine
from blog import db
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_gatehouse import User
from flask_gatehouse.models import Token
from flask_gatehouse.services import tokens, users
from tests.conftest import PASSWORD, all_mail_sent, csrf_token, login, user_row
from tests.smtp import Mailbox, link_path, text

CONFIRM = "/account/email/confirm/"


def request_change(client: FlaskClient, email: str, password: str = PASSWORD) -> TestResponse:
    form = {"csrf_token": csrf_token(client.get("/account/email")), "email": email}
    return client.post("/account/email", data={**form, "current_password": password})


def delivered(mailbox: Mailbox, address: str, subject: str) -> EmailMessage:
    """The one message to ``address`` whose subject contains ``subject``."""
    assert all_mail_sent()
    (message,) = [m for m in mailbox.to(address) if subject in m["Subject"]]
    return message


def confirm_link(mailbox: Mailbox, address: str) -> str:
    return link_path(delivered(mailbox, address, "Confirm your new email"), CONFIRM)


def flashes(page: TestResponse) -> list[str]:
    return re.findall(r'<p class="flash[^"]*">(.*?)</p>', page.text)


def confirm(client: FlaskClient, path: str) -> TestResponse:
    """Open the link and press its button (a dead link has none: take a CSRF token elsewhere)."""
    page = client.get(path)
    token = csrf_token(page if page.status_code == 200 else client.get("/confirm/resend"))
    return client.post(path, data={"csrf_token": token})


def test_change_asks_the_new_address_and_tells_the_old_one(
    app: Flask, logged_in: FlaskClient, user: Any, mailbox: Mailbox
) -> None:
    response = request_change(logged_in, "  New@Example.COM ")
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    account = logged_in.get("/account").text
    assert "We sent a confirmation link to the new address." in account
    assert "new@example.com" in account  # shown as waiting

    path = confirm_link(mailbox, "new@example.com")
    notice = delivered(mailbox, user.email, "about to change")
    assert "new@example.com" in text(notice)
    assert link_path(notice, "/secure/").startswith("/secure/")
    # Nothing has changed yet.
    assert user_row(app, user.email) is not None
    assert login(app.test_client(), user.email).status_code == 302

    page = logged_in.get(path)  # a mail scanner's prefetch spends nothing
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "new@example.com" in page.text
    response = confirm(logged_in, path)
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    assert "Your email address has been changed." in logged_in.get("/account").text

    row = user_row(app, "new@example.com")
    assert row is not None
    assert row.email_confirmed_at is not None
    assert login(app.test_client(), user.email).status_code == 400
    assert login(app.test_client(), "new@example.com").status_code == 302
    changed = delivered(mailbox, user.email, "was changed")
    assert "new@example.com" in text(changed)
    assert link_path(changed, "/secure/") != link_path(notice, "/secure/")
    assert not [m for m in mailbox.to("new@example.com") if "was changed" in m["Subject"]]

    again = confirm(logged_in, path)
    assert again.status_code == 400
    assert "This link is not valid" in again.text


def test_the_link_works_on_another_device_without_signing_in(
    app: Flask, logged_in: FlaskClient, mailbox: Mailbox
) -> None:
    request_change(logged_in, "new@example.com")
    elsewhere = app.test_client()
    response = confirm(elsewhere, confirm_link(mailbox, "new@example.com"))
    assert response.headers["Location"] == "/login"
    assert login(elsewhere, "new@example.com").status_code == 302


def test_same_address_or_wrong_password_is_refused(
    app: Flask, logged_in: FlaskClient, user: Any, mailbox: Mailbox
) -> None:
    same = request_change(logged_in, "ALICE@example.com")
    assert same.status_code == 400
    assert "That is already your email address." in same.text
    wrong = request_change(logged_in, "new@example.com", "not it, but long enough")
    assert wrong.status_code == 400
    assert "Incorrect password." in wrong.text
    invalid = request_change(logged_in, "not an address")
    assert invalid.status_code == 400
    assert "Enter a valid email address." in invalid.text
    assert all_mail_sent()
    assert mailbox.messages == []


def test_link_expires_after_48_hours(app: Flask, logged_in: FlaskClient, mailbox: Mailbox) -> None:
    request_change(logged_in, "new@example.com")
    path = confirm_link(mailbox, "new@example.com")
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=48, minutes=1)):
        response = confirm(app.test_client(), path)
    assert response.status_code == 400
    assert user_row(app, "new@example.com") is None


def test_a_link_from_before_another_change_is_void(
    app: Flask, logged_in: FlaskClient, user: Any, mailbox: Mailbox
) -> None:
    request_change(logged_in, "first@example.com")
    first = confirm_link(mailbox, "first@example.com")
    request_change(logged_in, "second@example.com")
    assert confirm(logged_in, confirm_link(mailbox, "second@example.com")).status_code == 302
    assert confirm(logged_in, first).status_code == 400
    assert user_row(app, "second@example.com") is not None
    assert user_row(app, "first@example.com") is None


def test_reset_links_die_with_the_old_address(
    app: Flask, logged_in: FlaskClient, user: Any, mailbox: Mailbox
) -> None:
    with app.app_context():
        account = users.find_by_email(user.email)
        assert account is not None
        tokens.issue("reset", account)
        db.session.commit()
    request_change(logged_in, "new@example.com")
    confirm(logged_in, confirm_link(mailbox, "new@example.com"))
    with app.app_context():
        purposes = db.session.scalars(sa.select(Token.purpose).where(Token.user_id == user.id))
        assert sorted(purposes) == ["secure", "secure"]  # the old address's "wasn't me" links


def test_a_taken_address_gets_the_same_answer_and_fails_cleanly(
    app: Flask, logged_in: FlaskClient, user: Any, user_factory: Any, mailbox: Mailbox
) -> None:
    user_factory(email="bob@example.com", username="bob")
    taken = request_change(logged_in, "bob@example.com")
    assert (taken.status_code, taken.headers["Location"]) == (302, "/account")
    taken_flash = flashes(logged_in.get("/account"))
    assert taken_flash == ["We sent a confirmation link to the new address."]

    response = confirm(logged_in, confirm_link(mailbox, "bob@example.com"))
    assert response.status_code == 400
    assert "already used by another account" in response.text
    assert user_row(app, user.email) is not None
    assert login(app.test_client(), "bob@example.com").status_code == 302  # still Bob's
    spent = confirm(logged_in, confirm_link(mailbox, "bob@example.com"))
    assert spent.status_code == 400
    assert "This link is not valid" in spent.text

    free = request_change(logged_in, "new@example.com")
    assert (free.status_code, free.headers["Location"]) == (302, "/account")
    assert flashes(logged_in.get("/account")) == taken_flash


def test_the_unique_constraint_decides_a_race(
    app: Flask, user_factory: Any, mailbox: Mailbox
) -> None:
    browsers = {}
    for name in ("ann", "ben"):
        account = user_factory(email=f"{name}@example.com", username=name)
        browsers[name] = app.test_client()
        login(browsers[name], account.email)
        request_change(browsers[name], "wanted@example.com")
    assert all_mail_sent()
    links = {
        name: link_path(message, CONFIRM)
        for message in mailbox.to("wanted@example.com")
        for name in browsers
        if f"Hello {name}," in text(message)
    }
    tokens_for = {name: csrf_token(browsers[name].get(links[name])) for name in browsers}
    barrier = threading.Barrier(2)

    def press(name: str) -> int:
        barrier.wait()
        data = {"csrf_token": tokens_for[name]}
        return browsers[name].post(links[name], data=data).status_code

    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(press, browsers))
    assert statuses == [302, 400]
    with app.app_context():
        emails = db.session.scalars(sa.select(User.email))
        assert sorted(emails) in (
            ["ann@example.com", "wanted@example.com"],
            ["ben@example.com", "wanted@example.com"],
        )


def test_confirm_without_csrf_token_changes_nothing(
    app: Flask, logged_in: FlaskClient, user: Any, mailbox: Mailbox
) -> None:
    request_change(logged_in, "new@example.com")
    path = confirm_link(mailbox, "new@example.com")
    logged_in.get(path)
    assert logged_in.post(path).status_code == 400
    assert user_row(app, user.email) is not None
    assert confirm(logged_in, path).status_code == 302  # the link still works


def test_made_up_or_oversized_tokens_are_invalid(app: Flask, client: FlaskClient) -> None:
    for token in ["x" * 43, "y" * 500, "%00"]:
        response = confirm(client, CONFIRM + token)
        assert response.status_code == 400
        assert "This link is not valid" in response.text
