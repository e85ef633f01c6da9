"""Mail through real flows (sign-up): what a message holds, where its links point, and what
a failing, unreachable or slow SMTP server does (never anything to the response). The
outbox's own guarantees (crashes, claims, retries, the CLI) are in test_outbox.py."""

import asyncio
import logging
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from blog import db
from flask import Flask
from jinja2 import ChoiceLoader, DictLoader

from flask_gatehouse import testing
from flask_gatehouse.models import Event
from flask_gatehouse.services import mail
from tests.smtp import Mailbox, free_port, html, links, text
from tests.test_confirmation import sign_up, without_csrf

BASE_URL = "https://gatehouse.test"


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "evil.example"},
        {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"},
    ],
    ids=["host", "x-forwarded-host"],
)
def test_message_has_both_parts_and_links_on_the_base_url(
    make_app: Any, mailbox: Mailbox, headers: dict[str, str]
) -> None:
    """Links come from GATEHOUSE_BASE_URL even behind a trusted proxy that forwards a forged
    host: a poisoned Host header must not send a user's link to an attacker's site."""
    app = make_app(GATEHOUSE_TRUSTED_PROXIES=1)
    assert sign_up(app.test_client(), "bob@example.com", headers=headers).status_code == 302
    (message,) = mailbox.wait_for(1)
    assert message["From"] == "no-reply@gatehouse.test"
    assert message["To"] == "bob@example.com"
    assert message.get_content_type() == "multipart/alternative"
    assert "Hello bob," in text(message)
    assert "Hello bob," in html(message)
    (link,) = links(message)
    assert link.startswith(f"{BASE_URL}/confirm/")
    assert "evil.example" not in message.as_string()


def test_a_struggling_smtp_server_gets_the_message_on_a_retry(
    client: Any, mailbox: Mailbox
) -> None:
    mailbox.refuse = 2
    sign_up(client, "bob@example.com")
    (message,) = mailbox.wait_for(1)
    assert message["To"] == "bob@example.com"
    assert mailbox.attempts == 3


def _answer(app: Flask, email: str) -> tuple[Any, ...]:
    """Everything a visitor sees of a sign-up: the redirect, then the page it leads to."""
    client = app.test_client()
    started = time.perf_counter()
    response = sign_up(client, email)
    elapsed = time.perf_counter() - started
    follow = client.get(response.headers["Location"])
    return (
        response.status_code,
        response.headers["Location"],
        response.text,
        without_csrf(follow.text),
        elapsed,
    )


