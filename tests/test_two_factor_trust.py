"""Two-factor authentication, after the first code: "trust this browser" (its sign-ins skip
the code for 30 days, listed on the account page, revoked one by one or all at once by a
password change or reset, by switching two-factor off, or by the operator), and the
account's lockout for codes (10 wrong codes an hour, wherever they are typed: the sign-in,
re-authentication, a password reset), in which a stranger's wrong codes never lock the
owner's known browsers."""

import hashlib
import json
import re
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import PASSWORD, Account, all_mail_sent, csrf_token, login, logout
from tests.smtp import Mailbox, text
from tests.test_cli import gatehouse
from tests.test_recovery import NEW_PASSWORD, ask_for_reset, reset_link
from tests.test_two_factor import (
    STEP,
    WRONG_CODE_MESSAGE,
    clock,
    code_at,
    enrol,
    enrolled,
    events,
    password_passed,
    post_form,
    send_code,
    signed_in,
)

__all__ = ["clock", "enrolled"]  # fixtures: the stopped clock, Alice with two-factor on

TRUST_COOKIE = "__Host-gatehouse_trusted_browser"
TRUST_DURATION = timedelta(days=30)
TRUSTED_SECTION = "Browsers that skip the two-factor code"
LOCKED_SUBJECT = "The Blog: Someone is trying to sign in to your account"
LOCKED_MESSAGE = re.compile(r"Too many failed attempts\. Try again in \d+ minutes?\.")
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
WRONG = "000000"

Enrolled = tuple[FlaskClient, str, list[str]]


# --- helpers ----------------------------------------------------------------------------------


def browser(app: Flask, user_agent: str = FIREFOX) -> FlaskClient:
    """A browser that never signed in (no cookies), with a real User-Agent."""
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = user_agent
    return client


def code_sent(client: FlaskClient, secret: str, clock: Any, *, trust: bool = False) -> TestResponse:
    """Type the app's current code at /login/two-factor, ticking "trust this browser" when
    ``trust``; the clock then moves a step on, so that the next code is a fresh one."""
    page = client.get("/login/two-factor")
    form = {"csrf_token": csrf_token(page), "code": code_at(secret)}
    if trust:
        form["trust_browser"] = "y"
    answer = client.post("/login/two-factor", data=form)
    clock.shift(STEP)
    return answer


def sign_in(
    client: FlaskClient, user: Account, secret: str, clock: Any, *, trust: bool = False
) -> None:
    """The password, then the code."""
    password_passed(client, user)
    answer = code_sent(client, secret, clock, trust=trust)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/blogs"


def skips_the_code(client: FlaskClient, user: Account, password: str = PASSWORD) -> bool:
    """Sign in with the password: True when that alone started a session, False when the
    browser was sent on to the code (the pending sign-in is then left there)."""
    answer = login(client, user.email, password)
    assert answer.status_code == 302
    if answer.headers["Location"] == "/login/two-factor":
        assert not signed_in(client)
        return False
    assert answer.headers["Location"] == "/blogs"
    assert signed_in(client)
    return True


def trusted_rows(client: FlaskClient) -> list[tuple[str, str]]:
    """(device, revoke URL) of each browser the account page lists as skipping the code."""
    page = client.get("/account")
    assert page.status_code == 200
    if TRUSTED_SECTION not in page.text:
        return []
    section = page.text.split(TRUSTED_SECTION, 1)[1].split("</section>", 1)[0]
    return re.findall(
        r'<td data-label="Device">([^<]+)</td>.*?'
        r'action="(/account/trusted-browsers/\d+/revoke)"',
        section,
        re.DOTALL,
    )


def revoke(client: FlaskClient, url: str) -> TestResponse:
    """Press "Stop trusting" (the account page's form, with its CSRF token)."""
    answer = client.post(url, data={"csrf_token": csrf_token(client.get("/account"))})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/account"
    return answer


def wrong_codes_at_sign_in(client: FlaskClient, user: Account, count: int) -> None:
    """The right password, then ``count`` wrong codes, five per pending sign-in (the fifth
    discards it and the password is typed again)."""
    for typed in range(count):
        if typed % 5 == 0:
            password_passed(client, user)
        answer = send_code(client, WRONG)
        if typed % 5 == 4:
            assert answer.headers["Location"] == "/login"
        else:
            assert answer.status_code == 400
            assert WRONG_CODE_MESSAGE in answer.text
    assert not signed_in(client)


