"""Forgot password, reset links and "this wasn't me" links, attacked through HTTP with real mail.

The flow end to end, enumeration (same answer, similar time, with SMTP up and down), Host
header poisoning, Unicode look-alike addresses, every misuse of a reset link (reuse, expiry,
tampering, another purpose's token, parallel use, void after a password or email change),
the lockout and the confirmation a reset clears, the rate limit, and the new-device notice's
"this wasn't me" link.
"""

import re
import secrets
import socket
import statistics
import threading
import time
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

from flask_gatehouse import User, signals
from flask_gatehouse.config import DEFAULTS
from flask_gatehouse.models import Event, Token
from flask_gatehouse.services import tokens
from tests.conftest import PASSWORD, all_mail_sent, csrf_token, login, logout, user_row
from tests.smtp import Mailbox, free_port, html, link_path, links, text
from tests.test_audit import activity

NEW_PASSWORD = "a completely different passphrase"
OTHER_PASSWORD = "yet another rather long passphrase"
WRONG = "not the password, but long enough"
SENT = "If an account exists for that address, we&#39;ve emailed a link to reset its password."
CHANGED = "Your password has been changed. Sign in with your new password."
INVALID = "This link is not valid"
#: Out of the way for every test but the one about them.
ROOMY_LIMITS = {
    "GATEHOUSE_EMAIL_REQUEST_IP_LIMIT": "1000 per hour",
    "GATEHOUSE_EMAIL_REQUEST_ADDRESS_LIMIT": "1000 per hour",
}


@pytest.fixture
def app(make_app: Any) -> Flask:
    app: Flask = make_app(**ROOMY_LIMITS)
    return app


# --- helpers ---------------------------------------------------------------------------------


def ask_for_reset(client: FlaskClient, email: str, **kwargs: Any) -> TestResponse:
    """Submit the forgot-password form as a browser would."""
    token = csrf_token(client.get("/forgot", **kwargs))
    return client.post("/forgot", data={"csrf_token": token, "email": email}, **kwargs)


def delivered(mailbox: Mailbox, subject: str) -> list[EmailMessage]:
    """Every message sent so far whose subject contains ``subject``."""
    assert all_mail_sent()
    return [message for message in mailbox.messages if subject in message["Subject"]]


def reset_link(mailbox: Mailbox, number: int = 1) -> str:
    """The link of the ``number``-th reset message, as a path for the test client."""
    messages = delivered(mailbox, "The Blog: Reset your password")
    assert len(messages) >= number, f"{len(messages)} reset message(s)"
    return link_path(messages[number - 1], "/reset/")


def set_new_password(client: FlaskClient, path: str, password: str = NEW_PASSWORD) -> TestResponse:
    page = client.get(path)
    return client.post(path, data={"csrf_token": csrf_token(page), "password": password})


def signed_in(client: FlaskClient) -> bool:
    return client.get("/blogs").status_code == 200


def without_csrf(page: str) -> str:
    return re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "", page)


def event_kinds(app: Flask) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session.scalars(sa.select(Event).order_by(Event.id))
        return [(event.kind, event.outcome) for event in rows]


def tokens_of(app: Flask, email: str) -> list[str]:
    with app.app_context():
        row = user_row(app, email)
        assert row is not None
        return list(db.session.scalars(sa.select(Token.purpose).where(Token.user_id == row.id)))


# --- the flow --------------------------------------------------------------------------------


def test_forgot_reset_sign_in(app: Flask, user: Any, mailbox: Mailbox) -> None:
    laptop, phone, visitor = app.test_client(), app.test_client(), app.test_client()
    assert login(laptop, user.email).status_code == 302
    assert login(phone, user.email, remember=True).status_code == 302

    response = ask_for_reset(visitor, user.email)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert SENT in visitor.get("/login").text
    (message,) = delivered(mailbox, "Reset")
    assert message["To"] == user.email
    assert "expires in 30 minutes" in text(message)
    assert "expires in 30 minutes" in html(message)
    path = reset_link(mailbox)
    assert len(path.rsplit("/", 1)[1]) >= 43  # 256 random bits, URL-safe base64

    page = visitor.get(path)
    assert page.status_code == 200
    assert "Choose a new password" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    # A password the policy refuses is sent back with the form; the link stays unused.
    weak = visitor.post(path, data={"csrf_token": csrf_token(page), "password": "too short"})
    assert weak.status_code == 400
    assert 'id="password-error"' in weak.text
    assert visitor.get(path).status_code == 200

    done = set_new_password(visitor, path)
    assert done.status_code == 302
    assert done.headers["Location"] == "/login"
    assert CHANGED in visitor.get("/login").text
    assert not signed_in(visitor), "a reset must not sign anyone in"
    assert not signed_in(laptop)
    assert not signed_in(phone), "the remembered session outlived the reset"

    assert login(visitor, user.email, PASSWORD).status_code == 400
    assert login(visitor, user.email, NEW_PASSWORD).status_code == 302
    notice = delivered(mailbox, "password was changed")
    assert [m["To"] for m in notice] == [user.email]
    assert {("password_reset_requested", "success"), ("password_reset", "success")} <= set(
        event_kinds(app)
    )


