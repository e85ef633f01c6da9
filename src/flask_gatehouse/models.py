"""The tables Gatehouse owns, on one declarative base a host shares with its own models.

A host builds its Flask-SQLAlchemy object on this base (``SQLAlchemy(model_class=Model)``) so
its tables and Gatehouse's live in one metadata: foreign keys to ``gatehouse_users`` resolve,
and Alembic sees every table.
"""

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no time zone, so store naive UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """The current time as stored in Gatehouse's tables."""
    return datetime.now(UTC)


class Model(DeclarativeBase):
    """Base for Gatehouse's tables and the host's: pass it as ``SQLAlchemy(model_class=...)``."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class User(Model):
    """An account. ``email`` is always the output of ``identity.normalize_email``."""

    __tablename__ = "gatehouse_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    username: Mapped[str] = mapped_column(String(64))
    #: argon2id, or a werkzeug hash imported from the tutorial until the next login; None
    #: means no usable password.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When the owner of ``email`` proved it by following a link; None until then.
    email_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The last successful login; None for an account that never signed in.
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # The interface Flask-Login expects of a user (instead of its UserMixin, whose __eq__
    # and __hash__ would override the ORM's identity semantics).
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        return str(self.id)

    def __repr__(self) -> str:
        return f"<User {self.id}>"


class UserSession(Model):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "gatehouse_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("gatehouse_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: When the password was last entered in this session (login or re-authentication).
    authenticated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    remembered: Mapped[bool] = mapped_column(Boolean, server_default=false())
    ip: Mapped[str] = mapped_column(String(45))
    device: Mapped[str] = mapped_column(String(128))
    user_agent: Mapped[str] = mapped_column(String(512))

    def __repr__(self) -> str:
        return f"<UserSession {self.id} of user {self.user_id}>"


class Event(Model):
    """A security event: who, what, how it ended, from where. Kept GATEHOUSE_AUDIT_RETENTION."""

    __tablename__ = "gatehouse_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(40))
    #: "success", "failure" or "blocked".
    outcome: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("gatehouse_users.id", ondelete="SET NULL"), index=True
    )
    #: What was typed as the account (failed logins of unknown addresses have no user).
    identifier: Mapped[str | None] = mapped_column(String(254), index=True)
    ip: Mapped[str] = mapped_column(String(45))
    user_agent: Mapped[str] = mapped_column(String(512))
    detail: Mapped[str | None] = mapped_column(String(255))

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.kind} {self.outcome}>"


class Token(Model):
    """A single-use link sent by email. Only the SHA-256 of its random token is stored.

    ``purpose`` says which flow it serves; ``email`` is the address it is bound to (the one
    being confirmed, or the account's address when the link was sent); ``session_id`` names
    the session a "was this you?" link signs out.
    """

    __tablename__ = "gatehouse_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    purpose: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[int] = mapped_column(
        ForeignKey("gatehouse_users.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))
    session_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<Token {self.id} {self.purpose} of user {self.user_id}>"
