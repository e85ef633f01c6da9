"""The tables Gatehouse owns, on one declarative base a host shares with its own models.

A host builds its Flask-SQLAlchemy object on this base (``SQLAlchemy(model_class=Model)``) so
its tables and Gatehouse's live in one metadata: foreign keys to ``gatehouse_users`` resolve,
and Alembic sees every table.
"""

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
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
    #: SQLite would give a deleted account's id to the next sign-up (see gatehouse_0005).
    #: The handle's uniqueness is an index, which SQLite can add to the existing table.
    __table_args__ = (
        Index("uq_gatehouse_users_webauthn_user_handle", "webauthn_user_handle", unique=True),
        {"sqlite_autoincrement": True},
    )

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
    #: Set by an operator (``flask gatehouse set-password --temporary``): the next sign-in
    #: must choose a new password before a session starts.
    password_change_required: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    #: When the account was brought over from the Flask-Login tutorial
    #: (``flask gatehouse import-tutorial``); None for accounts that signed up here.
    imported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When a sign-in first asked the user to enrol a second factor that
    #: GATEHOUSE_MFA_REQUIRED requires: GATEHOUSE_MFA_GRACE counts from here.
    two_factor_asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The random WebAuthn user handle that passkeys carry (never the id, which would tell
    #: the authenticator, and whoever reads it, which account it is); set at the first passkey.
    webauthn_user_handle: Mapped[bytes | None] = mapped_column(LargeBinary(32))

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
    #: Session ids name sessions in URLs, events and links: never reused (gatehouse_0005).
    __table_args__ = ({"sqlite_autoincrement": True},)

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


class PendingLogin(Model):
    """A sign-in whose first factor passed and whose pending stages (a required password
    change today; a second factor later) have not: no session exists yet.

    Bound to the browser by a random token in a cookie (only its SHA-256 is stored), single
    use (completing it deletes the row) and short-lived (``expires_at``, 5 minutes).
    """

    __tablename__ = "gatehouse_pending_logins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("gatehouse_users.id", ondelete="CASCADE"), index=True
    )
    #: The first factor that proved the identity ("password").
    method: Mapped[str] = mapped_column(String(20))
    #: The stage (``stages.Stage.key``) it waits at: only that stage's page completes it, so
    #: no page can skip the stages before its own (a second factor before a password change).
    stage: Mapped[str] = mapped_column(String(32), server_default="password_change")
    remember: Mapped[bool] = mapped_column(Boolean, server_default=false())
    #: Where the browser goes once signed in (already checked by ``redirects.safe_next``).
    next_url: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Second-factor codes tried on this sign-in; it is discarded after the fifth wrong one.
    code_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def __repr__(self) -> str:
        return f"<PendingLogin {self.id} of user {self.user_id}>"


class TrustedBrowser(Model):
    """A browser whose owner ticked "trust this browser" after a second-factor code: its
    sign-ins skip the code until ``expires_at``. The cookie holds a random token; only its
    SHA-256 is stored."""

    __tablename__ = "gatehouse_trusted_browsers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("gatehouse_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ip: Mapped[str] = mapped_column(String(45))
    device: Mapped[str] = mapped_column(String(128))

    def __repr__(self) -> str:
        return f"<TrustedBrowser {self.id} of user {self.user_id}>"


class WebAuthnCredential(Model):
    """A passkey or security key (WebAuthn): what checking its signatures needs, and what the
    owner's list shows. ``kind`` "passkey" signs in alone (discoverable, user verification);
    "security_key" is a second factor only."""

    __tablename__ = "gatehouse_webauthn_credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("gatehouse_users.id", ondelete="CASCADE"), index=True
    )
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    kind: Mapped[str] = mapped_column(String(16))
    #: JSON list of transport hints ("internal", "hybrid", "usb", ...), for allowCredentials.
    transports: Mapped[str] = mapped_column(String(200), default="[]")
    backup_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    backup_state: Mapped[bool] = mapped_column(Boolean, default=False)
    aaguid: Mapped[str] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When a signature count failed to increase (a cloned authenticator?): refused since.
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<WebAuthnCredential {self.id} of user {self.user_id}>"


