"""The benchmark suite: page views, logins, throttling and memory, on SQLite and PostgreSQL,
at 1,000 and 1,000,000 users, against a bare Flask route and the Flask-Login tutorial.

    .venv/bin/python bench/suite.py [--quick] [--json PATH]

``--quick``: 2 short rounds, 1,000 users only (about 2 minutes). The full run (5 rounds,
1,000 and 1,000,000 users) takes about 15 minutes on two cores. Results and their reading:
docs/performance.md; the parts: bench/README.md.

Every server is gunicorn with one sync worker pinned to CPU 0, bound to 127.0.0.1; all load
(wrk, and this process with its load threads) runs pinned to CPU 1. All servers run at once
and every measurement is taken in rounds that rotate through them, so comparisons are made
within the same run (absolute figures drift by +-30 % on a shared machine):

1. ``/blogs`` signed in (wrk, as bench/blogs.py): bare, tutorial and Gatehouse per database
   and population, plus Gatehouse with Redis rate-limit storage; ratios to the bare route.
2. Logins (GET /login, POST /login, a fresh browser each, users picked at random): POST
   latency and logins/s at 1 connection and saturated, server CPU per login, against the
   median time of one argon2id verify with Gatehouse's parameters, measured in-process on
   CPU 0 in the same rounds.
3. Failed logins, known email (wrong password) against unknown email, interleaved, on a
   second Gatehouse server whose login limits are raised so that they do not interfere.
4. Throttled login attempts: a locked account (429 without hashing) and the per-IP limit
   (Flask-Limiter's 429), each from a fresh client IP (127.0.x.y).
5. Peak memory (VmHWM) of every gunicorn worker after the page views and at the end.

Nothing outside this run is touched: PostgreSQL databases are ``bench_*`` ones created and
dropped here, Redis is db 9 (flushed before and after), SQLite files live in a temporary
folder, and every server is stopped on exit, Ctrl-C and errors included.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.metadata
import json
import os
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import blogs
import loadgen
import population
import psycopg
from argon2 import PasswordHasher

REDIS_URL = "redis://127.0.0.1:6379/9"
#: The highest-numbered users are kept for lockout tests, never for successful logins.
RESERVED_USERS = 200
#: Raised login limits for the known/unknown comparison (JSON, as from_prefixed_env reads).
RAISED_LIMITS = {
    "FLASK_GATEHOUSE_LOCKOUT_LIMITS": '"100000 per minute"',
    "FLASK_GATEHOUSE_LOGIN_IP_LIMIT": '"100000 per minute"',
}
DATABASES = ("sqlite", "postgresql")
PARTS = ("blogs", "login", "failed", "throttle")
DB_LABEL = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
MAX_RUN_SECONDS = 45 * 60


@dataclasses.dataclass(frozen=True)
class Settings:
    rounds: int
    blogs_seconds: int
    warmup_seconds: int
    login_seconds: float
    failed_seconds: float
    throttle_seconds: float
    populations: tuple[int, ...]


FULL = Settings(5, 5, 1, 4.0, 5.0, 2.0, (1_000, 1_000_000))
QUICK = Settings(2, 2, 1, 2.0, 2.0, 1.0, (1_000,))


@dataclasses.dataclass(frozen=True)
class Scenario:
    database: str
    users: int

    @property
    def key(self) -> str:
        return f"{self.database}-{population.short(self.users)}"

    @property
    def label(self) -> str:
        return f"{DB_LABEL[self.database]}, {self.users:,} users"


@dataclasses.dataclass
class Role:
    """One server of the run."""

    kind: str  # bare | tutorial | gatehouse | gatehouse-raised | gatehouse-redis
    app: blogs.App
    scenario: Scenario | None = None
    pg_name: str | None = None
    server: blogs.Server | None = None
    #: Memory snapshots of the worker (see worker_memory), by moment.
    memory: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.app.name

    @property
    def running(self) -> blogs.Server:
        assert self.server is not None
        return self.server


# -- Apps -----------------------------------------------------------------------------------

SIGN_IN_USER = 1


def _gatehouse_sign_in(browser: blogs.Browser) -> None:
    page = browser.request("/login")
    blogs.expect(page, 200, "gatehouse GET /login")
    form = {
        "email": population.email(SIGN_IN_USER),
        "password": blogs.PASSWORD,
        "csrf_token": blogs.csrf_token(page.body),
    }
    blogs.expect(browser.request("/login", form), 302, "gatehouse POST /login", "/blogs")


def _tutorial_sign_in(browser: blogs.Browser) -> None:
    blogs.expect(browser.request("/login"), 200, "tutorial GET /login")
    form = {"email": population.email(SIGN_IN_USER), "password": blogs.PASSWORD}
    blogs.expect(browser.request("/login", form), 302, "tutorial POST /login", "/blogs")


def _env(values: dict[str, str]) -> Callable[[Path], dict[str, str]]:
    return lambda _tmp: dict(values)


def build_roles(
    scenarios: list[Scenario], tmp: Path, secret_key: str, redis: bool, parts: tuple[str, ...]
) -> tuple[list[Role], dict[str, population.Population]]:
    marker = f"Hi {population.username(SIGN_IN_USER)}"
    bare = next(app for app in blogs.APPS if app.name == "bare")
    roles = [Role("bare", bare)]
    databases: dict[str, population.Population] = {}
    for scenario in scenarios:
        for app in ("tutorial", "gatehouse"):
            databases[f"{app} {scenario.key}"] = population.Population(
                app, scenario.database, scenario.users, tmp
            )
        tutorial_db = databases[f"tutorial {scenario.key}"]
        gatehouse_db = databases[f"gatehouse {scenario.key}"]
        gatehouse_env = population.gatehouse_env(gatehouse_db, secret_key)
        roles.append(
            Role(
                "tutorial",
                blogs.App(
                    name=f"tutorial-{scenario.key}",
                    description=f"tutorial, {scenario.label}",
                    module="app:app",
                    chdir=population.TUTORIAL_DIR,
                    marker=marker,
                    prepare=_env({"TUTORIAL_DATABASE_URI": tutorial_db.uri}),
                    sign_in=_tutorial_sign_in,
                ),
                scenario,
                tutorial_db.pg_name,
            )
        )
        variants: list[tuple[str, dict[str, str]]] = [("gatehouse", {})]
        if "failed" in parts:
            variants.append(("gatehouse-raised", RAISED_LIMITS))
        if redis and scenario == scenarios[0]:
            storage = {"FLASK_GATEHOUSE_RATELIMIT_STORAGE_URI": REDIS_URL}
            variants.append(("gatehouse-redis", storage))
        for kind, extra in variants:
            roles.append(
                Role(
                    kind,
                    blogs.App(
                        name=f"{kind}-{scenario.key}",
                        description=f"{kind}, {scenario.label}",
                        module="blog:create_app()",
                        chdir=blogs.BLOG_DIR,
                        marker=marker,
                        prepare=_env({**gatehouse_env, **extra}),
                        sign_in=_gatehouse_sign_in,
                    ),
                    scenario,
                    gatehouse_db.pg_name,
                )
            )
    return roles, databases


@contextlib.contextmanager
def serving(roles: list[Role], tmp: Path) -> Iterator[None]:
    """Start every server at once, wait for each, sign in; always stop them all."""
    try:
        for role in roles:
            role.server = blogs.start_server(role.app, tmp)
        for role in roles:
            blogs.wait_until_up(role.running)
            role.memory["started"] = worker_memory(role)
            if role.kind != "gatehouse-raised":
                try:
                    blogs.sign_in(role.running)
                except blogs.BenchError as error:
                    raise blogs.BenchError(
                        f"{error}\n--- {role.name} log ---\n{role.running.log_tail()}"
                    ) from None
            print(f"  up: {role.name} (port {role.running.port})", flush=True)
        yield
    finally:
        for role in roles:
            if role.server is not None:
                blogs.stop_server(role.server)


# -- CPU and memory --------------------------------------------------------------------------


class Meter:
    """CPU seconds of a server: its gunicorn processes plus, on PostgreSQL, the backends
    serving its database (found in pg_stat_activity; they run on any CPU)."""

    def __init__(self, pg: psycopg.Connection[Any] | None) -> None:
        self.pg = pg

    def snapshot(self, role: Role) -> tuple[float, dict[int, float]]:
        backends: dict[int, float] = {}
        if self.pg is not None and role.pg_name is not None:
            rows = self.pg.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (role.pg_name,)
            ).fetchall()
            backends = {pid: blogs.cpu_seconds(pid) for (pid,) in rows}
        return blogs.cpu_seconds(role.running.process.pid), backends

    @staticmethod
    def delta(
        before: tuple[float, dict[int, float]], after: tuple[float, dict[int, float]]
    ) -> tuple[float, float]:
        """(gunicorn seconds, database backend seconds) between two snapshots."""
        database = sum(seconds - before[1].get(pid, 0.0) for pid, seconds in after[1].items())
        return after[0] - before[0], database

    def total(self, role: Role) -> Callable[[], float]:
        def read() -> float:
            app, backends = self.snapshot(role)
            return app + sum(backends.values())

        return read


def worker_pid(role: Role) -> int:
    """The gunicorn worker: the only child of the master."""
    master = role.running.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    if len(children) != 1:
        raise blogs.BenchError(f"{role.name}: expected one worker, found {children}")
    return int(children[0])


def thread_cpu_ns(pid: int) -> int:
    """CPU time of the main thread of ``pid`` (where a sync worker handles requests), in ns."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def worker_memory(role: Role) -> dict[str, float]:
    """The worker's VmHWM (peak resident), VmRSS, and from smaps_rollup its Pss and private
    memory (what this worker adds beyond pages shared with the master), in MiB."""
    pid = worker_pid(role)
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            fields[key] = int(value.split()[0]) / 1024
    private = 0.0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "Pss":
            fields["Pss"] = int(value.split()[0]) / 1024
        elif key in ("Private_Clean", "Private_Dirty"):
            private += int(value.split()[0]) / 1024
    fields["Private"] = private
    return fields


