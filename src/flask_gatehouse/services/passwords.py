"""Password hashing, verification and the password policy.

Hashes are argon2id (OWASP Password Storage). Hashes left by the Flask tutorial's
``werkzeug.security.generate_password_hash`` still verify and are upgraded on the next login.
The policy follows NIST SP 800-63B-4: a minimum length, no composition rules, a blocklist of
common passwords, no "expected" passwords (sequences, repeats, keyboard walks and the like, as
estimated by zxcvbn) and no passwords built from the account's own details. Passwords are NFKC
normalised before hashing and checking, so the same password typed on different keyboards or
input methods (fullwidth forms, ligatures, composed accents) is the same password.
"""

import contextlib
import difflib
import functools
import gzip
import hashlib
import logging
import secrets
import threading
import unicodedata
import urllib.request
from importlib import resources
from urllib.parse import urlsplit

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app
from werkzeug.security import check_password_hash
from zxcvbn import zxcvbn

from ..config import DEFAULTS

__all__ = ["hash_password", "password_problems", "password_rules", "verify_password"]

#: The shortest minimum length a host may configure (NIST 800-63B-4 and ASVS 6.2.1).
MIN_LENGTH_FLOOR = 8
#: Personal values shorter than this (after dropping punctuation) are too short to look for.
_MIN_VALUE_LENGTH = 3
#: A password must keep this many characters once the personal values are taken out.
_MIN_LEFT_OVER = 8
#: difflib similarity at or above which a password counts as a variant of a personal value.
_MAX_SIMILARITY = 0.7
#: zxcvbn's estimate of the guesses eight random characters need (the length floor): a password
#: must hold out at least that long. zxcvbn's own "safely unguessable" score 3 starts here.
_MIN_GUESSES = 10**8
#: Characters zxcvbn analyses. Its cost grows faster than the square of the length (a crafted
#: 32-character password of l33t look-alikes takes about 0.3 s, one of 64 over a second), and
#: a password whose first 32 characters hold out is not guessable.
_ESTIMATE_LENGTH = 32
#: zxcvbn 4.5 keeps the user inputs of the call in progress in a module global.
_ESTIMATOR_LOCK = threading.Lock()
#: Prefixes written by ``werkzeug.security.generate_password_hash`` (Werkzeug >= 2.3).
_WERKZEUG_PREFIXES = ("scrypt:", "pbkdf2:")
_PACKAGE = "flask_gatehouse"

_TOO_SHORT = "Use at least {} characters."
_TOO_LONG = "Use at most {} characters."
_TOO_COMMON = "This password is too common; choose another."
_GUESSABLE = (
    "This password is easy to guess; avoid sequences (12345), repeats (aaaa) and keyboard "
    "patterns (qwerty), and try a few unrelated words."
)
_PERSONAL = "Don't build your password from your email address, username or the site's name."
_HAS_NUL = "Remove the invisible NUL character from your password."
_HAS_SURROGATE = "Your password contains an invalid character; remove it."
_BREACHED = "This password has appeared in a data breach; choose another."
#: Largest range response read (padded answers are about 40 KB).
_HIBP_MAX_BYTES = 2 * 1024 * 1024

logger = logging.getLogger("flask_gatehouse.passwords")


def _setting(key: str) -> int:
    """An integer setting from the app config, falling back to Gatehouse's default."""
    return int(current_app.config.get(key, DEFAULTS[key]))


def _normalise(password: str) -> str:
    """NFKC form: one password whatever keyboard or input method produced it."""
    return unicodedata.normalize("NFKC", password)


