"""The mail outbox: messages stored with the action that sends them, sent by a worker.

``add`` writes a row of ``gatehouse_outbox`` into the caller's transaction, so a message
exists exactly when its action committed and survives the process that wrote it. One worker
thread per app and process (started by the process's first request, never by CLI commands)
renders and sends messages through Flask-Mailman and marks each "sent", or, after
GATEHOUSE_MAIL_ATTEMPTS tries with doubling delays, "failed" with the reason and a
``mail_failed`` event.

Every row is held by a lease (``claimed_until``) while a worker has it, so two workers never
send one message. A row written in a request is born claimed by its own process: once the
action commits (``transaction.commit``) it is handed to this process's worker in memory, and
the request's end wakes the worker, which sends it and marks it: one UPDATE in all. Every
GATEHOUSE_MAIL_POLL_INTERVAL (and when a retry falls due) the worker also claims due rows
from the table, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, one atomic UPDATE on SQLite: rows
written elsewhere (other processes, the CLI), retries, and rows of a process that died, once
their lease lapsed. Delivery is at least once: a process killed after the SMTP server
accepted a message but before its row was marked sent sends it again after the lease.
The worker commits its own short transactions; it is not part of any user action.
"""

import json
import logging
import smtplib
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask import Flask, g, has_request_context
from flask_mailman import EmailMultiAlternatives
from jinja2 import TemplateError
from sqlalchemy import Table, delete, func, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from ..models import OutboxMessage, utcnow
from . import audit, mail, transaction
from .database import db

logger = logging.getLogger("flask_gatehouse.mail")

#: Where a request notes that it wrote mail, so its end wakes the worker.
_WROTE_MAIL = "gatehouse_wrote_mail"
#: Where the database session keeps the rows of its open transaction (``take_written``).
_WRITTEN = "gatehouse_outbox_written"
#: The outbox table, for Core statements on the worker's hot path.
_TABLE = cast(Table, OutboxMessage.__table__)
#: Finished rows are pruned at most this often per worker.
_PRUNE_EVERY = 3600.0
#: Added to twice MAIL_TIMEOUT (connect, then the rest) for a claim's lease.
_LEASE_MARGIN = timedelta(seconds=5)


def seconds(value: timedelta | float) -> float:
    """A duration from config: a timedelta, or a number of seconds (as environment
    variables give it)."""
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass(frozen=True)
class _Claimed:
    """A row the worker holds: what it needs to send it."""

    id: int
    template: str
    recipient: str
    context: str
    attempts: int


@dataclass(frozen=True)
class _Written:
    """A row written in the open transaction, born claimed by this process until ``lease``."""

    message: _Claimed
    lease: datetime


#: A rendered message going out: Flask-Mailman's message object.
Transport = Callable[[EmailMultiAlternatives], None]


