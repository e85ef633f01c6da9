"""Helpers for a host app's own tests: wait for Gatehouse's mail, or catch it in a list.

Mail leaves through the outbox's worker thread, after the request that wrote it. A test
that checks a message waits for it first::

    from flask_gatehouse.testing import captured_mail, wait_for_mail

    def test_sign_up_mails_a_link(app):
        with captured_mail(app) as messages:
            client = app.test_client()
            client.post("/register", data={...})
            assert wait_for_mail(app)
        (message,) = messages
        assert message.to == ["bob@example.com"]
        assert "/confirm/" in message.body

At the end of a test, ``stop_mail(app)`` ends the app's worker so that it never reaches into
the next test's database.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from flask_mailman import EmailMultiAlternatives

from . import state


def wait_for_mail(app: Flask, timeout: float = 10.0) -> bool:
    """Block until ``app`` has no message waiting to be sent (each one sent or given up);
    False on timeout."""
    return state.get(app).outbox.wait_idle(timeout)


@contextmanager
def captured_mail(app: Flask) -> Iterator[list[EmailMultiAlternatives]]:
    """While active, ``app``'s messages are rendered and appended to the list yielded
    instead of going to the SMTP server (they count as sent)."""
    outbox = state.get(app).outbox
    messages: list[EmailMultiAlternatives] = []
    previous, outbox.transport = outbox.transport, messages.append
    try:
        yield messages
    finally:
        outbox.transport = previous


def stop_mail(app: Flask, timeout: float = 30.0) -> bool:
    """Stop ``app``'s mail worker in this process (the next request starts it again);
    False when it is still sending after ``timeout``."""
    return state.get(app).outbox.stop(timeout)
