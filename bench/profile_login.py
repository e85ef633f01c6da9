"""Where a Gatehouse ``POST /login`` spends its time, in-process, by outcome.

    .venv/bin/python bench/profile_login.py [--repeat 30]
    .venv/bin/python bench/profile_login.py --cprofile locked     # cProfile of one outcome
    PROFILE_SORT=tottime PROFILE_LINES=30 .venv/bin/python bench/profile_login.py --cprofile success

The demo app is built as ``suite.py`` builds it (SQLite, 1,000 users, schema from the blog's
migrations, Gatehouse's defaults through ``FLASK_*`` variables) and called with Flask's test
client: no server, so gunicorn's share (about 0.3 ms a request) is not included. For each
outcome (a successful login, a wrong password for a known email, an unknown email, an
attempt on a locked account, an attempt over the per-IP limit) it reports the CPU time of the
POST (``time.process_time``, median over ``--repeat`` requests) and of the parts of it,
timed by wrapping Gatehouse's functions at run time (nothing in src/ is changed):

* ``argon2 verify``: argon2-cffi's ``PasswordHasher.verify``, inside the app, where its
  19 MiB block is usually faulted in afresh (the back-to-back figure is printed for
  comparison);
* ``lockout check`` (``throttle.LoginAttempt``: the in-flight slot), ``user look-up``
  (``users.find_by_email``), ``new session`` (``sessions.start``), ``lockout clear and
  device cookie``, ``audit event`` (``audit.record``: insert, prune, commit) and ``login page``
  (``render_template`` of the form, for the outcomes that show it again).

Run it pinned to an idle core (``taskset -c 1 ...``) for steadier figures.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import blogs
import loadgen
import population
from argon2 import PasswordHasher

OUTCOMES = ("success", "known-wrong", "unknown", "locked", "ip-limited")
#: (label, module, attribute): Gatehouse functions looked up through their module at call
#: time, so replacing the module attribute times every call.
PARTS = [
    ("lockout check", "flask_gatehouse.services.throttle", "LoginAttempt"),
    ("user look-up", "flask_gatehouse.services.users", "find_by_email"),
    ("verify_password", "flask_gatehouse.services.users", "verify_password"),
    ("new session", "flask_gatehouse.services.sessions", "start"),
    ("lockout clear", "flask_gatehouse.services.throttle", "clear_lockout"),
    ("device cookie", "flask_gatehouse.services.throttle", "remember_device"),
    ("audit event", "flask_gatehouse.services.audit", "record"),
    ("notice mail", "flask_gatehouse.services.mail", "send"),
    ("login page", "flask_gatehouse.views.auth", "render_template"),
]
UA = {"User-Agent": blogs.USER_AGENT}

spent: dict[str, float] = defaultdict(float)


def timed(label: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += time.process_time() - start

    return wrapper


def build_app(tmp: Path) -> Any:
    secret_key = f"bench-{secrets.token_hex(32)}"
    database = population.Population("gatehouse", "sqlite", 1_000, tmp)
    population.build(database, population.argon2_hash(), secret_key)
    for key in [key for key in os.environ if key.startswith("FLASK_")]:
        del os.environ[key]
    os.environ.update(population.gatehouse_env(database, secret_key))
    sys.path.insert(0, str(blogs.BLOG_DIR))
    from blog import create_app  # importable once on sys.path

    app = create_app()
    for label, module, attribute in PARTS:
        target = sys.modules[module]
        setattr(target, attribute, timed(label, getattr(target, attribute)))
    verify = PasswordHasher.verify
    PasswordHasher.verify = timed("argon2 verify", verify)  # type: ignore[method-assign]
    return app


class Outcome:
    """Makes requests of one outcome; each call returns after one POST /login."""

    def __init__(self, app: Any, outcome: str) -> None:
        self.app = app
        self.outcome = outcome
        self.count = 0
        self.client = app.test_client()
        self.environ = {"REMOTE_ADDR": f"127.0.{OUTCOMES.index(outcome) + 1}.1"}
        self.token = self._token()
        if outcome == "locked":
            for _ in range(5):
                self._post(self._victim(), 400)
        if outcome == "ip-limited":
            for number in range(10):
                self._post(f"limit{number}@example.com", 400)

    def _token(self) -> str:
        page = self.client.get("/login", headers=UA, environ_base=self.environ)
        return blogs.csrf_token(page.get_data(as_text=True))

    def _victim(self) -> str:
        return population.email(1_000)

    def _post(self, email: str, status: int, password: str = loadgen.BAD_PASSWORD) -> None:
        form = {"email": email, "password": password, "csrf_token": self.token}
        reply = self.client.post("/login", data=form, headers=UA, environ_base=self.environ)
        if reply.status_code != status:
            raise blogs.BenchError(f"{self.outcome}: {reply.status_code}, expected {status}")

    def __call__(self) -> float:
        """One POST; returns its CPU seconds (the GET for a success is not counted)."""
        self.count += 1
        if self.outcome == "success":
            self.client = self.app.test_client()
            self.token = self._token()
        spent.clear()  # the parts of this POST only
        start = time.process_time()
        if self.outcome == "success":
            self._post(population.email(2 + self.count % 700), 302, blogs.PASSWORD)
        elif self.outcome == "known-wrong":
            self._post(population.email(2 + self.count % 700), 400)
        elif self.outcome == "unknown":
            self._post(f"nobody{self.count}@example.com", 400)
        elif self.outcome == "locked":
            self._post(self._victim(), 429)
        else:
            self._post(f"over{self.count}@example.com", 429)
        return time.process_time() - start


def back_to_back_verify(repeat: int) -> float:
    hasher = PasswordHasher(**population.ARGON2_PARAMS)
    stored = hasher.hash(blogs.PASSWORD)
    times = []
    for _ in range(repeat):
        start = time.process_time()
        hasher.verify(stored, blogs.PASSWORD)
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=blogs.bounded(3, 1000), default=30)
    parser.add_argument("--cprofile", choices=OUTCOMES, help="cProfile one outcome instead")
    args = parser.parse_args()
    # Gatehouse's login rate limits would refuse the repeated failures of one client IP:
    # known-wrong and unknown get limits as high as suite.py's "raised" server.
    os.environ["FLASK_GATEHOUSE_LOCKOUT_LIMITS"] = '"100000 per minute"'
    with tempfile.TemporaryDirectory(prefix="gatehouse-profile-") as name:
        app = build_app(Path(name))
        if args.cprofile:
            make = Outcome(app, args.cprofile)
            make()
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.repeat):
                make()
            profile.disable()
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(
                os.environ.get("PROFILE_SORT", "cumulative")
            ).print_stats(int(os.environ.get("PROFILE_LINES", "40")))
            print(out.getvalue())
            return 0
        print(f"back-to-back argon2id verify: {back_to_back_verify(args.repeat) * 1000:.1f} ms")
        labels = ["argon2 verify"] + [label for label, _m, _a in PARTS]
        header = ["outcome", "POST CPU ms", *labels, "rest"]
        rows = []
        for outcome in OUTCOMES:
            if outcome == "ip-limited":
                # The per-IP limit needs its default (10 failures a minute) back.
                app.config["GATEHOUSE_LOGIN_IP_LIMIT"] = "10 per minute"
            else:
                app.config["GATEHOUSE_LOGIN_IP_LIMIT"] = "100000 per minute"
            app.config["GATEHOUSE_LOCKOUT_LIMITS"] = (
                "5 per 5 minutes" if outcome == "locked" else "100000 per minute"
            )
            make = Outcome(app, outcome)
            make()  # warm-up
            totals, parts = [], defaultdict(list)
            for _ in range(args.repeat):
                totals.append(make())
                for label in labels:
                    parts[label].append(spent.get(label, 0.0))
            median_parts = {label: statistics.median(parts[label]) * 1000 for label in labels}
            total = statistics.median(totals) * 1000
            outer = median_parts.copy()
            outer.pop("argon2 verify")  # inside verify_password
            rest = total - sum(outer.values())
            rows.append(
                [outcome, f"{total:.2f}"]
                + [f"{median_parts[label]:.2f}" for label in labels]
                + [f"{rest:.2f}"]
            )
        print()
        print("\n".join(markdown(header, rows)))
        print(
            "\nCPU ms per POST, medians over the requests; parts are nested where the calls "
            "are (argon2 verify is inside verify_password), rest is everything outside the "
            "timed parts (Flask, the form and CSRF check, Flask-Limiter, the response)."
        )
    return 0


def markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    table = [header, *rows]
    widths = [max(len(row[column]) for row in table) for column in range(len(header))]
    lines = [
        "| " + " | ".join(text.rjust(width) for text, width in zip(row, widths, strict=True)) + " |"
        for row in table
    ]
    lines.insert(1, "|" + "|".join("-" * (width + 1) + ":" for width in widths) + "|")
    return lines


if __name__ == "__main__":
    sys.exit(main())
