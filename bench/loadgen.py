"""A small load generator for form logins, which wrk cannot drive (suite.py).

Every login needs its own cookie jar and a CSRF token read from the login page, so each
iteration is ``GET /login`` then ``POST /login`` with a fresh client. Requests go over
``http.client``, one TCP connection per request (gunicorn's sync worker closes the
connection after each response anyway). The latency recorded is that of the POST, from
sending the request to the end of the response body; like wrk, the TCP connect is made
before the clock starts. Threads give the parallel connections; the calling process is
expected to be pinned to the load CPU (the threads inherit its affinity).

Every response is checked: a login that should succeed must redirect to /blogs, a failure
must be the login page with "Incorrect email or password." (a CSRF failure is a 400 too),
a throttled attempt must be the 429 it is supposed to be. Anything else stops the run.
"""

from __future__ import annotations

import dataclasses
import http.client
import random
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.cookies import SimpleCookie

import blogs

BAD_PASSWORD = "not the password, surely"
#: What the pages say, to tell apart responses that share a status code.
INCORRECT = "Incorrect email or password."
LOCKED = "Too many failed attempts."
IP_LIMITED = "Too many attempts. Please wait"


@dataclasses.dataclass
class Reply:
    status: int
    location: str
    body: str
    #: Seconds from sending the request to the end of the response body.
    seconds: float