def test_smtp_down_changes_no_answer_and_the_loss_is_logged_and_recorded(
    make_app: Any, mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    # One database, so one outbox: the "up" app is done and stopped before the "down" one
    # starts, or its worker could send the other's message.
    up = make_app()
    *delivered, _ = _answer(up, "bob@example.com")
    assert testing.wait_for_mail(up)
    assert testing.stop_mail(up)
    down = make_app(MAIL_PORT=free_port())
    *lost, elapsed = _answer(down, "carol@example.com")
    assert lost == delivered
    assert elapsed < 1.0  # no waiting for SMTP (MAIL_TIMEOUT is 5 s)

    assert testing.wait_for_mail(down)
    assert [m["To"] for m in mailbox.messages] == ["bob@example.com"]
    errors = [
        r.getMessage()
        for r in caplog.records
        if r.name == "flask_gatehouse.mail" and r.levelno == logging.ERROR
    ]
    assert len(errors) == 1
    assert "confirm_email to carol@example.com lost after 4 attempts" in errors[0]
    with down.app_context():
        (event,) = db.session.scalars(sa.select(Event).where(Event.kind == "mail_failed"))
    assert (event.outcome, event.identifier) == ("failure", "carol@example.com")
    assert event.detail.startswith("confirm_email: ")


class _StallingServer:
    """An SMTP server that holds every message in DATA until the test lets it go."""

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.release = threading.Event()
        self.received: list[str] = []
        self._controller = Controller(self, hostname="127.0.0.1", port=free_port())
        self.port = self._controller.port

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.holding.set()
        await asyncio.to_thread(self.release.wait, 10)
        self.received.append(envelope.rcpt_tos[0])
        return "250 OK"

    def __enter__(self) -> "_StallingServer":
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._controller.stop()


def test_a_slow_smtp_server_does_not_slow_the_response(make_app: Any) -> None:
    with _StallingServer() as smtp:
        app = make_app(MAIL_PORT=smtp.port)
        sign_up(app.test_client(), "bob@example.com")
        assert smtp.holding.wait(5), "the first message never reached the server"
        # The sending thread is now stuck in the first message; a second sign-up must not be.
        # The server holds it until released (or 10 s): a response that waited for the mail
        # would come back only after the server had taken it, so nothing received yet means
        # the response did not wait (no clock: a timed bound failed on a loaded machine).
        response = sign_up(app.test_client(), "carol@example.com")
        assert response.status_code == 302
        assert not smtp.received
        smtp.release.set()
        assert testing.wait_for_mail(app)
    assert smtp.received == ["bob@example.com", "carol@example.com"]


def test_a_host_app_overrides_an_email_template(make_app: Any, mailbox: Mailbox) -> None:
    app = make_app()
    app.jinja_loader = ChoiceLoader(
        [
            DictLoader(
                {
                    "gatehouse/email/confirm_email.txt": (
                        '{% set subject = "Welcome aboard, " ~ username %}'
                        "Ahoy {{ username }}! Confirm here: {{ link }}"
                    ),
                    "gatehouse/email/confirm_email.html": (
                        '{% extends "gatehouse/email/base.html" %}'
                        "{% block content %}<p>Ahoy {{ username }}!</p>"
                        '<a href="{{ link }}">Confirm</a>{% endblock %}'
                    ),
                }
            ),
            app.jinja_loader,
        ]
    )
    sign_up(app.test_client(), "bob@example.com")
    (message,) = mailbox.wait_for(1)
    assert message["Subject"] == "The Blog: Welcome aboard, bob"
    assert text(message).startswith("Ahoy bob! Confirm here: https://gatehouse.test/confirm/")
    assert "<p>Ahoy bob!</p>" in html(message)
    assert "This message was sent to bob@example.com by The Blog." in html(message)


@pytest.mark.parametrize("site_name", ["The Blog", "example.com", "ACME  Corp"])
def test_every_subject_reads_well_whatever_the_site_name(make_app: Any, site_name: str) -> None:
    """The site's name leads every subject ("The Blog: Your password was changed"), never
    inside a sentence it may not fit ("Your The Blog password was changed")."""
    app = make_app(GATEHOUSE_SITE_NAME=site_name)
    templates = app.jinja_env.list_templates(
        filter_func=lambda name: name.startswith("gatehouse/email/") and name.endswith(".txt")
    )
    assert len(templates) >= 9
    site = " ".join(site_name.split())
    with app.app_context():
        for template in templates:
            kind = template.removeprefix("gatehouse/email/").removesuffix(".txt")
            subject = str(mail.render(kind, "bob@example.com", username="bob").subject)
            name, colon, sentence = subject.partition(": ")
            assert (name, colon) == (site, ": "), subject
            assert sentence[:1].isupper(), subject
            assert site not in sentence, subject
            assert "  " not in subject, subject


@pytest.mark.parametrize(
    ("lifetime", "words"),
    [
        (timedelta(minutes=30), "30 minutes"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(hours=48), "48 hours"),
        (timedelta(days=1), "24 hours"),
        (timedelta(days=7), "7 days"),
        (timedelta(seconds=90), "90 seconds"),
    ],
)
def test_link_lifetimes_read_as_words(lifetime: timedelta, words: str) -> None:
    assert mail.duration(lifetime) == words
