"""Two-factor authentication: enrolling an authenticator app at /account/two-factor, the
sign-in stage at /login/two-factor, recovery codes, switching it off. Codes are computed
with pyotp from the key the enrolment page shows, on a clock moved across 30-second steps."""

import json
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, HTTPRedirectHandler, Request, build_opener

import pyotp
import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_gatehouse.models import Event
from flask_gatehouse.services import audit
from tests.conftest import PASSWORD, Account, all_mail_sent, csrf_token, login, logout
from tests.smtp import Mailbox, text

STEP = timedelta(seconds=30)
WRONG_CODE_MESSAGE = "That code is not right."


@pytest.fixture
def clock() -> Iterator[Any]:
    """A stopped clock one second into a 30-second step."""
    start = datetime.now(UTC).replace(second=1, microsecond=0) + timedelta(minutes=1)
    with time_machine.travel(start, tick=False) as traveller:
        yield traveller


def code_at(secret: str, offset: int = 0) -> str:
    """The app's code ``offset`` steps from now."""
    return pyotp.TOTP(secret).at(datetime.now(UTC) + offset * STEP)


def enrol(client: FlaskClient) -> tuple[str, list[str]]:
    """Switch two-factor on from the enrolment page: the key read off it and the recovery
    codes shown."""
    page = client.get("/account/two-factor")
    assert page.status_code == 200
    secret = key_on(page)
    answer = client.post(
        "/account/two-factor", data={"csrf_token": csrf_token(page), "code": code_at(secret)}
    )
    assert answer.status_code == 200
    return secret, recovery_codes(answer)


def key_on(page: TestResponse) -> str:
    """The key the enrolment page shows, without its spaces."""
    key = re.search(r'class="totp-key">([A-Z2-7 ]+)<', page.text)
    assert key, "no key on the enrolment page"
    return key.group(1).replace(" ", "")


def recovery_codes(page: TestResponse) -> list[str]:
    codes = re.findall(r"<li><code>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})</code></li>", page.text)
    assert len(codes) == 10
    return codes


def send_code(client: FlaskClient, code: str) -> TestResponse:
    page = client.get("/login/two-factor")
    return client.post("/login/two-factor", data={"csrf_token": csrf_token(page), "code": code})


def post_form(
    client: FlaskClient, url: str, form_page: str = "/account/two-factor"
) -> TestResponse:
    return client.post(url, data={"csrf_token": csrf_token(client.get(form_page))})


def signed_in(client: FlaskClient) -> bool:
    return client.get("/blogs").status_code == 200


@pytest.fixture
def enrolled(clock: Any, logged_in: FlaskClient) -> tuple[FlaskClient, str, list[str]]:
    """Alice with two-factor on, signed out; the clock a step past the enrolment code's."""
    secret, codes = enrol(logged_in)
    logout(logged_in)
    clock.shift(STEP)
    return logged_in, secret, codes


def password_passed(client: FlaskClient, user: Account) -> None:
    answer = login(client, user.email)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/login/two-factor"


def events(app: Flask, kind: str) -> list[Event]:
    with app.app_context():
        return audit.recent(kind=kind)


# --- enrolment --------------------------------------------------------------------------------


def test_enrolment_shows_a_qr_code_the_key_and_the_uri(clock: Any, logged_in: FlaskClient) -> None:
    page = logged_in.get("/account/two-factor")
    key = re.search(r'class="totp-key">([A-Z2-7 ]+)<', page.text)
    assert key
    groups = key.group(1).split(" ")
    assert [len(group) for group in groups] == [4] * 8  # 32 base32 characters: 20 bytes
    assert 'src="data:image/svg+xml;' in page.text
    assert "<script" not in page.text
    uri = f"otpauth://totp/The%20Blog:alice%40example.com?secret={''.join(groups)}"
    assert uri in page.text.replace("&amp;", "&")
    assert "issuer=The%20Blog" in page.text


def test_enrolment_needs_a_valid_code(
    app: Flask, clock: Any, logged_in: FlaskClient, user: Account, mailbox: Mailbox
) -> None:
    page = logged_in.get("/account/two-factor")
    secret = key_on(page)
    wrong = logged_in.post(
        "/account/two-factor",
        data={"csrf_token": csrf_token(page), "code": code_at(secret, -2)},
    )
    assert wrong.status_code == 400
    assert WRONG_CODE_MESSAGE in wrong.text
    assert secret in wrong.text.replace(" ", "")  # the same key, to try again
    logout(logged_in)
    assert login(logged_in, user.email).headers["Location"] == "/blogs"  # still off

    answer = logged_in.post(
        "/account/two-factor",
        data={"csrf_token": csrf_token(logged_in.get("/logout")), "code": code_at(secret)},
    )
    assert answer.status_code == 200
    assert (
        "Two-factor authentication is <strong>on</strong>"
        in logged_in.get("/account/two-factor").text
    )
    assert all_mail_sent()
    (notice,) = [m for m in mailbox.to(user.email) if "is on" in m["Subject"]]
    assert notice["Subject"] == "The Blog: Two-factor authentication is on"
    assert [e.outcome for e in events(app, "two_factor_enabled")] == ["success", "failure"]