def test_a_reset_is_one_activity_row_and_both_signals(
    app: Flask, user: Any, mailbox: Mailbox
) -> None:
    """A reset stores a new password: one event ("Password reset"), not a second "Password
    changed" row beside it; hosts still hear both signals."""
    visitor = app.test_client()
    assert ask_for_reset(visitor, user.email).status_code == 302
    path = reset_link(mailbox)
    before = len(event_kinds(app))
    heard: list[str] = []
    with (
        signals.password_reset.connected_to(lambda _, **kw: heard.append("reset"), app),
        signals.password_changed.connected_to(lambda _, **kw: heard.append("changed"), app),
    ):
        assert set_new_password(visitor, path).status_code == 302
    assert event_kinds(app)[before:] == [("password_reset", "success")]
    assert sorted(heard) == ["changed", "reset"]

    assert login(visitor, user.email, NEW_PASSWORD).status_code == 302
    rows = [what for what, _, _ in activity(visitor.get("/account"))]
    assert [what for what in rows if what.startswith("Password")] == [
        "Password reset",
        "Password reset requested",
    ]


# --- enumeration -----------------------------------------------------------------------------


def answer(app: Flask, email: str) -> tuple[Any, ...]:
    """What a fresh browser sees for a request: status, redirect, body and the page it lands
    on (without its per-browser CSRF token), and how long the POST took."""
    client = app.test_client()
    token = csrf_token(client.get("/forgot"))
    start = time.perf_counter()
    response = client.post("/forgot", data={"csrf_token": token, "email": email})
    elapsed = time.perf_counter() - start
    landing = client.get(response.headers["Location"])
    return (response.status_code, response.text, without_csrf(landing.text)), elapsed


def test_known_and_unknown_addresses_get_the_same_answer(
    app: Flask, user: Any, mailbox: Mailbox
) -> None:
    typed = (user.email, "nobody@example.com", "not mail", "nul\x00@example.com")
    answers = [answer(app, email)[0] for email in typed]
    assert answers[0] == answers[1] == answers[2] == answers[3]
    assert answers[0][0] == 302
    assert SENT in answers[0][2]
    assert [m["To"] for m in mailbox.wait_for(1)] == [user.email]
    assert ("password_reset_requested", "failure") in event_kinds(app)


def test_inactive_accounts_get_the_same_answer_and_no_mail(
    app: Flask, user: Any, mailbox: Mailbox
) -> None:
    client = app.test_client()
    ask_for_reset(client, user.email)
    path = reset_link(mailbox)
    with app.app_context():
        db.session.merge(user_row(app, user.email)).active = False
        db.session.commit()
    assert client.get(path).status_code == 400, "a deactivated account's link still worked"
    assert answer(app, user.email)[0] == answer(app, "nobody@example.com")[0]
    assert len(delivered(mailbox, "")) == 1


def median_times(app: Flask, emails: tuple[str, str], rounds: int = 15) -> list[float]:
    """Median response time of /forgot per address, the two interleaved in alternating order,
    each request timed alone (the previous one's mail sent and its flash shown first)."""
    client = app.test_client()
    token = csrf_token(client.get("/forgot"))
    samples: dict[str, list[float]] = {email: [] for email in emails}
    for round in range(rounds):
        for email in emails if round % 2 else reversed(emails):
            start = time.perf_counter()
            response = client.post("/forgot", data={"csrf_token": token, "email": email})
            samples[email].append(time.perf_counter() - start)
            assert response.status_code == 302
            assert SENT in client.get("/login").text
            assert all_mail_sent()
    return [statistics.median(samples[email]) for email in emails]


