"""Time one argon2id hash per parameter set, to justify Gatehouse's default.

Usage: .venv/bin/python bench/hash_params.py [--rounds 15]
Prints the median and spread of a verify for OWASP's equivalent argon2id settings, argon2-cffi's
own default, and the werkzeug hashes the Flask tutorial wrote.
"""

import argparse
import platform
import statistics
import time
from collections.abc import Callable

from argon2 import PasswordHasher, Type
from werkzeug.security import check_password_hash, generate_password_hash

PASSWORD = "correct horse battery staple"


def timed(check: Callable[[], object], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        check()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    cases: dict[str, Callable[[], object]] = {}
    for label, t, m, p in [
        ("argon2id t=2 m=19MiB p=1 (Gatehouse default, OWASP)", 2, 19 * 1024, 1),
        ("argon2id t=1 m=46MiB p=1 (OWASP)", 1, 46 * 1024, 1),
        ("argon2id t=3 m=12MiB p=1 (OWASP)", 3, 12 * 1024, 1),
        ("argon2id t=3 m=64MiB p=4 (argon2-cffi default)", 3, 64 * 1024, 4),
    ]:
        hasher = PasswordHasher(time_cost=t, memory_cost=m, parallelism=p, type=Type.ID)
        stored = hasher.hash(PASSWORD)
        cases[label] = lambda h=hasher, s=stored: h.verify(s, PASSWORD)
    for method in ("scrypt", "pbkdf2:sha256"):
        stored = generate_password_hash(PASSWORD, method=method)
        cases[f"werkzeug {method} (tutorial)"] = lambda s=stored: check_password_hash(s, PASSWORD)

    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"{'hash':55} {'median ms':>10} {'min-max ms':>16}")
    for label, check in cases.items():
        samples = timed(check, rounds)
        spread = f"{min(samples):.1f}-{max(samples):.1f}"
        print(f"{label:55} {statistics.median(samples):10.1f} {spread:>16}")


if __name__ == "__main__":
    main()