def test_the_recovery_codes_are_shown_once_with_a_download(
    clock: Any, logged_in: FlaskClient
) -> None:
    _, codes = enrol(logged_in)
    assert len(set(codes)) == 10
    page = logged_in.get("/account/two-factor")
    assert not any(code in page.text for code in codes)
    assert "Unused recovery codes: <strong>10</strong>" in page.text


def test_the_download_holds_the_codes(clock: Any, logged_in: FlaskClient) -> None:
    page = logged_in.get("/account/two-factor")
    secret = key_on(page)
    shown = logged_in.post(
        "/account/two-factor", data={"csrf_token": csrf_token(page), "code": code_at(secret)}
    )
    link = re.search(
        r'download="recovery-codes.txt" href="data:text/plain;charset=utf-8,([^"]+)"', shown.text
    )
    assert link
    assert all(code in link.group(1) for code in recovery_codes(shown))


def test_enrolment_needs_a_recent_login(clock: Any, logged_in: FlaskClient) -> None:
    clock.shift(timedelta(minutes=16))
    answer = logged_in.get("/account/two-factor")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/reauthenticate?next=")


def test_enrolment_needs_a_confirmed_address(make_app: Any, user_factory: Any) -> None:
    app = make_app(GATEHOUSE_EMAIL_CONFIRMATION="optional")
    account = user_factory(email="new@example.com", confirmed=False)
    client = app.test_client()
    assert login(client, account.email).status_code == 302
    page = client.get("/account/two-factor")
    assert "Confirm your email address first" in page.text
    assert "totp-key" not in page.text
    answer = client.post(
        "/account/two-factor",
        data={"csrf_token": csrf_token(client.get("/logout")), "code": "123456"},
    )
    assert answer.status_code == 400
    assert "Two-factor authentication is <strong>on</strong>" not in answer.text


# --- signing in -------------------------------------------------------------------------------


def test_sign_in_waits_for_the_code(
    app: Flask, enrolled: tuple[FlaskClient, str, list[str]], user: Account
) -> None:
    client, secret, _ = enrolled
    password_passed(client, user)
    assert not signed_in(client)
    assert client.get("/account").status_code == 302
    answer = send_code(client, code_at(secret))
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/blogs"
    assert signed_in(client)
    assert [e.detail for e in events(app, "two_factor")] == ["authenticator app"]


def test_a_sign_in_keeps_its_next_page(
    enrolled: tuple[FlaskClient, str, list[str]], user: Account
) -> None:
    client, secret, _ = enrolled
    assert login(client, user.email, next="/account").headers["Location"] == "/login/two-factor"
    assert send_code(client, code_at(secret)).headers["Location"] == "/account"


def test_another_stage_page_cannot_complete_the_sign_in(
    app: Flask, enrolled: tuple[FlaskClient, str, list[str]], user: Account
) -> None:
    """A pending sign-in is completed only by the page of the stage it waits at: choosing a
    "new password" at /login/new-password must not skip the code."""
    client, _, _ = enrolled
    password_passed(client, user)
    token = csrf_token(client.get("/login/two-factor"))
    answer = client.post(
        "/login/new-password", data={"csrf_token": token, "password": "a password to skip it"}
    )
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/login"
    assert not signed_in(client)
    assert login(app.test_client(), user.email, "a password to skip it").status_code == 400


