"""The outbox's guarantees: a message exists exactly when its action committed, survives a
killed server, goes out once per claim, is retried with backoff and then given up on the
record; ``flask gatehouse mail`` shows and retries the queue; host tests capture mail."""

import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from blog import db
from flask import Flask
from flask_mailman import EmailMultiAlternatives

from flask_gatehouse import state, testing
from flask_gatehouse.models import Event, OutboxMessage
from flask_gatehouse.services import mail
from tests.conftest import PASSWORD, TEST_CONFIG
from tests.smtp import Mailbox, SMTPServer, free_port
from tests.test_confirmation import sign_up
from tests.test_scale_out import DEMO, GUNICORN, browser, get, post_form, wait_until_up


def rows(app: Flask) -> list[OutboxMessage]:
    with app.app_context():
        return list(db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)))


def write(app: Flask, count: int, template: str = "account_deleted") -> None:
    """Queue ``count`` messages outside any request (no worker is started or woken)."""
    with app.app_context():
        for number in range(count):
            mail.send(template, f"user{number}@example.com", username=f"user{number}")
        db.session.commit()


@contextmanager
def demo_server(database_url: str, smtp_port: int) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The demo under gunicorn (one worker forked from a preloaded app), mailing
    ``smtp_port``; yields its URL and process (the leader of its own process group)."""
    port = free_port()
    env = {
        **os.environ,
        "FLASK_SECRET_KEY": TEST_CONFIG["SECRET_KEY"],
        "FLASK_SQLALCHEMY_DATABASE_URI": database_url,
        "FLASK_GATEHOUSE_BASE_URL": "https://gatehouse.test",
        "FLASK_GATEHOUSE_COOKIE_SECURE": "false",
        "FLASK_GATEHOUSE_ARGON2_TIME_COST": "1",
        "FLASK_GATEHOUSE_ARGON2_MEMORY_COST": "8",
        "FLASK_GATEHOUSE_MAIL_ATTEMPTS": "1000",
        "FLASK_GATEHOUSE_MAIL_RETRY_DELAY": "0.05",
        "FLASK_GATEHOUSE_MAIL_POLL_INTERVAL": "0.2",
        "FLASK_MAIL_SERVER": "127.0.0.1",
        "FLASK_MAIL_PORT": str(smtp_port),
        "FLASK_MAIL_TIMEOUT": "0.5",  # claims last 2 x this + 5 s
    }
    process = subprocess.Popen(
        [str(GUNICORN), "-w", "1", "--preload", "-b", f"127.0.0.1:{port}", "blog:create_app()"],
        cwd=DEMO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_until_up(port, process)
        yield f"http://127.0.0.1:{port}", process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        assert process.stderr is not None
        process.stderr.close()


def wait_until(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_mail_pending_when_the_server_is_killed_goes_out_once_after_restart(
    make_app: Any, database_url: str
) -> None:
    app = make_app()  # the tables, and a view of them (its own worker never starts)
    smtp_port = free_port()  # nobody listens yet: SMTP is down
    addresses = [f"reader{number}@example.com" for number in range(3)]
    with demo_server(database_url, smtp_port) as (url, process):
        for number, address in enumerate(addresses):
            fields = {"email": address, "username": f"reader{number}", "password": PASSWORD}
            assert post_form(browser(), f"{url}/register", fields) == 302
        # Every message has been tried (and failed) at least once: the worker was at work.
        wait_until(lambda: all(row.attempts >= 1 for row in rows(app)))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    assert [(row.recipient, row.status) for row in rows(app)] == [
        (address, "pending") for address in addresses
    ]
    smtp = SMTPServer(smtp_port)
    smtp.start()
    try:
        with demo_server(database_url, smtp_port) as (url, _):
            assert get(browser(), f"{url}/login")[0] == 200  # the first request starts the worker
            wait_until(lambda: all(row.status == "sent" for row in rows(app)))
            time.sleep(0.3)  # a few more polls: nothing is sent twice
        assert sorted(str(message["To"]) for message in smtp.mailbox.messages) == addresses
    finally:
        smtp.stop()


def test_a_message_is_stored_only_with_its_action(make_app: Any, mailbox: Mailbox) -> None:
    app = make_app()
    with app.app_context():
        mail.send("account_deleted", "gone@example.com", username="gone")
        db.session.rollback()
    assert rows(app) == []

    sign_up(app.test_client(), "bob@example.com")
    (row,) = rows(app)
    assert (row.template, row.recipient) == ("confirm_email", "bob@example.com")
    mailbox.wait_for(1)
    assert testing.wait_for_mail(app)
    (row,) = rows(app)
    assert (row.status, row.attempts, row.context, row.error) == ("sent", 1, "{}", None)
    assert row.finished_at is not None


def test_a_context_that_cannot_be_stored_fails_at_once(app: Flask) -> None:
    with app.app_context(), pytest.raises(TypeError):
        mail.send("account_deleted", "bob@example.com", username=object())


def test_two_workers_on_one_database_never_send_a_message_twice(make_app: Any) -> None:
    first, second = make_app(), make_app()
    write(first, 20)
    sent: dict[str, list[str]] = {"first": [], "second": []}

    def slow_transport(name: str) -> Any:
        def deliver(message: EmailMultiAlternatives) -> None:
            time.sleep(0.005)  # long enough for the two workers to interleave
            sent[name].append(message.to[0])

        return deliver

    state.get(first).outbox.transport = slow_transport("first")
    state.get(second).outbox.transport = slow_transport("second")
    state.get(first).outbox.start()
    state.get(second).outbox.start()
    assert testing.wait_for_mail(first)
    everything = sent["first"] + sent["second"]
    assert sorted(everything) == sorted(f"user{number}@example.com" for number in range(20))
    assert {row.status for row in rows(first)} == {"sent"}


def test_retries_back_off_then_the_message_fails_on_the_record(
    make_app: Any, mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(GATEHOUSE_MAIL_ATTEMPTS=3, GATEHOUSE_MAIL_RETRY_DELAY=0.1)
    mailbox.refuse = 10
    write(app, 1)
    started = time.monotonic()
    assert testing.wait_for_mail(app)
    assert time.monotonic() - started >= 0.3  # waited 0.1 s, then 0.2 s
    assert mailbox.attempts == 3
    (row,) = rows(app)
    assert (row.status, row.attempts) == ("failed", 3)
    assert "451" in row.error
    retries = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [line.split("; ")[1] for line in retries if "failed" in line] == [
        "retry 1 in 0.1 s",
        "retry 2 in 0.2 s",
    ]
    with app.app_context():
        (event,) = db.session.scalars(sa.select(Event).where(Event.kind == "mail_failed"))
    assert (event.identifier, event.outcome) == ("user0@example.com", "failure")


def test_a_template_error_fails_at_once(make_app: Any, mailbox: Mailbox) -> None:
    app = make_app()
    write(app, 1, template="no_such_template")
    assert testing.wait_for_mail(app)
    (row,) = rows(app)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.error.startswith("template error: ")
    assert mailbox.attempts == 0


def test_the_cli_shows_retries_and_sends_the_queue(
    make_app: Any, mailbox: Mailbox, smtp_server: SMTPServer
) -> None:
    down = make_app(MAIL_PORT=free_port(), GATEHOUSE_MAIL_ATTEMPTS=1)
    write(down, 2)
    runner = down.test_cli_runner()
    shown = runner.invoke(args=["gatehouse", "mail"])
    assert shown.exit_code == 0
    lines = shown.output.splitlines()
    assert lines[0] == "pending: 2  sent: 0  failed: 0"
    assert lines[1].startswith("1\tpending\taccount_deleted\tuser0@example.com\t0 attempts\tnext ")

    sent = runner.invoke(args=["gatehouse", "mail", "--send"])
    assert "Sent 0, to retry later 0, given up 2." in sent.output
    assert "pending: 0  sent: 0  failed: 2" in sent.output
    assert "Connection refused" in sent.output

    up = make_app(MAIL_PORT=smtp_server.port)
    again = up.test_cli_runner().invoke(args=["gatehouse", "mail", "--retry", "--send"])
    assert again.exit_code == 0
    assert again.output.splitlines() == [
        "Queued 2 failed message(s) again.",
        "Sent 2, to retry later 0, given up 0.",
        "pending: 0  sent: 2  failed: 0",
    ]
    assert len(mailbox.wait_for(2)) == 2


def test_a_host_test_captures_mail_without_an_smtp_server(make_app: Any) -> None:
    app = make_app(MAIL_PORT=free_port())
    with testing.captured_mail(app) as messages:
        sign_up(app.test_client(), "bob@example.com")
        assert testing.wait_for_mail(app)
    (message,) = messages
    assert message.to == ["bob@example.com"]
    assert "/confirm/" in message.body
    (row,) = rows(app)
    assert row.status == "sent"


def test_durations_from_the_environment_are_seconds(make_app: Any, mailbox: Mailbox) -> None:
    app = make_app(GATEHOUSE_MAIL_RETRY_DELAY=0.01, GATEHOUSE_MAIL_POLL_INTERVAL=1)
    mailbox.refuse = 1
    write(app, 1)
    assert testing.wait_for_mail(app)
    assert mailbox.attempts == 2
    assert app.config["GATEHOUSE_MAIL_RETRY_DELAY"] != timedelta(0)
