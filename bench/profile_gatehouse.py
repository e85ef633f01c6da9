"""Where a signed-in ``GET /blogs`` of the Gatehouse demo spends its time, in-process.

    .venv/bin/python bench/profile_gatehouse.py                  # cProfile, Gatehouse
    .venv/bin/python bench/profile_gatehouse.py --app tutorial   # the same for the tutorial
    .venv/bin/python bench/profile_gatehouse.py --breakdown      # CPU time of the parts

The apps are configured as ``bench/blogs.py`` configures them (Gatehouse through ``FLASK_*``
environment variables on its defaults, schema from the blog's migrations, a user from the
CLI; a temporary SQLite file), signed in with the test client, then called directly as WSGI
apps with the signed-in cookie, as wrk's requests arrive; no server, so gunicorn's own share
of a request (about 250 us here) is not in these figures. Times are CPU time of this
process (``time.process_time``), the minimum over repetitions, which is the figure least
disturbed by other work on the machine.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import os
import pstats
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.test import EnvironBuilder

ROOT = Path(__file__).resolve().parent.parent
BLOG_DIR = ROOT / "examples" / "blog"
APPS_DIR = ROOT / "bench" / "apps"
EMAIL, USERNAME, PASSWORD = "bench@example.com", "bench", "velvet harbour quartz lantern 1971"
UA = {"User-Agent": "gatehouse-bench/1.0"}


def _clear_flask_env() -> None:
    for key in [key for key in os.environ if key.startswith("FLASK_")]:
        del os.environ[key]


def gatehouse_client(tmp: Path) -> Any:
    _clear_flask_env()
    os.environ["FLASK_SECRET_KEY"] = f"bench-{secrets.token_hex(32)}"
    os.environ["FLASK_SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp / 'bench.db'}"
    os.environ["FLASK_GATEHOUSE_BASE_URL"] = "http://localhost:5000"
    os.environ["FLASK_MAIL_BACKEND"] = "dummy"
    flask = [sys.executable, "-m", "flask", "--app", "blog"]
    create_user = ["gatehouse", "create-user", "--email", EMAIL, "--username", USERNAME]
    for args in (["db", "upgrade"], [*create_user, "--password", PASSWORD]):
        subprocess.run([*flask, *args], cwd=BLOG_DIR, check=True, capture_output=True, timeout=120)
    sys.path.insert(0, str(BLOG_DIR))
    from blog import create_app  # importable once on sys.path

    client = create_app().test_client()
    page = client.get("/login", headers=UA).get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="', 1)[1].split('"', 1)[0]
    form = {"email": EMAIL, "password": PASSWORD, "csrf_token": token}
    reply = client.post("/login", data=form, headers=UA)
    assert reply.status_code == 302, reply.status_code
    return client


def tutorial_client(tmp: Path) -> Any:
    os.environ["TUTORIAL_DATABASE_URI"] = f"sqlite:///{tmp / 'tutorial.db'}"
    sys.path.insert(0, str(APPS_DIR / "tutorial"))
    from app import app

    client = app.test_client()
    account = {"email": EMAIL, "username": USERNAME, "password": PASSWORD}
    client.post("/register", data=account, headers=UA)
    reply = client.post("/login", data={"email": EMAIL, "password": PASSWORD}, headers=UA)
    assert reply.status_code == 302, reply.status_code
    return client


def bare_client(_tmp: Path) -> Any:
    sys.path.insert(0, str(APPS_DIR))
    from bare import app

    return app.test_client()


def cookie_header(client: Any) -> str:
    return "; ".join(f"{cookie.key}={cookie.value}" for cookie in client._cookies.values())


def wsgi_get(client: Any) -> Callable[[], tuple[str, bytes]]:
    """A function doing one ``GET /blogs`` with the client's cookies, straight into WSGI."""
    app = client.application
    headers = {**UA, "Host": "127.0.0.1"}
    if cookie := cookie_header(client):
        headers["Cookie"] = cookie
    environ = EnvironBuilder(path="/blogs", headers=headers).get_environ()
    status: list[str] = [""]

    def start_response(line: str, _headers: Any, _exc_info: Any = None) -> None:
        status[0] = line

    def get() -> tuple[str, bytes]:
        body = b"".join(app(dict(environ), start_response))
        return status[0], body

    return get


def cpu_us(function: Callable[[], object], number: int = 2000, repeat: int = 7) -> float:
    """Microseconds of CPU per call: the minimum over ``repeat`` runs of ``number`` calls."""
    for _ in range(100):  # warm up (template compilation, statement caches, the pool)
        function()
    runs = []
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(number):
            function()
        runs.append((time.process_time() - start) / number * 1e6)
    return min(runs)


def _package(filename: str) -> str:
    """Which library a profiled function belongs to (C functions are grouped apart)."""
    if filename == "~":
        return "builtins / C"
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if "flask_gatehouse" in parts:
        return "flask_gatehouse"
    if "examples" in parts or "bench" in parts or filename.endswith(".html"):
        return "app code and templates"
    return "stdlib"


