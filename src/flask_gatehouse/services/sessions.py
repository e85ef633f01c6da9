"""Server-side sessions: start, resolve, touch, list, revoke.

The browser holds only a random 256-bit token in an HttpOnly cookie; the table holds its
SHA-256, so a leaked database does not hand out live sessions. Ending a session deletes its
row, which makes a cookie copied earlier worthless (unlike Flask's signed-cookie sessions).
"""

import hashlib
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

import ua_parser
from flask import current_app, g
from sqlalchemy import CursorResult, bindparam, delete, select, update
from sqlalchemy.orm import make_transient_to_detached

from ..models import User, UserSession, utcnow
from . import client, session_lookup, transport
from .database import db

#: Tokens longer than this are not ours; refuse them before hashing.
_MAX_TOKEN_LENGTH = 64

_USER_COLUMNS = [column.key for column in User.__table__.columns]

#: The one query of a signed-in request: the active user and the timing of the session whose
#: token digest (a unique index) the cookie gives. Built once, so each request only binds it;
#: a Core query, because the ORM's per-query machinery cost more than the query itself.
_RESOLVE = (
    select(
        *User.__table__.columns,
        UserSession.id.label("session_id"),
        UserSession.authenticated_at,
        UserSession.last_seen_at,
        UserSession.expires_at,
        UserSession.remembered,
    )
    .join(UserSession, UserSession.user_id == User.id)
    .where(UserSession.token_hash == bindparam("digest"), User.active.is_(True))
)


def _name() -> str:
    """The session's name with its client (the cookie's, before any ``__Host-`` prefix)."""
    name: str = current_app.config["GATEHOUSE_SESSION_COOKIE_NAME"]
    return name


def cookie_name() -> str:
    """The session cookie's name."""
    return transport.host_cookie(_name())


def digest(token: str) -> bytes:
    """What the table stores of a cookie's token (pending sign-ins use it too)."""
    return hashlib.sha256(token.encode()).digest()


@lru_cache(maxsize=512)
def describe_device(user_agent: str) -> str:
    """A short label such as "Chrome on Linux" for the sessions list."""
    parsed = ua_parser.parse(user_agent)
    browser = parsed.user_agent.family if parsed.user_agent else "Unknown browser"
    system = parsed.os.family if parsed.os else "unknown system"
    return f"{browser} on {system}"[:128]


def start(user: User, *, remember: bool) -> UserSession:
    """Open a new session for ``user`` and set its cookie on this request's response.

    A fresh token on every login means a token planted before login (session fixation)
    never becomes authenticated. The user's expired sessions are cleared on the way. The
    session joins the current transaction: the sign-in flow commits it with the login's
    audit event.
    """
    config = current_app.config
    token = secrets.token_urlsafe(32)
    now = utcnow()
    lifetime = (
        config["GATEHOUSE_REMEMBER_DURATION"]
        if remember
        else config["GATEHOUSE_SESSION_ABSOLUTE_TIMEOUT"]
    )
    user_agent = client.user_agent()
    record = UserSession(
        token_hash=digest(token),
        user_id=user.id,
        created_at=now,
        authenticated_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        remembered=remember,
        ip=client.ip(),
        device=describe_device(user_agent),
        user_agent=user_agent,
    )
    session = db().session
    session.execute(
        delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at <= now)
    )
    session.add(record)
    session.flush()
    g.gatehouse_session_id = record.id
    g.gatehouse_authenticated_at = now
    transport.keep(_name(), token, max_age=lifetime if remember else None, apps_send_it=True)
    return record


def _is_expired(now: datetime, last_seen: datetime, expires_at: datetime, remembered: bool) -> bool:
    if now >= expires_at:
        return True
    idle = current_app.config["GATEHOUSE_SESSION_IDLE_TIMEOUT"]
    return not remembered and now - last_seen >= idle


