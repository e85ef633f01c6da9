"""Everything Gatehouse stores about an account, as JSON-ready data ("download my data").

Secrets are left out: the password hash, the hashes of session cookies and emailed links, the
authenticator app's secret and the recovery codes' hashes.
Those would not tell the owner anything, and a copy of the file must not be a key to the
account. The export says only whether a password is set.
"""

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ..models import Token, User, UserSession, utcnow
from . import access_tokens, audit, identities, passkeys, recovery_codes, totp, trusted_browsers
from .database import db


def account_data(user: User) -> dict[str, Any]:
    """The account's profile, sessions, security events and outstanding email links.

    Every stored row is included, not only what the account page shows: expired sessions
    and links not yet cleaned up, and every event kept (GATEHOUSE_AUDIT_RETENTION), among
    them failed logins typed with the address.
    """
    session = db().session
    sessions = session.scalars(
        select(UserSession).where(UserSession.user_id == user.id).order_by(UserSession.id)
    )
    links = session.scalars(select(Token).where(Token.user_id == user.id).order_by(Token.id))
    factor = totp.factor(user)
    return {
        "exported_at": utcnow().isoformat(),
        "profile": {
            "id": user.id,
            "email": user.email,
            "username": user.username,
            "created_at": user.created_at.isoformat(),
            "email_confirmed_at": _time(user.email_confirmed_at),
            "last_login_at": _time(user.last_login_at),
            "active": user.active,
            "password_set": bool(user.password_hash),
        },
        "sessions": [
            {
                "created_at": record.created_at.isoformat(),
                "last_password_entry_at": record.authenticated_at.isoformat(),
                "last_seen_at": record.last_seen_at.isoformat(),
                "expires_at": record.expires_at.isoformat(),
                "remembered": record.remembered,
                "ip": record.ip,
                "device": record.device,
                "user_agent": record.user_agent,
            }
            for record in sessions
        ],
        "two_factor": {
            "enabled": factor is not None and factor.confirmed_at is not None,
            "authenticator_app_added_at": _time(factor.confirmed_at if factor else None),
            "unused_recovery_codes": recovery_codes.remaining(user),
            "trusted_browsers": [
                {
                    "created_at": record.created_at.isoformat(),
                    "last_used_at": record.last_used_at.isoformat(),
                    "expires_at": record.expires_at.isoformat(),
                    "ip": record.ip,
                    "device": record.device,
                }
                for record in trusted_browsers.active_for(user)
            ],
        },
        "passkeys": [
            {
                "name": record.name,
                "kind": record.kind,
                "created_at": record.created_at.isoformat(),
                "last_used_at": _time(record.last_used_at),
                "flagged_at": _time(record.flagged_at),
                "aaguid": record.aaguid,
                "transports": json.loads(record.transports),
                "backup_eligible": record.backup_eligible,
                "backed_up": record.backup_state,
            }
            for record in passkeys.credentials(user)
        ],
        "access_tokens": [
            {
                "name": record.name,
                "prefix": record.prefix,
                "scopes": record.scopes.split(),
                "created_at": record.created_at.isoformat(),
                "expires_at": _time(record.expires_at),
                "last_used_at": _time(record.last_used_at),
                "last_used_ip": record.last_used_ip,
            }
            for record in access_tokens.active_for(user)
        ],
        # Who the account is at each provider; no provider token is kept, so none is here.
        "connected_accounts": [
            {
                "provider": record.provider,
                "issuer": record.issuer,
                "subject": record.subject,
                "email": record.email,
                "created_at": record.created_at.isoformat(),
                "last_used_at": _time(record.last_used_at),
            }
            for record in identities.of_user(user)
        ],
        "security_events": [audit.as_dict(event) for event in audit.recent(user=user, limit=None)],
        "email_links": [
            {
                "purpose": link.purpose,
                "email": link.email,
                "created_at": link.created_at.isoformat(),
                "expires_at": link.expires_at.isoformat(),
            }
            for link in links
        ],
    }


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
