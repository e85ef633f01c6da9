"""A JSON API client of either kind, as a single-page app or a mobile app would write it.

``browser`` keeps cookies and sends back the CSRF token each answer gives
(``meta.csrf_token``) in ``X-CSRFToken``; ``app`` keeps no cookies and sends the token each
answer gives (``meta.session_token``) in ``X-Session-Token``.
"""

from typing import Any

from flask import Flask
from werkzeug.test import TestResponse

KINDS = ("browser", "app")


class ApiClient:
    def __init__(self, app: Flask, kind: str) -> None:
        self.kind = kind
        self.http = app.test_client(use_cookies=kind == "browser")
        self.session_token: str | None = None
        self.csrf_token: str | None = None

    def url(self, path: str) -> str:
        """``path`` under this client's part of the API (``/auth/login`` ->
        ``/api/v1/app/auth/login``); a full ``/api/...`` path stays as it is."""
        return path if path.startswith("/api/") else f"/api/v1/{self.kind}{path}"

    def headers(self) -> dict[str, str]:
        if self.kind == "app":
            return {"X-Session-Token": self.session_token} if self.session_token else {}
        return {"X-CSRFToken": self.csrf_token} if self.csrf_token else {}

    def call(self, method: str, path: str, body: Any = None, **extra: Any) -> TestResponse:
        """One request; the tokens its answer gives are kept for the next ones."""
        if body is not None:
            extra["json"] = body
        headers = {**self.headers(), **extra.pop("headers", {})}
        response = self.http.open(self.url(path), method=method, headers=headers, **extra)
        found = response.get_json(silent=True)
        meta = found.get("meta", {}) if isinstance(found, dict) else {}
        self.session_token = meta.get("session_token", self.session_token)
        self.csrf_token = meta.get("csrf_token", self.csrf_token)
        return response

    def get(self, path: str, **extra: Any) -> TestResponse:
        return self.call("GET", path, **extra)

    def post(self, path: str, body: Any = None, **extra: Any) -> TestResponse:
        return self.call("POST", path, {} if body is None else body, **extra)

    def delete(self, path: str, **extra: Any) -> TestResponse:
        return self.call("DELETE", path, **extra)

    def start(self) -> TestResponse:
        """What a client does first: ask for the session (a browser gets its CSRF token)."""
        return self.get("/auth/session")

    def sign_in(self, email: str, password: str, **extra: Any) -> TestResponse:
        self.start()
        return self.post("/auth/login", {"email": email, "password": password, **extra})