# -- Measurements ------------------------------------------------------------------------------


def rotated(items: list[Any], number: int) -> list[Any]:
    """The order of round ``number``: rotated by one each round and reversed every other
    round, so that no server is always measured just before or after another."""
    shift = number % len(items) if items else 0
    order = items[shift:] + items[:shift]
    return order[::-1] if number % 2 else order


def say(text: str) -> None:
    print(text, flush=True)


class Verifier:
    """One argon2id verify with Gatehouse's parameters, in this process, on the server's CPU.

    Called from the login thread between two logins (the server is then idle), so every
    login is compared with a hash time taken moments before it, whatever else the machine is
    doing at the time. The thread moves to the server's CPU for the verify and back after.
    """

    def __init__(self) -> None:
        self.hasher = PasswordHasher(**population.ARGON2_PARAMS)
        self.stored = self.hasher.hash(blogs.PASSWORD)

    def __call__(self) -> float:
        affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {int(blogs.SERVER_CPU)})
        try:
            start = time.perf_counter()
            self.hasher.verify(self.stored, blogs.PASSWORD)
            return (time.perf_counter() - start) * 1000
        finally:
            os.sched_setaffinity(0, affinity)


def blogs_phase(
    roles: list[Role], settings: Settings, connections: int, lua: Path, meter: Meter
) -> dict[str, list[dict[str, float]]]:
    loaded = [role for role in roles if role.kind in ("bare", "tutorial", "gatehouse-redis")]
    loaded += [role for role in roles if role.kind == "gatehouse"]
    results: dict[str, list[dict[str, float]]] = {role.name: [] for role in loaded}
    if settings.warmup_seconds:
        for role in loaded:
            blogs.run_wrk(role.running, settings.warmup_seconds, lua, connections)
    for number in range(settings.rounds):
        for role in rotated(loaded, number):
            before = meter.snapshot(role)
            sample = blogs.run_wrk(role.running, settings.blogs_seconds, lua, connections)
            _app, database = Meter.delta(before, meter.snapshot(role))
            row = dataclasses.asdict(sample)
            row["db_cpu_us"] = database / sample.requests * 1e6
            row["cpu_us"] = row["server_cpu_us"] + row["db_cpu_us"]
            results[role.name].append(row)
            say(
                f"/blogs round {number + 1} {role.name:<24} {sample.rps:7.0f} req/s  "
                f"p50 {sample.p50_ms:6.2f} ms  p99 {sample.p99_ms:6.2f} ms  CPU "
                f"{sample.server_cpu_us:5.0f}+{row['db_cpu_us']:.0f} us/req"
            )
    return results


