"""``flask gatehouse ...``: account administration from the shell."""

from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import PASSWORD, login, user_row

NEW_PASSWORD = "a completely different passphrase"


def gatehouse(runner: Any, *args: str, input: str | None = None) -> Result:
    result: Result = runner.invoke(args=["gatehouse", *args], input=input)
    return result


def assert_one_line_error(result: Result, *words: str) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    for word in words:
        assert word in lines[0]
    return lines[0]


def signed_out(client: FlaskClient) -> bool:
    response = client.get("/blogs")
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_create_user_with_password_option(app: Flask, runner: Any, client: FlaskClient) -> None:
    result = gatehouse(
        runner,
        "create-user",
        "--email",
        "Alice@EXAMPLE.com",
        "--username",
        "alice",
        "--password",
        PASSWORD,
    )
    assert result.exit_code == 0, result.output
    assert result.output == "Created alice@example.com.\n"
    assert user_row(app, "alice@example.com").password_hash.startswith("$argon2id$")
    assert login(client, "alice@example.com").status_code == 302
    assert "Hi alice" in client.get("/blogs").text


def test_create_user_prompts_for_the_password_twice(
    app: Flask, runner: Any, client: FlaskClient
) -> None:
    result = gatehouse(
        runner,
        "create-user",
        "--email",
        "bob@example.com",
        "--username",
        "bob",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # not echoed
    assert result.output.strip().splitlines()[-1] == "Created bob@example.com."
    assert login(client, "bob@example.com").status_code == 302


def test_create_user_with_mismatched_confirmation_creates_nothing(app: Flask, runner: Any) -> None:
    result = gatehouse(
        runner,
        "create-user",
        "--email",
        "bob@example.com",
        "--username",
        "bob",
        input=f"{PASSWORD}\n{NEW_PASSWORD}\n",
    )
    assert result.exit_code != 0
    assert user_row(app, "bob@example.com") is None


@pytest.mark.parametrize("email", ["alice@example.com", "ALICE@example.com", " Alice@Example.COM"])
def test_create_user_with_a_taken_email_fails(
    app: Flask, runner: Any, user: Any, email: str
) -> None:
    result = gatehouse(
        runner, "create-user", "--email", email, "--username", "mallory", "--password", NEW_PASSWORD
    )
    assert_one_line_error(result, "already exists")
    assert result.exit_code != 0
    assert user_row(app, "alice@example.com").username == "alice"


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "Use at least 15 characters."),
        ("q1w2e3r4t5y6u7i8o9p0", "too common"),
        ("alice alice alice alice", "Don't build your password"),
        ("alice@example.com alice", "Don't build your password"),
        ("x" * 1025, "Use at most 1,024 characters."),
    ],
)
def test_create_user_refuses_weak_passwords(
    app: Flask, runner: Any, password: str, message: str
) -> None:
    result = gatehouse(
        runner,
        "create-user",
        "--email",
        "alice@example.com",
        "--username",
        "alice",
        "--password",
        password,
    )
    assert_one_line_error(result, message)
    assert user_row(app, "alice@example.com") is None


@pytest.mark.parametrize(
    ("email", "username", "message"),
    [
        ("not-an-email", "alice", "Enter a valid email address."),
        ("alice@", "alice", "Enter a valid email address."),
        ("a" * 250 + "@x.com", "alice", "254"),
        ("alice@example.com", "ali\u200bce", "invisible or control characters"),
        ("alice@example.com", "   ", "Enter a username."),
    ],
)
def test_create_user_refuses_invalid_identities(
    app: Flask, runner: Any, email: str, username: str, message: str
) -> None:
    result = gatehouse(
        runner, "create-user", "--email", email, "--username", username, "--password", PASSWORD
    )
    assert_one_line_error(result, message)
    assert user_row(app, "alice@example.com") is None


def test_set_password(runner: Any, app: Flask, logged_in: FlaskClient, user: Any) -> None:
    result = gatehouse(runner, "set-password", "ALICE@example.com", "--password", NEW_PASSWORD)
    assert result.exit_code == 0, result.output
    assert "alice@example.com" in result.output
    assert signed_out(logged_in)
    fresh = app.test_client()
    assert login(fresh, user.email, PASSWORD).status_code == 400
    assert login(fresh, user.email, NEW_PASSWORD).status_code == 302