class SocialIdentity(Model):
    """An account at an OpenID Connect or OAuth 2.0 provider linked to a user: found by
    (``issuer``, ``subject``), never by email (an address can change hands at a provider;
    the subject cannot). No provider token is kept."""

    __tablename__ = "gatehouse_social_identities"
    __table_args__ = (
        Index("uq_gatehouse_social_identities_issuer", "issuer", "subject", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("gatehouse_users.id", ondelete="CASCADE"), index=True
    )
    #: The provider's short name in GATEHOUSE_OIDC_PROVIDERS (for its label and button).
    provider: Mapped[str] = mapped_column(String(64))
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    #: The address the provider gave at the last sign-in (shown on the account page only).
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<SocialIdentity {self.id} of user {self.user_id}>"


class SamlRequest(Model):
    """An AuthnRequest a browser was sent to a SAML IdP with, until the IdP answers (or 10
    minutes pass): found by the digest of the browser's ``gatehouse_saml`` cookie, since the
    IdP's cross-site POST carries no session cookie (``services/saml``)."""

    __tablename__ = "gatehouse_saml_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The AuthnRequest's ID, which the response's InResponseTo must name.
    request_id: Mapped[str] = mapped_column(String(100), unique=True)
    provider: Mapped[str] = mapped_column(String(64))
    browser_digest: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    #: "sign_in", or "link" (for ``user_id``, who started it behind a recent sign-in).
    purpose: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("gatehouse_users.id", ondelete="CASCADE")
    )
    #: The session that asked for a link: signing out ends the request with it.
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("gatehouse_sessions.id", ondelete="CASCADE")
    )
    #: Where the browser goes once signed in (already checked by ``safe_next``).
    next_url: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SamlAssertion(Model):
    """A SAML assertion already used to sign in, kept until it expires: each is accepted
    once (python3-saml itself accepts the same response twice)."""

    __tablename__ = "gatehouse_saml_assertions"
    __table_args__ = (
        Index("uq_gatehouse_saml_assertions_issuer", "issuer", "assertion_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    assertion_id: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class WebAuthnChallenge(Model):
    """A WebAuthn challenge handed to a browser: single use (deleted when answered), short
    lived, for one ``purpose`` and, except for a passwordless sign-in, one account."""

    __tablename__ = "gatehouse_webauthn_challenges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge: Mapped[bytes] = mapped_column(LargeBinary(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("gatehouse_users.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AccessToken(Model):
    """A personal access token: its SHA-256 only (the token is shown once), a visible prefix
    to tell tokens apart, what it may do (``scopes``, space-separated) and until when."""

    __tablename__ = "gatehouse_access_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("gatehouse_users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    #: The token's first characters ("gth_" and four more), to recognise it in a list.
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: None only where the host allows tokens that never expire.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Written at most once a minute per token.
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_ip: Mapped[str | None] = mapped_column(String(45))

    def __repr__(self) -> str:
        return f"<AccessToken {self.id} of user {self.user_id}>"


class TotpFactor(Model):
    """An account's authenticator app (TOTP, RFC 6238): its shared secret, and the last time
    step a code was accepted for, so that no code is accepted twice.

    The row exists from the start of an enrolment; two-factor is on only once
    ``confirmed_at`` is set, by the first valid code.
    """

    __tablename__ = "gatehouse_totp_factors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("gatehouse_users.id", ondelete="CASCADE"), unique=True
    )
    #: Base32, as authenticator apps take it (20 random bytes).
    secret: Mapped[str] = mapped_column(String(64))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The 30-second step of the last accepted code (0: none yet); only later steps pass.
    last_used_step: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<TotpFactor {self.id} of user {self.user_id}>"


class RecoveryCode(Model):
    """A single-use code that stands in for the authenticator app. Only its HMAC-SHA-256,
    keyed from the app's SECRET_KEY, is stored."""

    __tablename__ = "gatehouse_recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("gatehouse_users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<RecoveryCode {self.id} of user {self.user_id}>"


class OutboxMessage(Model):
    """A message waiting to be sent, or the record of one sent or given up.

    Written in the same transaction as the action that mails it (the transactional outbox),
    so a message exists exactly when its action committed, and survives the process that
    wrote it. A sending worker claims rows (``claimed_until``), sends them, and marks them
    "sent" or "failed" with the reason. ``context`` (the template's values, links included)
    is cleared once the row is finished, so no live link outlives its delivery here.
    """

    __tablename__ = "gatehouse_outbox"
    __table_args__ = (Index("ix_gatehouse_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    template: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(254))
    #: The template's values as JSON; "{}" once sent (a failed row keeps them for a retry).
    context: Mapped[str] = mapped_column(Text)
    #: "pending", "sent" or "failed".
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: A worker holds the row until then; a worker that died lets the claim lapse.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Why the last attempt failed.
    error: Mapped[str | None] = mapped_column(String(255))

    def __repr__(self) -> str:
        return f"<OutboxMessage {self.id} {self.template} {self.status}>"


class RateLimitCounter(Model):
    """A plain counter of the rate-limit storage (``services/counters``): limits' ``incr``,
    for fixed windows and the lockout's attempts in flight. Counts until ``expires_at``.

    Times are seconds since the epoch, as the ``limits`` library counts them.
    """

    __tablename__ = "gatehouse_rate_limit_counters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    value: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[float] = mapped_column(Double, index=True)

    def __repr__(self) -> str:
        return f"<RateLimitCounter {self.key} {self.value}>"


class RateLimitEntry(Model):
    """One hit in a moving window of the rate-limit storage (limits' ``acquire_entry``): the
    route limits and the lockout count a key's rows until their ``expires_at``."""

    __tablename__ = "gatehouse_rate_limit_entries"
    __table_args__ = (Index("ix_gatehouse_rate_limit_entries_key", "key", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[float] = mapped_column(Double, index=True)

    def __repr__(self) -> str:
        return f"<RateLimitEntry {self.key}>"
