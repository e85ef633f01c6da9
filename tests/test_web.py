"""Web hygiene: security headers, caching, cookies, error pages and protected views."""

import re
from typing import Any

import pytest
from flask import Flask, abort, request
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_gatehouse import login_required
from tests.conftest import PASSWORD, csrf_token, login

SESSION_COOKIE = "__Host-gatehouse_session"
LEAKS = [
    "traceback",
    "werkzeug",
    "flask",
    "select",
    "/etc/passwd",
    "site-packages",
    ".py",
    "runtimeerror",
    "sqlalchemy",
]


def csp(response: TestResponse) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    directives = (part.strip().split(None, 1) for part in policy.split(";") if part.strip())
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


def assert_leaks_nothing(response: TestResponse) -> None:
    exposed = (response.get_data(as_text=True) + str(response.headers)).lower()
    for word in LEAKS:
        assert word not in exposed, word


def page(client: FlaskClient, url: str) -> TestResponse:
    response = client.get(url)
    assert response.status_code in (200, 404), url
    assert response.mimetype == "text/html"
    return response


PAGES = ["/register", "/login", "/logout", "/account", "/blogs", "/no-such-page"]


@pytest.mark.parametrize("url", PAGES)
def test_security_headers_on_every_page(app: Flask, user: Any, url: str) -> None:
    client = app.test_client()
    if url in ("/logout", "/account", "/blogs"):
        login(client, user.email)
    response = page(client, url)
    policy = csp(response)
    assert policy["object-src"] == "'none'"
    assert policy["base-uri"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'self'"
    assert "script-src" in policy or "default-src" in policy
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer", "strict-origin")
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("url", PAGES)
def test_pages_need_no_inline_script_or_style(app: Flask, user: Any, url: str) -> None:
    """The CSP forbids inline code, so a page relying on it would break."""
    client = app.test_client()
    if url in ("/logout", "/account", "/blogs"):
        login(client, user.email)
    html = page(client, url).text
    # Scripts only from files ('self'): a <script> without src would be inline code.
    assert not re.search(r"<script(?![^>]*\ssrc=)", html, re.I)
    assert "<style" not in html.lower()
    assert not re.search(r"\sstyle\s*=", html, re.I)
    assert not re.search(r"\son[a-z]+\s*=", html, re.I)  # onclick=, onload=, ...


@pytest.mark.parametrize("url", ["/login", "/register", "/blogs", "/account", "/logout"])
def test_personal_pages_are_not_cached(logged_in: FlaskClient, app: Flask, url: str) -> None:
    client = app.test_client() if url in ("/login", "/register") else logged_in
    response = client.get(url)
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    assert "cookie" in {value.lower() for value in response.vary}


def test_redirect_of_a_signed_in_user_is_not_cached(logged_in: FlaskClient) -> None:
    response = logged_in.get("/login")
    assert response.status_code == 302
    assert "no-store" in response.headers["Cache-Control"]


@pytest.mark.parametrize("url", ["/gatehouse-static/gatehouse.css", "/static/blog.css"])
@pytest.mark.parametrize("signed_in", [False, True])
def test_stylesheets_are_cacheable(app: Flask, user: Any, signed_in: bool, url: str) -> None:
    """Static files hold nothing personal; no-store would re-download them on every page."""
    client = app.test_client()
    if signed_in:
        login(client, user.email)
    with client.get(url) as response:
        assert response.status_code == 200
        assert response.mimetype == "text/css"
        assert "no-store" not in response.headers.get("Cache-Control", "")


def test_every_stylesheet_linked_from_a_page_is_served(client: FlaskClient) -> None:
    for href in re.findall(r'<link rel="stylesheet" href="([^"]+)"', client.get("/login").text):
        with client.get(href) as response:
            assert response.status_code == 200, href


def test_hsts_only_over_https(client: FlaskClient) -> None:
    secure = client.get("/login", base_url="https://localhost")
    hsts = secure.headers["Strict-Transport-Security"]
    max_age = re.search(r"max-age=(\d+)", hsts)
    assert max_age
    assert int(max_age.group(1)) >= 365 * 24 * 3600
    assert "Strict-Transport-Security" not in client.get("/login").headers


def _set_cookie(response: TestResponse, name: str) -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    assert len(headers) == 1, response.headers.getlist("Set-Cookie")
    return headers[0]


def test_session_cookie_attributes(client: FlaskClient, user: Any) -> None:
    header = _set_cookie(login(client, user.email), SESSION_COOKIE)
    _value, *attributes = (part.strip() for part in header.split(";"))
    names = {attribute.split("=")[0].lower(): attribute for attribute in attributes}
    assert "httponly" in names
    assert "secure" in names
    assert names["samesite"].lower() == "samesite=lax"
    assert names["path"] == "Path=/"
    assert "domain" not in names


def test_session_cookie_value_is_opaque(app: Flask, user: Any) -> None:
    values = []
    for _ in range(2):
        client = app.test_client()
        login(client, user.email)
        cookie = client.get_cookie(SESSION_COOKIE)
        assert cookie is not None
        values.append(cookie.value)
    for value in values:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", value)  # >= 256 bits, not a signed payload
        assert user.email not in value
        assert user.username not in value
        assert "@" not in value
    assert values[0] != values[1]  # not derived from the user


def test_flask_session_cookie_holds_nothing_personal(app: Flask, client: FlaskClient) -> None:
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    email, username = "carol@example.com", "carolyn"
    form = {
        "csrf_token": csrf_token(client.get("/register")),
        "email": email,
        "username": username,
        "password": PASSWORD,
    }
    seen = [client.post("/register", data=form)]
    seen.append(login(client, email))
    seen += [client.get(url) for url in ("/blogs", "/account", "/logout")]
    decoded = []
    for response in seen:
        for header in response.headers.getlist("Set-Cookie"):
            if header.startswith("session=") and not header.startswith("session=;"):
                decoded.append(serializer.loads(header.split(";")[0].split("=", 1)[1]))
    assert decoded, "Flask's session cookie was never set"
    for data in decoded:
        text = str(data).lower()
        assert email not in text
        assert username not in text
        assert "_user_id" not in data


@pytest.fixture
def leaky_app(make_app: Any) -> Flask:
    """The demo app with routes that fail the way real code fails."""
    app: Flask = make_app()
    app.config.update(TESTING=False, PROPAGATE_EXCEPTIONS=False)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret /etc/passwd SELECT * FROM gatehouse_users")

    @app.get("/bad")
    def bad() -> str:
        abort(400, description="SELECT password_hash FROM gatehouse_users -- /etc/passwd")

    return app


ERRORS = [
    ("GET", "/bad", None, 400, "Bad request"),
    ("GET", "/SELECT%20*%20FROM%20users/etc/passwd.py", None, 404, "Not found"),
    ("DELETE", "/login", None, 405, "Method not allowed"),
    ("POST", "/login", b"x" * (1024 * 1024 + 1), 413, "Too large"),
    ("GET", "/boom", None, 500, "Something went wrong"),
]


@pytest.mark.parametrize(("method", "url", "body", "code", "title"), ERRORS)
def test_error_pages_are_plain(
    leaky_app: Flask, method: str, url: str, body: bytes | None, code: int, title: str
) -> None:
    response = leaky_app.test_client().open(url, method=method, data=body)
    assert response.status_code == code
    assert response.mimetype == "text/html"
    assert f"<h1>{title}</h1>" in response.text
    assert_leaks_nothing(response)
    assert "object-src 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(("method", "url", "body", "code", "title"), ERRORS)
def test_error_json_for_api_clients(
    leaky_app: Flask, method: str, url: str, body: bytes | None, code: int, title: str
) -> None:
    response = leaky_app.test_client().open(
        url, method=method, data=body, headers={"Accept": "application/json"}
    )
    assert response.status_code == code
    assert response.is_json
    assert response.json["error"]["code"] == code
    assert isinstance(response.json["error"]["message"], str)
    assert_leaks_nothing(response)


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_405_keeps_the_allow_header(client: FlaskClient, accept: str) -> None:
    response = client.delete("/login", headers={"Accept": accept})
    assert response.status_code == 405
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed


FORMS = {
    "/register": {"email": "bob@example.com", "username": "bob", "password": PASSWORD},
    "/login": {"email": "bob@example.com", "password": PASSWORD},
}


@pytest.mark.parametrize(
    ("url", "field"), [(url, field) for url, fields in FORMS.items() for field in fields]
)
@pytest.mark.parametrize("value", [True, ["x"], {"x": "y"}, 7])
def test_every_form_refuses_json_of_the_wrong_type(
    client: FlaskClient, url: str, field: str, value: Any
) -> None:
    """Flask-Security PR #1258: a non-string JSON value reached string code and gave a 500."""
    token = csrf_token(client.get(url))
    body = {**FORMS[url], "csrf_token": token, field: value}
    response = client.post(url, json=body)
    assert response.status_code == 400
    assert response.is_json


@pytest.fixture
def guarded(make_app: Any) -> tuple[Flask, list[str]]:
    """An app with a protected view that handles OPTIONS itself, counting its runs."""
    app: Flask = make_app()
    calls: list[str] = []

    @app.route("/secret", methods=["GET", "OPTIONS"])
    @login_required
    def secret() -> str:
        calls.append(request.method)
        return "the secret"

    return app, calls


@pytest.mark.parametrize("method", ["OPTIONS", "HEAD", "GET"])
def test_protected_view_body_never_runs_for_strangers(
    guarded: tuple[Flask, list[str]], method: str
) -> None:
    app, calls = guarded
    response = app.test_client().open("/secret", method=method)
    assert calls == []
    assert "the secret" not in response.text
    if method != "OPTIONS":
        assert response.status_code == 302
        assert response.headers["Location"] in ("/login?next=/secret", "/login?next=%2Fsecret")
    else:
        assert response.status_code in (302, 401)


def test_protected_view_runs_for_a_signed_in_user(
    guarded: tuple[Flask, list[str]], user_factory: Any
) -> None:
    app, calls = guarded
    client = app.test_client()
    login(client, user_factory().email)
    assert client.get("/secret").text == "the secret"
    assert calls == ["GET"]


def test_automatic_options_answers_without_the_page(client: FlaskClient) -> None:
    response = client.options("/blogs")
    assert response.status_code == 200
    assert "GET" in response.headers["Allow"]
    assert response.data == b""


def test_api_client_gets_401_json(client: FlaskClient) -> None:
    response = client.get("/blogs", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json["error"]["code"] == 401
    assert "Location" not in response.headers


def test_stranger_is_sent_to_login_and_brought_back(client: FlaskClient, user: Any) -> None:
    response = client.get("/blogs")
    assert response.status_code == 302
    target = response.headers["Location"]
    assert target in ("/login?next=/blogs", "/login?next=%2Fblogs")
    form = {"csrf_token": csrf_token(client.get(target)), "email": user.email, "password": PASSWORD}
    signed_in = client.post(target, data=form)
    assert signed_in.headers["Location"] == "/blogs"
    assert "Hi alice" in client.get("/blogs").text
