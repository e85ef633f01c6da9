"""Two-factor beyond the sign-in page: the code asked again at re-authentication and at a
password reset (a password or a mailbox alone must not be enough), and the site's policy
GATEHOUSE_MFA_REQUIRED, which makes users enrol while signing in, within a grace period.

Codes come from pyotp with the key each enrolment page shows, on a stopped clock."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests import test_two_factor
from tests.conftest import PASSWORD, Account, all_mail_sent, csrf_token, login, logout
from tests.smtp import Mailbox, text
from tests.test_durations import host_from_environment
from tests.test_recovery import NEW_PASSWORD, ask_for_reset, reset_link
from tests.test_two_factor import (
    STEP,
    code_at,
    enrol,
    key_on,
    password_passed,
    post_form,
    recovery_codes,
    send_code,
    signed_in,
)

WRONG_PASSWORD = "not the password, but long enough"
WRONG_CODE = "That code is not right."
CODE_MISSING = "Enter the code your authenticator app shows, or a recovery code."
NOT_NOW = "Not now"
SETUP = "/login/two-factor/setup"
REQUIRED = {"GATEHOUSE_MFA_REQUIRED": "all"}

Enrolled = tuple[FlaskClient, str, list[str]]

#: Alice with two-factor on, signed out (the fixture of tests/test_two_factor.py).
enrolled = test_two_factor.enrolled


@pytest.fixture
def config() -> dict[str, Any]:
    """The app's settings beyond the tests' own; a test parametrizes it to change them."""
    return {}


@pytest.fixture
def app(make_app: Any, config: dict[str, Any]) -> Flask:
    app: Flask = make_app(**config)
    return app


def configured(**settings: Any) -> pytest.MarkDecorator:
    """Run the test on an app with ``settings``."""
    shown = ",".join(
        f"{key.removeprefix('GATEHOUSE_')}={'callable' if callable(value) else value}"
        for key, value in settings.items()
    )
    return pytest.mark.parametrize("config", [settings], ids=[shown])


@pytest.fixture
def clock(make_app: Any) -> Iterator[Any]:
    """A stopped clock one second into a 30-second step. Mail written while it stands (or
    after a shift of days) is due then, so it is sent before the clock goes back."""
    start = datetime.now(UTC).replace(second=1, microsecond=0) + timedelta(minutes=1)
    with time_machine.travel(start, tick=False) as traveller:
        yield traveller
        assert all_mail_sent()


def wrong_code(secret: str) -> str:
    """Six digits the app would not accept now (none of the steps either side)."""
    accepted = {code_at(secret, offset) for offset in (-1, 0, 1)}
    return next(f"{n:06d}" for n in range(10) if f"{n:06d}" not in accepted)


def notices(mailbox: Mailbox, email: str, subject: str) -> list[str]:
    assert all_mail_sent()
    return [text(m) for m in mailbox.to(email) if subject in m["Subject"]]


# --- A. re-authentication ---------------------------------------------------------------------


def reauthenticate(
    client: FlaskClient,
    password: str = PASSWORD,
    code: str | None = None,
    next: str = "/account/password",
) -> TestResponse:
    url = f"/reauthenticate?next={quote(next, safe='')}"
    form = {"csrf_token": csrf_token(client.get(url)), "password": password}
    if code is not None:
        form["code"] = code
    return client.post(url, data=form)


def needs_reauthentication(client: FlaskClient) -> bool:
    answer = client.get("/account/password")
    if answer.status_code == 200:
        return False
    assert answer.headers["Location"] == "/reauthenticate?next=/account/password"
    return True


@pytest.fixture
def stale(enrolled: Enrolled, user: Account, clock: Any) -> Enrolled:
    """Alice with two-factor, signed in with a code 16 minutes ago: past
    GATEHOUSE_REAUTHENTICATE_AFTER, the session still alive."""
    client, secret, _ = enrolled
    password_passed(client, user)
    assert send_code(client, code_at(secret)).status_code == 302
    assert not needs_reauthentication(client)
    clock.shift(timedelta(minutes=16))
    assert needs_reauthentication(client)
    return enrolled


def test_reauthentication_asks_for_a_code(stale: Enrolled) -> None:
    client, _, _ = stale
    page = client.get("/reauthenticate?next=/account/password")
    assert page.status_code == 200
    assert 'name="code"' in page.text
    assert "enter your password and a two-factor code again" in page.text


def test_the_password_alone_does_not_reauthenticate(stale: Enrolled) -> None:
    client, _, _ = stale
    answer = reauthenticate(client)
    assert answer.status_code == 400
    assert 'id="code-error"' in answer.text
    assert CODE_MISSING in answer.text
    assert needs_reauthentication(client)


def test_a_wrong_code_does_not_reauthenticate(stale: Enrolled) -> None:
    client, secret, _ = stale
    answer = reauthenticate(client, code=wrong_code(secret))
    assert answer.status_code == 400
    assert WRONG_CODE in answer.text
    assert needs_reauthentication(client)


def test_a_wrong_password_does_not_spend_the_code(stale: Enrolled) -> None:
    client, secret, _ = stale
    code = code_at(secret)
    answer = reauthenticate(client, WRONG_PASSWORD, code)
    assert answer.status_code == 400
    assert "Incorrect password." in answer.text
    assert needs_reauthentication(client)
    # The same code is still good: it was never checked, so never used up.
    assert reauthenticate(client, code=code).headers["Location"] == "/account/password"


def test_password_and_code_reauthenticate(stale: Enrolled) -> None:
    client, secret, _ = stale
    answer = reauthenticate(client, code=code_at(secret))
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/account/password"
    assert client.get("/account/password").status_code == 200


def test_a_recovery_code_reauthenticates_once(
    stale: Enrolled, user: Account, clock: Any, mailbox: Mailbox
) -> None:
    client, _, codes = stale
    answer = reauthenticate(client, code=codes[3])
    assert answer.headers["Location"] == "/account/password"
    assert client.get("/account/password").status_code == 200
    (notice,) = notices(mailbox, user.email, "A recovery code was used")
    assert "9 unused codes left" in notice
    clock.shift(timedelta(minutes=16))
    spent = reauthenticate(client, code=codes[3])
    assert spent.status_code == 400
    assert WRONG_CODE in spent.text
    assert needs_reauthentication(client)


def test_without_two_factor_the_password_alone_reauthenticates(
    clock: Any, logged_in: FlaskClient
) -> None:
    clock.shift(timedelta(minutes=16))
    assert needs_reauthentication(logged_in)
    page = logged_in.get("/reauthenticate?next=/account/password")
    assert 'name="code"' not in page.text
    assert "two-factor code" not in page.text
    assert reauthenticate(logged_in).headers["Location"] == "/account/password"
    assert not needs_reauthentication(logged_in)


# --- B. password reset ------------------------------------------------------------------------


@pytest.fixture
def reset_path(app: Flask, enrolled: Enrolled, user: Account, mailbox: Mailbox) -> str:
    """A reset link mailed to Alice, whose account has two-factor."""
    assert ask_for_reset(app.test_client(), user.email).status_code == 302
    return reset_link(mailbox)


def reset(
    client: FlaskClient, path: str, code: str | None, password: str = NEW_PASSWORD
) -> TestResponse:
    form = {"csrf_token": csrf_token(client.get(path)), "password": password}
    if code is not None:
        form["code"] = code
    return client.post(path, data=form)


def test_the_reset_page_asks_for_a_code(app: Flask, reset_path: str) -> None:
    page = app.test_client().get(reset_path)
    assert page.status_code == 200
    assert 'name="code"' in page.text


@pytest.mark.parametrize("kind", ["missing", "wrong"])
def test_a_reset_without_the_right_code_changes_nothing(
    app: Flask, enrolled: Enrolled, user: Account, reset_path: str, kind: str
) -> None:
    _, secret, _ = enrolled
    visitor = app.test_client()
    answer = reset(visitor, reset_path, None if kind == "missing" else wrong_code(secret))
    assert answer.status_code == 400
    assert 'id="code-error"' in answer.text
    assert (CODE_MISSING if kind == "missing" else WRONG_CODE) in answer.text
    # The old password still works, the new one does not, and the link is still good.
    password_passed(app.test_client(), user)
    assert login(app.test_client(), user.email, NEW_PASSWORD).status_code == 400
    assert visitor.get(reset_path).status_code == 200
    assert reset(visitor, reset_path, code_at(secret)).headers["Location"] == "/login"


@pytest.mark.parametrize("kind", ["app", "recovery"])
def test_a_reset_with_a_code_keeps_two_factor(
    app: Flask,
    enrolled: Enrolled,
    user: Account,
    reset_path: str,
    clock: Any,
    mailbox: Mailbox,
    kind: str,
) -> None:
    _, secret, codes = enrolled
    visitor = app.test_client()
    answer = reset(visitor, reset_path, code_at(secret) if kind == "app" else codes[0])
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/login"
    assert visitor.get(reset_path).status_code == 400  # used
    assert login(app.test_client(), user.email).status_code == 400  # the old password
    # The new password is only the first factor: the code is still asked for.
    assert login(visitor, user.email, NEW_PASSWORD).headers["Location"] == "/login/two-factor"
    assert not signed_in(visitor)
    clock.shift(STEP)
    assert send_code(visitor, code_at(secret)).status_code == 302
    assert signed_in(visitor)
    used = notices(mailbox, user.email, "A recovery code was used")
    assert len(used) == (1 if kind == "recovery" else 0)


def test_without_two_factor_a_reset_needs_no_code(
    app: Flask, user: Account, mailbox: Mailbox
) -> None:
    visitor = app.test_client()
    ask_for_reset(visitor, user.email)
    path = reset_link(mailbox)
    assert 'name="code"' not in visitor.get(path).text
    assert reset(visitor, path, None).headers["Location"] == "/login"
    assert login(visitor, user.email, NEW_PASSWORD).headers["Location"] == "/blogs"


# --- C. the policy: GATEHOUSE_MFA_REQUIRED ----------------------------------------------------


def setup_page(client: FlaskClient) -> TestResponse:
    page = client.get(SETUP)
    assert page.status_code == 200, page.headers.get("Location")
    return page


def postpone(client: FlaskClient) -> TestResponse:
    """Press "Not now" (or forge it, with the CSRF token of the setup page or, when that page
    is not shown, another page's)."""
    page = client.get(SETUP)
    token = csrf_token(page if page.status_code == 200 else client.get("/forgot"))
    return client.post("/login/two-factor/later", data={"csrf_token": token})


def enrol_at_sign_in(client: FlaskClient) -> tuple[str, TestResponse]:
    """Enrol on the setup page with the key it shows: the key and the answer."""
    page = setup_page(client)
    secret = key_on(page)
    answer = client.post(SETUP, data={"csrf_token": csrf_token(page), "code": code_at(secret)})
    return secret, answer


def asked_to_enrol(client: FlaskClient, user: Account, next: str | None = None) -> None:
    """Sign in with the password: the browser is sent to the setup page, with no session."""
    answer = login(client, user.email, next=next)
    assert answer.status_code == 302
    assert answer.headers["Location"] == SETUP
    assert not signed_in(client)


@configured(**REQUIRED)
def test_a_required_enrolment_can_wait_a_week(
    client: FlaskClient, user: Account, clock: Any
) -> None:
    asked_to_enrol(client, user)
    page = setup_page(client)
    assert NOT_NOW in page.text
    assert 'action="/login/two-factor/later"' in page.text
    answer = postpone(client)
    assert answer.headers["Location"] == "/blogs"
    assert signed_in(client)
    logout(client)

    clock.shift(timedelta(days=8))
    asked_to_enrol(client, user)
    page = setup_page(client)
    assert NOT_NOW not in page.text
    assert "Set it up now to finish signing in." in page.text
    assert postpone(client).headers["Location"] == SETUP
    assert not signed_in(client)

    # The sign-in still waits at the setup page: enrolling there finishes it.
    secret, shown = enrol_at_sign_in(client)
    assert shown.status_code == 200
    assert len(recovery_codes(shown)) == 10
    assert '<a href="/blogs">Continue</a>' in shown.text
    assert signed_in(client)
    logout(client)

    clock.shift(STEP)
    assert login(client, user.email).headers["Location"] == "/login/two-factor"
    assert send_code(client, code_at(secret)).status_code == 302
    assert signed_in(client)


@configured(**REQUIRED)
def test_enrolling_at_sign_in_continues_to_the_next_page(
    client: FlaskClient, user: Account, clock: Any, mailbox: Mailbox
) -> None:
    asked_to_enrol(client, user, next="/account")
    page = setup_page(client)
    wrong = client.post(
        SETUP, data={"csrf_token": csrf_token(page), "code": wrong_code(key_on(page))}
    )
    assert wrong.status_code == 400
    assert WRONG_CODE in wrong.text
    assert key_on(wrong) == key_on(page)  # the same key, to try again
    assert not signed_in(client)
    _, shown = enrol_at_sign_in(client)
    assert '<a href="/account">Continue</a>' in shown.text
    assert client.get("/account").status_code == 200
    assert notices(mailbox, user.email, "Two-factor authentication is on")


@configured(**REQUIRED)
def test_the_grace_period_counts_from_the_first_time_asked(
    client: FlaskClient, user: Account, clock: Any
) -> None:
    clock.shift(timedelta(days=30))  # an old account: the week starts when it is first asked
    first_asked = datetime.now(UTC)
    for day in (0, 1, 6):
        clock.move_to(first_asked + timedelta(days=day))
        asked_to_enrol(client, user)
        assert NOT_NOW in setup_page(client).text, f"day {day}"
        assert postpone(client).headers["Location"] == "/blogs", f"day {day}"
        logout(client)
    clock.move_to(first_asked + timedelta(days=7))  # the week is over
    asked_to_enrol(client, user)
    assert NOT_NOW not in setup_page(client).text
    clock.move_to(first_asked + timedelta(days=8))
    asked_to_enrol(client, user)
    assert NOT_NOW not in setup_page(client).text
    assert postpone(client).headers["Location"] == SETUP
    assert not signed_in(client)


@configured(**REQUIRED, GATEHOUSE_MFA_GRACE=0)
def test_no_grace_period_means_no_not_now(client: FlaskClient, user: Account, clock: Any) -> None:
    asked_to_enrol(client, user)
    page = setup_page(client)
    assert NOT_NOW not in page.text
    assert postpone(client).headers["Location"] == SETUP
    assert not signed_in(client)
    _, shown = enrol_at_sign_in(client)
    assert shown.status_code == 200
    assert signed_in(client)


def test_a_zero_grace_period_from_the_environment(
    make_app: Any, user_factory: Any, monkeypatch: pytest.MonkeyPatch, clock: Any
) -> None:
    """FLASK_GATEHOUSE_MFA_GRACE=0 is accepted (zero is the one duration that may be zero)."""
    monkeypatch.setenv("FLASK_GATEHOUSE_MFA_REQUIRED", "all")
    monkeypatch.setenv("FLASK_GATEHOUSE_MFA_GRACE", "0")
    app = make_app()
    assert app.config["GATEHOUSE_MFA_GRACE"] == timedelta(0)
    client = app.test_client()
    asked_to_enrol(client, user_factory(email="alice@example.com"))
    assert NOT_NOW not in setup_page(client).text


@configured(GATEHOUSE_MFA_REQUIRED=lambda user: user.username == "alice")
def test_a_callable_policy_asks_only_whom_it_names(
    app: Flask, user_factory: Any, clock: Any
) -> None:
    alice = user_factory(email="alice@example.com", username="alice")
    bob = user_factory(email="bob@example.com", username="bob")
    asked_to_enrol(app.test_client(), alice)
    assert login(app.test_client(), bob.email).headers["Location"] == "/blogs"


@configured(**REQUIRED)
def test_a_user_with_two_factor_is_asked_for_the_code_not_to_enrol(
    client: FlaskClient, user: Account, clock: Any
) -> None:
    asked_to_enrol(client, user)
    secret, _ = enrol_at_sign_in(client)
    logout(client)
    clock.shift(STEP)
    assert login(client, user.email).headers["Location"] == "/login/two-factor"
    # Nor can the browser skip the code by postponing an enrolment it does not owe.
    assert postpone(client).headers["Location"] == "/login"
    assert not signed_in(client)
    assert send_code(client, code_at(secret)).status_code == 302


@pytest.mark.parametrize(
    "config", [REQUIRED, {"GATEHOUSE_MFA_REQUIRED": "off"}], ids=["all", "off"]
)
def test_a_required_second_factor_cannot_be_switched_off(
    client: FlaskClient, user: Account, clock: Any, config: dict[str, Any]
) -> None:
    required = config["GATEHOUSE_MFA_REQUIRED"] == "all"
    if required:
        asked_to_enrol(client, user)
        enrol_at_sign_in(client)
    else:
        assert login(client, user.email).headers["Location"] == "/blogs"
        enrol(client)
    page = client.get("/account/two-factor")
    assert ("/account/two-factor/disable" in page.text) is not required
    answer = post_form(client, "/account/two-factor/disable")
    assert answer.headers["Location"] == "/account/two-factor"
    after = client.get("/account/two-factor").text
    if required:
        assert "it stays on" in after
        assert "Two-factor authentication is <strong>on</strong>" in after
    else:
        assert "Two-factor authentication is <strong>off</strong>" in after


@configured(GATEHOUSE_MFA_REQUIRED=lambda user: user.username == "alice")
def test_the_switch_off_form_follows_the_callable_policy(
    app: Flask, user_factory: Any, clock: Any
) -> None:
    bob = user_factory(email="bob@example.com", username="bob")
    client = app.test_client()
    assert login(client, bob.email).headers["Location"] == "/blogs"
    enrol(client)
    assert "/account/two-factor/disable" in client.get("/account/two-factor").text


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FLASK_GATEHOUSE_MFA_REQUIRED", "yes", "GATEHOUSE_MFA_REQUIRED must be"),
        ("FLASK_GATEHOUSE_MFA_REQUIRED", "true", "GATEHOUSE_MFA_REQUIRED must be"),
        ("FLASK_GATEHOUSE_MFA_GRACE", "-1", "GATEHOUSE_MFA_GRACE cannot be negative"),
        ("FLASK_GATEHOUSE_MFA_GRACE", "-P1D", "GATEHOUSE_MFA_GRACE"),
    ],
)
def test_a_bad_policy_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    with pytest.raises(RuntimeError, match=message):
        host_from_environment(monkeypatch, **{variable: value})


