"""The shapes of the JSON API's answers.

- A success is an object of its own fields plus ``meta``: ``meta.csrf_token`` for a browser
  client (send it back in ``X-CSRFToken``), ``meta.session_token`` for an app client when
  this answer gave it a new token to send (sign-in, a pending stage, re-authentication), and
  ``meta.ceremony`` for an app client when a passkey ceremony's options were given (send it
  back as the answer's ``ceremony`` field).
- A refusal is ``{"error": {"code", "message", "fields"}}``: ``code`` is the HTTP status,
  ``fields`` (when the body was refused) says what is wrong with each field.
- A sign-in waiting at a stage is a 401 refusal with ``pending``: the stage and the URL that
  completes it (in the spirit of django-allauth's headless ``flows``).
"""

from datetime import datetime
from typing import Any

from flask import jsonify, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf

from ..forms import GatehouseForm
from ..models import User
from ..services import transport


def reply(
    body: dict[str, Any] | None = None, status: int = 200, headers: dict[str, str] | None = None
) -> ResponseReturnValue:
    """``body`` with the client's ``meta``."""
    meta: dict[str, str] = {}
    issued = transport.issued_token()
    if issued is not None:
        meta["session_token"] = issued
    ceremony = transport.issued_state()
    if ceremony is not None:
        meta["ceremony"] = ceremony
    if not transport.is_app():
        meta["csrf_token"] = generate_csrf()
    return jsonify({**(body or {}), "meta": meta}), status, headers or {}


def refusal(
    status: int,
    message: str,
    *,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> ResponseReturnValue:
    """The error shape every refusal has (``errors.handle`` answers the same one)."""
    error: dict[str, Any] = {"code": status, "message": message}
    if fields:
        error["fields"] = fields
    return jsonify(error=error), status, headers or {}


def invalid(form: GatehouseForm) -> ResponseReturnValue:
    """A body its form refused: each field's first problem, the form's own in the message."""
    fields = {name: errors[0] for name, errors in form.errors.items() if name and errors}
    message = " ".join(form.form_errors) or "Some fields need attention: see error.fields."
    return refusal(400, message, fields=fields)


def locked(retry_after: int, message: str) -> ResponseReturnValue:
    """A 429 with its ``Retry-After``."""
    return refusal(429, message, headers={"Retry-After": str(retry_after)})


def account(user: User) -> dict[str, Any]:
    """What the API says of an account."""
    return {
        "id": user.id,
        "email": user.email,
        "username": user.username,
        "email_confirmed": user.email_confirmed_at is not None,
    }


def timestamp(moment: datetime | None) -> str | None:
    """A time as ISO 8601 (with its zone: UTC)."""
    return moment.isoformat() if moment is not None else None


def pending(stage: str, message: str, endpoint: str) -> ResponseReturnValue:
    """A sign-in waiting at ``stage``: 401, what to do, and where (``endpoint``, for this
    client). An app client's ``meta.session_token`` is the pending sign-in's token."""
    client = "app" if transport.is_app() else "browser"
    body = {
        "error": {"code": 401, "message": message},
        "pending": {"stage": stage, "url": url_for(endpoint, client=client)},
    }
    return reply(body, 401)