class Outbox:
    """One app's outbox and its worker thread in this process."""

    def __init__(self, app: Flask) -> None:
        # A weak reference: the worker thread must not keep a dropped app alive.
        self._app = weakref.ref(app)
        #: Sends one rendered message; None is Flask-Mailman (``testing.captured_mail``
        #: swaps in a list).
        self.transport: Transport | None = None
        self._reset()
        app.teardown_request(self._after_request)

    def after_fork(self) -> None:
        """In a forked child (``state.State.after_fork``): the child inherits the parent's
        locks in whatever state they were, but none of its threads."""
        self._reset()

    def _reset(self) -> None:
        """Fresh locks and no thread: at creation, and in a forked child."""
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned_at: float | None = None
        #: Committed rows of this process's requests, waiting for the worker (a forked
        #: child starts without the parent's: it sends them only if their lease lapses).
        self._handed: deque[tuple[_Claimed, datetime]] = deque()
        #: When (time.monotonic) the worker next claims from the table.
        self._poll_at = 0.0

    def add(self, template: str, to: str, context: dict[str, Any]) -> None:
        """Add the message to the current transaction (sent once the caller commits).

        Raises TypeError when ``context`` is not plain JSON data (it is rendered later, in
        another thread or process)."""
        now = utcnow()
        encoded = json.dumps(context)
        # Outside a request (the CLI) no worker runs here: the row waits for any server's.
        lease = now + self._lease() if has_request_context() else None
        session = db().session
        # A Core INSERT, at once: cheaper than an ORM flush, and it gives the id.
        row_id = session.connection().scalar(
            insert(_TABLE)
            .values(
                created_at=now,
                template=template,
                recipient=to,
                context=encoded,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                claimed_until=lease,
            )
            .returning(_TABLE.c.id)
        )
        if lease is not None:
            message = _Claimed(row_id, template, to, encoded, 0)
            session.info.setdefault(_WRITTEN, []).append(_Written(message, lease))
            setattr(g, _WROTE_MAIL, True)

    def take_written(self) -> list[_Written]:
        """The rows added in the open transaction, forgotten here (taken before a commit:
        if it fails, they were never stored)."""
        written: list[_Written] = db().session.info.pop(_WRITTEN, [])
        return written

    def hand_over(self, written: list[_Written]) -> None:
        """After their commit: the rows go to this process's worker, which the end of the
        request wakes (not now: it would compete with the request for the interpreter)."""
        self._handed.extend((item.message, item.lease) for item in written)

    def _after_request(self, _error: BaseException | None) -> None:
        """``teardown_request``: start the worker in a process's first request, and wake it
        when the request wrote mail; only now, after the flow committed, and so that it does
        not compete with the request for the interpreter."""
        if self._thread is None:
            self.start()
        if g.pop(_WROTE_MAIL, False):
            self._wakeup.set()

    def start(self) -> None:
        """Start this process's worker unless it runs."""
        with self._lock:
            if self.running:
                return
            self._stopping = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stopping,), name="gatehouse-outbox", daemon=True
            )
            self._thread.start()

    @property
    def running(self) -> bool:
        """Whether this process's worker is running."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the worker and wait for it (it finishes the message in hand); False when it
        is still busy after ``timeout``. The next request starts it again."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping.set()
            self._wakeup.set()
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no message of this app is pending (sent or given up); False on
        timeout. Starts the worker if needed, and has it look at the table now rather than
        at its next poll (tests, clean shutdowns)."""
        app = self._app()
        assert app is not None, "the app of this outbox is gone"
        self.start()
        self._poll_at = 0.0
        self._wakeup.set()
        deadline = time.monotonic() + timeout
        while True:
            with app.app_context():
                pending = db().session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.status == "pending")
                )
            if not pending:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def _run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            app = self._app()
            if app is None:
                return
            self._pass(app, stopping)
            del app  # not held while asleep
            self._wakeup.wait(max(self._poll_at - time.monotonic(), 0.0))
            self._wakeup.clear()

    def _pass(self, app: Flask, stopping: threading.Event) -> None:
        """Send what this process's requests handed over and, when it is time, what is due
        in the table."""
        poll = seconds(app.config["GATEHOUSE_MAIL_POLL_INTERVAL"])
        try:
            with app.app_context():
                self._send_handed(stopping)
                if time.monotonic() >= self._poll_at:
                    self._poll_at = time.monotonic() + poll
                    self.deliver_due(stopping)
                    self._prune()
                return
        except SQLAlchemyError as error:
            logger.warning("mail outbox unreachable (%s); trying again in %.1f s", error, poll)
        except Exception:  # the worker must outlive any bug (logged with its traceback)
            logger.exception("mail worker error; trying again in %.1f s", poll)
        self._poll_at = time.monotonic() + poll

    def _send_handed(self, stopping: threading.Event) -> None:
        """Send the rows this process's requests wrote. A row whose lease ran short while it
        waited (a backlog behind a slow SMTP server) is claimed again first, and left alone
        if another worker took it meanwhile."""
        margin = self._lease() / 2
        while self._handed and not stopping.is_set():
            claimed, lease = self._handed.popleft()
            if lease - utcnow() < margin and not self._renew(claimed.id, lease):
                continue
            self._deliver(claimed)

    def _renew(self, row_id: int, lease: datetime) -> bool:
        """Extend this worker's claim on a row; False when the claim was lost."""
        table = _TABLE
        session = db().session
        renewed = session.connection().execute(
            update(table)
            .where(
                table.c.id == row_id,
                table.c.status == "pending",
                table.c.claimed_until == lease,
            )
            .values(claimed_until=utcnow() + self._lease())
        )
        session.commit()
        return bool(renewed.rowcount)

    def _lease(self) -> timedelta:
        """How long a worker holds a row: one message's connect and send, and a margin."""
        return 2 * timedelta(seconds=seconds(self._config()["MAIL_TIMEOUT"])) + _LEASE_MARGIN

    def deliver_due(self, stopping: threading.Event | None = None) -> Counter[str]:
        """Send every due message now, one claim at a time (needs the app's context); how
        many were "sent", "retried" (a retry is scheduled) and "failed" (given up)."""
        done: Counter[str] = Counter()
        while stopping is None or not stopping.is_set():
            claimed = self._claim()
            if claimed is None:
                break
            done[self._deliver(claimed)] += 1
        return done

    def _claim(self) -> _Claimed | None:
        """Take the next due row for one lease, in its own short transaction. Most polls
        find nothing: a plain read says so first, without a write to commit."""
        now = utcnow()
        lease = self._lease()
        due = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.status == "pending",
                OutboxMessage.next_attempt_at <= now,
                or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until <= now),
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(1)
        )
        session = db().session
        if session.scalar(due) is None:
            session.rollback()  # end the read transaction
            return None
        due = due.with_for_update(skip_locked=True)  # PostgreSQL; SQLite's UPDATE is atomic
        claimed = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(due.scalar_subquery()))
            .values(claimed_until=now + lease)
            .returning(
                OutboxMessage.id,
                OutboxMessage.template,
                OutboxMessage.recipient,
                OutboxMessage.context,
                OutboxMessage.attempts,
            ),
            execution_options={"synchronize_session": False},
        ).one_or_none()
        session.commit()
        return None if claimed is None else _Claimed(*claimed)

    def _deliver(self, claimed: _Claimed) -> str:
        """Render and send one claimed row and store the outcome: "sent", "retried" or
        "failed"."""
        config = self._config()
        attempts = claimed.attempts + 1
        try:
            message = mail.render(
                claimed.template, claimed.recipient, **json.loads(claimed.context)
            )
            self._send(message)
        except TemplateError as error:
            # First: TemplateNotFound is an OSError too, and no retry brings a template back.
            self._fail(claimed, attempts, f"template error: {error}")
        except (smtplib.SMTPException, OSError) as error:
            if attempts < config["GATEHOUSE_MAIL_ATTEMPTS"]:
                delay = seconds(config["GATEHOUSE_MAIL_RETRY_DELAY"]) * 2 ** (attempts - 1)
                # The table is claimed from again when the retry falls due.
                self._poll_at = min(self._poll_at, time.monotonic() + delay)
                logger.warning(
                    "mail %s to %s failed (%s); retry %d in %.1f s",
                    claimed.template,
                    claimed.recipient,
                    error,
                    attempts,
                    delay,
                )
                self._finish(
                    claimed,
                    attempts=attempts,
                    error=str(error)[:255],
                    next_attempt_at=utcnow() + timedelta(seconds=delay),
                )
                return "retried"
            self._fail(claimed, attempts, str(error))
        else:
            logger.info("mail %s sent to %s", claimed.template, claimed.recipient)
            self._finish(
                claimed,
                attempts=attempts,
                status="sent",
                context="{}",
                error=None,
                finished_at=utcnow(),
            )
            return "sent"
        return "failed"

    def _send(self, message: EmailMultiAlternatives) -> None:
        if self.transport is not None:
            self.transport(message)
            return
        app = self._app()
        assert app is not None
        # Our own connection, closed however the send ends (Flask-Mailman's
        # EmailMessage.send leaves it open when the server refuses the message).
        with app.extensions["mailman"].get_connection() as connection:
            connection.send_messages([message])

    def _fail(self, claimed: _Claimed, attempts: int, reason: str) -> None:
        """Give the message up: log it, mark the row and record ``mail_failed``, in one
        commit. The row keeps its context, for ``flask gatehouse mail --retry``."""
        logger.error(
            "mail %s to %s lost after %d attempts: %s",
            claimed.template,
            claimed.recipient,
            attempts,
            reason,
        )
        audit.record(
            "mail_failed",
            "failure",
            identifier=claimed.recipient,
            detail=f"{claimed.template}: {reason}"[:255],
        )
        self._finish(
            claimed,
            attempts=attempts,
            status="failed",
            error=reason[:255],
            finished_at=utcnow(),
        )

    def _finish(self, claimed: _Claimed, **values: Any) -> None:
        """Store an attempt's outcome and release the claim (a Core UPDATE: the ORM's
        bulk-update machinery would cost more than the statement)."""
        table = _TABLE
        db().session.connection().execute(
            update(table).where(table.c.id == claimed.id).values(claimed_until=None, **values)
        )
        transaction.commit()

    def _prune(self) -> None:
        """Now and then, delete rows finished longer than GATEHOUSE_AUDIT_RETENTION ago
        (a range on the (status, next_attempt_at) index: cheap when there is nothing)."""
        now = time.monotonic()
        if self._pruned_at is None:
            # Not at once: a worker that lives a few seconds (a test, a recycled process
            # restarting) would prune for nothing. A minute in, then every hour.
            self._pruned_at = now - _PRUNE_EVERY + 60.0
        if now - self._pruned_at < _PRUNE_EVERY:
            return
        self._pruned_at = now
        cutoff = utcnow() - self._config()["GATEHOUSE_AUDIT_RETENTION"]
        session = db().session
        session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.status.in_(("sent", "failed")),
                OutboxMessage.next_attempt_at < cutoff,
                OutboxMessage.finished_at < cutoff,
            )
        )
        session.commit()

    def _config(self) -> Any:
        app = self._app()
        assert app is not None
        return app.config


def requeue_failed() -> int:
    """Put every failed message back in the queue, attempts reset; how many. Joins the
    current transaction."""
    requeued = (
        db()
        .session.scalars(
            update(OutboxMessage)
            .where(OutboxMessage.status == "failed")
            .values(
                status="pending",
                attempts=0,
                next_attempt_at=utcnow(),
                claimed_until=None,
                finished_at=None,
                error=None,
            )
            .returning(OutboxMessage.id),
            execution_options={"synchronize_session": False},
        )
        .all()
    )
    return len(requeued)


def counts() -> dict[str, int]:
    """How many messages are pending, sent and failed."""
    by_status = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    found: dict[str, int] = {}
    for status, count in db().session.execute(by_status):
        found[status] = count
    return {status: found.get(status, 0) for status in ("pending", "sent", "failed")}


def unfinished() -> list[OutboxMessage]:
    """The pending and failed messages, oldest first."""
    waiting = select(OutboxMessage).where(OutboxMessage.status.in_(("pending", "failed")))
    return list(db().session.scalars(waiting.order_by(OutboxMessage.id)))
