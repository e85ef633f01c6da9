"""The first proof of an account's address by a side door (a password reset, a trusted
social-login provider) rather than the confirmation link its creator was sent.

Until then, whoever made the account may not own the address: someone can sign up with
another person's address (by password, by passkey, or at a provider that does not verify
addresses) and lie in wait for the owner to take the account over by a reset. The owner
proving the address takes every way in the maker may have added away with it (the
"pre-account takeover" django-allauth guards against). Joins the caller's transaction.
"""

from ..models import User, utcnow
from . import access_tokens, audit, identities, passkeys, sessions, trusted_browsers


def claim(user: User, *, by: str) -> None:
    """``user``'s address was just proven for the first time ``by`` a reset or a provider:
    confirm it, and end the sessions, passwords, passkeys, tokens and provider links the
    account had (a reset sets its new password after this)."""
    user.email_confirmed_at = utcnow()
    user.password_hash = None
    sessions.revoke_all(user)
    passkeys.remove_all(user, kind="passkey")
    passkeys.remove_all(user, kind="security_key")
    access_tokens.revoke_all(user)
    trusted_browsers.revoke_all(user)
    removed = identities.remove_all(user)
    audit.record(
        "email_confirmed",
        "success",
        user=user,
        detail=f"by {by}; earlier ways in removed ({removed} connected accounts)",
    )