@pytest.mark.parametrize("smtp", ["up", "down"])
def test_known_and_unknown_addresses_take_similar_time(
    app: Flask, make_app: Any, user: Any, mailbox: Mailbox, smtp: str
) -> None:
    """At the real argon2 cost, so a stray password hash (20+ ms) would stand out.

    The bound is loose because the mail thread (and, in tests, the SMTP server) runs in this
    process and takes turns with the request on the GIL: a known address's response is a few
    milliseconds slower for that alone, about what a synchronous send to a local server would
    cost, so ``test_a_silent_mail_server_delays_nothing`` is the check for that instead.
    """
    config: dict[str, Any] = {
        **ROOMY_LIMITS,
        "GATEHOUSE_ARGON2_TIME_COST": DEFAULTS["GATEHOUSE_ARGON2_TIME_COST"],
        "GATEHOUSE_ARGON2_MEMORY_COST": DEFAULTS["GATEHOUSE_ARGON2_MEMORY_COST"],
    }
    if smtp == "down":
        config |= {"MAIL_PORT": free_port(), "GATEHOUSE_MAIL_ATTEMPTS": 1}
    timed = make_app(**config)
    assert answer(timed, user.email)[0] == answer(timed, "nobody@example.com")[0]
    known, unknown = median_times(timed, (user.email, "nobody@example.com"))
    assert abs(known - unknown) < max(0.010, min(known, unknown)), (known, unknown)
    assert len(mailbox.to(user.email)) == (16 if smtp == "up" else 0)


def test_a_silent_mail_server_delays_nothing(
    app: Flask, make_app: Any, user: Any, mailbox: Mailbox
) -> None:
    """An SMTP server that accepts connections and never answers: a request that waited for
    it would take the whole MAIL_TIMEOUT."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        hung = make_app(
            **ROOMY_LIMITS,
            MAIL_PORT=silent.getsockname()[1],
            MAIL_TIMEOUT=0.5,
            GATEHOUSE_MAIL_ATTEMPTS=1,
        )
        (known, known_time), (unknown, _) = answer(hung, user.email), answer(hung, "x@example.com")
        assert known == unknown
        assert known_time < 0.25
        assert all_mail_sent()
    assert mailbox.messages == []


def test_links_ignore_the_host_header(app: Flask, user: Any, mailbox: Mailbox) -> None:
    client = app.test_client()
    poisoned = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    assert ask_for_reset(client, user.email, headers=poisoned).status_code == 302
    (message,) = mailbox.wait_for(1)
    assert links(message)
    assert all(url.startswith("https://gatehouse.test/") for url in links(message))
    assert "evil.example" not in text(message) + html(message)


def test_mail_goes_only_to_the_stored_address(
    app: Flask, user_factory: Any, mailbox: Mailbox
) -> None:
    """Django CVE-2019-19844: a look-alike typed address must never receive the link."""
    user_factory(email="mike@example.com", username="mike")
    client = app.test_client()
    typed = [
        "MIKE@example.com",
        "m\u0131ke@example.com",  # dotless i
        "m\u0130ke@example.com",  # capital I with dot above
        "\uff4d\uff49\uff4b\uff45@example.com",  # fullwidth letters
    ]
    for email in typed:
        assert ask_for_reset(client, email).status_code == 302
    assert all_mail_sent()
    recipients = {str(message["To"]) for message in mailbox.messages}
    assert recipients == {"mike@example.com"}


# --- misuse of reset links -------------------------------------------------------------------


def test_a_used_link_cannot_be_used_again(app: Flask, user: Any, mailbox: Mailbox) -> None:
    client = app.test_client()
    ask_for_reset(client, user.email)
    path = reset_link(mailbox)
    assert set_new_password(client, path).status_code == 302
    for again in (app.test_client().get(path), set_new_password(client, path, OTHER_PASSWORD)):
        assert again.status_code == 400
        assert INVALID in again.text
        assert again.headers["Referrer-Policy"] == "no-referrer"
    assert login(client, user.email, OTHER_PASSWORD).status_code == 400
    assert login(client, user.email, NEW_PASSWORD).status_code == 302


def test_a_link_expires_after_30_minutes(app: Flask, user: Any, mailbox: Mailbox) -> None:
    client = app.test_client()
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        ask_for_reset(client, user.email)
        path = reset_link(mailbox)
        clock.shift(timedelta(minutes=29, seconds=59))
        assert client.get(path).status_code == 200
        clock.shift(timedelta(seconds=1))
        page = client.get(path)
        assert page.status_code == 400
        assert INVALID in page.text
        assert set_new_password(client, path).status_code == 400
    assert login(client, user.email).status_code == 302


def test_tampered_and_foreign_tokens_are_refused(app: Flask, user: Any, mailbox: Mailbox) -> None:
    client = app.test_client()
    ask_for_reset(client, user.email)
    path = reset_link(mailbox)
    token = path.rsplit("/", 1)[1]
    forged = [
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        token[:-1],
        token + "A",
        token.upper(),
        "A" * 5000,
        secrets.token_urlsafe(32),
        "x%00y",
    ]
    for fake in forged:
        for response in (client.get(f"/reset/{fake}"), set_new_password(client, f"/reset/{fake}")):
            assert response.status_code == 400, fake
            assert INVALID in response.text
    assert set_new_password(client, path).status_code == 302, "the real link stopped working"


def test_another_purposes_token_is_refused(app: Flask, mailbox: Mailbox) -> None:
    """A confirmation link's token does not open a reset (nor is it spent by trying)."""
    client = app.test_client()
    form = {"email": "bob@example.com", "username": "bob", "password": PASSWORD}
    client.post("/register", data={**form, "csrf_token": csrf_token(client.get("/register"))})
    (message,) = mailbox.wait_for(1)
    confirm = link_path(message, "/confirm/")
    reset = confirm.replace("/confirm/", "/reset/")
    assert client.get(reset).status_code == 400
    assert set_new_password(client, reset).status_code == 400
    assert client.get(confirm.replace("/confirm/", "/secure/")).status_code == 400
    page = client.get(confirm)
    assert client.post(confirm, data={"csrf_token": csrf_token(page)}).status_code == 302
    assert login(client, "bob@example.com", PASSWORD).status_code == 302


