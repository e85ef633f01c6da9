"""Email confirmation through HTTP with real mail: the link, its misuse, resends, taken
addresses, and the "optional" and "off" modes."""

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine
from blog import db
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_gatehouse.models import Event
from tests.conftest import PASSWORD, all_mail_sent, csrf_token, login, user_row
from tests.smtp import Mailbox, html, link_path, links, text

CONFIRMED = "Your email address is confirmed. You can sign in now."
OTHER_PASSWORD = "another long passphrase here"
UNCONFIRMED = (
    "Incorrect email or password. If you have just created your account, confirm your address "
    "first: follow the link in the email we sent you."
)


def sign_up(
    client: FlaskClient, email: str, username: str = "bob", password: str = PASSWORD, **request: Any
) -> TestResponse:
    """Fill in /register as a browser would; ``request`` goes to both requests (headers...)."""
    form = {
        "csrf_token": csrf_token(client.get("/register", **request)),
        "email": email,
        "username": username,
        "password": password,
    }
    return client.post("/register", data=form, **request)


def without_csrf(page: str) -> str:
    return re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "", page)


def confirmation_path(message: EmailMessage) -> str:
    return link_path(message, "/confirm/")


def click(client: FlaskClient, path: str) -> TestResponse:
    """Open an emailed link and press its button."""
    return client.post(path, data={"csrf_token": csrf_token(client.get(path))})


def resend(client: FlaskClient, email: str) -> TestResponse:
    form = {"csrf_token": csrf_token(client.get("/confirm/resend")), "email": email}
    return client.post("/confirm/resend", data=form)


def is_confirmed(app: Flask, email: str) -> bool:
    row = user_row(app, email)
    assert row is not None
    return row.email_confirmed_at is not None


def test_sign_up_mails_a_confirmation_link_to_the_address(
    client: FlaskClient, mailbox: Mailbox
) -> None:
    assert sign_up(client, "Bob@Example.com").status_code == 302
    (message,) = mailbox.wait_for(1)
    assert message["To"] == "bob@example.com"
    assert message["Subject"] == "The Blog: Confirm your email address"
    (link,) = links(message)
    assert re.fullmatch(r"https://gatehouse\.test/confirm/[\w-]{43}", link)
    assert f'href="{link}"' in html(message)
    assert "expires in 48 hours" in text(message)


def cookie_names(response: TestResponse) -> list[str]:
    return sorted(header.split("=")[0] for header in response.headers.getlist("Set-Cookie"))


def test_right_password_before_confirming_answers_like_a_wrong_one_and_mails_a_link(
    app: Flask, client: FlaskClient, mailbox: Mailbox
) -> None:
    """Anything else tells an attacker that the password is right."""
    sign_up(client, "bob@example.com")
    (first,) = mailbox.wait_for(1)
    wrong = login(app.test_client(), "bob@example.com", "a wrong password, long enough")
    right = login(client, "bob@example.com")
    assert right.status_code == wrong.status_code == 400
    assert without_csrf(right.text) == without_csrf(wrong.text)
    assert cookie_names(right) == cookie_names(wrong)
    assert UNCONFIRMED in right.text
    assert 'href="/confirm/resend"' in right.text

    # Only the right password brought a fresh link. Either link works, once for both.
    second = mailbox.wait_for(2)[1]
    assert all_mail_sent()
    assert len(mailbox.messages) == 2
    assert second["Subject"] == first["Subject"]
    assert confirmation_path(second) != confirmation_path(first)
    assert client.get(confirmation_path(first)).status_code == 200
    assert click(client, confirmation_path(second)).headers["Location"] == "/login"
    assert click(client, confirmation_path(first)).status_code == 400
    assert login(client, "bob@example.com").headers["Location"] == "/blogs"


def test_links_mailed_at_login_share_the_address_limit(
    app: Flask, client: FlaskClient, mailbox: Mailbox
) -> None:
    sign_up(client, "bob@example.com")
    for _ in range(5):
        assert login(client, "bob@example.com").status_code == 400
    assert all_mail_sent()
    # The sign-up's link, then three at login (GATEHOUSE_EMAIL_REQUEST_ADDRESS_LIMIT).
    assert len(mailbox.wait_for(4)) == 4
    assert all_mail_sent()
    assert len(mailbox.messages) == 4