def load_user(_request: object = None) -> User | None:
    """Flask-Login's request loader: the user of this request's session (its cookie, or an
    app's ``X-Session-Token``), if valid.

    One indexed query (session joined with its active user). "Last seen" is written only
    when older than GATEHOUSE_SESSION_TOUCH_INTERVAL, so most page views write nothing. These
    two writes (touch, and deleting an expired session) are the loader's own small commits:
    they belong to no user action and must not wait for one.
    """
    token = transport.read(_name(), apps_send_it=True)
    if not token:
        return None
    if len(token) > _MAX_TOKEN_LENGTH:
        _forget_cookie()
        return None
    database = db()
    session = database.session
    params = {"digest": digest(token)}
    fields: Mapping[Any, Any] | None
    lean = session_lookup.first_row(database.engine, _RESOLVE, params)
    if lean is False:  # the ordinary path (services/session_lookup says when)
        row = session.connection().execute(_RESOLVE, params).first()
        fields = row._mapping if row is not None else None
    else:
        fields = lean
    if fields is None:
        _forget_cookie()
        return None
    session_id, last_seen = fields["session_id"], fields["last_seen_at"]
    expires_at, remembered = fields["expires_at"], fields["remembered"]
    now = utcnow()
    if _is_expired(now, last_seen, expires_at, remembered):
        session.execute(delete(UserSession).where(UserSession.id == session_id))
        session.commit()
        _forget_cookie()
        return None
    if now - last_seen >= current_app.config["GATEHOUSE_SESSION_TOUCH_INTERVAL"]:
        session.execute(
            update(UserSession)
            .where(UserSession.id == session_id)
            .values(last_seen_at=now, ip=client.ip() or UserSession.ip)
        )
        session.commit()
    g.gatehouse_session_id = session_id
    g.gatehouse_authenticated_at = fields["authenticated_at"]
    # The row already holds every column: attach it as a loaded user, with no second query
    # (merge returns the instance already in the session's identity map, if there is one).
    user = User(**{key: fields[key] for key in _USER_COLUMNS})
    make_transient_to_detached(user)
    return session.merge(user, load=False)


def current_id() -> int | None:
    """The id of the session behind this request, once the user has been loaded."""
    session_id: int | None = g.get("gatehouse_session_id")
    return session_id


def is_recently_authenticated() -> bool:
    """True when this request's session entered the password within
    GATEHOUSE_REAUTHENTICATE_AFTER (checked before sensitive changes)."""
    authenticated_at: datetime | None = g.get("gatehouse_authenticated_at")
    if authenticated_at is None:
        return False
    window: timedelta = current_app.config["GATEHOUSE_REAUTHENTICATE_AFTER"]
    return utcnow() - authenticated_at < window


def reauthenticated() -> None:
    """Record that the password was just entered again, and rotate the session's token
    (a token seen before the re-authentication does not carry the new trust). Joins the
    current transaction."""
    session_id = current_id()
    if session_id is None:
        return
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session = db().session
    session.execute(
        update(UserSession)
        .where(UserSession.id == session_id)
        .values(token_hash=digest(token), authenticated_at=now, last_seen_at=now)
    )
    g.gatehouse_authenticated_at = now
    record = session.get_one(UserSession, session_id)
    max_age = record.expires_at - now if record.remembered else None
    transport.keep(_name(), token, max_age=max_age, apps_send_it=True)


def _forget_cookie() -> None:
    transport.discard(_name())


def end_current() -> None:
    """Revoke this request's session and clear its cookie (logout). Joins the current
    transaction."""
    session_id = current_id()
    if session_id is not None:
        db().session.execute(delete(UserSession).where(UserSession.id == session_id))
        g.pop("gatehouse_session_id")
    _forget_cookie()


def active_for(user: User) -> list[UserSession]:
    """The user's live sessions, most recently used first."""
    now = utcnow()
    records = db().session.scalars(
        select(UserSession)
        .where(UserSession.user_id == user.id)
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
    )
    return [
        record
        for record in records
        if not _is_expired(now, record.last_seen_at, record.expires_at, record.remembered)
    ]


def revoke(user: User, session_id: int) -> bool:
    """End one of ``user``'s sessions; False when it is not theirs or already gone. Joins
    the current transaction."""
    result = cast(
        CursorResult[Any],
        db().session.execute(
            delete(UserSession).where(UserSession.id == session_id, UserSession.user_id == user.id)
        ),
    )
    return bool(result.rowcount)


def revoke_all(user: User, *, keep: int | None = None) -> int:
    """End every session of ``user`` except the one with id ``keep``; return how many ended.
    Joins the current transaction."""
    statement = delete(UserSession).where(UserSession.user_id == user.id)
    if keep is not None:
        statement = statement.where(UserSession.id != keep)
    result = cast(CursorResult[Any], db().session.execute(statement))
    return result.rowcount