def test_a_link_resets_only_its_own_account(
    logged_in: FlaskClient, user: Any, user_factory: Any, mailbox: Mailbox
) -> None:
    bob = user_factory(email="bob@example.com", username="bob")
    ask_for_reset(logged_in, bob.email)
    assert set_new_password(logged_in, reset_link(mailbox)).status_code == 302
    assert signed_in(logged_in), "alice was signed out by bob's reset"
    app = logged_in.application
    assert login(app.test_client(), bob.email, NEW_PASSWORD).status_code == 302
    assert login(app.test_client(), user.email, NEW_PASSWORD).status_code == 400


def test_a_password_change_voids_outstanding_links(app: Flask, user: Any, mailbox: Mailbox) -> None:
    client = app.test_client()
    ask_for_reset(client, user.email)
    path = reset_link(mailbox)
    result = app.test_cli_runner().invoke(
        args=["gatehouse", "set-password", user.email, "--password", OTHER_PASSWORD]
    )
    assert result.exit_code == 0, result.output
    assert client.get(path).status_code == 400
    assert set_new_password(client, path).status_code == 400
    assert login(client, user.email, OTHER_PASSWORD).status_code == 302


def test_an_email_change_voids_outstanding_links(app: Flask, user: Any, mailbox: Mailbox) -> None:
    client = app.test_client()
    ask_for_reset(client, user.email)
    path = reset_link(mailbox)
    with app.app_context():
        db.session.merge(user_row(app, user.email)).email = "alice@elsewhere.example"
        db.session.commit()
    assert client.get(path).status_code == 400
    assert set_new_password(client, path).status_code == 400
    assert login(client, "alice@elsewhere.example", PASSWORD).status_code == 302


def test_a_newer_link_leaves_the_earlier_one_valid_until_either_is_used(
    app: Flask, user: Any, mailbox: Mailbox
) -> None:
    client = app.test_client()
    ask_for_reset(client, user.email)
    ask_for_reset(client, user.email)
    first, second = reset_link(mailbox, 1), reset_link(mailbox, 2)
    assert first != second
    assert client.get(first).status_code == 200
    assert set_new_password(client, second).status_code == 302
    assert client.get(first).status_code == 400
    assert tokens_of(app, user.email) == []


