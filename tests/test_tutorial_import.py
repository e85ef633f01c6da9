"""Moving the Flask-Login tutorial's users over with ``flask gatehouse import-tutorial``."""

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.security import generate_password_hash

from tests.conftest import PASSWORD, csrf_token, login, user_row
from tests.smtp import Mailbox, link_path, text

TUTORIAL_SCHEMA = """
CREATE TABLE users (
    id INTEGER NOT NULL PRIMARY KEY,
    email VARCHAR(80) UNIQUE,
    username VARCHAR(100),
    password_hash VARCHAR
)
"""

#: (email, username, password, werkzeug method or a literal hash)
NEW_PASSWORD = "a brand new passphrase for the blog"

ROWS = [
    ("ann@example.com", "ann", "annpass", "scrypt"),
    ("Ben@Example.COM", "ben", "benpass1", "pbkdf2:sha256"),
    ("not-an-email", "carl", "carlpass", "scrypt"),
    ("ANN@example.com", "ann again", "otherpass", "scrypt"),
    ("dora@example.com", "dora", "dorapass", "md5$salt$5f4dcc3b5aa765d61d8327deb882cf99"),
    ("alice@example.com", "tutorial alice", "alicepass", "scrypt"),
]


def tutorial_db(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    with sqlite3.connect(path) as connection:
        connection.execute(TUTORIAL_SCHEMA)
        for email, username, password, method in rows:
            if method in ("scrypt", "pbkdf2:sha256"):
                stored = generate_password_hash(password, method=method)
            else:
                stored = method
            connection.execute(
                "INSERT INTO users (email, username, password_hash) VALUES (?, ?, ?)",
                (email, username, stored),
            )
    connection.close()
    return path


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once: werkzeug's scrypt is slow on purpose, and the import only reads the file."""
    return tutorial_db(tmp_path_factory.mktemp("tutorial") / "data.db", ROWS)


def import_tutorial(runner: Any, path: Path, *options: str) -> Any:
    return runner.invoke(args=["gatehouse", "import-tutorial", str(path), *options])


def test_import_reports_every_row(runner: Any, user: Any, tutorial: Path) -> None:
    result = import_tutorial(runner, tutorial)
    assert result.exit_code == 0, result.output
    assert result.stdout == "Imported 2 users, skipped 4.\n"
    assert result.stderr.splitlines() == [
        "skipped: row id 3: Enter a valid email address.",
        "skipped: row id 4: ann@example.com already has an account",
        "skipped: row id 5: unsupported password hash",
        "skipped: row id 6: alice@example.com already has an account",
    ]


def choose_new_password(client: Any, password: str) -> Any:
    page = client.get("/login/new-password")
    assert page.status_code == 200
    assert "must be changed before you sign in" in page.text
    return client.post(
        "/login/new-password", data={"csrf_token": csrf_token(page), "password": password}
    )


def test_weak_old_passwords_are_replaced_at_the_first_sign_in(
    app: Flask, runner: Any, tutorial: Path
) -> None:
    """The tutorial had no password policy: an old password that breaks today's gets the
    owner in only after choosing a new one (no session before)."""
    import_tutorial(runner, tutorial, "--trust-emails")
    for email, username, password, method in ROWS[:2]:
        stored = email.lower()
        assert user_row(app, stored).password_hash.startswith(f"{method}:")
        client = app.test_client()
        response = login(client, email, password)  # shorter than today's minimum
        assert response.headers["Location"] == "/login/new-password", email
        assert client.get("/blogs").status_code == 302  # no session yet
        assert choose_new_password(client, NEW_PASSWORD).headers["Location"] == "/blogs"
        assert f"Hi {username}" in client.get("/blogs").text
        assert login(app.test_client(), email, password).status_code == 400
        assert login(app.test_client(), email, NEW_PASSWORD).status_code == 302


def test_strong_old_passwords_keep_working(app: Flask, runner: Any, tmp_path: Path) -> None:
    path = tutorial_db(tmp_path / "data.db", [("cy@example.com", "cy", PASSWORD, "scrypt")])
    import_tutorial(runner, path, "--trust-emails")
    client = app.test_client()
    assert login(client, "cy@example.com", PASSWORD).headers["Location"] == "/blogs"
    assert "Hi cy" in client.get("/blogs").text
    assert user_row(app, "cy@example.com").password_hash.startswith("$argon2id$")
    # The upgraded hash keeps working, and asks for nothing more.
    assert login(app.test_client(), "cy@example.com", PASSWORD).headers["Location"] == "/blogs"


def test_imported_users_are_mailed_a_link_worded_for_the_move(
    app: Flask, runner: Any, tutorial: Path, mailbox: Mailbox
) -> None:
    import_tutorial(runner, tutorial)
    client = app.test_client()
    response = login(client, "ann@example.com", "annpass")
    assert response.status_code == 400  # as for a wrong password: the answer reveals nothing
    assert "confirm your address first" in response.text
    (message,) = mailbox.wait_for(1)
    assert message["To"] == "ann@example.com"
    assert "moved" in message["Subject"]
    assert "has moved to a new sign-in system" in text(message)
    assert "finish creating" not in text(message)
    confirm = link_path(message, "/confirm/")
    client.post(confirm, data={"csrf_token": csrf_token(client.get(confirm))})
    assert login(client, "ann@example.com", "annpass").headers["Location"] == "/login/new-password"
    assert choose_new_password(client, NEW_PASSWORD).headers["Location"] == "/blogs"


def test_wrong_old_password_is_refused(app: Flask, runner: Any, tutorial: Path) -> None:
    import_tutorial(runner, tutorial)
    response = login(app.test_client(), "ann@example.com", "benpass1")
    assert response.status_code == 400
    assert "Incorrect email or password." in response.text
    assert user_row(app, "ann@example.com").password_hash.startswith("scrypt:")


def test_skipped_rows_cannot_sign_in_and_existing_accounts_are_untouched(
    app: Flask, runner: Any, user: Any, tutorial: Path
) -> None:
    before = user_row(app, user.email)
    import_tutorial(runner, tutorial)
    after = user_row(app, user.email)
    assert (after.username, after.password_hash) == (before.username, before.password_hash)
    assert login(app.test_client(), user.email, "alicepass").status_code == 400
    assert login(app.test_client(), user.email, PASSWORD).status_code == 302
    assert user_row(app, "dora@example.com") is None
    assert login(app.test_client(), "dora@example.com", "dorapass").status_code == 400


def test_importing_twice_imports_nothing_new(runner: Any, tutorial: Path) -> None:
    assert import_tutorial(runner, tutorial).exit_code == 0
    again = import_tutorial(runner, tutorial)
    assert again.exit_code == 0, again.output
    assert again.stdout == "Imported 0 users, skipped 6.\n"


def _text_file(path: Path) -> Path:
    path.write_text("id,email\n1,ann@example.com\n")
    return path


def _other_sqlite(path: Path) -> Path:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT)")
    connection.close()
    return path


def _users_without_hashes(path: Path) -> Path:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    connection.close()
    return path


@pytest.mark.parametrize("make_file", [_text_file, _other_sqlite, _users_without_hashes])
def test_a_file_that_is_not_a_tutorial_db_is_a_one_line_error(
    app: Flask, runner: Any, tmp_path: Path, make_file: Any
) -> None:
    result = import_tutorial(runner, make_file(tmp_path / "data.db"))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    assert "not a tutorial database" in lines[0]


def test_missing_file_is_a_usage_error(runner: Any, tmp_path: Path) -> None:
    result = import_tutorial(runner, tmp_path / "missing.db")
    assert result.exit_code == 2
    assert "does not exist" in result.output