def _successful_users(scenario: Scenario) -> range:
    return range(SIGN_IN_USER + 1, scenario.users - RESERVED_USERS + 1)


def login_phase(
    roles: list[Role], settings: Settings, connections: int, meter: Meter
) -> dict[str, list[dict[str, Any]]]:
    """Per server: at 1 connection, each login paired with a verify just before it and its
    POST's worker CPU; then at ``connections`` (saturated) for logins/s."""
    verifier = Verifier()
    results: dict[str, list[dict[str, Any]]] = {}
    loaded = [role for role in roles if role.kind in ("gatehouse", "tutorial")]
    for number in range(settings.rounds):
        for role in rotated(loaded, number):
            assert role.scenario is not None
            for level in (1, connections):
                before = meter.snapshot(role)
                worker = worker_pid(role)
                load = loadgen.successful_logins(
                    role.running.port,
                    role.kind,
                    _successful_users(role.scenario),
                    level,
                    settings.login_seconds,
                    seed=number * 100 + level,
                    verify=verifier if level == 1 and role.kind == "gatehouse" else None,
                    cpu_ns=(lambda pid=worker: thread_cpu_ns(pid)) if level == 1 else None,
                )
                app, database = Meter.delta(before, meter.snapshot(role))
                row: dict[str, Any] = {
                    "connections": level,
                    "logins": load.iterations,
                    "seconds": load.seconds,
                    "logins_per_s": load.per_second,
                    "p50_ms": percentile(load.latencies, 50),
                    "p99_ms": percentile(load.latencies, 99),
                    "cpu_ms_per_login": (app + database) / load.iterations * 1000,
                    "db_cpu_ms_per_login": database / load.iterations * 1000,
                    "latencies_ms": load.latencies,
                    "verify_ms": load.verify_ms,
                    "post_cpu_ms": load.cpu_ms,
                }
                text = ""
                if load.verify_ms:
                    pairs = zip(load.latencies, load.verify_ms, strict=True)
                    row["verify_p50_ms"] = statistics.median(load.verify_ms)
                    row["over_verify_p50_ms"] = statistics.median(a - b for a, b in pairs)
                    text += (
                        f"  verify {row['verify_p50_ms']:5.1f} ms, POST - verify "
                        f"{row['over_verify_p50_ms']:4.1f} ms"
                    )
                if load.cpu_ms:
                    row["post_cpu_p50_ms"] = statistics.median(load.cpu_ms)
                if load.cpu_ms and load.verify_ms:
                    pairs = zip(load.cpu_ms, load.verify_ms, strict=True)
                    row["cpu_over_verify_p50_ms"] = statistics.median(a - b for a, b in pairs)
                    text += f"  POST CPU {row['post_cpu_p50_ms']:5.1f} ms"
                results.setdefault(f"{role.name} c{level}", []).append(row)
                say(
                    f"login round {number + 1} {role.name:<22} c={level} "
                    f"{row['logins_per_s']:5.1f} logins/s  POST p50 {row['p50_ms']:6.1f} ms  "
                    f"p99 {row['p99_ms']:6.1f} ms{text}"
                )
    return results


