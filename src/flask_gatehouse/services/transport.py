"""Where a client keeps the tokens Gatehouse gives it: a browser's cookies, or an app's header.

The JSON API serves two kinds of client (``/api/v1/<client>/...``). A ``browser`` keeps each
token in an HttpOnly cookie of its own, as the pages do. An ``app`` (a mobile or desktop app,
a script) keeps no cookies: it sends its one token, a session's or a pending sign-in's, in
the ``X-Session-Token`` header, and gets a new one in the JSON answer (``issued_token``). Both
are the same server-side records. Every service that leaves a token with the client
(sessions, pending sign-ins, trusted browsers, the known-device cookie) reads and writes it
here, so none of them needs to know which kind of client it serves; and no cookie is ever
read for an app, so a cross-site request (which can carry cookies but not that header)
cannot act for one.

The little state a WebAuthn ceremony keeps between its options and its answer (``state``)
travels the same way: in Flask's signed session cookie for a browser; signed, as
``meta.ceremony`` of the options' answer, for an app, which sends it back as the answer's
``ceremony`` field.
"""

from collections.abc import MutableMapping
from datetime import timedelta
from typing import Any

from flask import Response, after_this_request, current_app, g, request, session
from itsdangerous import BadData, URLSafeTimedSerializer

from . import json_body

#: The header an app client sends its token in.
HEADER = "X-Session-Token"


def is_app() -> bool:
    """Whether this request comes from an app client: a route under ``/api/v1/app/``, or
    another API route (``/api/v1/account``) sent with ``X-Session-Token``."""
    client = (request.view_args or {}).get("client")
    if client is not None:
        return bool(client == "app")
    return HEADER in request.headers and (request.endpoint or "").startswith("gatehouse.api_")


def host_cookie(name: str) -> str:
    """A cookie name ``__Host-`` prefixed (pinned to this exact host) when cookies are secure."""
    return f"__Host-{name}" if current_app.config["GATEHOUSE_COOKIE_SECURE"] else name


def cookie_options(*, cross_site: bool = False) -> dict[str, Any]:
    """The attributes of every cookie Gatehouse sets (and must repeat to delete one). A
    ``cross_site`` cookie comes with another site's POST too (a SAML IdP's): ``SameSite=None``,
    which browsers take only with ``Secure`` (without it, on plain-HTTP development hosts,
    ``Lax``: an IdP on another port of the same host is the same site)."""
    secure = current_app.config["GATEHOUSE_COOKIE_SECURE"]
    samesite = "None" if cross_site and secure else "Lax"
    return {"path": "/", "secure": secure, "httponly": True, "samesite": samesite}


def read(name: str, *, apps_send_it: bool = False) -> str | None:
    """The token the client keeps as ``name``: a browser's cookie; an app's header when
    ``apps_send_it`` (apps keep only the session's or pending sign-in's token), else None."""
    if is_app():
        return request.headers.get(HEADER) if apps_send_it else None
    return request.cookies.get(host_cookie(name))


def keep(
    name: str,
    token: str,
    *,
    max_age: timedelta | None,
    apps_send_it: bool = False,
    cross_site: bool = False,
) -> None:
    """Give the client ``token`` to keep as ``name`` for ``max_age`` (None: a browser
    forgets it when it closes). An app gets it in the answer when ``apps_send_it``."""
    if is_app():
        if apps_send_it:
            g.gatehouse_issued_token = token
        return
    cookie, options = host_cookie(name), cookie_options(cross_site=cross_site)
    seconds = int(max_age.total_seconds()) if max_age is not None else None

    @after_this_request
    def set_cookie(response: Response) -> Response:
        response.set_cookie(cookie, token, max_age=seconds, **options)
        return response


def discard(name: str) -> None:
    """Have a browser drop ``name`` (an app simply stops sending a token that no longer
    works)."""
    if is_app():
        return
    cookie, options = host_cookie(name), cookie_options()

    @after_this_request
    def delete_cookie(response: Response) -> Response:
        response.delete_cookie(cookie, **options)
        return response


def issued_token() -> str | None:
    """The token this request gave an app client to send from now on, if any."""
    token: str | None = g.get("gatehouse_issued_token")
    return token


#: How long an app's ceremony state stays valid (a WebAuthn challenge's lifetime).
_STATE_LIFETIME = timedelta(minutes=5)


def state() -> MutableMapping[str, Any]:
    """Where this client keeps a ceremony's state until its answer: a browser's Flask session;
    for an app, the state its request brought back (``ceremony``), which ``issued_state``
    hands out again once changed."""
    if not is_app():
        return session
    found: dict[str, Any] | None = g.get("gatehouse_state")
    if found is None:
        found = g.gatehouse_state = _brought_state()
        g.gatehouse_state_brought = dict(found)
    return found


def issued_state() -> str | None:
    """This request's changed ceremony state, signed for an app to send back; else None."""
    found: dict[str, Any] | None = g.get("gatehouse_state")
    if found is None or found == g.get("gatehouse_state_brought"):
        return None
    return _serializer().dumps(found)


def _brought_state() -> dict[str, Any]:
    body = json_body.read()
    signed = body.get("ceremony") if isinstance(body, dict) else None
    if not isinstance(signed, str):
        return {}
    max_age = int(_STATE_LIFETIME.total_seconds())
    try:
        found = _serializer().loads(signed, max_age=max_age)
    except BadData:
        return {}
    return found if isinstance(found, dict) else {}


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt="gatehouse-ceremony")
