"""Mail: what a message says (its templates and links), and ``send`` to the outbox.

``send`` only adds a row to the caller's transaction; the outbox's worker renders and sends
it through Flask-Mailman (the host configures its ``MAIL_*`` keys) off the request path, so
a slow or failing SMTP server never slows, fails or changes a response (Django
CVE-2024-45231 was a failed send changing an answer). See ``services.outbox`` for retries,
failures and what survives a crash.

Each message is ``gatehouse/email/<name>.txt`` plus ``<name>.html``; the text template sets
the subject with ``{% set subject = ... %}``: a sentence without the site's name, which
``render`` puts in front ("The Blog: Your password was changed"), so that any name reads
well, with an article or without. Templates get the links they need as absolute URLs built
by ``link`` from GATEHOUSE_BASE_URL, never from the request's Host header.
"""

import os
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, render_template
from flask_mailman import EmailMultiAlternatives, Mail

from .. import state


def init_app(app: Flask) -> None:
    """Set up Flask-Mailman for ``app`` unless the host already did.

    The dev mailbox swaps the SMTP backend for Flask-Mailman's file backend, writing each
    message to MAIL_FILE_PATH (the instance folder's ``mailbox`` unless set), where
    ``/dev/mailbox`` reads them.
    """
    config = app.config
    if config["GATEHOUSE_DEV_MAILBOX"]:
        if not app.debug:
            raise RuntimeError(
                "GATEHOUSE_DEV_MAILBOX shows every message on a web page; it only runs in "
                "debug mode. Configure MAIL_SERVER instead."
            )
        config["MAIL_BACKEND"] = "file"
        config.setdefault("MAIL_FILE_PATH", os.path.join(app.instance_path, "mailbox"))
    # Without a timeout a hung SMTP server would hold the sending thread forever; the
    # outbox's claims last twice this long.
    config.setdefault("MAIL_TIMEOUT", 10)
    if "mailman" not in app.extensions:
        Mail().init_app(app)


def dev_mailbox_path(app: Flask) -> str:
    """The folder the dev mailbox keeps messages in (MAIL_FILE_PATH, by default the
    instance folder's ``mailbox``)."""
    path: str = app.config["MAIL_FILE_PATH"]
    return path


def link(endpoint: str, **values: Any) -> str:
    """An absolute URL for an email, on GATEHOUSE_BASE_URL's scheme, host and path.

    The URL map is bound to the configured URL rather than to the request, so nothing the
    client sent (Host, X-Forwarded-Host, the script path) reaches a link, and links can be
    built outside requests too (the CLI).
    """
    base = urlsplit(current_app.config["GATEHOUSE_BASE_URL"])
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme
    )
    return adapter.build(endpoint, values, force_external=True)


def duration(delta: timedelta) -> str:
    """A link's lifetime in words for a message: "30 minutes", "48 hours", "7 days"."""
    seconds = round(delta.total_seconds())
    for unit, size, smallest in (("day", 86400, 3), ("hour", 3600, 1), ("minute", 60, 1)):
        count, rest = divmod(seconds, size)
        if rest == 0 and count >= smallest:
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def send(template: str, to: str, **context: Any) -> None:
    """Add the message ``template`` for ``to`` to the current transaction: it goes out once
    the caller commits, never if it rolls back (``services.outbox``).

    ``context`` must be plain JSON values (strings, numbers), or TypeError is raised: it is
    stored, and rendered later in another thread or process.
    """
    state.get().outbox.add(template, to, context)


def _subject_line(site_name: str, subject: str) -> str:
    """``site_name: subject`` on one line (the site's name alone when there is no subject)."""
    site, words = " ".join(site_name.split()), " ".join(subject.split())
    return f"{site}: {words}" if words else site


def render(template: str, to: str, **context: Any) -> EmailMultiAlternatives:
    """Build the message ``template`` for ``to`` (needs an app context)."""
    config = current_app.config
    context = {"site_name": config["GATEHOUSE_SITE_NAME"], "to": to, **context}
    text = current_app.jinja_env.get_template(f"gatehouse/email/{template}.txt")
    module = text.make_module(context)
    subject = _subject_line(config["GATEHOUSE_SITE_NAME"], str(getattr(module, "subject", "")))
    message = EmailMultiAlternatives(
        subject=subject, body=str(module), from_email=config["GATEHOUSE_MAIL_SENDER"], to=[to]
    )
    message.attach_alternative(
        render_template(f"gatehouse/email/{template}.html", subject=subject, **context),
        "text/html",
    )
    return message
