"""Time the password policy (``password_problems``) per password, to justify zxcvbn's 32-character
window: typical passwords, the longest allowed ones, and l33t look-alikes crafted to be slow.

Usage: .venv/bin/python bench/password_policy.py [--rounds 15]
Prints the median and slowest call in microseconds, for the policy as Gatehouse runs it and for
zxcvbn alone on the whole password (up to 128 characters; longer ones take seconds).
"""

import argparse
import platform
import random
import statistics
import time
from collections.abc import Callable

from flask import Flask
from zxcvbn import zxcvbn

from flask_gatehouse.config import DEFAULTS
from flask_gatehouse.services.passwords import password_problems

#: Every character zxcvbn reads as a l33t letter: the most substitution tables to try.
L33T = "4@8({[<36|1!|7$5+%20"
WHOLE_LIMIT = 128


def crafted(length: int) -> str:
    """The slow case: every l33t look-alike, then random ones."""
    rng = random.Random(length)
    chars = sorted(set(L33T))
    rng.shuffle(chars)
    return ("".join(chars) + "".join(rng.choice(chars) for _ in range(length)))[:length]


def timed(check: Callable[[], object], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        check()
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    cases = {
        "typical passphrase (28)": "correct horse battery staple",
        "guessable (15)": "123456789012345",
        "random (20)": "vQ7#Lm2x!pK9$zR4&wT1",
        "passphrase (1,024)": ("plum orchard under winter rain " * 40)[:1024],
        "repeat (1,024)": "a" * 1024,
        "crafted l33t (32)": crafted(32),
        "crafted l33t (64)": crafted(64),
        "crafted l33t (1,024)": crafted(1024),
    }
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    email, username = "someone@example.com", "someone"
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"{'password':26} {'policy median':>14} {'max':>10} {'zxcvbn whole':>14}")
    with app.app_context():
        password_problems("warm up the dictionaries")
        for label, password in cases.items():
            policy = timed(
                lambda p=password: password_problems(p, email=email, username=username), rounds
            )
            whole = "-"
            if len(password) <= WHOLE_LIMIT:
                samples = timed(lambda p=password: zxcvbn(p, [email, username], len(p)), 3)
                whole = f"{statistics.median(samples):,.0f}"
            print(f"{label:26} {statistics.median(policy):14,.0f} {max(policy):10,.0f} {whole:>14}")


if __name__ == "__main__":
    main()
