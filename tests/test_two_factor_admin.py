"""``flask gatehouse two-factor reset``: the operator switches two-factor off for an owner
who lost the authenticator app and the recovery codes; the owner is told by email."""

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import Account, all_mail_sent, login
from tests.smtp import Mailbox, text
from tests.test_cli import assert_one_line_error, gatehouse
from tests.test_two_factor import clock, enrol, events, password_passed, signed_in

__all__ = ["clock"]  # the stopped clock the enrolment's codes are computed on (a fixture)


def test_reset_lets_the_password_alone_sign_in(
    app: Flask, clock: Any, client: FlaskClient, user: Account, mailbox: Mailbox, runner: Any
) -> None:
    assert login(client, user.email).status_code == 302
    _, codes = enrol(client)
    password_passed(app.test_client(), user)  # two-factor is on

    result = gatehouse(runner, "two-factor", "reset", "ALICE@example.com")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "Two-factor authentication is off for alice@example.com; they were told by email.\n"
    )

    fresh = app.test_client()
    answer = login(fresh, user.email)
    assert answer.headers["Location"] == "/blogs"
    assert signed_in(fresh)
    assert "Two-factor authentication is <strong>off</strong>" in (
        client.get("/account/two-factor").text
    )
    assert all_mail_sent()
    (notice,) = [m for m in mailbox.to(user.email) if "administrator" in m["Subject"]]
    assert notice["Subject"] == (
        "The Blog: Two-factor authentication was switched off by an administrator"
    )
    body = text(notice)
    assert "An administrator switched off two-factor authentication" in body
    assert "If you did not ask for this, reset your password" in body
    assert re.search(r"reset your password now: https?://\S+/forgot$", body, re.MULTILINE)
    assert not any(code in body for code in codes)
    (event,) = events(app, "two_factor_reset")
    assert (event.outcome, event.detail, event.user_id) == ("success", "by operator", user.id)


def test_reset_can_be_followed_by_a_new_enrolment(
    app: Flask, clock: Any, logged_in: FlaskClient, user: Account, runner: Any
) -> None:
    enrol(logged_in)
    assert gatehouse(runner, "two-factor", "reset", user.email).exit_code == 0
    enrol(logged_in)  # a fresh key and codes, from the same page
    password_passed(app.test_client(), user)
    # Sent while the clock stands: the shell's notice is due only on the moved clock.
    assert all_mail_sent()


def test_reset_without_two_factor_changes_nothing(
    app: Flask, user: Account, mailbox: Mailbox, runner: Any
) -> None:
    result = gatehouse(runner, "two-factor", "reset", user.email)
    assert result.exit_code == 0, result.output
    assert result.output == "Two-factor authentication was not on for alice@example.com.\n"
    assert all_mail_sent()
    assert mailbox.to(user.email) == []
    assert events(app, "two_factor_reset") == []
    assert login(app.test_client(), user.email).headers["Location"] == "/blogs"


def test_reset_of_an_unknown_address_fails(runner: Any, user: Account) -> None:
    for address in ("nobody@example.com", "not-an-email"):
        assert_one_line_error(gatehouse(runner, "two-factor", "reset", address), "No account")
    assert gatehouse(runner, "two-factor", "reset").exit_code == 2  # the address is required
