"""Security events: one row per event, one JSON log line for the operator's log system, and
a blinker signal for the host (``flask_gatehouse.signals``).

An event joins the action's transaction: it is stored exactly when the action is, and its
log line and signals go out only once that commit succeeded (``transaction.commit``), so
neither the table nor the log ever tells of an action that was rolled back. A write also
deletes the events older than GATEHOUSE_AUDIT_RETENTION (an indexed range delete), at most
once a minute per app.
"""

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, has_request_context
from sqlalchemy import and_, delete, or_, select

from .. import signals, state
from ..models import Event, User, utcnow
from . import client
from .database import db

logger = logging.getLogger("flask_gatehouse.audit")

#: Expired events are deleted at most this often per app.
_PRUNE_EVERY = timedelta(minutes=1)
#: Where the session keeps the events recorded in its open transaction.
_RECORDED = "gatehouse_recorded_events"


@dataclass(frozen=True)
class _Recorded:
    """An event waiting for its transaction's commit, with what announcing it needs read
    beforehand (after the commit the row's attributes are expired: reading one would cost a
    query)."""

    event: Event
    user: User | None
    kind: str
    outcome: str
    line: str


def record(
    kind: str,
    outcome: str,
    *,
    user: User | None = None,
    identifier: str | None = None,
    detail: str | None = None,
) -> Event:
    """Add one event to the current transaction; ``outcome`` is "success", "failure" or
    "blocked". Logged and signalled by ``announce_committed`` once the caller commits."""
    now = utcnow()
    in_request = has_request_context()
    event = Event(
        created_at=now,
        kind=kind,
        outcome=outcome,
        user_id=user.id if user is not None else None,
        identifier=(identifier or (user.email if user is not None else None) or None),
        ip=client.ip() if in_request else "",
        user_agent=client.user_agent() if in_request else "",
        detail=detail,
    )
    if event.identifier is not None:
        event.identifier = event.identifier[:254]
    session = db().session
    session.add(event)
    if _prune_due(now):
        session.execute(
            delete(Event).where(
                Event.created_at < now - current_app.config["GATEHOUSE_AUDIT_RETENTION"]
            )
        )
    line = json.dumps(as_dict(event), ensure_ascii=False)
    session.info.setdefault(_RECORDED, []).append(_Recorded(event, user, kind, outcome, line))
    return event


def _prune_due(now: datetime) -> bool:
    """Whether this event's write also deletes the expired ones: at most once a minute per
    app, so that a busy site does not pay a DELETE on every login."""
    current = state.get()
    last = current.events_pruned_at
    if last is not None and last <= now < last + _PRUNE_EVERY:
        return False
    current.events_pruned_at = now
    return True


def take_recorded() -> list["_Recorded"]:
    """The events recorded in the open transaction, forgotten here (taken before a commit:
    if it fails, they were never stored and must not be announced)."""
    recorded: list[_Recorded] = db().session.info.pop(_RECORDED, [])
    return recorded


def announce_committed(recorded: list["_Recorded"]) -> None:
    """Log and signal events whose transaction committed."""
    if not recorded:
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    for item in recorded:
        logger.info(item.line)
        signals.security_event.send(app, user=item.user, event=item.event)
        for named in signals.BY_EVENT.get((item.kind, item.outcome), ()):
            named.send(app, user=item.user, event=item.event)


def as_dict(event: Event) -> dict[str, object]:
    """The event as plain JSON-ready data (for log lines and the CLI)."""
    return {
        "event": event.kind,
        "outcome": event.outcome,
        "time": event.created_at.isoformat(),
        "user_id": event.user_id,
        "identifier": event.identifier,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "detail": event.detail,
    }


def recent(
    *,
    user: User | None = None,
    since: datetime | None = None,
    kind: str | None = None,
    limit: int | None = 100,
) -> list[Event]:
    """Newest events first, filtered by user, start time and kind (``limit=None``: all).

    A user's events include failed logins typed with their address (those have no user id,
    since the password check never says whose account it was), but only from this account's
    lifetime: an address freed by an email change or a deletion and taken by a new account
    must not hand it the earlier owner's history.
    """
    query = select(Event).order_by(Event.created_at.desc(), Event.id.desc()).limit(limit)
    if user is not None:
        query = query.where(
            or_(
                Event.user_id == user.id,
                and_(
                    Event.user_id.is_(None),
                    Event.identifier == user.email,
                    Event.created_at >= user.created_at,
                ),
            )
        )
    if since is not None:
        query = query.where(Event.created_at >= since)
    if kind is not None:
        query = query.where(Event.kind == kind)
    return list(db().session.scalars(query))