def test_resend_mails_a_new_link_and_voids_the_old_one(
    app: Flask, client: FlaskClient, mailbox: Mailbox
) -> None:
    sign_up(client, "bob@example.com")
    (first,) = mailbox.wait_for(1)
    refused = login(client, "bob@example.com")  # mails a second link
    form = {"csrf_token": csrf_token(refused), "email": "bob@example.com"}
    assert client.post("/confirm/resend", data=form).headers["Location"] == "/login"
    second = mailbox.wait_for(3)[2]
    assert confirmation_path(second) != confirmation_path(first)

    assert click(client, confirmation_path(first)).status_code == 400
    assert not is_confirmed(app, "bob@example.com")
    assert click(client, confirmation_path(second)).headers["Location"] == "/login"
    assert is_confirmed(app, "bob@example.com")


def test_opening_the_link_asks_and_only_the_button_confirms(
    app: Flask, client: FlaskClient, mailbox: Mailbox
) -> None:
    sign_up(client, "bob@example.com")
    path = confirmation_path(mailbox.wait_for(1)[0])

    for _ in range(2):  # a mail scanner fetching the link, then the person
        page = client.get(path)
        assert page.status_code == 200
        assert "Confirm that <strong>bob@example.com</strong> is your address." in page.text
        assert 'method="post"' in page.text
        # The token is in the URL: no Referer header may carry it to another site.
        assert page.headers["Referrer-Policy"] == "no-referrer"
    assert not is_confirmed(app, "bob@example.com")
    assert login(client, "bob@example.com").status_code == 400

    confirmed = client.post(path, data={"csrf_token": csrf_token(page)})
    assert confirmed.status_code == 302
    assert CONFIRMED in client.get(confirmed.headers["Location"]).text
    assert login(client, "bob@example.com").headers["Location"] == "/blogs"
    assert "Hi bob" in client.get("/blogs").text


def test_link_works_once(app: Flask, client: FlaskClient, mailbox: Mailbox) -> None:
    sign_up(client, "bob@example.com")
    path = confirmation_path(mailbox.wait_for(1)[0])
    assert click(client, path).status_code == 302
    assert client.get(path).status_code == 400
    again = click(client, path)
    assert again.status_code == 400
    assert "This link is not valid" in again.text


def test_link_without_its_csrf_token_changes_nothing(
    app: Flask, client: FlaskClient, mailbox: Mailbox
) -> None:
    sign_up(client, "bob@example.com")
    path = confirmation_path(mailbox.wait_for(1)[0])
    assert client.post(path).status_code == 400
    assert not is_confirmed(app, "bob@example.com")
    assert click(client, path).status_code == 302


def test_parallel_clicks_confirm_once(app: Flask, mailbox: Mailbox) -> None:
    """Of eight browsers pressing the button at once, one spends the link."""
    sign_up(app.test_client(), "bob@example.com")
    path = confirmation_path(mailbox.wait_for(1)[0])
    clients = [app.test_client() for _ in range(8)]
    tokens = [csrf_token(c.get(path)) for c in clients]
    barrier = threading.Barrier(len(clients))

    def press(index: int) -> int:
        barrier.wait(timeout=10)
        return clients[index].post(path, data={"csrf_token": tokens[index]}).status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        statuses = sorted(pool.map(press, range(len(clients))))
    assert statuses == [302] + [400] * 7
    with app.app_context():
        confirmations = db.session.scalars(
            sa.select(Event).where(Event.kind == "email_confirmed")
        ).all()
    assert len(confirmations) == 1


def test_link_expires_after_48_hours(app: Flask, client: FlaskClient, mailbox: Mailbox) -> None:
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False):
        sign_up(client, "bob@example.com")
        path = confirmation_path(mailbox.wait_for(1)[0])
    with time_machine.travel(start + timedelta(hours=47, minutes=59), tick=False):
        assert client.get(path).status_code == 200
    with time_machine.travel(start + timedelta(hours=48, seconds=1), tick=False):
        page = client.get(path)
        assert page.status_code == 400
        assert "This confirmation link has expired" in page.text
        expired = client.post(path, data={"csrf_token": csrf_token(page)})
    assert expired.status_code == 400
    assert 'action="/confirm/resend"' in expired.text
    assert "Send a new confirmation link" in expired.text
    assert not is_confirmed(app, "bob@example.com")


@pytest.mark.parametrize(
    "token",
    [
        "tampered",
        "x" * 43,
        "x" * 5000,
        "%C3%A9" * 20,
    ],
)
def test_tampered_or_unknown_link_is_refused(
    app: Flask, client: FlaskClient, mailbox: Mailbox, token: str
) -> None:
    sign_up(client, "bob@example.com")
    real = confirmation_path(mailbox.wait_for(1)[0])
    if token == "tampered":
        token = real.rsplit("/", 1)[1]
        token = token[:-1] + ("A" if token[-1] != "A" else "B")
    path = f"/confirm/{token}"
    page = client.get(path)
    assert page.status_code == 400
    assert "This link is not valid" in page.text
    assert click(client, path).status_code == 400
    assert not is_confirmed(app, "bob@example.com")