def profile(name: str, client: Any, requests: int, top: int) -> None:
    get = wsgi_get(client)
    status, body = get()
    assert status == "200 OK", status
    assert b"Hi bench" in body
    cpu = cpu_us(get, requests, repeat=3)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        get()
    profiler.disable()

    stats = pstats.Stats(profiler)
    by_package: dict[str, float] = {}
    for (filename, _line, _func), row in stats.stats.items():  # type: ignore[attr-defined]
        by_package[_package(filename)] = by_package.get(_package(filename), 0.0) + row[2]
    total = sum(by_package.values())
    print(f"\n===== {name}: {cpu:.0f} us CPU per request unprofiled (WSGI call, no server)")
    print("own time by package, profiled:")
    for package, seconds in sorted(by_package.items(), key=lambda item: -item[1]):
        print(f"  {package:<28} {seconds / total:6.1%}")
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
        print(f"\n--- top {top} by {order} ---")
        text = out.getvalue()
        print(text[text.rfind("\n", 0, text.index("ncalls")) + 1 :].rstrip())


def breakdown(tmp: Path, number: int) -> None:
    """CPU time of the parts of Gatehouse's /blogs, beside the whole of each app's."""
    from flask import render_template
    from flask_login import current_user
    from sqlalchemy import bindparam, select, text

    from flask_gatehouse import headers
    from flask_gatehouse.models import User, UserSession
    from flask_gatehouse.services import sessions
    from flask_gatehouse.services.database import db

    gatehouse = gatehouse_client(tmp)
    app = gatehouse.application
    request_headers = {**UA, "Cookie": cookie_header(gatehouse)}
    token = next(c.value for c in gatehouse._cookies.values() if c.key.endswith("_session"))
    digest = hashlib.sha256(token.encode()).digest()

    def in_request(*steps: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            with app.test_request_context("/blogs", headers=request_headers):
                for step in steps:
                    step()
                db().session.remove()  # as Flask-SQLAlchemy's teardown does

        return run

    def statement() -> Any:
        return (
            select(UserSession, User)
            .join(User, UserSession.user_id == User.id)
            .where(UserSession.token_hash == digest, User.active.is_(True))
        )

    built = (
        select(UserSession, User)
        .join(User, UserSession.user_id == User.id)
        .where(UserSession.token_hash == bindparam("digest"), User.active.is_(True))
    )
    raw = text(
        "SELECT * FROM gatehouse_sessions JOIN gatehouse_users"
        " ON gatehouse_users.id = gatehouse_sessions.user_id"
        " WHERE token_hash = :digest AND gatehouse_users.active = 1"
    )

    def user() -> object:
        return current_user._get_current_object()

    def page() -> object:
        return render_template("blog.html")

    def header_hook() -> object:
        return headers.apply(app.response_class("x"))

    def orm_query() -> object:
        row = db().session.execute(built, {"digest": digest}).first()
        assert row is not None
        return row

    def fresh_query() -> object:
        row = db().session.execute(statement()).first()
        assert row is not None
        return row

    def text_query() -> object:
        row = db().session.execute(raw, {"digest": digest}).first()
        assert row is not None
        return row

    figures = [
        ("bare app: whole request", cpu_us(wsgi_get(bare_client(tmp)), number)),
        ("tutorial app: whole request", cpu_us(wsgi_get(tutorial_client(tmp)), number)),
        ("gatehouse app: whole request", cpu_us(wsgi_get(gatehouse), number)),
        ("  request context + session teardown only", cpu_us(in_request(), number)),
        ("  + sessions.load_user()", cpu_us(in_request(sessions.load_user), number)),
        ("  + load_user + render blog.html", cpu_us(in_request(user, page), number)),
        ("  + load_user + headers.apply", cpu_us(in_request(user, header_hook), number)),
        ("  load_user's select(), built only", cpu_us(statement, number)),
        ("  + build and run select() via Session", cpu_us(in_request(fresh_query), number)),
        ("  + run a prebuilt select() (bindparam)", cpu_us(in_request(orm_query), number)),
        ("  + same SQL as text() via Session", cpu_us(in_request(text_query), number)),
    ]
    print(f"\nCPU per call, minimum of 7 x {number} calls (us):")
    for label, value in figures:
        print(f"  {label:<45} {value:7.0f}")
    spread = [cpu_us(wsgi_get(gatehouse), number // 4, repeat=1) for _ in range(5)]
    print(f"  (gatehouse whole request, 5 single runs: median {statistics.median(spread):.0f},")
    print(f"   min {min(spread):.0f}, max {max(spread):.0f}: the noise of this machine)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", choices=["gatehouse", "tutorial", "bare"], default="gatehouse")
    parser.add_argument("--requests", type=int, default=2000, help="calls per measurement")
    parser.add_argument("--top", type=int, default=30, help="functions listed by cProfile")
    parser.add_argument("--breakdown", action="store_true", help="time the parts instead")
    args = parser.parse_args()
    factories = {"gatehouse": gatehouse_client, "tutorial": tutorial_client, "bare": bare_client}
    with tempfile.TemporaryDirectory(prefix="gatehouse-profile-") as name:
        if args.breakdown:
            breakdown(Path(name), args.requests)
        else:
            profile(args.app, factories[args.app](Path(name)), args.requests, args.top)


if __name__ == "__main__":
    main()
