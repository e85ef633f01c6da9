"""Security headers on every response, and no caching of anything personal."""

from flask import Response, current_app, g, request

from . import sessions


def apply(response: Response) -> Response:
    """An ``after_request`` hook; headers a view set itself are left alone."""
    config = current_app.config
    headers = response.headers
    headers.setdefault("Content-Security-Policy", config["GATEHOUSE_CONTENT_SECURITY_POLICY"])
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", config["GATEHOUSE_HSTS"])
    if _is_private():
        headers["Cache-Control"] = "no-store"
        response.vary.add("Cookie")
    return response


def _is_private() -> bool:
    """Auth pages (they carry CSRF tokens) and anything a signed-in browser asked for, except
    static files, which are the same for everyone."""
    endpoint = request.endpoint or ""
    if endpoint == "static" or endpoint.endswith(".static"):
        return False
    if request.blueprint == "gatehouse":
        return True
    return "gatehouse_session" in g or sessions.cookie_name() in request.cookies