class Client:
    """A browser with a cookie jar (by name, as ``blogs.Browser``), from one source address.

    Any 127.x.y.z address reaches a server bound to 127.0.0.1; Gatehouse (no trusted
    proxies) keys its per-IP limits on it, so a fresh source address is a fresh client IP.
    """

    def __init__(self, port: int, source_ip: str = blogs.HOST) -> None:
        self.port = port
        self.source_ip = source_ip
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> Reply:
        headers = {"User-Agent": blogs.USER_AGENT, "Connection": "close"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection = http.client.HTTPConnection(
            blogs.HOST, self.port, timeout=blogs.HTTP_TIMEOUT, source_address=(self.source_ip, 0)
        )
        try:
            connection.connect()
            start = time.perf_counter()
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            seconds = time.perf_counter() - start
        finally:
            connection.close()
        self._store(response.headers.get_all("Set-Cookie") or [])
        location = urllib.parse.urlsplit(response.headers.get("Location") or "").path
        return Reply(response.status, location, data.decode(errors="replace"), seconds)

    def _store(self, set_cookies: list[str]) -> None:
        for header in set_cookies:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if blogs._is_deletion(morsel["max-age"], morsel["expires"]):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    def login_form(self) -> str:
        """GET /login; the CSRF token of the form ("" for the tutorial, which has none)."""
        page = self.request("GET", "/login")
        if page.status != 200:
            raise blogs.BenchError(f"GET /login answered {page.status}")
        if "csrf_token" not in page.body:
            return ""
        return blogs.csrf_token(page.body)

    def post_login(self, token: str, email: str, password: str) -> Reply:
        form = {"email": email, "password": password}
        if token:
            form["csrf_token"] = token
        return self.request("POST", "/login", form)


def check(reply: Reply, status: int, what: str, *, text: str = "", location: str = "") -> None:
    if reply.status != status or (text and text not in reply.body) or reply.location != location:
        raise blogs.BenchError(
            f"{what}: expected {status} {location} {text!r}, got {reply.status} "
            f"{reply.location}:\n{reply.body[:400]}"
        )


@dataclasses.dataclass
class Load:
    #: Latency in ms of each measured request.
    latencies: list[float]
    #: Completed iterations (a login: GET + POST) and the wall time they took.
    iterations: int
    seconds: float
    #: At one connection only, when asked: the time (ms) of the argon2id verify made just
    #: before each login, and the CPU time (ms) of the worker's request thread for each POST.
    verify_ms: list[float] = dataclasses.field(default_factory=list)
    cpu_ms: list[float] = dataclasses.field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.iterations / self.seconds if self.seconds else 0.0


def parallel(
    iteration: Callable[[random.Random], float], connections: int, duration: float, seed: int
) -> Load:
    """Run ``iteration`` in ``connections`` threads for ``duration`` seconds.

    Each call does one whole iteration and returns the latency (seconds) to record. The
    first error in any thread stops them all and is raised here.
    """
    stop = threading.Event()
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = time.perf_counter()
    deadline = start + duration
    finished = [start]

    def work(number: int) -> None:
        generator = random.Random(seed * 1000 + number)
        mine: list[float] = []
        try:
            while not stop.is_set() and time.perf_counter() < deadline:
                mine.append(iteration(generator) * 1000)
        except BaseException as error:  # noqa: BLE001 (re-raised in the main thread)
            errors.append(error)
            stop.set()
        with lock:
            latencies.extend(mine)
            finished.append(time.perf_counter())

    threads = [threading.Thread(target=work, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 60)
    if any(thread.is_alive() for thread in threads):
        stop.set()
        raise blogs.BenchError("a load thread did not finish")
    if errors:
        raise errors[0]
    if not latencies:
        raise blogs.BenchError("no iteration completed")
    return Load(latencies, len(latencies), max(finished) - start)


def successful_logins(
    port: int,
    app: str,
    users: range,
    connections: int,
    duration: float,
    seed: int,
    *,
    verify: Callable[[], float] | None = None,
    cpu_ns: Callable[[], int] | None = None,
) -> Load:
    """Fresh browser, GET /login, POST a random user's right password: 302 to /blogs.

    At one connection, ``verify`` (one argon2id verify on the server's CPU, returning ms)
    runs before each login, while the server is idle, so each login has a hash time taken
    moments before it; ``cpu_ns`` (the worker's CPU time) is read around each POST.
    """
    if connections != 1 and (verify or cpu_ns):
        raise ValueError("verify and cpu_ns pair each login with its own figures: 1 connection")
    verify_ms: list[float] = []
    cpu_ms: list[float] = []

    def iteration(generator: random.Random) -> float:
        if verify is not None:
            verify_ms.append(verify())
        client = Client(port)
        token = client.login_form()
        number = generator.choice(users)
        before = cpu_ns() if cpu_ns else 0
        reply = client.post_login(token, f"user{number}@example.com", blogs.PASSWORD)
        if cpu_ns:
            cpu_ms.append((cpu_ns() - before) / 1e6)
        check(reply, 302, f"{app} login of user{number}", location="/blogs")
        return reply.seconds

    load = parallel(iteration, connections, duration, seed)
    # A verify started just before the deadline may have no login after it.
    load.verify_ms, load.cpu_ms = verify_ms[: load.iterations], cpu_ms
    return load


@dataclasses.dataclass
class Failed:
    """Failed logins in pairs (known then unknown email, or the reverse), one per pair each."""

    #: Latency (ms) of each attempt; index i of both lists is the same pair.
    known_ms: list[float] = dataclasses.field(default_factory=list)
    unknown_ms: list[float] = dataclasses.field(default_factory=list)
    #: CPU time (ms) the worker's request thread spent on each attempt.
    known_cpu_ms: list[float] = dataclasses.field(default_factory=list)
    unknown_cpu_ms: list[float] = dataclasses.field(default_factory=list)


def failed_logins(
    port: int, users: range, duration: float, seed: int, cpu_ns: Callable[[], int]
) -> Failed:
    """Wrong passwords for known emails and any password for unknown ones, interleaved
    (known-unknown, unknown-known, ...) on one connection.

    A failed login leaves the browser's session (and so its CSRF token) as it was, so one
    login page serves all the attempts. ``cpu_ns`` reads the worker's CPU time (ns), before
    and after each attempt."""
    generator = random.Random(seed)
    client = Client(port)
    token = client.login_form()
    result = Failed()
    deadline = time.perf_counter() + duration
    pair = 0
    while time.perf_counter() < deadline:
        order = ("known", "unknown") if pair % 2 == 0 else ("unknown", "known")
        for kind in order:
            if kind == "known":
                email = f"user{generator.choice(users)}@example.com"
            else:
                email = f"nobody{seed}x{pair}@example.com"
            before = cpu_ns()
            reply = client.post_login(token, email, BAD_PASSWORD)
            cpu_ms = (cpu_ns() - before) / 1e6
            check(reply, 400, f"failed login ({kind} {email})", text=INCORRECT)
            getattr(result, f"{kind}_ms").append(reply.seconds * 1000)
            getattr(result, f"{kind}_cpu_ms").append(cpu_ms)
        pair += 1
    return result


@dataclasses.dataclass
class Throttled:
    latencies: list[float]
    #: Server CPU seconds over the measured requests.
    cpu_seconds: float

    @property
    def cpu_ms(self) -> float:
        return self.cpu_seconds / len(self.latencies) * 1000


def throttled_logins(
    port: int,
    source_ip: str,
    victim: str,
    duration: float,
    cpu: Callable[[], float],
    lockout_attempts: int = 5,
) -> tuple[Throttled, Throttled]:
    """With Gatehouse's default limits, from a fresh client IP:

    1. ``lockout_attempts`` wrong passwords lock ``victim`` (5 per 5 minutes); further
       attempts answer 429 without hashing: measured for ``duration`` s.
    2. Failed logins for unknown addresses until the per-IP limit (10 failures a minute)
       answers 429 from Flask-Limiter, before the view runs: measured for ``duration`` s.

    ``cpu`` returns the server's CPU seconds so far. Returns (lockout, per-IP) figures.
    """
    client = Client(port, source_ip)
    token = client.login_form()
    for attempt in range(lockout_attempts):
        reply = client.post_login(token, victim, BAD_PASSWORD)
        check(reply, 400, f"wrong password {attempt + 1} for {victim}", text=INCORRECT)

    def measure(email: Callable[[int], str], text: str, what: str) -> Throttled:
        check(client.post_login(token, email(0), BAD_PASSWORD), 429, what, text=text)
        latencies = []
        before = cpu()
        deadline = time.perf_counter() + duration
        while time.perf_counter() < deadline:
            reply = client.post_login(token, email(len(latencies) + 1), BAD_PASSWORD)
            check(reply, 429, what, text=text)
            latencies.append(reply.seconds * 1000)
        return Throttled(latencies, cpu() - before)

    lockout = measure(lambda _n: victim, LOCKED, f"locked account {victim}")
    stranger = f"nobody-{source_ip.replace('.', '-')}"
    for attempt in range(1, 30):
        reply = client.post_login(token, f"{stranger}-{attempt}@example.com", BAD_PASSWORD)
        if reply.status == 429:
            break
        check(reply, 400, f"failed login {attempt} from {source_ip}", text=INCORRECT)
    else:
        raise blogs.BenchError(f"{source_ip}: the per-IP login limit never answered 429")
    per_ip = measure(
        lambda n: f"{stranger}-x{n}@example.com", IP_LIMITED, f"per-IP limit of {source_ip}"
    )
    return lockout, per_ip