def assert_locked(answer: TestResponse) -> int:
    """A code refused unchecked: 429, a Retry-After of at most an hour, the wait on the
    form; the seconds to wait."""
    assert answer.status_code == 429
    retry_after = int(answer.headers["Retry-After"])
    assert 0 < retry_after <= 3600
    assert LOCKED_MESSAGE.search(answer.text)
    return retry_after


def lock_mails(mailbox: Mailbox, user: Account) -> list[EmailMessage]:
    assert all_mail_sent()
    return [m for m in mailbox.to(user.email) if m["Subject"] == LOCKED_SUBJECT]


def reset_form(client: FlaskClient, path: str, code: str) -> TestResponse:
    """A new password and a second-factor code at a reset link."""
    page = client.get(path)
    assert page.status_code == 200
    form = {"csrf_token": csrf_token(page), "password": NEW_PASSWORD, "code": code}
    return client.post(path, data=form)


def reauthenticate(client: FlaskClient, code: str) -> TestResponse:
    page = client.get("/reauthenticate")
    form = {"csrf_token": csrf_token(page), "password": PASSWORD, "code": code}
    return client.post("/reauthenticate", data=form)


# --- trusting a browser -----------------------------------------------------------------------


def test_a_trusted_browser_signs_in_with_the_password_alone(
    clock: Any, app: Flask, enrolled: Enrolled, user: Account
) -> None:
    client, secret, _ = enrolled
    password_passed(client, user)
    page = client.get("/login/two-factor")
    assert 'name="trust_browser"' in page.text
    assert "Trust this browser for 30 days" in page.text
    answer = code_sent(client, secret, clock, trust=True)
    assert answer.headers["Location"] == "/blogs"
    cookie = client.get_cookie(TRUST_COOKIE)
    assert cookie is not None
    assert cookie.max_age == TRUST_DURATION.total_seconds()
    assert (cookie.secure, cookie.http_only, cookie.same_site) == (True, True, "Lax")
    logout(client)

    assert login(client, user.email, next="/account").headers["Location"] == "/account"
    assert signed_in(client)
    assert client.get("/login/two-factor").headers["Location"] == "/login"  # nothing pending
    logout(client)
    assert skips_the_code(client, user)
    # The password is still needed.
    logout(client)
    wrong = login(client, user.email, "not the password, but long enough")
    assert wrong.status_code == 400
    assert not signed_in(client)
    # Another browser is asked for the code.
    assert not skips_the_code(browser(app), user)
    assert [e.detail for e in events(app, "two_factor")] == ["authenticator app"]


def test_without_ticking_the_box_the_code_is_asked_again(
    clock: Any, enrolled: Enrolled, user: Account
) -> None:
    client, secret, _ = enrolled
    sign_in(client, user, secret, clock)
    assert client.get_cookie(TRUST_COOKIE) is None
    assert trusted_rows(client) == []
    logout(client)
    assert not skips_the_code(client, user)


def test_a_wrong_code_trusts_nothing(clock: Any, enrolled: Enrolled, user: Account) -> None:
    client, secret, _ = enrolled
    password_passed(client, user)
    page = client.get("/login/two-factor")
    form = {"csrf_token": csrf_token(page), "code": WRONG, "trust_browser": "y"}
    assert client.post("/login/two-factor", data=form).status_code == 400
    assert client.get_cookie(TRUST_COOKIE) is None
    assert code_sent(client, secret, clock).status_code == 302  # the box not ticked this time
    logout(client)
    assert not skips_the_code(client, user)


def test_the_trust_lasts_30_days(clock: Any, enrolled: Enrolled, user: Account) -> None:
    client, secret, _ = enrolled
    sign_in(client, user, secret, clock, trust=True)
    logout(client)
    clock.shift(TRUST_DURATION - timedelta(minutes=1))
    assert skips_the_code(client, user)  # a use does not extend it
    logout(client)
    clock.shift(timedelta(minutes=2))
    # The test client still sends the cookie, as a browser with a wrong clock would: the
    # server's record has expired all the same.
    assert client.get_cookie(TRUST_COOKIE) is not None
    assert not skips_the_code(client, user)


def test_a_damaged_or_made_up_cookie_vouches_for_nothing(
    clock: Any, app: Flask, enrolled: Enrolled, user: Account
) -> None:
    client, secret, _ = enrolled
    sign_in(client, user, secret, clock, trust=True)
    cookie = client.get_cookie(TRUST_COOKIE)
    assert cookie is not None
    for value in (cookie.value[:-2], "x" * 43, "x" * 100):
        other = browser(app)
        other.set_cookie(TRUST_COOKIE, value)
        assert not skips_the_code(other, user)