def _unusable(password: str) -> bool:
    """True for text that must never be hashed or stored.

    NUL is refused everywhere (PostgreSQL rejects it, C code may stop at it); lone surrogates,
    which a JSON body can carry as ``\\ud800``, cannot be encoded as UTF-8 at all.
    """
    if "\x00" in password:
        return True
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@functools.cache
def _hasher(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    """One PasswordHasher per parameter set, so config changes take effect without rebuilds."""
    return PasswordHasher(
        time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
    )


def _params() -> tuple[int, int, int]:
    """The configured argon2id (time, memory KiB, parallelism), read per call."""
    return (
        _setting("GATEHOUSE_ARGON2_TIME_COST"),
        _setting("GATEHOUSE_ARGON2_MEMORY_COST"),
        _setting("GATEHOUSE_ARGON2_PARALLELISM"),
    )


@functools.cache
def _dummy_hash(time_cost: int, memory_cost: int, parallelism: int) -> str:
    """A hash of a random secret with these parameters, for verifying when there is no hash."""
    return _hasher(time_cost, memory_cost, parallelism).hash(secrets.token_urlsafe(32))


def _dummy_verify() -> None:
    """Spend the same work as a real verification, so timing hides whether an account exists."""
    params = _params()
    with contextlib.suppress(VerificationError):
        _hasher(*params).verify(_dummy_hash(*params), "not the password")


def hash_password(password: str) -> str:
    """Hash ``password`` with argon2id using the configured parameters.

    The password is NFKC normalised first and never trimmed or truncated. Raises ``ValueError``
    for a password containing NUL or a lone surrogate, which `password_problems` refuses, so
    such text can never end up in a hash.
    """
    if _unusable(password):
        raise ValueError("password contains NUL or a lone surrogate")
    return _hasher(*_params()).hash(_normalise(password))


def verify_password(stored_hash: str | None, password: str) -> tuple[bool, str | None]:
    """Check ``password`` against ``stored_hash``; return ``(matches, new_hash)``.

    ``new_hash`` is a fresh argon2id hash to store when the password matched but the stored hash
    used other argon2 parameters or was a legacy Werkzeug ``scrypt:``/``pbkdf2:`` hash (made
    before normalisation, so checked against the password exactly as typed); otherwise ``None``.

    With no hash, an empty one, an unknown format or a password that could never have been
    hashed (NUL, lone surrogate), a dummy argon2id verification still runs before returning
    ``(False, None)``: unknown users and users without a usable password cost the same time as
    real ones (Django CVE-2016-2513, CVE-2024-39329).
    """
    if not stored_hash or _unusable(password):
        _dummy_verify()
        return False, None

    if stored_hash.startswith("$argon2"):
        hasher = _hasher(*_params())
        try:
            hasher.verify(stored_hash, _normalise(password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False, None
        if hasher.check_needs_rehash(stored_hash):
            return True, hash_password(password)
        return True, None

    if stored_hash.startswith(_WERKZEUG_PREFIXES):
        try:
            matches = check_password_hash(stored_hash, password)
        except (ValueError, OverflowError):
            # Malformed method arguments, unknown digest or impossible scrypt costs.
            _dummy_verify()
            return False, None
        if matches:
            return True, hash_password(password)
        return False, None

    _dummy_verify()
    return False, None


@functools.cache
def _common_passwords() -> frozenset[str]:
    """Django's list of 20,000 common passwords (lowercase), read once per process."""
    data = resources.files(_PACKAGE).joinpath("data", "common-passwords.txt.gz")
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        return frozenset(_normalise(line.strip()).lower() for line in lines if line.strip())


def _squash(text: str) -> str:
    """Casefolded letters and digits only, so ``John.Smith`` and ``johnsmith!`` compare equal."""
    return "".join(char for char in _normalise(text).casefold() if char.isalnum())


def _built_from(password: str, values: list[str]) -> bool:
    """Whether ``password`` is mostly made of, or a close variant of, one of ``values``.

    Both sides are compared as casefolded letters and digits (punctuation and spaces do not
    count). Values shorter than 3 such characters are ignored. The password counts as built
    from the values when removing every occurrence of them leaves fewer than 8 characters, or
    when it is at least 70% similar (``difflib.SequenceMatcher.ratio``) to any one of them.
    """
    squashed = _squash(password)
    candidates = sorted(
        {value for value in map(_squash, values) if len(value) >= _MIN_VALUE_LENGTH},
        key=len,
        reverse=True,
    )
    rest = squashed
    for value in candidates:
        rest = rest.replace(value, "")
    if rest != squashed and len(rest) < _MIN_LEFT_OVER:
        return True
    for value in candidates:
        matcher = difflib.SequenceMatcher(a=squashed, b=value, autojunk=False)
        if matcher.quick_ratio() >= _MAX_SIMILARITY and matcher.ratio() >= _MAX_SIMILARITY:
            return True
    return False


def _guessable(password: str, personal: list[str]) -> bool:
    """Whether zxcvbn expects ``password`` (NFKC form) to fall in fewer than 10**8 guesses.

    zxcvbn finds sequences (``123456789012345``), repeats (``aaaa``, ``abcabc``), keyboard
    walks (``qwertyuiop``), dates, l33t spellings and common words and names, with the
    account's own ``personal`` values as extra words. Only the first 32 characters are
    analysed, which bounds the work: a longer password is judged by how it starts.
    """
    with _ESTIMATOR_LOCK:
        estimate = zxcvbn(password[:_ESTIMATE_LENGTH], [value for value in personal if value])
    return estimate["guesses"] < _MIN_GUESSES


def _length_limits() -> tuple[int, int]:
    """Configured (minimum, maximum) length; the minimum is never below 8, whatever is set."""
    minimum = max(_setting("GATEHOUSE_PASSWORD_MIN_LENGTH"), MIN_LENGTH_FLOOR)
    return minimum, _setting("GATEHOUSE_PASSWORD_MAX_LENGTH")


def password_problems(password: str, *, email: str = "", username: str = "") -> list[str]:
    """Each rule ``password`` breaks, as a sentence to show on the form (empty list = ok).

    Length is counted in code points after NFKC normalisation; nothing is trimmed. There are no
    composition rules (NIST 800-63B-4): instead common passwords, passwords built from the
    email address (whole or its local part), the username or the site name, easily guessed
    ones (`_guessable`) and passwords holding NUL or lone surrogates are refused. A password
    refused for its length, as common or as personal is not also called guessable (anything
    shorter than 8 characters would be): one reason is enough.
    """
    problems: list[str] = []
    normalised = _normalise(password)
    minimum, maximum = _length_limits()
    too_short, too_long = len(normalised) < minimum, len(normalised) > maximum
    if too_short:
        problems.append(_TOO_SHORT.format(minimum))
    elif too_long:
        problems.append(_TOO_LONG.format(f"{maximum:,}"))
    if "\x00" in password:
        problems.append(_HAS_NUL)
    elif _unusable(password):
        problems.append(_HAS_SURROGATE)
    common = normalised.lower() in _common_passwords()
    if common:
        problems.append(_TOO_COMMON)
    site_name = str(current_app.config.get("GATEHOUSE_SITE_NAME", ""))
    personal = [email, email.rpartition("@")[0], username, site_name]
    # An over-long password must be shortened anyway; skip the quadratic similarity check.
    built_from = not too_long and _built_from(normalised, personal)
    if built_from:
        problems.append(_PERSONAL)
    if not (too_short or too_long or common or built_from) and _guessable(normalised, personal):
        problems.append(_GUESSABLE)
    # Ask the breach corpus only about a password that passes everything else.
    if not problems and _breached(password):
        problems.append(_BREACHED)
    return problems


def _breached(password: str) -> bool:
    """Whether the Have I Been Pwned range API (GATEHOUSE_HIBP_URL) lists ``password``.

    Only the first 5 hex digits of its SHA-1 leave the server (k-anonymity), with padding
    requested so the answer's size says nothing either. Any failure (timeout, refused
    connection, bad answer) allows the password and logs a warning: an outage of a third
    party must not stop sign-ups.
    """
    url = current_app.config.get("GATEHOUSE_HIBP_URL")
    if not url:
        return False
    if urlsplit(url).scheme not in ("http", "https"):
        raise RuntimeError("GATEHOUSE_HIBP_URL must be an http(s) URL.")
    # SHA-1 is the range API's format, not a choice of ours.
    digest = hashlib.sha1(_normalise(password).encode(), usedforsecurity=False).hexdigest()
    prefix, suffix = digest[:5].upper(), digest[5:].upper()
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url + prefix, headers={"Add-Padding": "true", "User-Agent": "flask-gatehouse"}
    )
    timeout = float(current_app.config.get("GATEHOUSE_HIBP_TIMEOUT", 2.0))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read(_HIBP_MAX_BYTES).decode("ascii", "replace")
    except (OSError, ValueError) as error:
        logger.warning("breached-password check skipped (failing open): %s", error)
        return False
    for line in body.splitlines():
        candidate, _, count = line.partition(":")
        if candidate.strip().upper() == suffix and count.strip() not in ("", "0"):
            return True
    return False


def password_rules() -> list[str]:
    """The policy in plain words for a form's help text, using the configured lengths."""
    minimum, maximum = _length_limits()
    return [
        f"Use {minimum} to {maximum:,} characters. Spaces, symbols and any language's "
        "letters are all welcome; a few unrelated words make a strong password.",
        "Common passwords, such as ones seen in data breaches, are refused, and so are easily "
        "guessed ones: sequences (12345), repeats (aaaa) and keyboard patterns (qwerty).",
        "Don't build your password from your email address, username or the site's name.",
    ]
