"""Before and after: Gatehouse at a git ref against the working tree, side by side in one run.

    .venv/bin/python bench/compare.py --baseline e531ad3 [--rounds 5] [--duration 5]

The baseline is checked out with ``git worktree add --detach`` in a temporary folder
(removed on every exit). Each tree gets its own SQLite database (its own migrations, then
``--users`` users as population.py inserts them) and its own gunicorn server of the demo
blog, with ``PYTHONPATH=<tree>/src`` so that the tree's ``flask_gatehouse`` comes before the
editable install (checked). With the bare route as the ceiling, every round measures, in
rotating order: (1) a signed-in ``GET /blogs`` with wrk, as blogs.py; (2) logins as
suite.py's login part (loadgen.successful_logins) at 1 connection (POST latency, worker CPU)
and at 4 connections (logins/s). Mail goes to Flask-Mailman's dummy backend after being
queued as each tree does it (the working tree: an outbox row and its worker thread).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blogs
import loadgen
import population
import suite

CONNECTIONS = 4
#: POST /login and its outbox worker: at most this long for the after tree's mail to go out.
SETTLE_TIMEOUT = 30.0
PROBE = (
    "import importlib.util, flask_gatehouse; print(flask_gatehouse.__file__); "
    "print(importlib.util.find_spec('flask_gatehouse.flows') is not None)"
)

# (label, key, digits, higher is better)
BLOGS_METRICS = [
    ("req/s", "rps", 0, True),
    ("p50 ms", "p50_ms", 2, False),
    ("p99 ms", "p99_ms", 2, False),
    ("server CPU us/req", "server_cpu_us", 0, False),
    ("req/s x bare (per round)", "x_bare", 3, True),
]
LOGIN_METRICS = [
    ("c1 POST p50 ms", "c1_p50_ms", 1, False),
    ("c1 POST p99 ms", "c1_p99_ms", 1, False),
    ("c1 worker thread CPU ms/POST", "c1_post_cpu_ms", 2, False),
    ("c1 server CPU ms/login", "c1_cpu_ms", 2, False),
    (f"c{CONNECTIONS} logins/s", f"c{CONNECTIONS}_logins_per_s", 1, True),
    (f"c{CONNECTIONS} POST p50 ms", f"c{CONNECTIONS}_p50_ms", 1, False),
    (f"c{CONNECTIONS} server CPU ms/login", f"c{CONNECTIONS}_cpu_ms", 2, False),
]


def git(*args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(blogs.ROOT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise blogs.BenchError(f"git {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout.strip()


@contextlib.contextmanager
def worktree(ref: str, path: Path) -> Iterator[Path]:
    """A detached checkout of ``ref`` at ``path``, removed on every exit."""
    try:
        git("worktree", "add", "--detach", str(path), ref)
        yield path
    finally:
        with contextlib.suppress(blogs.BenchError, subprocess.TimeoutExpired):
            git("worktree", "remove", "--force", str(path))
        with contextlib.suppress(blogs.BenchError, subprocess.TimeoutExpired):
            git("worktree", "prune")


def prepare_tree(
    name: str, root: Path, tmp: Path, users: int, password_hash: str, storage: str | None
) -> tuple[blogs.App, Path]:
    """Database (the tree's migrations, then the users) and the App serving the tree, with
    its default counter storage unless ``storage`` names one for both trees."""
    folder = tmp / name
    folder.mkdir()
    database = population.Population("gatehouse", "sqlite", users, folder)
    blog_dir = root / "examples" / "blog"
    env = {
        **population.gatehouse_env(database, f"bench-{secrets.token_hex(32)}"),
        "PYTHONPATH": str(root / "src"),
        **({"FLASK_GATEHOUSE_RATELIMIT_STORAGE_URI": storage} if storage else {}),
    }
    flask = [sys.executable, "-m", "flask", "--app", "blog", "db", "upgrade"]
    population._run(flask, blog_dir, env, f"{name}: flask db upgrade")
    population._fill_sqlite(database, password_hash)
    if population.count_users(database) != users:
        raise blogs.BenchError(f"{name}: wrong number of users")
    # The environment the server gets (same env, cwd and interpreter): whose package?
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=blog_dir,
        env=blogs.clean_env(env),
        capture_output=True,
        text=True,
        timeout=blogs.SETUP_TIMEOUT,
        check=False,
    )
    lines = probe.stdout.split()
    expected = (root / "src" / "flask_gatehouse" / "__init__.py").resolve()
    if probe.returncode != 0 or not lines or Path(lines[0]).resolve() != expected:
        raise blogs.BenchError(f"{name}: flask_gatehouse is not {expected}:\n{probe.stderr}")
    print(f"{name}: {lines[0]} (flows layer: {lines[1]}), {users} users", flush=True)
    app = blogs.App(
        name=name,
        description=f"demo blog of {root}",
        module="blog:create_app()",
        chdir=blog_dir,
        marker=f"Hi {population.username(suite.SIGN_IN_USER)}",
        prepare=suite._env(env),
        sign_in=suite._gatehouse_sign_in,
    )
    return app, database.sqlite_path


def outbox(path: Path) -> dict[str, int]:
    """Rows of gatehouse_outbox by status ({} when the tree has no outbox)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if ("gatehouse_outbox",) not in tables.fetchall():
            return {}
        rows = connection.execute("SELECT status, count(*) FROM gatehouse_outbox GROUP BY 1")
        return dict(rows.fetchall())
    finally:
        connection.close()


def settle(name: str, database: Path) -> None:
    """Wait until the mail of the logins is sent (the outbox worker's CPU is then counted)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while outbox(database).get("pending", 0):
        if time.monotonic() > deadline:
            raise blogs.BenchError(f"{name}: outbox still pending after {SETTLE_TIMEOUT} s")
        time.sleep(0.05)
    time.sleep(0.2)  # the before tree's in-memory mail queue: no way to look, little to do


def logins(
    role: suite.Role, database: Path, users: range, connections: int, seconds: float, seed: int
) -> dict[str, float]:
    """One login load; CPU of the server's processes (all threads) until its mail is out."""
    server = role.running
    worker = suite.worker_pid(role)
    cpu_before = blogs.cpu_seconds(server.process.pid)
    load = loadgen.successful_logins(
        server.port,
        role.name,
        users,
        connections,
        seconds,
        seed,
        cpu_ns=(lambda: suite.thread_cpu_ns(worker)) if connections == 1 else None,
    )
    settle(role.name, database)
    cpu = blogs.cpu_seconds(server.process.pid) - cpu_before
    prefix = f"c{connections}_"
    row = {
        "logins_per_s": load.per_second,
        "logins": load.iterations,
        "p50_ms": suite.percentile(load.latencies, 50),
        "p99_ms": suite.percentile(load.latencies, 99),
        "cpu_ms": cpu / load.iterations * 1000,
    }
    if load.cpu_ms:
        row["post_cpu_ms"] = statistics.median(load.cpu_ms)
    return {prefix + key: value for key, value in row.items()}


def measure(
    roles: list[suite.Role], databases: dict[str, Path], args: argparse.Namespace, lua: Path
) -> dict[str, dict[str, list[dict[str, float]]]]:
    bare, trees = roles[0], roles[1:]
    users = range(suite.SIGN_IN_USER + 1, args.users + 1)
    for role in roles:  # warm-up, not recorded
        blogs.run_wrk(role.running, 1, lua, CONNECTIONS)
    for role in trees:
        logins(role, databases[role.name], users, 1, 1.0, seed=999)
    results: dict[str, dict[str, list[dict[str, float]]]] = {
        "blogs": {role.name: [] for role in roles},
        "login": {role.name: [] for role in trees},
    }
    for number in range(args.rounds):
        rps: dict[str, float] = {}
        for role in suite.rotated(roles, number):
            sample = blogs.run_wrk(role.running, args.duration, lua, CONNECTIONS)
            rps[role.name] = sample.rps
            results["blogs"][role.name].append(dataclasses.asdict(sample))
            suite.say(
                f"round {number + 1} /blogs {role.name:<6} {sample.rps:6.0f} req/s  p50 "
                f"{sample.p50_ms:5.2f} ms  p99 {sample.p99_ms:5.2f} ms  "
                f"{sample.server_cpu_us:4.0f} us/req"
            )
        for role in roles:
            results["blogs"][role.name][-1]["x_bare"] = rps[role.name] / rps[bare.name]
        for role in suite.rotated(trees, number):
            row: dict[str, float] = {}
            for level in (1, CONNECTIONS):
                row |= logins(
                    role, databases[role.name], users, level, args.duration, number * 100 + level
                )
            results["login"][role.name].append(row)
            suite.say(
                f"round {number + 1} login  {role.name:<6} c1 p50 {row['c1_p50_ms']:5.1f} ms "
                f"p99 {row['c1_p99_ms']:5.1f} ms, thread CPU {row['c1_post_cpu_ms']:5.2f} ms/POST"
                f", {row['c1_cpu_ms']:5.2f} ms/login; c{CONNECTIONS} "
                f"{row[f'c{CONNECTIONS}_logins_per_s']:5.1f} logins/s"
            )
    return results


def compare_table(
    samples: dict[str, list[dict[str, float]]], metrics: list[tuple[str, str, int, bool]]
) -> tuple[list[str], list[str]]:
    """Markdown rows: before, after, after/before (of the medians; and per round, min-max),
    and whether the difference stands out of the run-to-run spread. Also the figures that do."""
    header = ["figure", "before", "after", "after/before", "per round", "difference"]
    if "bare" in samples:
        header.insert(1, "bare")
    rows, outside = [], []
    for label, key, digits, higher_is_better in metrics:
        before = [row[key] for row in samples["before"]]
        after = [row[key] for row in samples["after"]]
        ratios = [a / b for a, b in zip(after, before, strict=True)]
        ratio = statistics.median(after) / statistics.median(before)
        if len(ratios) < 3:
            verdict = "too few rounds to tell"
        elif min(ratios) <= 1 <= max(ratios):
            verdict = "within spread"
        else:
            worse = ratio < 1 if higher_is_better else ratio > 1
            verdict = f"{'worse' if worse else 'better'} in every round"
            outside.append(f"{label} {(ratio - 1) * 100:+.1f} % ({verdict})")
        row = [
            label,
            suite.cell(before, digits),
            suite.cell(after, digits),
            f"{ratio:.3f}",
            suite.cell(ratios, 3),
            verdict,
        ]
        if "bare" in samples:
            row.insert(1, suite.cell([r[key] for r in samples["bare"]], digits))
        rows.append(row)
    return blogs.markdown(header, rows), outside


def report(results: dict[str, Any], args: argparse.Namespace, refs: dict[str, str]) -> None:
    print(
        f"\n## before {refs['before']} / after {refs['after']}: {args.rounds} rounds, "
        f"SQLite, {args.users:,} users, gunicorn -w 1 -k sync on CPU 0, load on CPU 1; "
        f"load average {results['load'][0]:.1f} at the start, {results['load'][1]:.1f} at the end\n"
    )
    wrk = f"wrk -t1 -c{CONNECTIONS} -d{args.duration}s"
    parts = [
        ("blogs", f"signed-in GET /blogs, {wrk}", BLOGS_METRICS),
        ("login", f"logins (fresh browser, GET + POST /login), {args.duration} s", LOGIN_METRICS),
    ]
    outside: list[str] = []
    for part, title, metrics in parts:
        lines, different = compare_table(results[part], metrics)
        print(f"### {title}\n")
        print("\n".join(lines) + "\n")
        outside += different
    print(
        "Median (min to max) over the rounds. after/before: ratio of the medians; per round: "
        'after/before within each round, median (min to max). "within spread": the rounds '
        "disagree on the direction of the difference, so it is inside the run-to-run spread. "
        "Worker thread "
        "CPU: the request thread (/proc/PID/schedstat); server CPU: all of gunicorn's processes "
        "and threads (mail sending included), GET and POST, until the logins' mail is out."
    )
    if args.rounds < 3:
        print("\nFewer than 3 rounds: no verdict on the run-to-run spread.")
    elif outside:
        print("\nOutside the run-to-run spread: " + "; ".join(outside) + ".")
    else:
        print("\nEvery difference is within the run-to-run spread.")
    print(f"Outbox rows of the after tree at the end: {results['outbox'] or 'no outbox table'}")


def _stop(signum: int, _frame: object) -> None:
    """Ctrl-C or SIGTERM: stop, ignoring any further one so that the clean-up (servers,
    worktree, temporary folder) is not cut short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, metavar="REF", help="git ref of 'before'")
    parser.add_argument("--rounds", type=blogs.bounded(1, blogs.MAX_ROUNDS), default=5)
    parser.add_argument("--duration", type=blogs.bounded(1, blogs.MAX_DURATION), default=5)
    parser.add_argument("--users", type=blogs.bounded(10, 1_000_000), default=1000)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every sample")
    parser.add_argument(
        "--storage",
        metavar="URI",
        help="GATEHOUSE_RATELIMIT_STORAGE_URI for both trees (default: each tree's default)",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        dirty = git("status", "--porcelain", "--", "src", "examples").splitlines()
        baseline = git("rev-parse", "--short", args.baseline + "^{commit}")
        refs = {
            "before": f"{args.baseline} ({baseline})",
            "after": f"working tree at {git('rev-parse', '--short', 'HEAD')}"
            + (f" + {len(dirty)} changed files in src/, examples/" if dirty else ""),
        }
        environment = blogs.versions()
        with contextlib.ExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gatehouse-cmp-")))
            before = stack.enter_context(worktree(args.baseline, tmp / "before-tree"))
            password_hash = population.argon2_hash()
            roles = [suite.Role("bare", next(a for a in blogs.APPS if a.name == "bare"))]
            databases: dict[str, Path] = {}
            for name, root in (("before", before), ("after", blogs.ROOT)):
                app, databases[name] = prepare_tree(
                    name, root, tmp, args.users, password_hash, args.storage
                )
                roles.append(suite.Role("gatehouse", app))
            lua = tmp / "status.lua"
            lua.write_text(blogs.WRK_LUA)
            load = os.getloadavg()[0]
            with suite.serving(roles, tmp):
                results: dict[str, Any] = measure(roles, databases, args, lua)
            results["load"] = (load, os.getloadavg()[0])
            results["outbox"] = outbox(databases["after"])
            if outbox(databases["before"]).get("failed") or results["outbox"].get("failed"):
                raise blogs.BenchError(f"mail failed: {results['outbox']}")
    except blogs.BenchError as error:
        print(f"\nFAILED: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped, worktree removed", file=sys.stderr)
        return 130
    report(results, args, refs)
    if args.json:
        settings = {key: value for key, value in vars(args).items() if key != "json"}
        data = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "refs": refs,
            "environment": dict(environment),
            "settings": settings,
            "results": results,
        }
        args.json.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