def test_link_is_bound_to_the_address_it_was_sent_to(
    app: Flask, client: FlaskClient, mailbox: Mailbox
) -> None:
    sign_up(client, "bob@example.com")
    path = confirmation_path(mailbox.wait_for(1)[0])
    with app.app_context():
        db.session.merge(user_row(app, "bob@example.com")).email = "robert@example.com"
        db.session.commit()
    assert click(client, path).status_code == 400
    assert not is_confirmed(app, "robert@example.com")


def test_resend_answers_the_same_for_every_address(
    app: Flask, client: FlaskClient, user_factory: Any, mailbox: Mailbox
) -> None:
    user_factory(email="confirmed@example.com")
    user_factory(email="waiting@example.com", confirmed=False)
    answers = []
    for email in ("nobody@example.com", "confirmed@example.com", "waiting@example.com"):
        response = resend(client, email)
        answers.append(
            (
                response.status_code,
                response.headers["Location"],
                response.text,
                without_csrf(client.get("/login").text),
            )
        )
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][:2] == (302, "/login")
    assert "If that address belongs to an account waiting for confirmation" in answers[0][3]
    assert all_mail_sent()
    assert [m["To"] for m in mailbox.messages] == ["waiting@example.com"]
    # Every request is recorded, mailed or not (similar work whatever the address).
    with app.app_context():
        events = db.session.execute(
            sa.select(Event.outcome, Event.identifier)
            .where(Event.kind == "confirmation_requested")
            .order_by(Event.id)
        ).all()
    assert [tuple(event) for event in events] == [
        ("failure", "nobody@example.com"),
        ("failure", "confirmed@example.com"),
        ("success", "waiting@example.com"),
    ]


def test_resend_is_limited_per_address(client: FlaskClient, user_factory: Any) -> None:
    user_factory(email="waiting@example.com", confirmed=False)
    for _ in range(3):
        assert resend(client, "waiting@example.com").status_code == 302
    refused = resend(client, "Waiting@EXAMPLE.com")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert resend(client, "someone-else@example.com").status_code == 302


def test_taken_address_answers_like_a_new_sign_up_and_tells_the_owner(
    app: Flask, user: Any, mailbox: Mailbox
) -> None:
    before = user_row(app, user.email)
    fresh_client, taken_client = app.test_client(), app.test_client()
    fresh = sign_up(fresh_client, "newcomer@example.com", username="newcomer")
    taken = sign_up(taken_client, "ALICE@example.com", username="mallory", password=OTHER_PASSWORD)
    assert (taken.status_code, taken.headers["Location"], taken.text) == (
        fresh.status_code,
        fresh.headers["Location"],
        fresh.text,
    )
    assert without_csrf(taken_client.get("/login").text) == without_csrf(
        fresh_client.get("/login").text
    )

    mailbox.wait_for(2)
    (owner_mail,) = mailbox.to("alice@example.com")
    assert owner_mail["Subject"] == "The Blog: Someone tried to create an account with your address"
    assert not [url for url in links(owner_mail) if "/confirm/" in url]
    assert "https://gatehouse.test/forgot" in links(owner_mail)
    (newcomer_mail,) = mailbox.to("newcomer@example.com")
    assert confirmation_path(newcomer_mail)

    after = user_row(app, user.email)
    assert (after.id, after.username, after.password_hash) == (
        before.id,
        before.username,
        before.password_hash,
    )
    assert login(app.test_client(), user.email).status_code == 302
    assert login(app.test_client(), user.email, OTHER_PASSWORD).status_code == 400


def test_optional_confirmation_lets_login_work_and_still_mails(
    make_app: Any, mailbox: Mailbox
) -> None:
    client = make_app(GATEHOUSE_EMAIL_CONFIRMATION="optional").test_client()
    sign_up(client, "bob@example.com")
    assert login(client, "bob@example.com").headers["Location"] == "/blogs"
    (message,) = mailbox.wait_for(1)
    assert click(client, confirmation_path(message)).status_code == 302


def test_confirmation_off_sends_nothing_and_login_works(make_app: Any, mailbox: Mailbox) -> None:
    client = make_app(GATEHOUSE_EMAIL_CONFIRMATION="off").test_client()
    sign_up(client, "bob@example.com")
    assert "Your account is ready. Sign in to continue." in client.get("/login").text
    assert login(client, "bob@example.com").headers["Location"] == "/blogs"
    assert all_mail_sent()
    assert mailbox.messages == []
