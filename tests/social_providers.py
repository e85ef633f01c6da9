"""Identity providers for the social-login tests, and their fixtures.

``OidcProvider`` runs a real OpenID Connect provider (node oidc-provider, tests/oidc_provider)
as a subprocess; ``GitHubLikeProvider`` serves a GitHub-shaped OAuth 2.0 server in-process.
Both are real HTTP servers on localhost, so the app under test talks to them as it would in
production; only the browser's part (login, consent, following redirects) is driven here.
"""

import base64
import hashlib
import json
import os
import secrets
import select
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlsplit, urlunsplit

import pytest
import requests
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

OIDC_DIR = Path(__file__).parent / "oidc_provider"

#: The clients of the session-wide OpenID Connect provider (the ``oidc`` fixture).
OIDC_CLIENTS: list[dict[str, Any]] = [
    {
        "client_id": "gatehouse",
        "client_secret": "gatehouse-secret",
        "redirect_uris": [
            "https://gatehouse.test/login/oidc/callback",
            "https://gatehouse.test/login/oidc-trusted/callback",
        ],
    },
    {
        "client_id": "other",
        "client_secret": "other-secret",
        "redirect_uris": ["https://other.test/callback"],
    },
]

_TIMEOUT = 5.0


def s256(verifier: str) -> str:
    """The PKCE S256 code challenge of ``verifier``."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` appended to its query string."""
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit(parts._replace(query=query))


