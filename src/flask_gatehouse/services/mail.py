"""Mail: render a message from its templates and send it off the request path.

Messages go through Flask-Mailman (the host configures its ``MAIL_*`` keys). A request only
queues a message; one background thread per process renders and sends it, so a slow or
failing SMTP server never slows, fails or changes a response (Django CVE-2024-45231 was a
failed send changing an answer). A failed send is retried GATEHOUSE_MAIL_ATTEMPTS times with
doubling delays; a message given up is logged as an error and recorded as a ``mail_failed``
security event, and so is any still queued when the process exits.

Each message is ``gatehouse/email/<name>.txt`` plus ``<name>.html``; the text template sets
the subject with ``{% set subject = ... %}``. Templates get the links they need as absolute
URLs built by ``link`` from GATEHOUSE_BASE_URL, never from the request's Host header.
"""

import atexit
import logging
import os
import queue
import smtplib
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, g, has_request_context, render_template
from flask_mailman import EmailMultiAlternatives, Mail
from jinja2 import TemplateError

from . import audit

logger = logging.getLogger("flask_gatehouse.mail")

#: Seconds the process waits at exit for queued mail before logging it as lost.
_EXIT_GRACE = 10.0


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
    # Without a timeout a hung SMTP server would hold the sending thread forever.
    config.setdefault("MAIL_TIMEOUT", 10)
    if "mailman" not in app.extensions:
        Mail().init_app(app)
    app.teardown_request(_queue_request_mail)


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


@dataclass
class _Job:
    app: Flask
    template: str
    to: str
    context: dict[str, Any]
    attempt: int = field(default=0)


def send(template: str, to: str, **context: Any) -> None:
    """Queue the message ``template`` for ``to``; returns at once (in a request, the message
    is queued when the request ends).

    ``context`` must be plain values (strings, numbers): it is rendered later, in another
    thread, outside this request.
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    job = _Job(app, template, to, context)
    if has_request_context():
        g.setdefault("gatehouse_mail", []).append(job)
    else:
        _outbox.put(job)


def _queue_request_mail(_error: BaseException | None) -> None:
    """``teardown_request``: hand the request's messages to the sending thread only now, so
    it does not compete with the request for the interpreter while the request runs (that
    would make a page that mails measurably slower than one that does not)."""
    for job in g.pop("gatehouse_mail", ()):
        _outbox.put(job)


def render(template: str, to: str, **context: Any) -> EmailMultiAlternatives:
    """Build the message ``template`` for ``to`` (needs an app context)."""
    config = current_app.config
    context = {"site_name": config["GATEHOUSE_SITE_NAME"], "to": to, **context}
    text = current_app.jinja_env.get_template(f"gatehouse/email/{template}.txt")
    module = text.make_module(context)
    subject = " ".join(str(getattr(module, "subject", config["GATEHOUSE_SITE_NAME"])).split())
    message = EmailMultiAlternatives(
        subject=subject, body=str(module), from_email=config["GATEHOUSE_MAIL_SENDER"], to=[to]
    )
    message.attach_alternative(
        render_template(f"gatehouse/email/{template}.html", subject=subject, **context),
        "text/html",
    )
    return message


class _Outbox:
    """The process's queue of messages and the thread that sends them.

    Started on first use, and again in a forked child (a pre-forking server copies the
    queue but not the thread). Retries wait on timers, so one failing message does not hold
    up the ones behind it.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[_Job] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._pid: int | None = None

    def put(self, job: _Job) -> None:
        with self._idle:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._queue = queue.Queue()
                self._pending = 0
                threading.Thread(target=self._run, name="gatehouse-mail", daemon=True).start()
            if job.attempt == 0:
                self._pending += 1
                # With the "sent" or "lost" line that follows, a message that dies with its
                # process (killed before it could be sent) still leaves a trace in the log.
                logger.info("mail %s to %s queued", job.template, job.to)
            self._queue.put(job)

    def wait(self, timeout: float) -> bool:
        """Block until every queued message is sent or given up; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            finished = True
            with job.app.app_context():
                try:
                    finished = self._deliver(job)
                except Exception:  # the sending thread must outlive any bug (it is logged)
                    logger.exception("mail %s to %s lost", job.template, job.to)
            # Counted as done only once the app context (and the database connection it may
            # have used to record a loss) is released, so ``wait`` also waits for that.
            if finished:
                self._done()

    def _deliver(self, job: _Job) -> bool:
        """Send ``job``; False when a retry is scheduled, True when it is sent or given up."""
        config = job.app.config
        try:
            message = render(job.template, job.to, **job.context)
            # Our own connection, closed however the send ends (Flask-Mailman's
            # EmailMessage.send leaves it open when the server refuses the message).
            with job.app.extensions["mailman"].get_connection() as connection:
                connection.send_messages([message])
        except (smtplib.SMTPException, OSError) as error:
            job.attempt += 1
            if job.attempt < config["GATEHOUSE_MAIL_ATTEMPTS"]:
                delay = config["GATEHOUSE_MAIL_RETRY_DELAY"].total_seconds() * 2 ** (
                    job.attempt - 1
                )
                logger.warning(
                    "mail %s to %s failed (%s); retry %d in %.1f s",
                    job.template,
                    job.to,
                    error,
                    job.attempt,
                    delay,
                )
                timer = threading.Timer(delay, self.put, args=(job,))
                timer.daemon = True
                timer.start()
                return False
            _report_lost(job, str(error))
        except TemplateError as error:
            _report_lost(job, f"template error: {error}")
        else:
            logger.info("mail %s sent to %s", job.template, job.to)
        return True

    def drain(self) -> None:
        """At exit: give queued mail a moment, then report what is left as lost."""
        if self._pid != os.getpid() or self.wait(_EXIT_GRACE):
            return
        logger.error("%d message(s) still unsent at exit were lost", self._pending)


def _report_lost(job: _Job, reason: str) -> None:
    """Log and record a message given up after its last attempt (needs an app context)."""
    logger.error(
        "mail %s to %s lost after %d attempts: %s", job.template, job.to, job.attempt, reason
    )
    audit.record(
        "mail_failed", "failure", identifier=job.to, detail=f"{job.template}: {reason}"[:255]
    )


_outbox = _Outbox()
atexit.register(_outbox.drain)


def wait_until_sent(timeout: float = 10.0) -> bool:
    """Block until this process has no mail waiting (tests, and clean shutdowns)."""
    return _outbox.wait(timeout)
