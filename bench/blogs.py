"""Requests per second of an authenticated ``GET /blogs``: bare Flask, the tutorial, Gatehouse.

    .venv/bin/python bench/blogs.py [--rounds 3] [--duration 5]

Three apps are served by gunicorn (one sync worker, pinned to CPU 0) on 127.0.0.1, all in
the same run, and loaded in turn by wrk (pinned to CPU 1) with a signed-in cookie:

* ``bare``: ``bench/apps/bare.py``, a constant page without any auth (the ceiling);
* ``tutorial``: ``bench/apps/tutorial/``, the Flask-Login tutorial app (the baseline);
* ``gatehouse``: the demo blog, ``gunicorn 'blog:create_app()' --chdir examples/blog``,
  configured only through ``FLASK_*`` environment variables and otherwise on its defaults.

Each app is signed in over HTTP first (urllib) and its /blogs page checked; wrk counts every
response that is not a 200 (a Lua hook, since wrk itself treats a 302 as success), and any
such response or socket error aborts the run. Absolute figures drift between runs and
machines; the ratio to the bare route measured in the same run is the figure to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.metadata
import json
import os
import platform
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
APPS_DIR = ROOT / "bench" / "apps"
BLOG_DIR = ROOT / "examples" / "blog"

HOST = "127.0.0.1"
SERVER_CPU = "0"
LOAD_CPU = "1"
#: Sent by urllib and wrk alike, so Flask-Login's session protection (which fingerprints the
#: User-Agent) sees the same browser during the load as at login.
USER_AGENT = "gatehouse-bench/1.0"

EMAIL = "bench@example.com"
USERNAME = "bench"
PASSWORD = "velvet harbour quartz lantern 1971"

START_TIMEOUT = 30.0
HTTP_TIMEOUT = 10.0
SETUP_TIMEOUT = 120.0
MAX_ROUNDS = 20
MAX_DURATION = 60

#: Counts responses whose status is not 200 (wrk's own "Non-2xx or 3xx" line skips 3xx).
WRK_LUA = """
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  not_ok = 0
  first_status = 0
end

function response(status, headers, body)
  if status ~= 200 then
    not_ok = not_ok + 1
    if first_status == 0 then first_status = status end
  end
end

function done(summary, latency, requests)
  local count, first = 0, 0
  for _, thread in ipairs(threads) do
    count = count + thread:get("not_ok")
    if first == 0 then first = thread:get("first_status") end
  end
  io.write(string.format("BENCH_NOT_200 %d %d\\n", count, first))