# --- the account page -------------------------------------------------------------------------


def test_the_account_page_lists_trusted_browsers_and_stops_trusting_one(
    clock: Any, app: Flask, enrolled: Enrolled, user: Account
) -> None:
    laptop, secret, _ = enrolled
    laptop.environ_base["HTTP_USER_AGENT"] = FIREFOX
    desktop = browser(app, CHROME)
    sign_in(laptop, user, secret, clock, trust=True)
    sign_in(desktop, user, secret, clock, trust=True)
    rows = trusted_rows(laptop)
    assert [device for device, _ in rows] == ["Chrome on Windows", "Firefox on Linux"]
    page = laptop.get("/account").text
    assert "Stop trusting" in page
    assert "127.0.0.1" in page.split(TRUSTED_SECTION, 1)[1]

    (revoke_desktop,) = [url for device, url in rows if device.startswith("Chrome")]
    answer = revoke(laptop, revoke_desktop)
    assert "That browser will be asked for a code at its next sign-in." in (
        laptop.get(answer.headers["Location"]).text
    )
    assert [device for device, _ in trusted_rows(laptop)] == ["Firefox on Linux"]
    (event,) = events(app, "trusted_browser_revoked")
    assert (event.outcome, event.user_id) == ("success", user.id)

    logout(desktop)
    assert not skips_the_code(desktop, user)
    logout(laptop)
    assert skips_the_code(laptop, user)
    # Pressed again (a second tab): nothing left to revoke.
    revoke(laptop, revoke_desktop)
    assert "That browser was no longer trusted." in laptop.get("/account").text


def test_stopping_trust_needs_the_csrf_token(clock: Any, enrolled: Enrolled, user: Account) -> None:
    client, secret, _ = enrolled
    sign_in(client, user, secret, clock, trust=True)
    ((_, url),) = trusted_rows(client)
    answer = client.post(url)
    assert answer.headers["Location"] == "/account"
    assert "That form expired. Please try again." in client.get("/account").text
    assert len(trusted_rows(client)) == 1
    logout(client)
    assert skips_the_code(client, user)


def test_another_user_cannot_stop_trusting_my_browser(
    clock: Any, app: Flask, enrolled: Enrolled, user: Account, user_factory: Any
) -> None:
    client, secret, _ = enrolled
    sign_in(client, user, secret, clock, trust=True)
    ((_, url),) = trusted_rows(client)
    bob = user_factory(email="bob@example.com", username="bob")
    intruder = browser(app)
    assert login(intruder, bob.email).headers["Location"] == "/blogs"
    revoke(intruder, url)
    assert "That browser was no longer trusted." in intruder.get("/account").text
    assert events(app, "trusted_browser_revoked") == []
    assert len(trusted_rows(client)) == 1
    logout(client)
    assert skips_the_code(client, user)


def test_the_export_lists_the_browser_without_its_token(
    clock: Any, enrolled: Enrolled, user: Account
) -> None:
    client, secret, _ = enrolled
    client.environ_base["HTTP_USER_AGENT"] = FIREFOX
    sign_in(client, user, secret, clock, trust=True)
    cookie = client.get_cookie(TRUST_COOKIE)
    assert cookie is not None
    body = client.get("/account/data").text
    (listed,) = json.loads(body)["two_factor"]["trusted_browsers"]
    assert set(listed) == {"created_at", "last_used_at", "expires_at", "ip", "device"}
    assert (listed["device"], listed["ip"]) == ("Firefox on Linux", "127.0.0.1")
    assert cookie.value not in body
    assert hashlib.sha256(cookie.value.encode()).hexdigest() not in body


# --- what revokes every trusted browser -------------------------------------------------------


def two_trusted_browsers(
    app: Flask, enrolled: Enrolled, user: Account, clock: Any
) -> tuple[FlaskClient, FlaskClient, str]:
    """Alice's own browser (signed in) and a second one (signed out), both trusted."""
    client, secret, _ = enrolled
    other = browser(app, CHROME)
    sign_in(other, user, secret, clock, trust=True)
    logout(other)
    sign_in(client, user, secret, clock, trust=True)
    assert len(trusted_rows(client)) == 2
    return client, other, secret


