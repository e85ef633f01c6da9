"""Security events: one row per event plus one JSON log line for the operator's log system.

Events are written in their own commit so that a later failure in the request cannot lose
them, and each write also deletes events older than GATEHOUSE_AUDIT_RETENTION (an indexed
range delete, so it costs next to nothing when there is nothing to prune).
"""

import json
import logging
from datetime import datetime

from flask import current_app, has_request_context
from sqlalchemy import and_, delete, or_, select

from . import client
from .database import db
from .identity import InvalidIdentity, normalize_email
from ..models import Event, User, utcnow

logger = logging.getLogger("flask_gatehouse.audit")


def record(
    kind: str,
    outcome: str,
    *,
    user: User | None = None,
    identifier: str | None = None,
    detail: str | None = None,
) -> Event:
    """Store and log one event; ``outcome`` is "success", "failure" or "blocked"."""
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
    session.execute(
        delete(Event).where(
            Event.created_at < now - current_app.config["GATEHOUSE_AUDIT_RETENTION"]
        )
    )
    session.commit()
    logger.info(json.dumps(as_dict(event), ensure_ascii=False))
    return event


def typed_address(raw_email: str) -> str | None:
    """What was typed as an address, as events keep it: normalised, and only when valid (so
    no junk or NUL reaches the table)."""
    try:
        return normalize_email(raw_email)
    except InvalidIdentity:
        return None


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