def failed_phase(roles: list[Role], settings: Settings) -> dict[str, list[dict[str, Any]]]:
    loaded = [role for role in roles if role.kind == "gatehouse-raised"]
    results: dict[str, list[dict[str, Any]]] = {role.name: [] for role in loaded}
    for number in range(settings.rounds):
        for role in rotated(loaded, number):
            assert role.scenario is not None
            worker = worker_pid(role)
            attempts = loadgen.failed_logins(
                role.running.port,
                range(SIGN_IN_USER + 1, role.scenario.users + 1),
                settings.failed_seconds,
                seed=number,
                cpu_ns=lambda pid=worker: thread_cpu_ns(pid),
            )
            known, unknown = attempts.known_ms, attempts.unknown_ms
            row: dict[str, Any] = dataclasses.asdict(attempts)
            row["known_p50_ms"] = statistics.median(known)
            row["unknown_p50_ms"] = statistics.median(unknown)
            row["difference_pct"] = (row["unknown_p50_ms"] / row["known_p50_ms"] - 1) * 100
            row["known_cpu_p50_ms"] = statistics.median(attempts.known_cpu_ms)
            row["unknown_cpu_p50_ms"] = statistics.median(attempts.unknown_cpu_ms)
            results[role.name].append(row)
            say(
                f"failed round {number + 1} {role.name:<28} known {row['known_p50_ms']:5.1f} ms"
                f"  unknown {row['unknown_p50_ms']:5.1f} ms  ({row['difference_pct']:+.1f} %, "
                f"{len(known)}+{len(unknown)} attempts); worker CPU known "
                f"{row['known_cpu_p50_ms']:.1f} ms, unknown {row['unknown_cpu_p50_ms']:.1f} ms"
            )
    return results


def throttle_phase(
    roles: list[Role], settings: Settings, meter: Meter
) -> dict[str, list[dict[str, Any]]]:
    loaded = [role for role in roles if role.kind in ("gatehouse", "gatehouse-redis")]
    results: dict[str, list[dict[str, Any]]] = {role.name: [] for role in loaded}
    used = 0
    for number in range(settings.rounds):
        for role in rotated(loaded, number):
            assert role.scenario is not None
            used += 1
            if used > RESERVED_USERS:
                raise blogs.BenchError("more lockout tests than reserved users")
            # A fresh client IP (any 127.x.y.z reaches 127.0.0.1) and a fresh account.
            source_ip = f"127.0.{1 + used // 250}.{1 + used % 250}"
            victim = population.email(role.scenario.users - used + 1)
            lockout, per_ip = loadgen.throttled_logins(
                role.running.port, source_ip, victim, settings.throttle_seconds, meter.total(role)
            )
            row: dict[str, Any] = {}
            for label, figures in (("lockout", lockout), ("per_ip", per_ip)):
                row[f"{label}_p50_ms"] = percentile(figures.latencies, 50)
                row[f"{label}_p99_ms"] = percentile(figures.latencies, 99)
                row[f"{label}_cpu_ms"] = figures.cpu_ms
                row[f"{label}_ms"] = figures.latencies
            results[role.name].append(row)
            say(
                f"throttled round {number + 1} {role.name:<22} locked account p50 "
                f"{row['lockout_p50_ms']:5.2f} ms (CPU {row['lockout_cpu_ms']:.2f} ms), per-IP "
                f"p50 {row['per_ip_p50_ms']:5.2f} ms (CPU {row['per_ip_cpu_ms']:.2f} ms)"
            )
    return results


# -- Statistics and report --------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


def med(values: list[float]) -> float:
    return statistics.median(values)


def cell(values: list[float], digits: int = 1, unit: str = "") -> str:
    """Median (min-max)."""
    if not values:
        return "-"
    low, high = min(values), max(values)
    return f"{med(values):.{digits}f}{unit} ({low:.{digits}f} to {high:.{digits}f})"


def slowdowns(
    small: Scenario, large: Scenario, group: dict[str, list[dict[str, Any]]], name: str, key: str
) -> list[float]:
    """Per round: ``key`` of server ``name`` (a format string) at the large population over
    the small one, minus 1 (0.1: 10 % slower)."""
    pairs = zip(group[name.format(large.key)], group[name.format(small.key)], strict=True)
    return [big[key] / little[key] - 1 for big, little in pairs]


@dataclasses.dataclass
class Target:
    name: str
    measured: str
    met: bool
    margin: str