def test_a_password_change_stops_trusting_every_browser(
    clock: Any, app: Flask, enrolled: Enrolled, user: Account
) -> None:
    client, other, _ = two_trusted_browsers(app, enrolled, user, clock)
    page = client.get("/account/password")
    answer = client.post(
        "/account/password",
        data={
            "csrf_token": csrf_token(page),
            "current_password": PASSWORD,
            "password": NEW_PASSWORD,
        },
    )
    assert answer.headers["Location"] == "/account"
    assert trusted_rows(client) == []
    logout(client)
    assert not skips_the_code(client, user, NEW_PASSWORD)
    assert not skips_the_code(other, user, NEW_PASSWORD)


def test_a_password_reset_stops_trusting_every_browser(
    clock: Any, app: Flask, enrolled: Enrolled, user: Account, mailbox: Mailbox
) -> None:
    client, other, secret = two_trusted_browsers(app, enrolled, user, clock)
    logout(client)
    assert ask_for_reset(other, user.email).status_code == 302
    answer = reset_form(other, reset_link(mailbox), code_at(secret))
    assert answer.headers["Location"] == "/login"
    assert not skips_the_code(client, user, NEW_PASSWORD)
    assert not skips_the_code(other, user, NEW_PASSWORD)


def test_switching_two_factor_off_stops_trusting_every_browser(
    clock: Any, app: Flask, enrolled: Enrolled, user: Account
) -> None:
    client, other, _ = two_trusted_browsers(app, enrolled, user, clock)
    answer = post_form(client, "/account/two-factor/disable")
    assert answer.headers["Location"] == "/account/two-factor"
    enrol(client)  # on again, with a new app
    logout(client)
    assert not skips_the_code(client, user)
    assert not skips_the_code(other, user)


def test_the_operators_reset_stops_trusting_every_browser(
    clock: Any, app: Flask, enrolled: Enrolled, user: Account, runner: Any
) -> None:
    client, other, _ = two_trusted_browsers(app, enrolled, user, clock)
    assert gatehouse(runner, "two-factor", "reset", user.email).exit_code == 0
    enrol(client)
    logout(client)
    assert not skips_the_code(client, user)
    assert not skips_the_code(other, user)


def test_one_accounts_trust_does_not_skip_anothers_code(
    clock: Any, enrolled: Enrolled, user: Account, user_factory: Any
) -> None:
    """Alice and Bob share a browser: Alice's trust is hers alone; the browser holds one
    trust, so Bob's replaces hers."""
    client, alice_secret, _ = enrolled
    bob = user_factory(email="bob@example.com", username="bob")
    assert login(client, bob.email).headers["Location"] == "/blogs"
    bob_secret, _ = enrol(client)
    logout(client)
    clock.shift(STEP)

    sign_in(client, user, alice_secret, clock, trust=True)
    logout(client)
    assert not skips_the_code(client, bob)
    assert code_sent(client, bob_secret, clock).status_code == 302
    logout(client)
    assert skips_the_code(client, user)
    logout(client)

    sign_in(client, bob, bob_secret, clock, trust=True)
    logout(client)
    assert skips_the_code(client, bob)
    logout(client)
    assert not skips_the_code(client, user)
    # Alice's record went with her trust: her account page lists no browser that cannot use it.
    assert code_sent(client, alice_secret, clock).status_code == 302
    assert trusted_rows(client) == []


# --- the account's lockout for codes ----------------------------------------------------------


def test_ten_wrong_codes_lock_the_second_step(
    clock: Any, app: Flask, enrolled: Enrolled, user: Account, mailbox: Mailbox
) -> None:
    _, secret, _ = enrolled
    stranger = browser(app)
    wrong_codes_at_sign_in(stranger, user, 10)
    (mail,) = lock_mails(mailbox, user)
    assert "your password is known to someone else" in text(mail)
    assert "locked for up to 1 hour" in text(mail)
    assert re.search(r"https://gatehouse\.test/forgot\b", text(mail))
    (locked,) = events(app, "two_factor_locked")
    assert (locked.outcome, locked.user_id) == ("success", user.id)

    # The right code, from a new sign-in, is not even checked.
    password_passed(stranger, user)
    retry_after = assert_locked(send_code(stranger, code_at(secret)))
    assert not signed_in(stranger)
    assert "second step locked" in [e.detail for e in events(app, "two_factor")]
    # The same from another unknown browser; and no second mail.
    other = browser(app)
    password_passed(other, user)
    assert_locked(send_code(other, code_at(secret)))
    assert len(lock_mails(mailbox, user)) == 1

    clock.shift(timedelta(seconds=retry_after - 60))
    password_passed(other, user)
    assert_locked(send_code(other, code_at(secret)))
    clock.shift(timedelta(seconds=61))
    password_passed(stranger, user)
    assert send_code(stranger, code_at(secret)).headers["Location"] == "/blogs"
    assert signed_in(stranger)
    assert len(lock_mails(mailbox, user)) == 1