@pytest.mark.parametrize(
    "settings",
    [{"GATEHOUSE_MFA_REQUIRED": "yes"}, {"GATEHOUSE_MFA_GRACE": timedelta(days=-1)}],
    ids=["yes", "negative"],
)
def test_a_bad_policy_in_the_config_stops_start_up(make_app: Any, settings: dict[str, Any]) -> None:
    with pytest.raises(RuntimeError, match="GATEHOUSE_MFA_"):
        make_app(**settings)


@pytest.mark.parametrize(("value", "grace"), [("0", timedelta(0)), ("P3D", timedelta(days=3))])
def test_a_zero_or_positive_grace_starts(
    monkeypatch: pytest.MonkeyPatch, value: str, grace: timedelta
) -> None:
    app = host_from_environment(
        monkeypatch, FLASK_GATEHOUSE_MFA_REQUIRED="all", FLASK_GATEHOUSE_MFA_GRACE=value
    )
    assert app.config["GATEHOUSE_MFA_GRACE"] == grace


# --- stage binding ----------------------------------------------------------------------------


@configured(**REQUIRED)
def test_another_stage_page_cannot_complete_the_enrolment(
    app: Flask, client: FlaskClient, user: Account, clock: Any
) -> None:
    asked_to_enrol(client, user)
    token = csrf_token(setup_page(client))
    assert client.get("/login/two-factor").headers["Location"] == "/login"
    code = client.post("/login/two-factor", data={"csrf_token": token, "code": "123456"})
    assert code.headers["Location"] == "/login"
    assert not signed_in(client)
    chosen = client.post(
        "/login/new-password", data={"csrf_token": token, "password": "a password to skip it"}
    )
    assert chosen.headers["Location"] == "/login"
    assert not signed_in(client)
    assert login(app.test_client(), user.email, "a password to skip it").status_code == 400
    # The enrolment still waits for this browser.
    assert NOT_NOW in setup_page(client).text