end
"""


class BenchError(RuntimeError):
    """A run that cannot give honest figures: stop and say why."""


# -- HTTP client (urllib, cookies kept by hand) ------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclasses.dataclass
class Response:
    status: int
    headers: Any
    body: str


class Browser:
    """Just enough of a browser: keeps cookies, does not follow redirects.

    ``http.cookiejar`` would not send Gatehouse's ``Secure`` cookies back over plain HTTP,
    while a browser does for 127.0.0.1 and wrk sends whatever header it is given, so cookies
    are kept here by name.
    """

    def __init__(self, port: int) -> None:
        self.base = f"http://{HOST}:{port}"
        self.cookies: dict[str, str] = {}
        self._opener = urllib.request.build_opener(_NoRedirect)

    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    def request(
        self, path: str, form: dict[str, str] | None = None, *, send_cookies: bool = True
    ) -> Response:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        # Always http://127.0.0.1:PORT/... (built here), never a caller-supplied scheme.
        request = urllib.request.Request(self.base + path, data=data)  # noqa: S310
        request.add_header("User-Agent", USER_AGENT)
        if send_cookies and self.cookies:
            request.add_header("Cookie", self.cookie_header())
        try:
            with self._opener.open(request, timeout=HTTP_TIMEOUT) as reply:
                response = Response(reply.status, reply.headers, reply.read().decode())
        except urllib.error.HTTPError as error:  # 3xx (not followed) and 4xx/5xx
            response = Response(error.code, error.headers, error.read().decode())
        if send_cookies:
            self._store(response.headers.get_all("Set-Cookie") or [])
        return response

    def _store(self, set_cookies: list[str]) -> None:
        for header in set_cookies:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if _is_deletion(morsel["max-age"], morsel["expires"]):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value


def _is_deletion(max_age: str, expires: str) -> bool:
    if max_age.strip() == "0":
        return True
    if expires:
        with contextlib.suppress(TypeError, ValueError):
            return parsedate_to_datetime(expires).timestamp() <= time.time()
    return False


class _HiddenInputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "input" and attributes.get("type") == "hidden" and attributes.get("name"):
            self.values[attributes["name"] or ""] = attributes.get("value") or ""


def csrf_token(page: str) -> str:
    parser = _HiddenInputs()
    parser.feed(page)
    token = parser.values.get("csrf_token")
    if not token:
        raise BenchError("no csrf_token hidden input on the login page")
    return token


def expect(response: Response, status: int, what: str, location: str | None = None) -> None:
    """Fail unless ``response`` has ``status`` (and, for redirects, goes to ``location``)."""
    target = urllib.parse.urlsplit(response.headers.get("Location") or "").path
    if response.status != status or (location is not None and target != location):
        got = f"{response.status} {response.headers.get('Location') or ''}".strip()
        raise BenchError(f"{what}: expected {status} {location or ''}, got {got}")


# -- The three apps -------------------------------------------------------------------------


@dataclasses.dataclass
class App:
    name: str
    description: str
    #: gunicorn's APP_MODULE argument and its --chdir.
    module: str
    chdir: Path
    #: What the signed-in /blogs page must contain.
    marker: str
    #: Prepares the database etc.; returns extra environment variables for the server.
    prepare: Callable[[Path], dict[str, str]]
    #: Signs in; the browser's cookies afterwards are what wrk sends.
    sign_in: Callable[[Browser], None]
    #: True when /blogs without a cookie must not answer 200 (a protected page).
    protected: bool = True


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without FLASK_* overrides (each app runs on its defaults)
    and without GUNICORN_CMD_ARGS (every server gets the same settings)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("FLASK_") and key != "GUNICORN_CMD_ARGS"
    }
    env.update(extra or {})
    return env


def _no_prepare(_tmp: Path) -> dict[str, str]:
    return {}


def _no_sign_in(_browser: Browser) -> None:
    return None


def _tutorial_prepare(tmp: Path) -> dict[str, str]:
    return {"TUTORIAL_DATABASE_URI": f"sqlite:///{tmp / 'tutorial.db'}"}


def _tutorial_sign_in(browser: Browser) -> None:
    """Register, then log in (the tutorial's forms carry no CSRF token)."""
    expect(browser.request("/register"), 200, "tutorial GET /register")
    account = {"email": EMAIL, "username": USERNAME, "password": PASSWORD}
    expect(browser.request("/register", account), 302, "tutorial POST /register", "/login")
    expect(browser.request("/login"), 200, "tutorial GET /login")
    credentials = {"email": EMAIL, "password": PASSWORD}
    expect(browser.request("/login", credentials), 302, "tutorial POST /login", "/blogs")


def _gatehouse_prepare(tmp: Path) -> dict[str, str]:
    """Schema through the blog's Alembic migrations, one user through the CLI."""
    env = {
        # A "bench-" prefix keeps from_prefixed_env from reading the key as a JSON number.
        "FLASK_SECRET_KEY": f"bench-{secrets.token_hex(32)}",
        "FLASK_SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'bench.db'}",
        "FLASK_GATEHOUSE_BASE_URL": "http://localhost:5000",
        # Mail is rendered in the background as usual, then dropped (no SMTP server here).
        "FLASK_MAIL_BACKEND": "dummy",
    }
    flask = [sys.executable, "-m", "flask", "--app", "blog"]
    create_user = ["gatehouse", "create-user", "--email", EMAIL, "--username", USERNAME]
    for args in (["db", "upgrade"], [*create_user, "--password", PASSWORD]):
        result = subprocess.run(
            [*flask, *args],
            cwd=BLOG_DIR,
            env=clean_env(env),
            capture_output=True,
            text=True,
            timeout=SETUP_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise BenchError(
                f"flask {' '.join(args[:2])} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
    return env


def _gatehouse_sign_in(browser: Browser) -> None:
    """GET the login form for its CSRF token, POST the credentials with it."""
    page = browser.request("/login")
    expect(page, 200, "gatehouse GET /login")
    form = {"email": EMAIL, "password": PASSWORD, "csrf_token": csrf_token(page.body)}
    expect(browser.request("/login", form), 302, "gatehouse POST /login", "/blogs")
    if "__Host-gatehouse_session" not in browser.cookies:
        raise BenchError(f"gatehouse set no session cookie; cookies: {sorted(browser.cookies)}")


APPS = [
    App(
        name="bare",
        description="bench/apps/bare.py: constant page, no auth (ceiling)",
        module="bare:app",
        chdir=APPS_DIR,
        marker="Hi bench",
        prepare=_no_prepare,
        sign_in=_no_sign_in,
        protected=False,
    ),
    App(
        name="tutorial",
        description="bench/apps/tutorial: Flask-Login tutorial (baseline)",
        module="app:app",
        chdir=APPS_DIR / "tutorial",
        marker="Hi bench",
        prepare=_tutorial_prepare,
        sign_in=_tutorial_sign_in,
    ),
    App(
        name="gatehouse",
        description="examples/blog: 'blog:create_app()' on Gatehouse defaults",
        module="blog:create_app()",
        chdir=BLOG_DIR,
        marker="Hi bench",
        prepare=_gatehouse_prepare,
        sign_in=_gatehouse_sign_in,
    ),
]


# -- Servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclasses.dataclass
class Server:
    app: App
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    cookie: str = ""

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/blogs"

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def start_server(app: App, tmp: Path) -> Server:
    env = clean_env(app.prepare(tmp))
    port = free_port()
    log = tmp / f"{app.name}.log"
    # Without -c gunicorn reads ./gunicorn.conf.py of the directory it starts in: run from
    # examples/blog, the demo's own (access log, max_requests, pool size) would apply to all
    # three apps. An empty file keeps every setting on this command line.
    config = tmp / "gunicorn.conf.py"
    config.write_text("# Every setting is on the command line.\n")
    command = [
        *("taskset", "-c", SERVER_CPU),
        *(sys.executable, "-m", "gunicorn", "-c", str(config), "-w", "1", "-k", "sync"),
        *("-b", f"{HOST}:{port}", "--chdir", str(app.chdir)),
        *("--error-logfile", str(log)),
        app.module,
    ]
    with log.open("wb") as output:
        # Its own session: a Ctrl-C reaches this script only, which then stops the server.
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(app, port, process, log)


def wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    browser = Browser(server.port)
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(
                f"{server.app.name}: gunicorn exited ({server.process.returncode}):\n"
                + server.log_tail()
            )
        try:
            browser.request("/blogs", send_cookies=False)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
        else:
            return
    raise BenchError(f"{server.app.name}: no answer within {START_TIMEOUT:.0f} s")


def stop_server(server: Server) -> None:
    process = server.process
    if process.poll() is None:
        process.terminate()  # gunicorn's graceful shutdown stops its worker too
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the group started for this server
            process.wait(timeout=10)


def sign_in(server: Server) -> None:
    """Sign in, then check that the cookie (and only the cookie) gets the page."""
    app = server.app
    browser = Browser(server.port)
    app.sign_in(browser)
    page = browser.request("/blogs")
    if page.status != 200 or app.marker not in page.body:
        raise BenchError(
            f"{app.name}: signed-in GET /blogs gave {page.status} without "
            f"{app.marker!r}:\n{page.body[:500]}"
        )
    if app.protected:
        anonymous = browser.request("/blogs", send_cookies=False)
        if anonymous.status == 200:
            raise BenchError(f"{app.name}: /blogs answers 200 without a cookie")
    server.cookie = browser.cookie_header()


# -- Load -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    #: CPU time (user + system) the gunicorn processes used per request: unlike req/s, this
    #: hardly moves when other work on the machine takes the server's CPU away.
    server_cpu_us: float = 0.0


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:
        raise BenchError(f"cannot read the wrk latency {value!r}")
    return float(match[1]) * _UNITS_MS[match[2]]


def parse_wrk(output: str, name: str) -> Sample:
    """Requests/sec, p50 and p99 from ``wrk --latency``; refuse runs with bad responses."""
    not_ok = re.search(r"^BENCH_NOT_200 (\d+) (\d+)$", output, re.M)
    if not_ok is None:
        raise BenchError(f"{name}: wrk printed no status count:\n{output}")
    if int(not_ok[1]):
        raise BenchError(
            f"{name}: {not_ok[1]} responses were not 200 (first: {not_ok[2]}); the figures "
            f"would not be of the signed-in page.\n{output}"
        )
    if re.search(r"Non-2xx or 3xx responses", output):
        raise BenchError(f"{name}: wrk reports non-2xx responses:\n{output}")
    errors = re.search(r"Socket errors: (.*)", output)
    if errors is not None:
        raise BenchError(f"{name}: wrk reports socket errors ({errors[1]}):\n{output}")
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in", output, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if rps is None or total is None or p50 is None or p99 is None:
        raise BenchError(f"{name}: unexpected wrk output:\n{output}")
    if int(total[1]) == 0:
        raise BenchError(f"{name}: wrk completed no request:\n{output}")
    return Sample(float(rps[1]), _ms(p50[1]), _ms(p99[1]), int(total[1]))


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its children (gunicorn's master and worker), from /proc."""
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    ticks = 0
    for each in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def run_wrk(server: Server, duration: int, lua: Path, connections: int) -> Sample:
    command = [
        *("taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{duration}s"),
        *("--latency", "-s", str(lua), "-H", f"User-Agent: {USER_AGENT}"),
    ]
    if server.cookie:
        command += ["-H", f"Cookie: {server.cookie}"]
    command.append(server.url)
    cpu_before = cpu_seconds(server.process.pid)
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=duration + 30, check=False
        )
        cpu = cpu_seconds(server.process.pid) - cpu_before
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"{server.app.name}: wrk did not finish in {duration + 30} s") from error
    if result.returncode != 0:
        raise BenchError(f"{server.app.name}: wrk failed:\n{result.stdout}{result.stderr}")
    if server.process.poll() is not None:
        raise BenchError(f"{server.app.name}: gunicorn died under load:\n{server.log_tail()}")
    sample = parse_wrk(result.stdout, server.app.name)
    return dataclasses.replace(sample, server_cpu_us=cpu / sample.requests * 1e6)


# -- Report -----------------------------------------------------------------------------------


def versions() -> list[tuple[str, str]]:
    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False, timeout=10)
    wrk_version = (wrk.stdout + wrk.stderr).split("[", 1)[0].removeprefix("wrk").strip()
    return [
        (
            "CPU",
            f"{cpu} ({os.cpu_count()} CPUs; server on CPU {SERVER_CPU}, wrk on CPU {LOAD_CPU})",
        ),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("Flask", version("flask")),
        ("Werkzeug", version("werkzeug")),
        ("Flask-Login", version("flask-login")),
        (
            "Flask-SQLAlchemy / SQLAlchemy",
            f"{version('flask-sqlalchemy')} / {version('sqlalchemy')}",
        ),
        ("flask-gatehouse", version("flask-gatehouse")),
        ("gunicorn", version("gunicorn")),
        ("wrk", wrk_version),
    ]


def spread(values: list[float], digits: int) -> str:
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def per_round_ratios(results: dict[str, list[Sample]]) -> dict[str, list[float]]:
    """Each app's req/s over the bare route's in the same round (slow drift cancels out)."""
    bare = [sample.rps for sample in results["bare"]]
    return {
        name: [sample.rps / base for sample, base in zip(samples, bare, strict=True)]
        for name, samples in results.items()
    }


def table(results: dict[str, list[Sample]]) -> list[str]:
    """A Markdown table: medians over the rounds, with (min-max).

    ``x bare``: the app's median req/s over the bare route's. ``per round``: the median
    (min-max) of the same ratio taken within each round. ``CPU us/req``: CPU time the server
    spent per request. ``x bare CPU``: the bare route's median CPU per request over the app's,
    the req/s ratio the apps would have on a CPU left to them alone.
    """

    def cell(values: list[float], digits: int) -> str:
        return f"{statistics.median(values):.{digits}f} ({spread(values, digits)})"

    bare_rps = statistics.median(sample.rps for sample in results["bare"])
    bare_cpu = statistics.median(sample.server_cpu_us for sample in results["bare"])
    ratios = per_round_ratios(results)
    rows = [["app", "req/s", "p50 ms", "p99 ms", "x bare", "per round", "CPU us/req", "x bare CPU"]]
    for name, samples in results.items():
        rps = [sample.rps for sample in samples]
        cpu = [sample.server_cpu_us for sample in samples]
        rows.append(
            [
                name,
                cell(rps, 0),
                cell([sample.p50_ms for sample in samples], 2),
                cell([sample.p99_ms for sample in samples], 2),
                f"{statistics.median(rps) / bare_rps:.2f}",
                cell(ratios[name], 2),
                cell(cpu, 0),
                f"{bare_cpu / statistics.median(cpu):.2f}",
            ]
        )
    return markdown(rows[0], rows[1:])


def markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table with the first column left-aligned and the others right-aligned."""
    table = [header, *rows]
    widths = [max(len(row[column]) for row in table) for column in range(len(header))]
    lines = []
    for row in table:
        cells = [row[0].ljust(widths[0])] + [
            text.rjust(width) for text, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    rule = ["-" * (widths[0] + 2)] + ["-" * (width + 1) + ":" for width in widths[1:]]
    lines.insert(1, "|" + "|".join(rule) + "|")
    return lines


# -- Main -------------------------------------------------------------------------------------


def bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds",
        type=bounded(1, MAX_ROUNDS),
        default=3,
        help="rounds; each loads every app once, in rotating order (default 3)",
    )
    parser.add_argument(
        "--duration",
        type=bounded(1, MAX_DURATION),
        default=5,
        help="seconds of load per app and round (default 5)",
    )
    parser.add_argument(
        "--warmup",
        type=bounded(0, MAX_DURATION),
        default=1,
        help="seconds of unrecorded load per app before the rounds (default 1)",
    )
    parser.add_argument(
        "--connections", type=bounded(1, 64), default=4, help="wrk connections (default 4)"
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="also write every sample and the environment as JSON",
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def servers(tmp: Path) -> Iterator[list[Server]]:
    """Start, sign in and (always) stop one gunicorn per app."""
    started: list[Server] = []
    try:
        for app in APPS:
            print(f"starting {app.name}: {app.description}", flush=True)
            server = start_server(app, tmp)
            started.append(server)
            wait_until_up(server)
            try:
                sign_in(server)
            except BenchError as error:
                raise BenchError(
                    f"{error}\n--- {app.name} server log ---\n{server.log_tail()}"
                ) from None
        yield started
    finally:
        for server in started:
            stop_server(server)


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # run the finally blocks that stop the servers


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    signal.signal(signal.SIGTERM, _terminate)
    environment = versions()
    for key, value in environment:
        print(f"{key}: {value}")
    results: dict[str, list[Sample]] = {app.name: [] for app in APPS}
    try:
        with tempfile.TemporaryDirectory(prefix="gatehouse-bench-") as name:
            tmp = Path(name)
            lua = tmp / "status.lua"
            lua.write_text(WRK_LUA)
            with servers(tmp) as running:
                if args.warmup:
                    for server in running:
                        run_wrk(server, args.warmup, lua, args.connections)
                for number in range(args.rounds):
                    shift = number % len(running)
                    order = running[shift:] + running[:shift]
                    for server in order:
                        sample = run_wrk(server, args.duration, lua, args.connections)
                        results[server.app.name].append(sample)
                        print(
                            f"round {number + 1}/{args.rounds} {server.app.name:<10} "
                            f"{sample.rps:8.1f} req/s  p50 {sample.p50_ms:6.2f} ms  "
                            f"p99 {sample.p99_ms:6.2f} ms  server CPU "
                            f"{sample.server_cpu_us:5.0f} us/req  ({sample.requests} requests)",
                            flush=True,
                        )
    except BenchError as error:
        print(f"\nFAILED: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130

    print(
        f"\nGET /blogs signed in; gunicorn -w 1 -k sync; wrk -t1 -c{args.connections} "
        f"-d{args.duration}s; {args.rounds} rounds\n"
    )
    print("\n".join(table(results)))
    for name, ratios in per_round_ratios(results).items():
        if name != "bare":
            print(f"{name}/bare by round: " + ", ".join(f"{ratio:.2f}" for ratio in ratios))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "environment": dict(environment),
                    "settings": {key: value for key, value in vars(args).items() if key != "json"},
                    "samples": {
                        name: [dataclasses.asdict(sample) for sample in samples]
                        for name, samples in results.items()
                    },
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
