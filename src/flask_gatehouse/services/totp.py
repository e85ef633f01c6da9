"""Authenticator apps (TOTP, RFC 6238): the secret, how an app is given it, and checking codes.

The parameters every app understands: a 20-byte random secret, SHA-1, 6 digits, 30-second
steps. A code is accepted for the current step or the one either side (clocks drift, typing
takes time), and only for a step later than the last one accepted: one conditional UPDATE
records the step, so a code cannot be used twice, not even by two requests at once.
"""

import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import pyotp
import segno
from flask import current_app
from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError

from ..models import TotpFactor, User, utcnow
from .database import db

#: Seconds per code.
INTERVAL = 30
#: Steps either side of the current one that still pass.
_WINDOW = 1
_SECRET_CHARS = 32  # base32: 5 bits each, 160 bits = 20 bytes


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: the secret as a QR code (an SVG data URI), in groups
    of four for typing, and as the ``otpauth://`` URI."""

    qr_code: str
    key_groups: list[str]
    uri: str


def factor(user: User) -> TotpFactor | None:
    """The account's authenticator app, confirmed or still being enrolled."""
    found: TotpFactor | None = db().session.scalar(
        select(TotpFactor).where(TotpFactor.user_id == user.id)
    )
    return found


def is_enabled(user: User) -> bool:
    """Whether the account's sign-ins need a code (an app whose enrolment was confirmed)."""
    found = factor(user)
    return found is not None and found.confirmed_at is not None


def start_enrolment(user: User) -> TotpFactor:
    """A fresh, unconfirmed secret for ``user`` (replacing any earlier unconfirmed one), or
    the one a parallel request has just started. Joins the current transaction; the caller
    checks two-factor is not on already."""
    session = db().session
    session.execute(
        delete(TotpFactor).where(TotpFactor.user_id == user.id, TotpFactor.confirmed_at.is_(None))
    )
    record = TotpFactor(
        user_id=user.id,
        secret=pyotp.random_base32(_SECRET_CHARS),
        last_used_step=0,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError:
        found = factor(user)
        if found is None:
            raise
        return found
    return record


def enrolment(record: TotpFactor, account_name: str) -> Enrolment:
    """How to give ``record``'s secret to an authenticator app, labelled with the site's name
    (GATEHOUSE_SITE_NAME) and ``account_name``."""
    issuer = current_app.config["GATEHOUSE_SITE_NAME"]
    uri = pyotp.TOTP(record.secret, interval=INTERVAL).provisioning_uri(
        name=account_name, issuer_name=issuer
    )
    qr_code = segno.make(uri, error="m").svg_data_uri(scale=4, border=2)
    groups = [record.secret[i : i + 4] for i in range(0, len(record.secret), 4)]
    return Enrolment(qr_code=qr_code, key_groups=groups, uri=uri)


def _step(now: datetime) -> int:
    return int(now.timestamp()) // INTERVAL


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The latest step within the window whose code is ``code``."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=INTERVAL)
    current = _step(now)
    for step in range(current + _WINDOW, current - _WINDOW - 1, -1):
        if hmac.compare_digest(totp.at(step * INTERVAL), code):
            return step
    return None


def verify(record: TotpFactor, code: str, *, confirm: bool = False) -> bool:
    """Whether ``code`` is right for ``record`` now and its step is later than the last one
    used; recording the step spends it. With ``confirm`` the code must be the first of an
    unconfirmed enrolment, which it switches on. Joins the current transaction."""
    now = utcnow()
    step = _matching_step(record.secret, code, now)
    if step is None:
        return False
    values: dict[str, Any] = {"last_used_step": step}
    statement = update(TotpFactor).where(
        TotpFactor.id == record.id, TotpFactor.last_used_step < step
    )
    if confirm:
        statement = statement.where(TotpFactor.confirmed_at.is_(None))
        values["confirmed_at"] = now
    else:
        statement = statement.where(TotpFactor.confirmed_at.is_not(None))
    session = db().session
    result = cast(
        CursorResult[Any],
        session.execute(statement.values(**values).execution_options(synchronize_session=False)),
    )
    if result.rowcount != 1:
        return False
    session.expire(record)  # its step (and confirmation) changed in the database
    return True


def remove(user: User) -> bool:
    """Remove the account's authenticator app; whether two-factor was on. Joins the current
    transaction."""
    enabled = is_enabled(user)
    db().session.execute(delete(TotpFactor).where(TotpFactor.user_id == user.id))
    return enabled
