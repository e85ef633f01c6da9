"""Import the users of the Flask-Login tutorial's ``data.db``.

The tutorial stores ``users(id, email, username, password_hash)`` with werkzeug hashes
(``scrypt:`` or ``pbkdf2:``). Those hashes are kept as they are: ``passwords.verify_password``
checks them and replaces them with argon2id at each user's next login, so nobody needs a
new password.
"""

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from ..models import User, utcnow
from .database import db
from .identity import InvalidIdentity, normalize_email, normalize_username

_LEGACY_PREFIXES = ("scrypt:", "pbkdf2:")


@dataclass
class ImportReport:
    imported: int = 0
    #: One line per row left out, saying which and why.
    skipped: list[str] = field(default_factory=list)


def _read_rows(path: Path) -> list[tuple[object, object, object, object]]:
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        with sqlite3.connect(uri, uri=True) as connection:
            rows = connection.execute(
                "SELECT id, email, username, password_hash FROM users ORDER BY id"
            ).fetchall()
    except sqlite3.DatabaseError as error:
        raise ValueError(f"{path} is not a tutorial database: {error}") from None
    return rows


def import_tutorial_db(path: Path, *, trust_emails: bool = False) -> ImportReport:
    """Add every usable row of ``path``'s ``users`` table to the transaction, with their
    addresses unconfirmed unless ``trust_emails``.

    Rows are skipped, and reported, when the email is invalid or already taken (also by an
    earlier row that normalises to the same address), the username is unusable, or the
    password hash is not a werkzeug scrypt/pbkdf2 hash.
    """
    report = ImportReport()
    now = utcnow()
    confirmed_at = now if trust_emails else None
    session = db().session
    taken = set(session.scalars(select(User.email)))
    for row_id, raw_email, raw_username, password_hash in _read_rows(path):
        where = f"row id {row_id}"
        try:
            email = normalize_email(str(raw_email or ""))
            username = normalize_username(str(raw_username or ""))
        except InvalidIdentity as error:
            report.skipped.append(f"{where}: {error}")
            continue
        if email in taken:
            report.skipped.append(f"{where}: {email} already has an account")
            continue
        if not isinstance(password_hash, str) or not password_hash.startswith(_LEGACY_PREFIXES):
            report.skipped.append(f"{where}: unsupported password hash")
            continue
        session.add(
            User(
                email=email,
                username=username,
                password_hash=password_hash,
                email_confirmed_at=confirmed_at,
                imported_at=now,
            )
        )
        taken.add(email)
        report.imported += 1
    return report
