"""The demo as deployed (gunicorn, a fresh SQLite database, real HTTP) against its API
document, by schemathesis's own command line (``st run``): generated requests to every
documented operation in every phase (the document's examples, coverage of each schema's
edges, fuzzing, and stateful sequences along the document's links), and every default check
on every answer: no 5xx, each status, content type, header and body as documented, valid
requests accepted and invalid ones refused. Once as an app client with a real session (signed
up and in through the API), once without credentials. Settings and the few exceptions, each
with its reason: schemathesis.toml.

`make test` runs this module once, in its SQLite pass: the server keeps its own database.
"""

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.smtp import Mailbox, SMTPServer, free_port, links

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
#: Generous: a run takes about 40 seconds on two cores.
RUN_TIMEOUT = 300


@dataclass
class Demo:
    url: str
    mailbox: Mailbox
    #: gunicorn's log (access and errors), for a failure's tracebacks.
    log: Path


def demo_env(tmp: Path, port: int, mail_port: int) -> dict[str, str]:
    """The demo's settings (``FLASK_*``, read by ``create_app``) on ``port``."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLASK_", "GUNICORN_"))
    }
    return {
        **inherited,
        # A prefix keeps from_prefixed_env from reading the key as a JSON number.
        "FLASK_SECRET_KEY": f"contract-{secrets.token_hex(32)}",
        "FLASK_SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'demo.db'}",
        "FLASK_GATEHOUSE_BASE_URL": f"http://localhost:{port}",
        # Plain HTTP on loopback.
        "FLASK_GATEHOUSE_COOKIE_SECURE": "false",
        # A local SMTP server takes the mail: none goes out, and nothing waits on a real one.
        "FLASK_MAIL_SERVER": "127.0.0.1",
        "FLASK_MAIL_PORT": str(mail_port),
        # Cheap hashing, as in every test: this run is about answers, not cost.
        "FLASK_GATEHOUSE_ARGON2_TIME_COST": "1",
        "FLASK_GATEHOUSE_ARGON2_MEMORY_COST": "8",
        "FLASK_GATEHOUSE_ARGON2_PARALLELISM": "1",
        # An account made by the stateful phase can sign in at once (its sign-up's link to
        # the login operation leads somewhere); the address still gets its link.
        "FLASK_GATEHOUSE_EMAIL_CONFIRMATION": "optional",
        # Every request comes from one address: limits per client IP would answer most of
        # them 429 before their operation ran. The limits per account and address still apply.
        "FLASK_GATEHOUSE_LOGIN_IP_LIMIT": "10000 per minute",
        "FLASK_GATEHOUSE_SIGNUP_IP_LIMIT": "10000 per minute",
        "FLASK_GATEHOUSE_SIGNUP_ATTEMPT_LIMIT": "10000 per minute",
        "FLASK_GATEHOUSE_EMAIL_REQUEST_IP_LIMIT": "10000 per minute",
        # The demo's own gunicorn.conf.py, on this port.
        "GUNICORN_BIND": f"127.0.0.1:{port}",
    }


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the demo exited ({process.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/api/openapi.json", timeout=2):  # noqa: S310
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"the demo did not answer within 30 s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo under gunicorn (its own gunicorn.conf.py: two sync workers) on a free port,
    on a fresh SQLite database migrated by ``flask db upgrade``, mailing a local SMTP server."""
    tmp = tmp_path_factory.mktemp("demo")
    smtp = SMTPServer()
    smtp.start()
    port = free_port()
    url = f"http://localhost:{port}"
    env = demo_env(tmp, port, smtp.port)
    blog = ROOT / "examples" / "blog"
    subprocess.run(
        [str(BIN / "flask"), "--app", "blog", "db", "upgrade"],
        cwd=blog,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    log = tmp / "gunicorn.log"
    with log.open("wb") as output:
        # No control socket: its default path is shared by every gunicorn on this machine.
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "--no-control-socket", "blog:create_app()"],
            cwd=blog,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_up(url, process, log)
        yield Demo(url, smtp.mailbox, log)
    finally:
        process.terminate()
        process.wait(timeout=30)
        smtp.stop()


def call(url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One JSON request (POST with a body, else GET): the status and the decoded answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {})  # noqa: S310
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as refusal:
        return refusal.code, json.load(refusal)


@pytest.fixture(scope="module")
def session_token(demo: Demo) -> str:
    """An app client's session, made as an app would make it: sign up, confirm the address
    with the mailed link, sign in."""
    auth = f"{demo.url}/api/v1/app/auth"
    account = {
        "email": "contract@example.com",
        "username": "contract",
        "password": secrets.token_urlsafe(24),
    }
    assert call(f"{auth}/signup", account)[0] == 202
    (mail,) = demo.mailbox.wait_for(1)
    (link,) = [link for link in links(mail) if "/confirm/" in link]
    status, answer = call(f"{auth}/email/confirm", {"token": link.rsplit("/", 1)[1]})
    assert status == 200, answer
    credentials = {"email": account["email"], "password": account["password"]}
    status, answer = call(f"{auth}/login", credentials)
    assert status == 200, answer
    token: str = answer["meta"]["session_token"]
    return token


def st_run(demo: Demo, tmp: Path, *options: str) -> None:
    """``st run`` against the demo's served document, with schemathesis.toml; fails with
    schemathesis's report unless every check passed."""
    command = [
        *(str(BIN / "st"), "--config-file", str(ROOT / "schemathesis.toml"), "run"),
        *(f"{demo.url}/api/openapi.json", "--no-color", *options),
    ]
    # Run in a temporary directory: schemathesis keeps state in its working directory.
    result = subprocess.run(
        command, cwd=tmp, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    report = f"{result.stdout}{result.stderr}\nThe server's log: {demo.log}"
    assert result.returncode == 0, report


def test_the_demo_keeps_to_its_document_for_an_app_with_a_session(
    demo: Demo, session_token: str, tmp_path: Path
) -> None:
    headers = {"X-Session-Token": session_token}
    st_run(
        demo,
        tmp_path,
        *("-H", f"X-Session-Token: {session_token}"),
        # No generated credentials beside the real one: ignored_auth would take them for the
        # credentials sent, and the server's 200 for a failure to check them.
        *("--generation-with-security-parameters", "false"),
        # Signing out, or revoking a session by its id (this one's is 1), would end the very
        # session this run is about: the stateful phase of the other run signs out its own
        # sessions. Sequences need a visitor (sign up, sign in).
        *("--exclude-operation-id", "signOut", "--exclude-operation-id", "revokeSession"),
        *("--phases", "examples,coverage,fuzzing"),
    )
    # The whole run was signed in: the session is still there.
    status, answer = call(f"{demo.url}/api/v1/app/auth/session", headers=headers)
    assert status == 200, answer


def test_the_demo_keeps_to_its_document_without_credentials(demo: Demo, tmp_path: Path) -> None:
    st_run(demo, tmp_path)