def _flat(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [value for row in rows for value in row[key]]


def blogs_section(
    results: dict[str, list[dict[str, float]]], scenarios: list[Scenario]
) -> tuple[list[str], list[Target]]:
    bare = [row["rps"] for row in results["bare"]]

    def ratios(name: str) -> list[float]:
        return [row["rps"] / base for row, base in zip(results[name], bare, strict=True)]

    rows = []
    for name, samples in results.items():
        rows.append(
            [
                name,
                cell([row["rps"] for row in samples], 0),
                cell([row["p50_ms"] for row in samples], 2),
                cell([row["p99_ms"] for row in samples], 2),
                cell(ratios(name), 2),
                cell([row["cpu_us"] for row in samples], 0),
                f"{med([row['db_cpu_us'] for row in samples]):.0f}",
            ]
        )
    lines = ["", "### GET /blogs, signed in", ""]
    lines += blogs.markdown(
        ["server", "req/s", "p50 ms", "p99 ms", "x bare", "CPU us/req", "of which DB"], rows
    )
    lines.append(
        "\nMedian (min to max) over the rounds. x bare: req/s over the bare route's in the same "
        "round. CPU: gunicorn, plus the PostgreSQL backend, per request."
    )
    gatehouse = [(med(ratios(f"gatehouse-{s.key}")), s.label) for s in scenarios]
    worst = min(gatehouse)
    target = Target(
        "/blogs >= 0.5x bare",
        "; ".join(f"{label} {value:.2f}x" for value, label in gatehouse),
        worst[0] >= 0.5,
        f"lowest {worst[0]:.2f}x ({worst[1]}): {(worst[0] / 0.5 - 1) * 100:+.0f} % against 0.5x",
    )
    return lines, [target]


def login_section(
    servers: dict[str, list[dict[str, Any]]], scenarios: list[Scenario], connections: int
) -> tuple[list[str], list[Target]]:
    def column(name: str, key: str, digits: int = 1) -> str:
        samples = servers.get(name, [])
        return cell([row[key] for row in samples if key in row], digits)

    latency, throughput = [], []
    verify_all: list[float] = []
    for s in scenarios:
        verify_all += _flat(servers[f"gatehouse-{s.key} c1"], "verify_ms")
        for app in ("gatehouse", "tutorial"):
            name = f"{app}-{s.key}"
            latency.append(
                [
                    name,
                    column(f"{name} c1", "p50_ms"),
                    column(f"{name} c1", "p99_ms"),
                    column(f"{name} c1", "verify_p50_ms"),
                    column(f"{name} c1", "over_verify_p50_ms"),
                    column(f"{name} c1", "post_cpu_p50_ms"),
                    column(f"{name} c1", "cpu_over_verify_p50_ms"),
                ]
            )
            verify = med(_flat(servers[f"gatehouse-{s.key} c1"], "verify_ms"))
            rates = [row["logins_per_s"] for row in servers[f"{name} c{connections}"]]
            throughput.append(
                [
                    name,
                    cell(rates, 1),
                    column(f"{name} c{connections}", "p50_ms"),
                    column(f"{name} c{connections}", "p99_ms"),
                    column(f"{name} c{connections}", "cpu_ms_per_login"),
                    f"{med(rates) * verify / 1000:.2f}",
                ]
            )
    lines = ["", "### Logins: latency, one connection", ""]
    lines.append(
        "Each iteration: a fresh browser, GET /login, POST /login with a random user's right "
        "password (302 to /blogs). Before each Gatehouse login, this process verifies one "
        f"argon2id hash (t=2, m=19 MiB, p=1) on CPU {blogs.SERVER_CPU} while the server is idle;"
        f" over the run: {cell(verify_all, 1, ' ms')}, {len(verify_all)} verifies.\n"
    )
    lines += blogs.markdown(
        [
            "server",
            "POST p50 ms",
            "POST p99 ms",
            "verify p50 ms",
            "POST - verify ms",
            "POST CPU ms",
            "POST CPU - verify ms",
        ],
        latency,
    )
    lines.append(
        "\nMedian (min to max) over the rounds of each round's figure. POST - verify: median "
        "over the logins of (POST latency - the verify just before it). POST CPU: CPU time of "
        "the worker's request thread per POST (/proc/PID/schedstat; PostgreSQL's own work is "
        "in its backend, not here); POST CPU - verify: the same per login, minus the verify "
        "just before it."
    )
    lines += ["", f"### Logins: throughput, {connections} connections (saturated)", ""]
    lines += blogs.markdown(
        ["server", "logins/s", "POST p50 ms", "POST p99 ms", "CPU ms/login", "x hash ceiling"],
        throughput,
    )
    lines.append(
        "\nOne sync worker serves one request at a time, so at 4 connections the POST latency "
        "is mostly waiting in the queue. CPU: gunicorn, plus the PostgreSQL backend, per login "
        "(GET and POST). x hash ceiling: logins/s times the median verify, i.e. the share of "
        "what hashing alone would allow on one core."
    )
    extra = [
        (med([row["over_verify_p50_ms"] for row in servers[f"gatehouse-{s.key} c1"]]), s.label)
        for s in scenarios
    ]
    worst = max(extra)
    target = Target(
        "login within 10 ms of one verify",
        f"verify {med(verify_all):.1f} ms; POST - verify: "
        + "; ".join(f"{label} {value:+.1f} ms" for value, label in extra),
        worst[0] <= 10,
        f"worst {worst[0]:.1f} ms ({worst[1]}): {worst[0] - 10:+.1f} ms against 10 ms",
    )
    return lines, [target]


def failed_section(
    results: dict[str, list[dict[str, Any]]], scenarios: list[Scenario]
) -> tuple[list[str], list[Target]]:
    rows = []
    diffs = []
    for s in scenarios:
        samples = results[f"gatehouse-raised-{s.key}"]
        known, unknown = _flat(samples, "known_ms"), _flat(samples, "unknown_ms")
        pooled = (med(unknown) / med(known) - 1) * 100
        paired = med([u - k for k, u in zip(known, unknown, strict=True)]) / med(known) * 100
        known_cpu, unknown_cpu = _flat(samples, "known_cpu_ms"), _flat(samples, "unknown_cpu_ms")
        cpu = (med(unknown_cpu) / med(known_cpu) - 1) * 100
        diffs.append((abs(pooled), pooled, s.label))
        rows.append(
            [
                s.label,
                f"{med(known):.2f}",
                f"{med(unknown):.2f}",
                f"{pooled:+.1f} %",
                cell([row["difference_pct"] for row in samples], 1),
                f"{paired:+.1f} %",
                f"{med(known_cpu):.2f} / {med(unknown_cpu):.2f} ({cpu:+.1f} %)",
                f"{len(known)} + {len(unknown)}",
            ]
        )
    lines = ["", "### Failed logins: known email (wrong password) against unknown email", ""]
    lines += blogs.markdown(
        [
            "scenario",
            "known p50 ms",
            "unknown p50 ms",
            "difference",
            "by round %",
            "paired",
            "worker CPU ms known / unknown",
            "attempts",
        ],
        rows,
    )
    lines.append(
        "\nKnown and unknown addresses alternate on one connection. Difference: (unknown - "
        "known) / known of the medians of all attempts; by round: the same per round; paired: "
        "median of (unknown - known) over adjacent pairs, over the known median; worker CPU: "
        "CPU time of the worker's request thread per attempt (/proc/PID/schedstat), medians. "
        "On this server only, GATEHOUSE_LOCKOUT_LIMITS and GATEHOUSE_LOGIN_IP_LIMIT are raised "
        "to 100000 per minute, or the 11th failure within a minute would be refused."
    )
    worst = max(diffs)
    target = Target(
        "unknown vs known email within 5 %",
        "; ".join(f"{label} {value:+.1f} %" for _abs, value, label in diffs),
        worst[0] <= 5,
        f"worst {worst[1]:+.1f} % ({worst[2]})",
    )
    return lines, [target]


def throttle_section(results: dict[str, list[dict[str, Any]]]) -> tuple[list[str], list[Target]]:
    rows = []
    worst = (0.0, "")
    for name, samples in results.items():
        for label, what in (("lockout", "locked account"), ("per_ip", "per-IP limit")):
            p50 = [row[f"{label}_p50_ms"] for row in samples]
            worst = max(worst, (med(p50), f"{name}, {what}"))
            rows.append(
                [
                    f"{name}, {what}",
                    cell(p50, 2),
                    cell([row[f"{label}_p99_ms"] for row in samples], 2),
                    cell([row[f"{label}_cpu_ms"] for row in samples], 2),
                    str(sum(len(row[f"{label}_ms"]) for row in samples)),
                ]
            )
    lines = ["", "### Throttled login attempts (429)", ""]
    lines += blogs.markdown(["server, limit", "p50 ms", "p99 ms", "CPU ms/req", "requests"], rows)
    lines.append(
        "\nMedian (min to max) over the rounds; each round from a fresh client IP, a fresh "
        "account locked by 5 wrong passwords. CPU: gunicorn, plus the PostgreSQL backend."
    )
    target = Target(
        "throttled request < 2 ms",
        f"highest p50 {worst[0]:.2f} ms ({worst[1]})",
        worst[0] < 2,
        f"{worst[0] - 2:+.2f} ms against 2 ms",
    )
    return lines, [target]


def population_section(
    data: dict[str, Any], scenarios: list[Scenario]
) -> tuple[list[str], list[Target]]:
    rows = []
    worst = (-100.0, "")
    small_users = min(s.users for s in scenarios)
    large_users = max(s.users for s in scenarios)
    for database in [db for db in DATABASES if any(s.database == db for s in scenarios)]:
        small, large = Scenario(database, small_users), Scenario(database, large_users)
        metrics: list[tuple[str, list[float]]] = []
        if "blogs" in data:
            for app in ("gatehouse", "tutorial"):
                rps = slowdowns(small, large, data["blogs"], f"{app}-{{}}", "rps")
                # Fewer requests per second is the slowdown: 1 - large/small.
                metrics.append((f"{app} /blogs req/s", [-value for value in rps]))
                cpu = slowdowns(small, large, data["blogs"], f"{app}-{{}}", "cpu_us")
                metrics.append((f"{app} /blogs CPU per request", cpu))
        if "login" in data:
            servers = data["login"]
            metrics.append(
                ("login POST p50", slowdowns(small, large, servers, "gatehouse-{} c1", "p50_ms"))
            )
            metrics.append(
                (
                    "login POST CPU",
                    slowdowns(small, large, servers, "gatehouse-{} c1", "post_cpu_p50_ms"),
                )
            )
        if "failed" in data:
            for kind in ("known", "unknown"):
                metrics.append(
                    (
                        f"failed login p50, {kind} email",
                        slowdowns(
                            small, large, data["failed"], "gatehouse-raised-{}", f"{kind}_p50_ms"
                        ),
                    )
                )
        if "throttle" in data:
            metrics.append(
                (
                    "locked-account 429 p50",
                    slowdowns(small, large, data["throttle"], "gatehouse-{}", "lockout_p50_ms"),
                )
            )
        for label, values in metrics:
            value = med(values) * 100
            if not label.startswith("tutorial"):
                worst = max(worst, (value, f"{DB_LABEL[database]}, {label}"))
            rows.append(
                [
                    f"{DB_LABEL[database]}: {label}",
                    f"{value:+.1f} %",
                    f"{min(values) * 100:+.1f} to {max(values) * 100:+.1f} %",
                ]
            )
    lines = ["", f"### {small_users:,} against {large_users:,} users", ""]
    lines += blogs.markdown(["measure", "slowdown, median", "by round"], rows)
    lines.append(
        f"\nHow much slower {large_users:,} users were than {small_users:,}, measured in the "
        "same round (negative: faster)."
    )
    target = Target(
        f"{small_users:,} -> {large_users:,} users: <= 10 % slower",
        f"largest {worst[0]:+.1f} % ({worst[1]})",
        worst[0] <= 10,
        f"{worst[0] - 10:+.1f} points against 10 %",
    )
    return lines, [target]


def memory_section(
    memory: dict[str, dict[str, dict[str, float]]],
) -> tuple[list[str], list[Target]]:
    rows = []
    peak = (0.0, "")
    for name, snapshots in memory.items():
        end = snapshots.get("end", {})
        if name.startswith("gatehouse") and end:
            peak = max(peak, (end["VmHWM"], name))

        def value(when: str, key: str, figures: dict[str, dict[str, float]] = snapshots) -> str:
            return f"{figures[when][key]:.1f}" if key in figures.get(when, {}) else "-"

        rows.append(
            [
                name,
                value("started", "VmRSS"),
                value("after_blogs", "VmHWM"),
                value("end", "VmHWM"),
                value("end", "VmRSS"),
                value("end", "Pss"),
                value("end", "Private"),
            ]
        )
    lines = ["", "### Memory per worker (MiB)", ""]
    lines += blogs.markdown(
        [
            "server",
            "RSS started",
            "peak after /blogs",
            "peak at end",
            "RSS at end",
            "PSS at end",
            "private at end",
        ],
        rows,
    )
    lines.append(
        "\nRSS started: after start-up and one anonymous GET /blogs, before any sign-in. "
        "Peak: VmHWM, after the /blogs rounds and at the end of the run. PSS and private "
        "(from /proc/PID/smaps_rollup) leave out, or share out, the pages the worker shares "
        "with the gunicorn master."
    )
    target = Target(
        "worker memory < 64 MiB",
        f"highest Gatehouse peak (VmHWM) {peak[0]:.1f} MiB ({peak[1]})",
        peak[0] < 64,
        f"{peak[0] - 64:+.1f} MiB against 64 MiB",
    )
    return lines, [target]


def report(data: dict[str, Any], scenarios: list[Scenario], connections: int) -> list[str]:
    """The Markdown report: targets first, then a section per measurement."""
    sections: list[tuple[list[str], list[Target]]] = []
    if "blogs" in data:
        sections.append(blogs_section(data["blogs"], scenarios))
    if "login" in data:
        sections.append(login_section(data["login"], scenarios, connections))
    if "failed" in data:
        sections.append(failed_section(data["failed"], scenarios))
    if "throttle" in data:
        sections.append(throttle_section(data["throttle"]))
    if len({s.users for s in scenarios}) > 1 and len(data.keys() & set(PARTS)):
        sections.append(population_section(data, scenarios))
    if data.get("memory"):
        sections.append(memory_section(data["memory"]))
    targets = [target for _lines, found in sections for target in found]
    data["targets"] = [dataclasses.asdict(target) for target in targets]
    lines = ["", "### Targets", ""]
    lines += blogs.markdown(
        ["target", "measured", "result", "margin"],
        [[t.name, t.measured, "met" if t.met else "MISSED", t.margin] for t in targets],
    )
    for section, _found in sections:
        lines += section
    return lines


# -- Main ---------------------------------------------------------------------------------------


def environment() -> list[tuple[str, str]]:
    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    extra = [
        ("SQLite", sqlite3.sqlite_version),
        ("argon2-cffi", version("argon2-cffi")),
        ("Flask-Limiter / limits", f"{version('flask-limiter')} / {version('limits')}"),
        ("psycopg", version("psycopg")),
        ("redis-py", version("redis")),
    ]
    with contextlib.suppress(psycopg.Error), psycopg.connect(population.PG_ADMIN) as connection:
        row = connection.execute("SHOW server_version").fetchone()
        extra.append(("PostgreSQL", str(row[0]) if row else "?"))
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "log", "-1", "--format=%h"],
            cwd=blogs.ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        extra.append(("last commit", commit.stdout.strip() or "?"))
    extra.append(("started (UTC)", time.strftime("%Y-%m-%d %H:%M", time.gmtime())))
    extra.append(("load average at start", " ".join(f"{v:.2f}" for v in os.getloadavg())))
    return blogs.versions() + extra


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 short rounds, 1,000 users only")
    parser.add_argument("--rounds", type=blogs.bounded(1, blogs.MAX_ROUNDS))
    parser.add_argument(
        "--populations",
        type=lambda text: tuple(int(part) for part in text.split(",")),
        help="comma-separated user counts (default 1000,1000000; --quick 1000)",
    )
    parser.add_argument(
        "--databases",
        default=",".join(DATABASES),
        type=lambda text: tuple(text.split(",")),
        help="comma-separated, of sqlite,postgresql (default both)",
    )
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        type=lambda text: tuple(text.split(",")),
        help=f"comma-separated, of {','.join(PARTS)} (default all; memory is always read)",
    )
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis-storage server")
    parser.add_argument(
        "--connections", type=blogs.bounded(1, 64), default=4, help="wrk connections (default 4)"
    )
    parser.add_argument(
        "--login-connections",
        type=blogs.bounded(2, 64),
        default=4,
        help="parallel logins for the saturated login measurement (default 4)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write all samples")
    parser.add_argument(
        "--report", type=Path, metavar="PATH", help="print the report of a --json file; no run"
    )
    args = parser.parse_args(argv)
    if not set(args.databases) <= set(DATABASES) or not set(args.parts) <= set(PARTS):
        parser.error("unknown database or part")
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    if args.report:
        data = json.loads(args.report.read_text())
        scenarios = [Scenario(database, users) for database, users in data["scenarios"]]
        say("\n".join(report(data, scenarios, data["login_connections"])))
        return 0
    settings = QUICK if args.quick else FULL
    if args.rounds:
        settings = dataclasses.replace(settings, rounds=args.rounds)
    if args.populations:
        settings = dataclasses.replace(settings, populations=args.populations)
    scenarios = [Scenario(db, users) for db in args.databases for users in settings.populations]
    redis = not args.no_redis and ("blogs" in args.parts or "throttle" in args.parts)
    signal.signal(signal.SIGTERM, blogs._terminate)
    signal.signal(signal.SIGALRM, blogs._terminate)
    signal.alarm(MAX_RUN_SECONDS)  # a bound on the whole run, servers stopped on the way out
    # This process is the load generator: on the load CPU, as wrk.
    os.sched_setaffinity(0, {int(blogs.LOAD_CPU)})
    env = environment()
    for key, value in env:
        say(f"{key}: {value}")
    data: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "environment": dict(env),
        "settings": dataclasses.asdict(settings),
        "scenarios": [[s.database, s.users] for s in scenarios],
        "login_connections": args.login_connections,
    }
    started = time.monotonic()
    secret_key = f"bench-{secrets.token_hex(32)}"
    pg_names: list[str] = []
    pg: psycopg.Connection[Any] | None = None
    redis_client = None
    try:
        with tempfile.TemporaryDirectory(prefix="gatehouse-suite-") as name:
            tmp = Path(name)
            lua = tmp / "status.lua"
            lua.write_text(blogs.WRK_LUA)
            if redis:
                import redis as redis_py

                redis_client = redis_py.Redis.from_url(REDIS_URL)
                redis_client.flushdb()
            roles, databases = build_roles(scenarios, tmp, secret_key, redis, args.parts)
            hashes = {"gatehouse": population.argon2_hash(), "tutorial": population.werkzeug_hash()}
            data["build_seconds"] = {}
            for label, database in databases.items():
                if database.pg_name is not None:
                    pg_names.append(database.pg_name)
                seconds = population.build(database, hashes[database.app], secret_key)
                data["build_seconds"][label] = seconds
                say(f"built {label}: {database.users:,} users in {seconds:.1f} s ({database.uri})")
            if "postgresql" in args.databases:
                pg = psycopg.connect(population.PG_ADMIN, autocommit=True)
            meter = Meter(pg)
            say(f"starting {len(roles)} servers")
            with serving(roles, tmp):
                if "blogs" in args.parts:
                    data["blogs"] = blogs_phase(roles, settings, args.connections, lua, meter)
                    for role in roles:
                        role.memory["after_blogs"] = worker_memory(role)
                if "login" in args.parts:
                    data["login"] = login_phase(roles, settings, args.login_connections, meter)
                if "failed" in args.parts:
                    data["failed"] = failed_phase(roles, settings)
                if "throttle" in args.parts:
                    data["throttle"] = throttle_phase(roles, settings, meter)
                for role in roles:
                    role.memory["end"] = worker_memory(role)
                data["memory"] = {role.name: role.memory for role in roles}
    except blogs.BenchError as error:
        print(f"\nFAILED: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        if pg is not None:
            pg.close()
        for pg_name in pg_names:
            with contextlib.suppress(psycopg.Error):
                population.drop_postgres(pg_name)
        if redis_client is not None:
            with contextlib.suppress(Exception):
                redis_client.flushdb()
    data["runtime_seconds"] = time.monotonic() - started
    if args.json:  # before the report, so a report error cannot lose the samples
        args.json.write_text(json.dumps(data, indent=1) + "\n")
    lines = report(data, scenarios, args.login_connections)
    say("\n" + "\n".join(lines))
    say(f"\nruntime {data['runtime_seconds'] / 60:.1f} min ({data['command']})")
    if args.json:  # now with the targets
        args.json.write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