def test_set_password_by_prompt(runner: Any, app: Flask, user: Any) -> None:
    result = gatehouse(
        runner, "set-password", user.email, input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert login(app.test_client(), user.email, NEW_PASSWORD).status_code == 302


def test_set_password_refuses_a_weak_one_and_changes_nothing(
    runner: Any, app: Flask, logged_in: FlaskClient, user: Any
) -> None:
    result = gatehouse(runner, "set-password", user.email, "--password", "alicealicealice!")
    assert_one_line_error(result, "Don't build your password")
    assert not signed_out(logged_in)
    assert login(app.test_client(), user.email, PASSWORD).status_code == 302


def test_deactivate_and_activate(
    runner: Any, app: Flask, logged_in: FlaskClient, user: Any
) -> None:
    result = gatehouse(runner, "deactivate", user.email)
    assert result.exit_code == 0, result.output
    assert result.output == "Deactivated alice@example.com.\n"
    assert signed_out(logged_in)
    refused = login(app.test_client(), user.email)
    assert refused.status_code == 400
    assert "Incorrect email or password." in refused.text
    assert "deactivated" not in refused.text.lower()

    result = gatehouse(runner, "activate", user.email)
    assert result.exit_code == 0, result.output
    assert result.output == "Activated alice@example.com.\n"
    assert signed_out(logged_in)  # the old session stays ended
    assert login(app.test_client(), user.email).status_code == 302


def test_list_users(runner: Any, user_factory: Any) -> None:
    alice = user_factory(email="alice@example.com", username="alice")
    bob = user_factory(email="bob@example.com", username="Bob Smith")
    gatehouse(runner, "deactivate", bob.email)
    result = gatehouse(runner, "list-users")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{alice.id}\talice@example.com\talice\tactive",
        f"{bob.id}\tbob@example.com\tBob Smith\tinactive",
    ]
    assert "argon2" not in result.output


def test_list_users_with_no_accounts(runner: Any) -> None:
    result = gatehouse(runner, "list-users")
    assert result.exit_code == 0
    assert result.output == ""


def test_revoke_sessions(runner: Any, app: Flask, logged_in: FlaskClient, user: Any) -> None:
    other = app.test_client()
    login(other, user.email)
    result = gatehouse(runner, "revoke-sessions", user.email)
    assert result.exit_code == 0, result.output
    assert result.output == "Ended 2 sessions of alice@example.com.\n"
    assert signed_out(logged_in)
    assert signed_out(other)
    assert login(app.test_client(), user.email).status_code == 302  # the account still works


def test_revoke_sessions_leaves_other_accounts_alone(
    runner: Any, app: Flask, logged_in: FlaskClient, user_factory: Any
) -> None:
    bob = user_factory(email="bob@example.com", username="bob")
    result = gatehouse(runner, "revoke-sessions", bob.email)
    assert result.output == "Ended 0 sessions of bob@example.com.\n"
    assert not signed_out(logged_in)


@pytest.mark.parametrize(
    "args",
    [
        ["set-password", "nobody@example.com", "--password", NEW_PASSWORD],
        ["deactivate", "nobody@example.com"],
        ["activate", "nobody@example.com"],
        ["revoke-sessions", "nobody@example.com"],
        ["deactivate", "not-an-email"],
    ],
)
def test_unknown_email_is_a_one_line_error(runner: Any, user: Any, args: list[str]) -> None:
    assert_one_line_error(gatehouse(runner, *args), "No account")


@pytest.mark.parametrize(
    "args",
    [
        ["create-user"],
        ["create-user", "--email", "bob@example.com", "--password", PASSWORD],
        ["create-user", "--username", "bob", "--password", PASSWORD],
        ["set-password"],
        ["deactivate"],
        ["activate"],
        ["revoke-sessions"],
        ["import-tutorial"],
        ["no-such-command"],
    ],
)
def test_missing_arguments_are_usage_errors(runner: Any, args: list[str]) -> None:
    result = gatehouse(runner, *args)
    assert result.exit_code == 2
    assert "Usage:" in result.output
    assert "Traceback" not in result.output
