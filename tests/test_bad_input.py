"""Malformed requests get a clear 4xx, never a 500: deep JSON, lone surrogates, files instead
of fields, ids past the database's integers, an unusable Host header, a broken chunked body;
a stray Flask-Login cookie changes nothing; forms work in a host that turned CSRF off."""

import io
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import PASSWORD, TEST_CONFIG, csrf_token
from tests.smtp import free_port
from tests.test_scale_out import demo_server
from tests.test_web import assert_leaks_nothing

#: Form pages anyone can post to (the per-address limits read the body before the form).
FORMS = ["/login", "/register", "/forgot", "/confirm/resend"]
DEEP_ARRAY = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"email": ' + '{"a": ' * 1000 + "1" + "}" * 1001


@pytest.mark.parametrize("url", FORMS)
@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
def test_deeply_nested_json_is_a_json_400(client: FlaskClient, url: str, body: str) -> None:
    response = client.post(url, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json == {
        "error": {
            "code": 400,
            "message": "The request could not be understood. Please check it and try again.",
        }
    }


def test_deeply_nested_json_on_a_signed_in_form_is_a_400(logged_in: FlaskClient) -> None:
    response = logged_in.post("/reauthenticate", data=DEEP_ARRAY, content_type="application/json")
    assert response.status_code == 400
    assert response.json is not None


@pytest.mark.parametrize("url", FORMS)
def test_a_lone_surrogate_in_json_is_a_400(client: FlaskClient, url: str) -> None:
    """JSON can escape half a UTF-16 pair; no page could show such a value back."""
    body = '{"email": "\\ud800@example.com", "username": "\\udfff", "password": "x"}'
    response = client.post(url, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json is not None


def upload(content: bytes = b"alice@example.com") -> tuple[io.BytesIO, str]:
    return io.BytesIO(content), "field.txt"


@pytest.mark.parametrize(
    ("url", "fields"),
    [
        ("/login", {"email": upload(), "password": "x"}),
        ("/login", {"email": "alice@example.com", "password": upload(), "remember": upload()}),
        ("/register", {"email": upload(), "username": upload(), "password": upload()}),
        ("/forgot", {"email": upload()}),
        ("/confirm/resend", {"email": upload()}),
    ],
)
def test_a_file_instead_of_a_field_is_a_missing_field(
    client: FlaskClient, url: str, fields: dict[str, Any]
) -> None:
    form = {"csrf_token": csrf_token(client.get(url)), **fields}
    response = client.post(url, data=form, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "This field is required." in response.text


def test_a_file_as_the_csrf_token_is_a_csrf_failure(client: FlaskClient) -> None:
    form = {"csrf_token": upload(b"token"), "email": "alice@example.com", "password": "x"}
    response = client.post("/login", data=form, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "The CSRF token is missing." in response.text


def test_a_file_on_a_signed_in_form_is_a_missing_field(logged_in: FlaskClient) -> None:
    form = {"csrf_token": csrf_token(logged_in.get("/reauthenticate")), "password": upload()}
    response = logged_in.post("/reauthenticate", data=form, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "This field is required." in response.text


@pytest.mark.parametrize("session_id", [2**31, 2**63, 10**30])
def test_a_session_id_beyond_the_database_integers_is_a_404(
    logged_in: FlaskClient, session_id: int
) -> None:
    form = {"csrf_token": csrf_token(logged_in.get("/account"))}
    response = logged_in.post(f"/account/sessions/{session_id}/revoke", data=form)
    assert response.status_code == 404
    assert logged_in.get("/account").status_code == 200


LONG_LABEL_HOST = "a" * 64 + ".example.com"


@pytest.mark.parametrize("url", ["/healthz", "/login", "/blogs", "/no-such-page"])
def test_a_host_with_an_overlong_label_is_a_400(client: FlaskClient, url: str) -> None:
    response = client.get(url, headers={"Host": LONG_LABEL_HOST})
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    assert "Bad request" in response.text
    assert_leaks_nothing(response)
    as_json = client.get(url, headers={"Host": LONG_LABEL_HOST, "Accept": "application/json"})
    assert as_json.status_code == 400
    assert as_json.json == {"error": {"code": 400, "message": as_json.json["error"]["message"]}}


def test_a_host_outside_trusted_hosts_is_a_400(make_app: Any) -> None:
    client = make_app(TRUSTED_HOSTS=["gatehouse.test"]).test_client()
    assert client.get("/login", headers={"Host": "gatehouse.test"}).status_code == 200
    response = client.post("/login", headers={"Host": "evil.test"})
    assert response.status_code == 400
    assert_leaks_nothing(response)


@pytest.fixture
def gunicorn_demo(database_url: str, ratelimit_storage_uri: str) -> Iterator[int]:
    """The demo under gunicorn (one worker, as in production); yields its port."""
    port = free_port()
    env = {
        **os.environ,
        "FLASK_SECRET_KEY": TEST_CONFIG["SECRET_KEY"],
        "FLASK_SQLALCHEMY_DATABASE_URI": database_url,
        "FLASK_GATEHOUSE_RATELIMIT_STORAGE_URI": ratelimit_storage_uri,
        "FLASK_GATEHOUSE_BASE_URL": "https://gatehouse.test",
    }
    with demo_server(port, env, "-w", "1"):
        yield port


def raw_status(port: int, request: bytes) -> int:
    """Send ``request`` as is over a socket; the status code of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        status_line = connection.makefile("rb").readline()
    return int(status_line.split()[1])


def test_a_chunked_body_with_an_invalid_chunk_size_is_a_400(gunicorn_demo: int) -> None:
    for url, content_type in [
        ("/login", "application/x-www-form-urlencoded"),
        ("/login", "multipart/form-data; boundary=x"),
        ("/login", "application/json"),
        ("/register", "application/x-www-form-urlencoded"),
        ("/forgot", "application/x-www-form-urlencoded"),
    ]:
        request = (
            f"POST {url} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nx\r\n"
        )
        assert raw_status(gunicorn_demo, request.encode()) == 400, (url, content_type)


@pytest.mark.parametrize("value", ["1", "junk", '"1|0000"'])
def test_a_stray_remember_cookie_changes_nothing(logged_in: FlaskClient, value: str) -> None:
    """Flask-Login's default remember-me cookie, which Gatehouse never sets (a sibling
    subdomain can plant one), neither signs the user out nor in."""
    logged_in.set_cookie("remember_token", value)
    assert "Hi alice" in logged_in.get("/blogs").text
    assert logged_in.get("/account").status_code == 200

    stranger = logged_in.application.test_client()
    stranger.set_cookie("remember_token", value)
    assert stranger.get("/blogs").status_code == 302


@pytest.fixture
def no_csrf(make_app: Any) -> FlaskClient:
    """A host that turned CSRF off (common in host apps' own tests)."""
    client: FlaskClient = make_app(WTF_CSRF_ENABLED=False).test_client()
    return client


@pytest.mark.parametrize("url", FORMS)
def test_form_errors_without_csrf_are_a_400_form(no_csrf: FlaskClient, url: str) -> None:
    response = no_csrf.post(url, data={})
    assert response.status_code == 400
    assert "This field is required." in response.text
    assert 'name="csrf_token"' not in response.text


def test_a_wrong_password_without_csrf_is_a_400_form(no_csrf: FlaskClient, user: Any) -> None:
    response = no_csrf.post("/login", data={"email": user.email, "password": "wrong password"})
    assert response.status_code == 400
    assert "Incorrect email or password." in response.text
    right = no_csrf.post("/login", data={"email": user.email, "password": PASSWORD})
    assert right.status_code == 302