def test_the_second_factor_comes_before_a_required_password_change(
    app: Flask, enrolled: tuple[FlaskClient, str, list[str]], user: Account
) -> None:
    """A temporary password alone changes nothing: the code first, then the new password."""
    client, secret, _ = enrolled
    result = app.test_cli_runner().invoke(
        args=["gatehouse", "set-password", user.email, "--temporary", "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    password_passed(client, user)
    assert client.get("/login/new-password").status_code == 302  # not before the code
    assert send_code(client, code_at(secret)).headers["Location"] == "/login/new-password"
    assert not signed_in(client)
    page = client.get("/login/new-password")
    chosen = client.post(
        "/login/new-password",
        data={"csrf_token": csrf_token(page), "password": "a fresh passphrase for alice"},
    )
    assert chosen.headers["Location"] == "/blogs"
    assert signed_in(client)
    assert all_mail_sent()  # while the clock still stands where the mail is due


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_the_steps_either_side_are_accepted(
    enrolled: tuple[FlaskClient, str, list[str]], user: Account, clock: Any, offset: int
) -> None:
    client, secret, _ = enrolled
    clock.shift(3 * STEP)
    password_passed(client, user)
    assert send_code(client, code_at(secret, offset)).status_code == 302
    assert signed_in(client)


@pytest.mark.parametrize("offset", [-2, 2])
def test_a_code_two_steps_away_is_refused(
    enrolled: tuple[FlaskClient, str, list[str]], user: Account, clock: Any, offset: int
) -> None:
    client, secret, _ = enrolled
    clock.shift(3 * STEP)
    password_passed(client, user)
    answer = send_code(client, code_at(secret, offset))
    assert answer.status_code == 400
    assert WRONG_CODE_MESSAGE in answer.text
    assert not signed_in(client)


def test_a_code_is_never_accepted_twice(
    enrolled: tuple[FlaskClient, str, list[str]], user: Account, clock: Any
) -> None:
    """Not the same code in its step, nor an older step's code once a later one was used."""
    client, secret, _ = enrolled
    password_passed(client, user)
    used = code_at(secret)
    assert send_code(client, used).status_code == 302
    logout(client)
    password_passed(client, user)
    assert send_code(client, used).status_code == 400
    assert send_code(client, code_at(secret, -1)).status_code == 400
    clock.shift(STEP)
    assert send_code(client, code_at(secret)).status_code == 302


def test_the_page_needs_a_pending_sign_in(client: FlaskClient) -> None:
    answer = client.get("/login/two-factor")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/login"


def test_five_wrong_codes_discard_the_sign_in(
    app: Flask, enrolled: tuple[FlaskClient, str, list[str]], user: Account
) -> None:
    client, secret, _ = enrolled
    password_passed(client, user)
    for _ in range(4):
        answer = send_code(client, "000000")
        assert answer.status_code == 400
        assert WRONG_CODE_MESSAGE in answer.text
    answer = send_code(client, "000000")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/login"
    # The pending sign-in is gone: the right code no longer helps.
    assert client.get("/login/two-factor").headers["Location"] == "/login"
    assert not signed_in(client)
    details = [e.detail for e in events(app, "two_factor")]
    assert details == ["sign-in discarded"] + ["wrong code"] * 5
    # The password again opens a new pending sign-in with five more tries.
    password_passed(client, user)
    assert send_code(client, code_at(secret)).status_code == 302
    assert signed_in(client)


def _opener() -> Any:
    class NoRedirect(HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    # The cookies are Secure; the local test server speaks plain HTTP.
    jar = CookieJar(DefaultCookiePolicy(secure_protocols=("http", "https")))
    return build_opener(HTTPCookieProcessor(jar), NoRedirect())


def _post(opener: Any, url: str, form: dict[str, str]) -> int:
    request = Request(url, data=urlencode(form).encode())  # noqa: S310 - local test server
    try:
        with opener.open(request, timeout=30) as response:
            return int(response.status)
    except HTTPError as answer:
        with answer:
            return answer.code


def _token(opener: Any, url: str) -> str:
    with opener.open(url, timeout=30) as page:
        found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.read().decode())
    assert found
    return found.group(1)


@pytest.mark.parametrize("kind", ["app", "recovery"])
def test_one_code_sent_by_two_browsers_at_once_signs_in_one(
    enrolled: tuple[FlaskClient, str, list[str]], user: Account, live_server: str, kind: str
) -> None:
    _, secret, codes = enrolled
    browsers = [_opener() for _ in range(2)]
    for browser in browsers:
        form = {"csrf_token": _token(browser, f"{live_server}/login"), "email": user.email}
        assert _post(browser, f"{live_server}/login", {**form, "password": user.password}) == 302
    code = code_at(secret) if kind == "app" else codes[0]
    tokens = [_token(browser, f"{live_server}/login/two-factor") for browser in browsers]
    barrier = threading.Barrier(len(browsers))

    def send(browser: Any, token: str) -> int:
        barrier.wait(timeout=30)
        return _post(
            browser, f"{live_server}/login/two-factor", {"csrf_token": token, "code": code}
        )

    with ThreadPoolExecutor(len(browsers)) as pool:
        statuses = sorted(pool.map(send, browsers, tokens))
    assert statuses == [302, 400]


# --- recovery codes ---------------------------------------------------------------------------


def test_each_recovery_code_works_once(
    app: Flask, enrolled: tuple[FlaskClient, str, list[str]], user: Account, mailbox: Mailbox
) -> None:
    client, _, codes = enrolled
    password_passed(client, user)
    typed = f" {codes[0].upper().replace('-', ' ')} "  # case, spaces and dashes do not count
    assert send_code(client, typed).status_code == 302
    assert signed_in(client)
    logout(client)
    password_passed(client, user)
    assert send_code(client, codes[0]).status_code == 400
    assert send_code(client, codes[1]).status_code == 302
    assert all_mail_sent()
    notices = [m for m in mailbox.to(user.email) if "recovery code was used" in m["Subject"]]
    assert [n["Subject"] for n in notices] == ["The Blog: A recovery code was used"] * 2
    assert "8 unused codes left" in text(notices[-1])
    assert "running out" not in text(notices[-1])


def test_a_warning_when_three_recovery_codes_are_left(
    enrolled: tuple[FlaskClient, str, list[str]], user: Account, mailbox: Mailbox
) -> None:
    client, _, codes = enrolled
    for code in codes[:7]:
        password_passed(client, user)
        assert send_code(client, code).status_code == 302
        logout(client)
    assert all_mail_sent()
    last = [m for m in mailbox.to(user.email) if "recovery code was used" in m["Subject"]][-1]
    assert "3 unused codes left" in text(last)
    assert "running out of recovery codes" in text(last)
    assert "/account/two-factor" in text(last)


def test_new_recovery_codes_void_the_old_ones(
    enrolled: tuple[FlaskClient, str, list[str]], user: Account, mailbox: Mailbox
) -> None:
    client, secret, old = enrolled
    password_passed(client, user)
    assert send_code(client, code_at(secret)).status_code == 302
    shown = post_form(client, "/account/two-factor/recovery-codes")
    assert shown.status_code == 200
    new = recovery_codes(shown)
    assert not set(new) & set(old)
    logout(client)
    password_passed(client, user)
    assert send_code(client, old[2]).status_code == 400
    assert send_code(client, new[2]).status_code == 302
    assert all_mail_sent()
    assert [m for m in mailbox.to(user.email) if "New recovery codes" in m["Subject"]]


# --- switching off, recent login --------------------------------------------------------------


def test_disabling_removes_the_app_and_the_codes(
    app: Flask, enrolled: tuple[FlaskClient, str, list[str]], user: Account, mailbox: Mailbox
) -> None:
    client, secret, _ = enrolled
    password_passed(client, user)
    assert send_code(client, code_at(secret)).status_code == 302
    answer = post_form(client, "/account/two-factor/disable")
    assert answer.headers["Location"] == "/account/two-factor"
    assert (
        "Two-factor authentication is <strong>off</strong>"
        in client.get("/account/two-factor").text
    )
    logout(client)
    assert login(client, user.email).headers["Location"] == "/blogs"
    assert all_mail_sent()
    assert [m for m in mailbox.to(user.email) if "is off" in m["Subject"]]
    assert [e.outcome for e in events(app, "two_factor_disabled")] == ["success"]


@pytest.mark.parametrize(
    "url", ["/account/two-factor/disable", "/account/two-factor/recovery-codes"]
)
def test_disabling_and_new_codes_need_a_recent_login(
    enrolled: tuple[FlaskClient, str, list[str]], user: Account, clock: Any, url: str
) -> None:
    client, secret, _ = enrolled
    password_passed(client, user)
    assert send_code(client, code_at(secret)).status_code == 302
    token = csrf_token(client.get("/account/two-factor"))
    clock.shift(timedelta(minutes=16))
    answer = client.post(url, data={"csrf_token": token})
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/reauthenticate?next=")
    logout(client)
    assert login(client, user.email).headers["Location"] == "/login/two-factor"  # still on


# --- account page and data export -------------------------------------------------------------


def test_the_account_page_shows_the_status(clock: Any, logged_in: FlaskClient) -> None:
    def shown() -> tuple[str, ...]:
        found = re.search(
            r'<dt>Two-factor</dt>\s*<dd><span class="tag">(on|off)</span>\s*'
            r'<a class="setting-link" href="/account/two-factor">(Set up|Manage)<',
            logged_in.get("/account").text,
        )
        assert found
        return found.groups()

    assert shown() == ("off", "Set up")
    enrol(logged_in)
    assert shown() == ("on", "Manage")


def test_the_export_has_the_metadata_and_no_secret(clock: Any, logged_in: FlaskClient) -> None:
    secret, codes = enrol(logged_in)
    body = logged_in.get("/account/data").text
    data = json.loads(body)
    assert data["two_factor"]["enabled"] is True
    assert data["two_factor"]["unused_recovery_codes"] == 10
    assert data["two_factor"]["authenticator_app_added_at"]
    assert secret not in body
    assert not any(code in body or code.replace("-", "") in body.lower() for code in codes)