def test_parallel_use_of_one_link_sets_one_password(
    app: Flask, user: Any, mailbox: Mailbox
) -> None:
    ask_for_reset(app.test_client(), user.email)
    path = reset_link(mailbox)
    browsers = 8
    clients = [app.test_client() for _ in range(browsers)]
    forms = [csrf_token(client.get(path)) for client in clients]
    barrier = threading.Barrier(browsers)

    def post(index: int) -> int:
        data = {"csrf_token": forms[index], "password": f"{NEW_PASSWORD} number {index}"}
        barrier.wait(timeout=30)
        return clients[index].post(path, data=data).status_code

    with ThreadPoolExecutor(browsers) as pool:
        statuses = list(pool.map(post, range(browsers)))
    assert sorted(statuses) == [302] + [400] * (browsers - 1), statuses
    winner = statuses.index(302)
    losers = [index for index in range(browsers) if index != winner]
    for index in [winner, *losers[:4]]:  # a fifth wrong password would lock the account
        attempt = login(app.test_client(), user.email, f"{NEW_PASSWORD} number {index}")
        assert attempt.status_code == (302 if index == winner else 400)
    assert len(delivered(mailbox, "password was changed")) == 1


# --- what a reset clears ---------------------------------------------------------------------


def test_a_reset_lifts_the_lockout(app: Flask, user: Any, mailbox: Mailbox) -> None:
    attacker, owner = app.test_client(), app.test_client()
    for _ in range(5):
        assert login(attacker, user.email, WRONG).status_code == 400
    assert login(owner, user.email).status_code == 429
    ask_for_reset(owner, user.email)
    assert set_new_password(owner, reset_link(mailbox)).status_code == 302
    assert login(owner, user.email, NEW_PASSWORD).status_code == 302


def test_a_reset_confirms_the_address_and_evicts_a_squatters_password(
    app: Flask, user_factory: Any, mailbox: Mailbox
) -> None:
    """Account pre-hijacking: someone registered the owner's address with their own password
    and waits for the owner to confirm it. The owner's reset confirms the address and sets the
    owner's password in one step."""
    squatted = user_factory(email="bob@example.com", username="bob", confirmed=False)
    owner = app.test_client()
    assert login(owner, squatted.email).status_code == 400  # refused like a wrong password
    ask_for_reset(owner, squatted.email)
    assert set_new_password(owner, reset_link(mailbox)).status_code == 302
    row = user_row(app, squatted.email)
    assert row is not None
    assert row.email_confirmed_at is not None
    assert login(app.test_client(), squatted.email, PASSWORD).status_code == 400
    assert login(owner, squatted.email, NEW_PASSWORD).status_code == 302


def test_requests_per_address_are_rate_limited(make_app: Any, user: Any, mailbox: Mailbox) -> None:
    limited = make_app(
        GATEHOUSE_EMAIL_REQUEST_IP_LIMIT=DEFAULTS["GATEHOUSE_EMAIL_REQUEST_IP_LIMIT"],
        GATEHOUSE_EMAIL_REQUEST_ADDRESS_LIMIT=DEFAULTS["GATEHOUSE_EMAIL_REQUEST_ADDRESS_LIMIT"],
    )
    client = limited.test_client()
    for email in (user.email, "nobody@example.com"):  # the limit reveals nothing either
        for _ in range(3):
            assert ask_for_reset(client, email).status_code == 302
        refused = ask_for_reset(client, email.upper())
        assert refused.status_code == 429
        assert 3500 <= int(refused.headers["Retry-After"]) <= 3600
    assert ask_for_reset(client, "someone@example.com").status_code == 302
    assert len(mailbox.wait_for(3)) == 3


# --- "this wasn't me" ------------------------------------------------------------------------