def test_a_stranger_does_not_lock_the_owners_known_browser(
    clock: Any, app: Flask, enrolled: Enrolled, user: Account, mailbox: Mailbox
) -> None:
    owner, secret, _ = enrolled  # it signed in before: it has the device cookie
    wrong_codes_at_sign_in(browser(app), user, 10)
    other = browser(app)
    password_passed(other, user)
    assert_locked(send_code(other, code_at(secret)))
    sign_in(owner, user, secret, clock)
    assert len(lock_mails(mailbox, user)) == 1


def test_wrong_codes_at_reauthentication_lock_the_reset_page(
    clock: Any, app: Flask, enrolled: Enrolled, user: Account, mailbox: Mailbox
) -> None:
    client, secret, _ = enrolled
    sign_in(client, user, secret, clock)
    page = client.get("/reauthenticate")
    assert 'name="code"' in page.text
    for _ in range(10):
        answer = reauthenticate(client, WRONG)
        assert answer.status_code == 400
        assert WRONG_CODE_MESSAGE in answer.text
    assert_locked(reauthenticate(client, code_at(secret)))
    assert len(lock_mails(mailbox, user)) == 1
    logout(client)

    assert ask_for_reset(client, user.email).status_code == 302
    link = reset_link(mailbox)
    assert_locked(reset_form(client, link, code_at(secret)))
    assert not skips_the_code(client, user)  # the old password still works
    assert_locked(send_code(client, code_at(secret)))  # and so does the lock
    details = [e.detail for e in events(app, "reauthenticated")]
    assert details.count("wrong code") == 10


def test_wrong_codes_at_reset_and_sign_in_add_up(
    clock: Any, app: Flask, enrolled: Enrolled, user: Account, mailbox: Mailbox
) -> None:
    _, secret, _ = enrolled
    holder = browser(app)  # someone with the owner's mailbox and password
    assert ask_for_reset(holder, user.email).status_code == 302
    link = reset_link(mailbox)
    page = holder.get(link)
    assert 'name="code"' in page.text
    for _ in range(5):
        answer = reset_form(holder, link, WRONG)
        assert answer.status_code == 400
        assert WRONG_CODE_MESSAGE in answer.text
    wrong_codes_at_sign_in(browser(app), user, 5)
    assert len(lock_mails(mailbox, user)) == 1
    assert_locked(reset_form(holder, link, code_at(secret)))
    other = browser(app)
    password_passed(other, user)
    assert_locked(send_code(other, code_at(secret)))
    # The link is still usable, the password unchanged.
    assert holder.get(link).status_code == 200
    assert [e.detail for e in events(app, "password_reset")].count("wrong code") == 5


def test_a_right_code_forgets_the_wrong_ones(
    clock: Any, app: Flask, enrolled: Enrolled, user: Account, mailbox: Mailbox
) -> None:
    _, secret, _ = enrolled
    first, second = browser(app), browser(app)
    wrong_codes_at_sign_in(first, user, 9)
    assert code_sent(first, secret, clock).headers["Location"] == "/blogs"
    wrong_codes_at_sign_in(second, user, 9)
    assert code_sent(second, secret, clock).headers["Location"] == "/blogs"
    assert lock_mails(mailbox, user) == []
    assert events(app, "two_factor_locked") == []


@pytest.mark.parametrize("count", [9, 10])
def test_the_limit_is_ten(
    clock: Any, app: Flask, enrolled: Enrolled, user: Account, mailbox: Mailbox, count: int
) -> None:
    _, secret, _ = enrolled
    stranger = browser(app)
    wrong_codes_at_sign_in(stranger, user, count)
    password_passed(stranger, user)
    answer = code_sent(stranger, secret, clock)
    assert answer.status_code == (302 if count == 9 else 429)
    assert len(lock_mails(mailbox, user)) == (1 if count == 10 else 0)