@configured(**REQUIRED)
def test_enrolment_comes_before_a_required_password_change(
    app: Flask, client: FlaskClient, user: Account, clock: Any
) -> None:
    """An operator's temporary password: enrol first, then choose the new password, then the
    session (the Continue link leads to the next stage, not past it)."""
    result = app.test_cli_runner().invoke(
        args=["gatehouse", "set-password", user.email, "--temporary", "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    asked_to_enrol(client, user, next="/account")
    assert client.get("/login/new-password").headers["Location"] == "/login"  # not yet
    _, shown = enrol_at_sign_in(client)
    assert '<a href="/login/new-password">Continue</a>' in shown.text
    assert not signed_in(client)
    page = client.get("/login/new-password")
    chosen = client.post(
        "/login/new-password",
        data={"csrf_token": csrf_token(page), "password": "a fresh passphrase for alice"},
    )
    assert chosen.headers["Location"] == "/account"
    assert signed_in(client)


def test_the_setup_page_needs_a_pending_sign_in(client: FlaskClient) -> None:
    assert client.get(SETUP).headers["Location"] == "/login"
    token = csrf_token(client.get("/login"))
    assert (
        client.post(SETUP, data={"csrf_token": token, "code": "123456"}).headers["Location"]
        == "/login"
    )
    assert (
        client.post("/login/two-factor/later", data={"csrf_token": token}).headers["Location"]
        == "/login"
    )
    assert not signed_in(client)


def test_the_setup_page_is_not_for_a_pending_code(enrolled: Enrolled, user: Account) -> None:
    client, _, _ = enrolled
    password_passed(client, user)
    assert client.get(SETUP).headers["Location"] == "/login"
    token = csrf_token(client.get("/login/two-factor"))
    assert (
        client.post(SETUP, data={"csrf_token": token, "code": "123456"}).headers["Location"]
        == "/login"
    )
    assert postpone(client).headers["Location"] == "/login"
    assert not signed_in(client)