def test_this_wasnt_me_signs_out_the_new_device_and_sends_a_reset_link(
    app: Flask, user: Any, mailbox: Mailbox
) -> None:
    laptop = app.test_client()
    assert login(laptop, user.email).status_code == 302  # the account's first login
    logout(laptop)
    assert login(laptop, user.email).status_code == 302  # a browser it has used before
    assert all_mail_sent()
    assert mailbox.messages == [], "no notice for a first login or a known browser"

    thief = app.test_client()
    assert login(thief, user.email).status_code == 302
    (notice,) = mailbox.wait_for(1)
    assert notice["To"] == user.email
    assert notice["Subject"] == "The Blog: New sign-in to your account"
    path = link_path(notice, "/secure/")

    inbox = app.test_client()
    page = inbox.get(path)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "Secure my account" in page.text
    assert inbox.get(path).status_code == 200, "opening the link must not spend it"
    assert signed_in(thief)
    assert inbox.post(path).status_code == 400, "no CSRF token"
    assert signed_in(thief)

    response = inbox.post(path, data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert "emailed you a link to set a new password" in inbox.get("/login").text
    assert not signed_in(thief)
    assert not signed_in(laptop)
    # The password the thief knows no longer signs anyone in until the owner sets a new one.
    assert login(app.test_client(), user.email, PASSWORD).status_code == 400
    assert ("account_secured", "success") in event_kinds(app)
    again = inbox.post(path, data={"csrf_token": csrf_token(page)})
    assert again.status_code == 400
    assert INVALID in again.text

    (reset,) = delivered(mailbox, "Reset")
    assert reset["To"] == user.email
    assert set_new_password(inbox, reset_link(mailbox)).status_code == 302
    assert login(thief, user.email, PASSWORD).status_code == 400


def test_new_device_notices_can_be_turned_off(
    make_app: Any, user_factory: Any, mailbox: Mailbox
) -> None:
    app = make_app(GATEHOUSE_NOTIFY_NEW_DEVICE=False)
    account = user_factory(email="quiet@example.com")
    for _ in range(2):  # the first login, then a browser the account never used
        assert login(app.test_client(), account.email).status_code == 302
    assert all_mail_sent()
    assert mailbox.messages == []


def replace_address(app: Flask, user: Any, new_email: str) -> str:
    """What an email change leaves behind (the change's own pages are tested elsewhere): the
    old address holds a "this wasn't me" link, the account a new address and a pending change."""
    with app.app_context():
        row = db.session.get_one(User, user.id)
        token = tokens.issue("secure", row)
        row.email = new_email
        tokens.issue("change_email", row, email="mallory.next@evil.example")
        db.session.commit()
    return f"/secure/{token}"


def test_this_wasnt_me_puts_back_a_replaced_address(
    app: Flask, user: Any, mailbox: Mailbox
) -> None:
    path = replace_address(app, user, "mallory@evil.example")
    mallory = app.test_client()
    assert login(mallory, "mallory@evil.example").status_code == 302

    inbox = app.test_client()
    page = inbox.get(path)
    assert "put back <strong>alice@example.com</strong>" in page.text
    assert inbox.post(path, data={"csrf_token": csrf_token(page)}).status_code == 302
    assert not signed_in(mallory)
    assert user_row(app, user.email) is not None
    assert tokens_of(app, user.email) == ["reset"], "the pending change survived"
    assert [m["To"] for m in mailbox.wait_for(1)] == [user.email]
    assert set_new_password(inbox, reset_link(mailbox)).status_code == 302
    assert login(inbox, user.email, NEW_PASSWORD).status_code == 302


def test_this_wasnt_me_cannot_take_an_address_from_another_account(
    app: Flask, user: Any, user_factory: Any, mailbox: Mailbox
) -> None:
    """The address was registered again after it was replaced: it stays with the new account,
    and no reset link goes to the replacing address, which the link's holder never proved."""
    path = replace_address(app, user, "mallory@evil.example")
    user_factory(email="alice@example.com", username="squatter", confirmed=False)
    mallory = app.test_client()
    assert login(mallory, "mallory@evil.example").status_code == 302

    inbox = app.test_client()
    page = inbox.get(path)
    response = inbox.post(path, data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302
    assert "could not put it back" in inbox.get("/login").text
    assert not signed_in(mallory)
    assert tokens_of(app, "mallory@evil.example") == []
    assert ("account_secured", "failure") in event_kinds(app)
    assert all_mail_sent()
    assert mailbox.messages == []


def test_invalid_secure_links_are_refused(app: Flask, user: Any) -> None:
    client = app.test_client()
    for path in (f"/secure/{secrets.token_urlsafe(32)}", "/secure/" + "A" * 5000):
        page = client.get(path)
        assert page.status_code == 400
        assert INVALID in page.text
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert client.post(path, data={"csrf_token": csrf_token(page)}).status_code == 400