class _Page(HTMLParser):
    """The first form (action and named inputs) and the links of an HTML page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.links: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = attributes.get("action") or ""
        elif tag == "input" and attributes.get("name"):
            self.fields[attributes["name"] or ""] = attributes.get("value") or ""
        elif tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"] or "")


class OidcProvider:
    """node oidc-provider with PKCE required, its development login and consent pages, and
    test controls: claims per account, a swapped-in ID token, a shifted ID-token clock.

    Accounts need no set-up: any account id signs in, with the claims ``sub`` = id,
    ``email`` = ``<id>@example.com``, ``email_verified`` true, ``name`` and
    ``preferred_username`` = id, unless ``set_account`` says otherwise. The ID token carries
    ``sub`` (no email): the other claims come from the userinfo endpoint.
    """

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._issuer: str | None = None
        self.metadata: dict[str, Any] = {}

    @property
    def issuer(self) -> str:
        """``http://localhost:PORT``."""
        if self._issuer is None:
            raise RuntimeError("the OpenID Connect provider is not started: call start()")
        return self._issuer

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def start(self, clients: list[dict[str, Any]], timeout: float = 20.0) -> None:
        """Run the provider for ``clients`` ({client_id, client_secret, redirect_uris}) and
        return once it serves its discovery document."""
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("the social-login tests need Node.js 20 or later on the PATH")
        if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError(
                f"oidc-provider is not installed in {OIDC_DIR}: run `make test-deps`"
                " (it runs `npm ci` there)"
            )
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        # stdin stays open: the provider exits when it closes, even if this process dies.
        self._process = subprocess.Popen(
            [node, "server.mjs"],
            cwd=OIDC_DIR,
            env={**os.environ, "PORT": "0", "CLIENTS": json.dumps(clients)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._issuer = self._wait_ready(timeout)
        response = requests.get(self.discovery_url, timeout=_TIMEOUT)
        response.raise_for_status()
        self.metadata = response.json()

    def _wait_ready(self, timeout: float) -> str:
        """The issuer from the provider's "ready <issuer>" line on stdout."""
        assert self._process is not None
        assert self._process.stdout is not None
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self._process.stdout], [], [], remaining)
            if not readable:
                break
            line = self._process.stdout.readline().decode()
            if line.startswith("ready "):
                return line.removeprefix("ready ").strip()
            if not line:
                raise self._failure("exited")
        raise self._failure(f"did not start within {timeout} s")

    def _failure(self, what: str) -> RuntimeError:
        """Stop the provider; the error to raise, with what it wrote on stderr."""
        assert self._stderr is not None
        self._stderr.seek(0)
        errors = self._stderr.read().decode(errors="replace")
        self.stop()
        return RuntimeError(f"the OpenID Connect provider {what}:\n{errors}")

    def stop(self) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            assert self._process.stdout is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process.stdout.close()
            self._process = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._issuer = None

    def _control(self, path: str, body: dict[str, Any]) -> None:
        response = requests.post(f"{self.issuer}/__test/{path}", json=body, timeout=_TIMEOUT)
        response.raise_for_status()

    def set_account(self, account_id: str, **claims: Any) -> None:
        """Claims of ``account_id`` from now on (email, email_verified, name,
        preferred_username); the others keep their defaults, ``None`` removes one. Each call
        replaces what an earlier call set for this account."""
        self._control(f"accounts/{quote(account_id, safe='')}", claims)

    def swap_next_id_token(self, id_token: str) -> None:
        """The next token response carries ``id_token`` (e.g. one from ``id_token_for`` with
        another nonce or audience) instead of the one the provider issued."""
        self._control("swap-id-token", {"id_token": id_token})

    def set_clock_offset(self, seconds: int) -> None:
        """Issue ID tokens as if the time were now + ``seconds`` (0 resets). ID tokens live
        600 s, so -3600 yields one that expired 50 minutes ago. Codes, cookies and access
        tokens keep the real time, so the rest of the flow still works."""
        self._control("clock", {"offset": seconds})

    def reset(self) -> None:
        """Forget accounts, a pending swap and the clock offset."""
        self._control("reset", {})

    def login(self, authorize_url: str, account_id: str, *, deny: bool = False) -> str:
        """Play the browser from ``authorize_url``: sign in as ``account_id`` and consent (or,
        with ``deny``, cancel), following the provider's redirects. Returns the redirect to
        the client's redirect_uri (``code`` and ``state``, or ``error``) without requesting it.

        Each call is a fresh browser, not signed in at the provider: every flow shows the
        login and consent pages.
        """
        browser = requests.Session()
        method, url, data = "GET", authorize_url, None
        for _ in range(10):
            response = browser.request(
                method, url, data=data, allow_redirects=False, timeout=_TIMEOUT
            )
            if response.is_redirect:
                location = urljoin(url, response.headers["Location"])
                if not location.startswith(self.issuer + "/"):
                    return location
                method, url, data = "GET", location, None
                continue
            page = _Page(response.text)
            if response.status_code != 200 or page.action is None:
                raise AssertionError(
                    f"unexpected page at {url} ({response.status_code}):\n{response.text[:2000]}"
                )
            if deny:
                abort = next(link for link in page.links if link.endswith("/abort"))
                method, url, data = "GET", urljoin(url, abort), None
                continue
            data = dict(page.fields)
            if data.get("prompt") == "login":
                data.update(login=account_id, password="any password")
            method, url = "POST", urljoin(url, page.action)
        raise AssertionError(f"the provider kept redirecting from {authorize_url}")

    def id_token_for(
        self, client_id: str, client_secret: str, redirect_uri: str, account_id: str, nonce: str
    ) -> str:
        """A genuine ID token for ``client_id`` and ``nonce``, from a complete code flow with
        PKCE: to hand to ``swap_next_id_token`` (call it first: a pending swap would replace
        this flow's own token)."""
        verifier = secrets.token_urlsafe(48)
        state = secrets.token_urlsafe(16)
        authorize_url = with_query(
            self.metadata["authorization_endpoint"],
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": "openid email profile",
                "state": state,
                "nonce": nonce,
                "code_challenge": s256(verifier),
                "code_challenge_method": "S256",
            },
        )
        params = parse_qs(urlsplit(self.login(authorize_url, account_id)).query)
        assert params.get("state") == [state], params
        response = requests.post(
            self.metadata["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": params["code"][0],
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
            auth=(client_id, client_secret),
            timeout=_TIMEOUT,
        )
        response.raise_for_status()
        id_token: str = response.json()["id_token"]
        return id_token


@dataclass
class GitHubUser:
    """A GitHub account: ``/user`` shows ``email`` only if the primary address is public."""

    id: int
    login: str
    name: str | None
    emails: list[dict[str, Any]]

    @property
    def public_email(self) -> str | None:
        return next(
            (e["email"] for e in self.emails if e["primary"] and e["visibility"] == "public"),
            None,
        )


@dataclass
class _Grant:
    user: GitHubUser
    scope: str
    redirect_uri: str
    code_challenge: str


def _default_user() -> GitHubUser:
    return GitHubUser(
        id=583231,
        login="octocat",
        name="The Octocat",
        emails=[
            {
                "email": "octocat@example.com",
                "primary": True,
                "verified": True,
                "visibility": "public",
            }
        ],
    )


@dataclass
class _State:
    user: GitHubUser = field(default_factory=_default_user)
    deny_next: bool = False
    codes: dict[str, _Grant] = field(default_factory=dict)
    tokens: dict[str, _Grant] = field(default_factory=dict)


class GitHubLikeProvider:
    """A plain OAuth 2.0 server shaped like GitHub's: authorize, access_token (errors answered
    with status 200, as GitHub does), ``/user`` and ``/user/emails``. Authorization
    auto-approves as the current user (``set_user``) unless ``deny_next`` is set; PKCE (S256)
    is required; any redirect_uri is accepted, and the token request must repeat it.
    """

    client_id = "gatehouse-github-client"
    client_secret = "gatehouse-github-secret"

    _urls = Map(
        [
            Rule("/login/oauth/authorize", endpoint="authorize", methods=["GET"]),
            Rule("/login/oauth/access_token", endpoint="access_token", methods=["POST"]),
            Rule("/user", endpoint="user", methods=["GET"]),
            Rule("/user/emails", endpoint="emails", methods=["GET"]),
        ]
    )

    def __init__(self) -> None:
        self._state = _State()
        self._handlers: dict[str, Callable[[Request], Response]] = {
            "authorize": self._authorize,
            "access_token": self._access_token,
            "user": self._user,
            "emails": self._emails,
        }
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    @property
    def deny_next(self) -> bool:
        """Set to make the next authorization answer ``error=access_denied``."""
        return self._state.deny_next

    @deny_next.setter
    def deny_next(self, value: bool) -> None:
        self._state.deny_next = value

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/login/oauth/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/login/oauth/access_token"

    @property
    def api_base_url(self) -> str:
        return f"{self.base_url}/"

    def start(self) -> None:
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.base_url = f"http://localhost:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._server.server_close()
            self._server = None

    def reset(self) -> None:
        """Back to the default user (octocat, public verified primary email); forget codes,
        tokens and ``deny_next``."""
        self._state = _State()

    def set_user(
        self, *, id: int, login: str, name: str | None = None, emails: list[dict[str, Any]]
    ) -> None:
        """The user the next authorizations approve as. Each email is a dict with ``email``
        and optionally ``primary`` (False), ``verified`` (True), ``visibility`` (None or
        "public"); tokens issued earlier keep their user."""
        defaults = {"primary": False, "verified": True, "visibility": None}
        self._state.user = GitHubUser(id, login, name, [defaults | e for e in emails])

    def authorize(self, url: str) -> str:
        """Play the browser at the authorization ``url``: the redirect back to the client
        (``code`` and ``state``, or ``error``), not followed."""
        response = requests.get(url, allow_redirects=False, timeout=_TIMEOUT)
        assert response.is_redirect, f"{response.status_code}: {response.text}"
        return response.headers["Location"]

    def _wsgi(self, environ: Any, start_response: Any) -> Any:
        try:
            endpoint, _ = self._urls.bind_to_environ(environ).match()
        except HTTPException as error:
            return error(environ, start_response)
        return self._handlers[endpoint](Request(environ))(environ, start_response)

    def _authorize(self, request: Request) -> Response:
        args = request.args
        if args.get("client_id") != self.client_id or not args.get("redirect_uri"):
            return Response("unknown client or no redirect_uri", status=404)
        state = {"state": args["state"]} if "state" in args else {}
        if self._state.deny_next:
            self._state.deny_next = False
            error = {
                "error": "access_denied",
                "error_description": "The user has denied your application access.",
            }
            return _redirect(with_query(args["redirect_uri"], error | state))
        if not args.get("code_challenge") or args.get("code_challenge_method") != "S256":
            error = {"error": "invalid_request", "error_description": "PKCE (S256) is required"}
            return _redirect(with_query(args["redirect_uri"], error | state))
        code = secrets.token_hex(10)
        scope = ",".join(args.get("scope", "").replace(",", " ").split())
        self._state.codes[code] = _Grant(
            self._state.user, scope, args["redirect_uri"], args["code_challenge"]
        )
        return _redirect(with_query(args["redirect_uri"], {"code": code} | state))

    def _access_token(self, request: Request) -> Response:
        form = request.form
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            client = (auth.username, auth.password)
        else:
            client = (form.get("client_id"), form.get("client_secret"))
        grant = self._state.codes.pop(form.get("code", ""), None)  # single use
        if client != (self.client_id, self.client_secret):
            answer = {"error": "incorrect_client_credentials"}
        elif grant is None or s256(form.get("code_verifier", "")) != grant.code_challenge:
            answer = {
                "error": "bad_verification_code",
                "error_description": "The code passed is incorrect or expired.",
            }
        elif form.get("redirect_uri") != grant.redirect_uri:
            answer = {"error": "redirect_uri_mismatch"}
        else:
            token = "gho_" + secrets.token_urlsafe(27)
            self._state.tokens[token] = grant
            answer = {"access_token": token, "token_type": "bearer", "scope": grant.scope}
        if "application/json" in request.headers.get("Accept", ""):
            return Response(json.dumps(answer), content_type="application/json")
        return Response(urlencode(answer), content_type="application/x-www-form-urlencoded")

    def _grant(self, request: Request) -> _Grant | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        return self._state.tokens.get(token.strip())

    def _user(self, request: Request) -> Response:
        grant = self._grant(request)
        if grant is None:
            return _json({"message": "Bad credentials"}, status=401)
        user = grant.user
        return _json(
            {"id": user.id, "login": user.login, "name": user.name, "email": user.public_email}
        )

    def _emails(self, request: Request) -> Response:
        grant = self._grant(request)
        if grant is None:
            return _json({"message": "Bad credentials"}, status=401)
        if not {"user", "user:email"} & set(grant.scope.split(",")):
            return _json({"message": "Not Found"}, status=404)  # GitHub's answer without scope
        return _json(grant.user.emails)


def _redirect(location: str) -> Response:
    return Response(status=302, headers={"Location": location})


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    """The OpenID Connect provider of the whole run, with ``OIDC_CLIENTS``."""
    provider = OidcProvider()
    provider.start(OIDC_CLIENTS)
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture
def oidc(oidc_provider: OidcProvider) -> OidcProvider:
    """The OpenID Connect provider, with default accounts, no swap and the real clock."""
    oidc_provider.reset()
    return oidc_provider


@pytest.fixture(scope="session")
def github_provider() -> Iterator[GitHubLikeProvider]:
    provider = GitHubLikeProvider()
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture
def github(github_provider: GitHubLikeProvider) -> GitHubLikeProvider:
    """The GitHub-like provider with its default user and no codes, tokens or denial."""
    github_provider.reset()
    return github_provider
