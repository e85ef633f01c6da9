"""Security headers on every response, and no caching of anything personal."""

from flask import Response, current_app, g, request

from .services import sessions


def apply(response: Response) -> Response:
    """An ``after_request`` hook; headers a view set itself are left alone."""
    config = current_app.config
    if request.blueprint != "gatehouse" and not config["GATEHOUSE_HARDEN_WHOLE_APP"]:
        return response
    headers = response.headers
    present = {key.lower() for key, _ in headers.items()}  # one pass, not a scan per header
    defaults = [
        ("Content-Security-Policy", config["GATEHOUSE_CONTENT_SECURITY_POLICY"]),
        ("X-Content-Type-Options", "nosniff"),
        # A page whose URL holds an emailed link's token tells no one where it was.
        (
            "Referrer-Policy",
            "no-referrer" if "token" in (request.view_args or ()) else "same-origin",
        ),
        ("X-Frame-Options", "DENY"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]
    if request.is_secure:
        defaults.append(("Strict-Transport-Security", config["GATEHOUSE_HSTS"]))
    for key, value in defaults:
        if key.lower() not in present:
            headers.add(key, value)
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
    return "gatehouse_session_id" in g or sessions.cookie_name() in request.cookies
