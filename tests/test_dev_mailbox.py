"""The dev mailbox (/dev/mailbox): mail kept on disk in debug mode, read and followed in the
browser; nowhere else, and no file outside the mailbox folder."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import time_machine
from blog import create_app
from flask import Flask

from tests.conftest import TEST_CONFIG, all_mail_sent, csrf_token, login
from tests.test_confirmation import sign_up

SUBJECT = "The Blog: Confirm your email address"


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo's instance folder (where the mailbox lives), in tmp_path instead of the
    checkout's examples/blog/instance."""
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(tmp_path))
    return tmp_path


@pytest.fixture
def dev_app(make_app: Any, instance: Path) -> Flask:
    app: Flask = make_app(DEBUG=True, GATEHOUSE_DEV_MAILBOX=True)
    assert app.debug
    return app


def rows(page: str) -> list[tuple[str, str, str]]:
    """(to, message URL, subject) of each message in the list, top to bottom."""
    found = re.findall(
        r'<td>([^<]*)</td>\s*<td><a href="(/dev/mailbox/[^"]+)">([^<]*)</a></td>', page
    )
    return [(unescape(to), url, unescape(subject)) for to, url, subject in found]


def test_a_sign_up_mail_is_listed_read_and_followed(dev_app: Flask, instance: Path) -> None:
    client = dev_app.test_client()
    assert client.get("/dev/mailbox").status_code == 200  # empty before any mail
    sign_up(client, "bob@example.com")
    assert all_mail_sent()
    assert len(list((instance / "mailbox").iterdir())) == 1

    listing = client.get("/dev/mailbox")
    assert listing.status_code == 200
    ((to, url, subject),) = rows(listing.text)
    assert (to, subject) == ("bob@example.com", SUBJECT)

    message = client.get(url)
    assert message.status_code == 200
    assert "<dd>no-reply@gatehouse.test</dd>" in message.text
    (link,) = re.findall(r'<a href="(https://gatehouse\.test/confirm/[^"]+)">\1</a>', message.text)
    assert "HTML version (source)" in message.text

    path = link.removeprefix("https://gatehouse.test")
    assert client.get(path).status_code == 200
    assert client.post(path, data={"csrf_token": csrf_token(client.get(path))}).status_code == 302
    assert login(client, "bob@example.com").headers["Location"] == "/blogs"


def test_newest_message_comes_first(dev_app: Flask) -> None:
    client = dev_app.test_client()
    start = datetime.now(UTC)
    with time_machine.travel(start):
        sign_up(client, "bob@example.com")
        assert all_mail_sent()
    with time_machine.travel(start + timedelta(minutes=1)):
        sign_up(dev_app.test_client(), "carol@example.com")
        assert all_mail_sent()
    listing = client.get("/dev/mailbox").text
    assert [to for to, _, _ in rows(listing)] == ["carol@example.com", "bob@example.com"]


def test_message_content_is_escaped(dev_app: Flask) -> None:
    """A username is the sender's choice; the text part shows it as text, not markup."""
    sign_up(dev_app.test_client(), "bob@example.com", username="<img src=x onerror=alert(1)>")
    assert all_mail_sent()
    client = dev_app.test_client()
    ((_, url, _),) = rows(client.get("/dev/mailbox").text)
    page = client.get(url).text
    assert "<img src=x" not in page
    assert "Hello &lt;img src=x onerror=alert(1)&gt;," in page


def test_a_file_that_is_no_message_still_shows(dev_app: Flask, instance: Path) -> None:
    (instance / "mailbox").mkdir()
    (instance / "mailbox" / "20261399-999999-1.log").write_bytes(b"\x00\xff not mail")
    client = dev_app.test_client()
    ((to, url, subject),) = rows(client.get("/dev/mailbox").text)
    assert (to, subject) == ("", "(no subject)")
    assert client.get(url).status_code == 200


@pytest.mark.parametrize(
    "name",
    [
        "..",
        "../secret_key",
        "..%2Fsecret_key",
        "%2E%2E%2Fsecret_key",
        "%2Fetc%2Fpasswd",
        "secret_key",
        "notes.txt",
        "20260101-000000-1.log",
        "20260101-000000-2.log",
        "20260101-000000-1.log%00",
    ],
)
def test_only_messages_in_the_mailbox_can_be_opened(
    dev_app: Flask, instance: Path, name: str
) -> None:
    mailbox = instance / "mailbox"
    mailbox.mkdir()
    (instance / "secret_key").write_text("not for the mailbox page")
    (mailbox / "notes.txt").write_text("not a message")
    (mailbox / "20260101-000000-2.log").mkdir()  # a folder with a message's name
    response = dev_app.test_client().get(f"/dev/mailbox/{name}")
    assert response.status_code == 404
    assert "not for the mailbox page" not in response.text
    assert "not a message" not in response.text


@pytest.mark.parametrize(
    "config",
    [{}, {"DEBUG": True, "GATEHOUSE_DEV_MAILBOX": False}],
    ids=["not-debug", "mailbox-off"],
)
def test_missing_unless_debug_mode_and_switched_on(
    make_app: Any, instance: Path, config: dict[str, Any]
) -> None:
    (instance / "mailbox").mkdir()
    (instance / "mailbox" / "20260101-000000-1.log").write_text("Subject: kept\n\nhello\n")
    client = make_app(**config).test_client()
    assert client.get("/dev/mailbox").status_code == 404
    assert client.get("/dev/mailbox/20260101-000000-1.log").status_code == 404


def test_missing_when_debug_mode_is_switched_off_later(dev_app: Flask) -> None:
    dev_app.debug = False
    assert dev_app.test_client().get("/dev/mailbox").status_code == 404


def test_refused_at_start_outside_debug_mode(make_app: Any, instance: Path) -> None:
    with pytest.raises(RuntimeError, match=r"GATEHOUSE_DEV_MAILBOX .* only runs in debug mode"):
        make_app(GATEHOUSE_DEV_MAILBOX=True)


def test_demo_turns_the_mailbox_on_in_debug_mode_without_an_smtp_server(
    database_url: str, instance: Path
) -> None:
    config = {key: value for key, value in TEST_CONFIG.items() if key != "MAIL_SERVER"}
    app = create_app({**config, "DEBUG": True, "SQLALCHEMY_DATABASE_URI": database_url})
    assert app.config["GATEHOUSE_DEV_MAILBOX"] is True
    assert app.config["MAIL_FILE_PATH"] == str(instance / "mailbox")
