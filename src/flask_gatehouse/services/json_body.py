"""A request's JSON body, read the one way every part of Gatehouse reads it.

Werkzeug answers a body that is not JSON with a 400, but not one nested deeper than the
parser can follow: ``json.loads`` then raises RecursionError, which is no ValueError, so a
thousand nested brackets would be a 500. The body is parsed once; Flask keeps the result, so
later ``request.get_json()`` calls (Flask-WTF's among them) get it without parsing again.
"""

from typing import Any

from flask import request
from werkzeug.exceptions import BadRequest


def read() -> Any:
    """The request's JSON body, None when the request is not JSON. A body that cannot be
    parsed, however deep, is a 400."""
    if not request.is_json:
        return None
    try:
        return request.get_json()
    except RecursionError:
        raise BadRequest("The JSON body is nested too deeply.") from None


def credential(body: Any) -> dict[str, Any]:
    """A WebAuthn ceremony's answer in the JSON ``body``: its ``credential`` object (the
    browser's ``credential.toJSON()``)."""
    found = body.get("credential") if isinstance(body, dict) else None
    if not isinstance(found, dict):
        raise BadRequest("Send the credential as a JSON object (credential.toJSON()).")
    return found


def optional_credential(body: Any) -> dict[str, Any] | None:
    """A passkey's answer standing in for a second-factor code, when ``body`` carries one."""
    return credential(body) if isinstance(body, dict) and "credential" in body else None
