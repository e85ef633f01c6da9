"""Accounts at social-login providers linked to users, by (issuer, subject) only.

An address is never the link: providers let addresses change hands, and a provider that does
not verify them would otherwise hand out other people's accounts. Changes join the caller's
transaction.
"""

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from .. import state
from ..models import SocialIdentity, User, utcnow
from .database import db


class IdentityProvider(Protocol):
    """An outside provider of identities: an OpenID Connect or OAuth 2.0 provider, or a SAML
    identity provider."""

    @property
    def key(self) -> str:
        """Its name as stored with the accounts linked through it ("google", "saml:corp")."""

    @property
    def name(self) -> str:
        """Its label on pages and in mail."""

    @property
    def trusted(self) -> bool:
        """Whether a verified address it gives links the account that has it, unasked."""

    @property
    def method(self) -> str:
        """How the sign-in stages see a sign-in through it ("social", "saml", ...)."""


@dataclass(frozen=True)
class ProviderIdentity:
    """Who the provider says signed in: (``issuer``, ``subject``) names the account there."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    #: A username to start from (preferred_username, GitHub's login, the name).
    username: str | None


def find(issuer: str, subject: str) -> SocialIdentity | None:
    """The link of the provider account (``issuer``, ``subject``), if any."""
    return db().session.scalar(
        select(SocialIdentity).where(
            SocialIdentity.issuer == issuer, SocialIdentity.subject == subject
        )
    )


def of_user(user: User) -> list[SocialIdentity]:
    """``user``'s linked provider accounts, oldest first."""
    return list(
        db().session.scalars(
            select(SocialIdentity)
            .where(SocialIdentity.user_id == user.id)
            .order_by(SocialIdentity.id)
        )
    )


def link(user: User, provider: str, found: ProviderIdentity) -> SocialIdentity | None:
    """Link the provider account ``found`` to ``user``; None when another account took it
    meanwhile (the unique index decides, inside a savepoint, as for sign-ups)."""
    now = utcnow()
    record = SocialIdentity(
        user_id=user.id,
        provider=provider,
        issuer=found.issuer,
        subject=found.subject,
        email=found.email,
        created_at=now,
        last_used_at=now,
    )
    session = db().session
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError:
        return None
    return record


def used(record: SocialIdentity, found: ProviderIdentity) -> None:
    """A sign-in through ``record``: note when, and the address the provider gives now."""
    record.last_used_at = utcnow()
    record.email = found.email


def remove(record: SocialIdentity) -> None:
    """Unlink one provider account."""
    session = db().session
    session.execute(delete(SocialIdentity).where(SocialIdentity.id == record.id))
    session.expunge(record)


def remove_all(user: User) -> int:
    """Unlink every provider account of ``user``; how many there were."""
    result = db().session.execute(delete(SocialIdentity).where(SocialIdentity.user_id == user.id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def label(key: str) -> str:
    """The name of the provider ``key`` (as stored with a linked account) for pages and mail;
    the key itself once the host removed the provider."""
    found = state.get()
    if key.startswith("saml:"):
        saml = found.saml_providers.get(key.removeprefix("saml:"))
        return saml.name if saml is not None else key
    return found.providers[key].name if key in found.providers else key
