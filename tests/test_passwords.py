"""Tests for the passwords service: hashing, legacy upgrade, equal work and the policy."""

import gzip
import unicodedata
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

import pytest
from argon2 import PasswordHasher, Type
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.security import generate_password_hash

from flask_gatehouse.services.passwords import (
    hash_password,
    password_problems,
    password_rules,
    verify_password,
)

GOOD = "correct horse battery staple"
CHEAP = {
    "GATEHOUSE_ARGON2_TIME_COST": 1,
    "GATEHOUSE_ARGON2_MEMORY_COST": 8,
    "GATEHOUSE_ARGON2_PARALLELISM": 1,
}
TOO_SHORT = "Use at least 15 characters."
TOO_LONG = "Use at most 1,024 characters."
TOO_COMMON = "This password is too common; choose another."
PERSONAL = "Don't build your password from your email address, username or the site's name."
GUESSABLE = (
    "This password is easy to guess; avoid sequences (12345), repeats (aaaa) and keyboard "
    "patterns (qwerty), and try a few unrelated words."
)

# Hypothesis runs many examples inside one pushed app context; the fixture is only read.
hypothesis_settings = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def app() -> Iterator[Flask]:
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        GATEHOUSE_SITE_NAME="Gatehouse",
        GATEHOUSE_PASSWORD_MIN_LENGTH=15,
        GATEHOUSE_PASSWORD_MAX_LENGTH=1024,
        **CHEAP,
    )
    with app.app_context():
        yield app


@pytest.fixture
def verify_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the hash passed to every PasswordHasher.verify call (real verify still runs)."""
    calls: list[str] = []
    original: Callable[..., Any] = PasswordHasher.verify

    def counting(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> Any:
        calls.append(hash if isinstance(hash, str) else hash.decode())
        return original(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    return calls


@pytest.fixture(scope="module")
def legacy_hashes() -> dict[str, str]:
    """What the Flask tutorial stored: werkzeug hashes with the default costs (slow, made once)."""
    return {
        method: generate_password_hash(GOOD, method=method)
        for method in ("scrypt", "pbkdf2:sha256")
    }


def fullwidth_of(text: str) -> str:
    """``text`` as typed with a CJK input method's fullwidth forms (NFKC maps them back)."""
    return "".join("\u3000" if c == " " else chr(ord(c) + 0xFEE0) for c in text)


def blocklist() -> list[str]:
    path = resources.files("flask_gatehouse").joinpath("data", "common-passwords.txt.gz")
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        return [line.strip() for line in lines]


# --- hashing and verification -------------------------------------------------------------


@pytest.mark.usefixtures("app")
def test_round_trip() -> None:
    stored = hash_password(GOOD)
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert verify_password(stored, GOOD) == (True, None)
    assert verify_password(stored, GOOD + "!") == (False, None)
    assert verify_password(stored, "") == (False, None)


@pytest.mark.usefixtures("app")
def test_hashes_are_salted() -> None:
    assert hash_password(GOOD) != hash_password(GOOD)


@pytest.mark.usefixtures("app")
def test_nfkc_fullwidth_and_ascii_are_the_same_password() -> None:
    fullwidth = fullwidth_of(GOOD)
    assert unicodedata.normalize("NFKC", fullwidth) == GOOD
    assert verify_password(hash_password(fullwidth), GOOD) == (True, None)
    assert verify_password(hash_password(GOOD), fullwidth) == (True, None)


@pytest.mark.usefixtures("app")
def test_nfkc_composed_and_decomposed_accents_match() -> None:
    composed = "caf\u00e9 au lait with croissants"
    decomposed = "cafe\u0301 au lait with croissants"
    assert verify_password(hash_password(composed), decomposed) == (True, None)


@pytest.mark.usefixtures("app")
def test_no_truncation() -> None:
    long_password = "x" * 999 + "a"
    changed = "x" * 999 + "b"
    stored = hash_password(long_password)
    assert verify_password(stored, long_password) == (True, None)
    assert verify_password(stored, changed) == (False, None)


@pytest.mark.usefixtures("app")
def test_no_trimming() -> None:
    stored = hash_password(GOOD + " ")
    assert verify_password(stored, GOOD) == (False, None)
    assert verify_password(stored, GOOD + " ") == (True, None)


def test_rehash_suggested_when_parameters_change(app: Flask) -> None:
    stored = hash_password(GOOD)
    app.config["GATEHOUSE_ARGON2_MEMORY_COST"] = 16
    matches, new_hash = verify_password(stored, GOOD)
    assert matches
    assert new_hash is not None
    assert "$m=16,t=1,p=1$" in new_hash
    assert verify_password(new_hash, GOOD) == (True, None)
    # A wrong password never yields a hash to store.
    assert verify_password(stored, "wrong horse battery staple") == (False, None)


def test_argon2i_hash_is_upgraded_to_argon2id(app: Flask) -> None:
    old = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.I).hash(GOOD)
    matches, new_hash = verify_password(old, GOOD)
    assert matches
    assert new_hash is not None
    assert new_hash.startswith("$argon2id$")


@pytest.mark.usefixtures("app")
@pytest.mark.parametrize("method", ["scrypt", "pbkdf2:sha256"])
def test_werkzeug_hash_verifies_and_upgrades(legacy_hashes: dict[str, str], method: str) -> None:
    stored = legacy_hashes[method]
    assert stored.startswith(method.split(":")[0] + ":")
    matches, new_hash = verify_password(stored, GOOD)
    assert matches
    assert new_hash is not None
    assert new_hash.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert verify_password(new_hash, GOOD) == (True, None)


@pytest.mark.usefixtures("app")
@pytest.mark.parametrize("method", ["scrypt", "pbkdf2:sha256"])
def test_werkzeug_hash_wrong_password(legacy_hashes: dict[str, str], method: str) -> None:
    assert verify_password(legacy_hashes[method], GOOD.upper()) == (False, None)


@pytest.mark.usefixtures("app")
def test_werkzeug_hash_is_checked_as_typed_then_normalised() -> None:
    # Made before Gatehouse normalised anything: only the exact typed form matches it.
    fullwidth = fullwidth_of("fullwidth horse battery")
    stored = generate_password_hash(fullwidth, method="pbkdf2:sha256:1000")
    assert verify_password(stored, unicodedata.normalize("NFKC", fullwidth)) == (False, None)
    matches, new_hash = verify_password(stored, fullwidth)
    assert matches
    assert new_hash is not None
    # The upgraded hash is of the normalised password, so both forms work from now on.
    assert verify_password(new_hash, unicodedata.normalize("NFKC", fullwidth)) == (True, None)


@pytest.mark.usefixtures("app")
@pytest.mark.parametrize(
    "stored",
    [
        None,
        "",
        "garbage",
        "!",  # Django's "unusable password" marker
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PBKsqJ.V.Ni.vVGa7GrjEJ3Oem",  # bcrypt
        "sha1$salt$0123456789abcdef",
        "plain text password",
    ],
)
def test_unusable_hash_does_dummy_work(verify_calls: list[str], stored: str | None) -> None:
    assert verify_password(stored, GOOD) == (False, None)
    assert len(verify_calls) == 1
    # The dummy hash uses the configured parameters, so it costs what a real check costs.
    assert verify_calls[0].startswith("$argon2id$v=19$m=8,t=1,p=1$")


@pytest.mark.usefixtures("app")
@pytest.mark.parametrize(
    "stored",
    [
        "scrypt:",
        "scrypt:abc$salt$hash",
        "scrypt:3:8:1$salt$hash",
        "scrypt:32768:8:99999999999$salt$hash",
        "pbkdf2:nohash:1000$salt$hash",
        "pbkdf2:sha256:0$salt$hash",
        "pbkdf2:sha256:99999999999999999999999$salt$hash",
        "pbkdf2:sha256:1:2:3$salt$hash",
    ],
)
def test_malformed_werkzeug_hash_is_refused(verify_calls: list[str], stored: str) -> None:
    assert verify_password(stored, GOOD) == (False, None)
    assert len(verify_calls) <= 1


@pytest.mark.usefixtures("app")
@pytest.mark.parametrize(
    "stored", ["$argon2id$garbage", "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$bm90YWhhc2g"]
)
def test_malformed_argon2_hash_is_refused(stored: str) -> None:
    assert verify_password(stored, GOOD) == (False, None)


@pytest.mark.usefixtures("app")
@pytest.mark.parametrize("bad", [GOOD + "\x00", "\x00", GOOD + "\ud800"])
def test_nul_and_surrogates_never_hashed_or_verified(verify_calls: list[str], bad: str) -> None:
    with pytest.raises(ValueError, match="NUL"):
        hash_password(bad)
    stored = hash_password(GOOD)
    verify_calls.clear()
    assert verify_password(stored, bad) == (False, None)
    assert len(verify_calls) == 1  # the dummy, never the real hash
    assert verify_calls[0] != stored


# --- policy -------------------------------------------------------------------------------


@pytest.mark.usefixtures("app")
def test_good_password_has_no_problems() -> None:
    assert password_problems(GOOD, email="someone@example.com", username="someone") == []


@pytest.mark.usefixtures("app")
def test_minimum_length() -> None:
    assert password_problems("tangy kiwi jam") == [TOO_SHORT]  # 14
    assert password_problems("tangy kiwi jams") == []  # 15


@pytest.mark.usefixtures("app")
def test_length_counts_code_points_after_nfkc() -> None:
    decomposed = "e\u0301" * 14  # 28 code points typed, 14 after NFKC
    assert password_problems(decomposed) == [TOO_SHORT]
    assert password_problems("🐱🐶🐭🐹🐰🦊🐻🐼🐨🐯🦁🐮🐷🐸🐵") == []  # 15 code points


@pytest.mark.usefixtures("app")
def test_maximum_length() -> None:
    phrase = "plum orchard under winter rain "
    at_limit = (phrase * 40)[:1024]
    assert password_problems(at_limit) == []
    assert password_problems(at_limit + "x") == [TOO_LONG]


def test_lowered_minimum_length(app: Flask) -> None:
    app.config["GATEHOUSE_PASSWORD_MIN_LENGTH"] = 8
    # Eight characters hold out only when they look random: two short words are guessable.
    assert password_problems("vq7#Lm2x") == []
    assert password_problems("vq7#Lm2") == ["Use at least 8 characters."]


def test_minimum_length_never_below_eight(app: Flask) -> None:
    app.config["GATEHOUSE_PASSWORD_MIN_LENGTH"] = 4
    assert password_problems("mauve") == ["Use at least 8 characters."]


@pytest.mark.usefixtures("app")
def test_nul_refused() -> None:
    assert password_problems(GOOD + "\x00") == [
        "Remove the invisible NUL character from your password."
    ]


@pytest.mark.usefixtures("app")
def test_lone_surrogate_refused() -> None:
    assert password_problems(GOOD + "\ud800") == [
        "Your password contains an invalid character; remove it."
    ]


def test_blocklist_file_is_big_enough_and_lowercase() -> None:
    entries = blocklist()
    assert len(entries) >= 10_000  # SECURITY.md: at least the top 10,000
    assert "password123" in entries
    assert "1q2w3e4r5t6y7u8i9o0p" in entries
    assert all(entry == entry.lower() for entry in entries)


@pytest.mark.parametrize(
    "password",
    ["password123", "PassWord123", fullwidth_of("password123"), "iloveyou1", "tangerine"],
)
def test_common_password_refused(app: Flask, password: str) -> None:
    app.config["GATEHOUSE_PASSWORD_MIN_LENGTH"] = 8
    assert password_problems(password) == [TOO_COMMON]


@pytest.mark.usefixtures("app")
def test_long_common_password_refused_with_default_length() -> None:
    assert "1q2w3e4r5t6y7u8i9o0p" in blocklist()
    assert password_problems("1Q2W3E4R5T6Y7U8I9O0P") == [TOO_COMMON]


def test_uncommon_password_accepted_at_lowered_length(app: Flask) -> None:
    app.config["GATEHOUSE_PASSWORD_MIN_LENGTH"] = 8
    assert "teal kazoo" not in blocklist()
    assert password_problems("teal kazoo") == []


@pytest.mark.usefixtures("app")
@pytest.mark.parametrize(
    "password",
    [
        "john.smith@example.com",  # the whole address
        "JohnSmith@Example.com!!!",  # case and punctuation do not hide it
        "johnsmith-johnsmith-2024",  # the local part twice leaves "2024"
        "john.smith@example.org",  # 70%+ similar to the address
        "jonhsmith@example.com",  # a near copy
    ],
)
def test_built_from_email_refused(password: str) -> None:
    assert password_problems(password, email="john.smith@example.com") == [PERSONAL]


@pytest.mark.usefixtures("app")
def test_built_from_username_refused() -> None:
    assert password_problems("marigold_fox_12345", username="Marigold_Fox") == [PERSONAL]
    assert password_problems("marigold fox, stop hiding", username="Marigold_Fox") == []


def test_built_from_site_name_refused(app: Flask) -> None:
    assert password_problems("Gatehouse Gatehouse 1") == [PERSONAL]
    app.config["GATEHOUSE_SITE_NAME"] = "Acme Widgets"
    assert password_problems("acme-widgets-2024!!") == [PERSONAL]
    # No longer the site's name, but still one word repeated.
    assert password_problems("Gatehouse Gatehouse 1") == [GUESSABLE]


@pytest.mark.usefixtures("app")
def test_personal_value_inside_a_long_phrase_is_fine() -> None:
    email = "john.smith@example.com"
    assert password_problems("john likes purple tangerines", email=email) == []


@pytest.mark.usefixtures("app")
def test_short_personal_values_are_ignored() -> None:
    assert password_problems("abandon the tabby crab", username="ab", email="ab@x.y") == []


@pytest.mark.usefixtures("app")
def test_symbols_only_password_is_not_mistaken_for_personal() -> None:
    assert password_problems("!@#$%^&*()_+-=[]{}", email="a@b.c", username="x") == []


@pytest.mark.usefixtures("app")
@pytest.mark.parametrize(
    "password",
    [
        "123456789012345",  # let through by the blocklist before zxcvbn
        "aaaaaaaaaaaaaaa",
        "qwertyuiopasdfgh",
        "zaq12wsxcde34rfv",  # a diagonal walk
        "abcdefghijklmnopqrstuvwxyz",
        "987654321098765",
        "abcabcabcabcabcabc",
        "P4ssw0rdP4ssw0rd",
        fullwidth_of("123456789012345"),  # NFKC first
        "a" * 1024,  # any length: the first 32 characters are judged
        ("qwertyuiop" * 103)[:1024],
    ],
)
def test_guessable_passwords_refused(password: str) -> None:
    assert password_problems(password, email="bob@example.com", username="bob") == [GUESSABLE]


@pytest.mark.usefixtures("app")
@pytest.mark.parametrize(
    "password",
    [
        GOOD,
        "tangy kiwi jams",
        "summer holiday in 2019",
        "!@#$%^&*()_+-=[]{}",  # a walk, but a long one with turns
        "Xk9$mQ2!pL plum orchard" + "a" * 100,  # judged by a first part that holds out
        "🐱🐶🐭🐹🐰🦊🐻🐼🐨🐯🦁🐮🐷🐸🐵",
    ],
)
def test_hard_to_guess_passwords_accepted(password: str) -> None:
    assert password_problems(password, email="bob@example.com", username="bob") == []


@pytest.mark.usefixtures("app")
def test_guessing_starts_from_the_accounts_own_details() -> None:
    """A reversed username and a sequence hold out against strangers, not against someone
    who knows the account (zxcvbn's user inputs)."""
    assert password_problems("naixalbroz12345678", username="someone") == []
    assert password_problems("naixalbroz12345678", username="zorblaxian") == [GUESSABLE]


@pytest.mark.usefixtures("app")
def test_long_password_is_judged_by_its_first_32_characters() -> None:
    weak_start = "abcdefghijklmnopqrstuvwxyz012345"
    assert password_problems(weak_start + "Xk9$mQ2!pL") == [GUESSABLE]
    assert password_problems("Xk9$mQ2!pL" + weak_start) == []


@pytest.mark.usefixtures("app")
def test_one_reason_is_enough() -> None:
    """Too short, common or personal passwords are not also called guessable."""
    assert password_problems("kiwi kiwi") == [TOO_SHORT]
    assert password_problems("1q2w3e4r5t6y7u8i9o0p") == [TOO_COMMON]
    assert password_problems("bobbobbobbobbobbob", username="bob") == [PERSONAL]


@pytest.mark.usefixtures("app")
def test_several_problems_are_all_reported() -> None:
    assert password_problems("gatehouse") == [TOO_SHORT, PERSONAL]


def test_rules_use_configured_lengths(app: Flask) -> None:
    rules = password_rules()
    assert rules
    assert all(isinstance(rule, str) and rule for rule in rules)
    assert "15 to 1,024 characters" in rules[0]
    app.config["GATEHOUSE_PASSWORD_MIN_LENGTH"] = 10
    assert "10 to 1,024 characters" in password_rules()[0]


# --- properties ---------------------------------------------------------------------------

any_text = st.text(st.characters(exclude_categories=()))  # includes NUL and lone surrogates


@pytest.mark.usefixtures("app")
@hypothesis_settings
@given(password=any_text, email=any_text, username=any_text)
def test_password_problems_never_raises(password: str, email: str, username: str) -> None:
    problems = password_problems(password, email=email, username=username)
    assert all(isinstance(problem, str) for problem in problems)


@pytest.mark.usefixtures("app")
@hypothesis_settings
@given(
    password=st.text(
        st.characters(exclude_characters="\x00", exclude_categories=("Cs",)),
        min_size=15,
        max_size=200,
    )
)
def test_hash_verify_round_trip(password: str) -> None:
    stored = hash_password(password)
    assert verify_password(stored, password) == (True, None)
    assert verify_password(stored, unicodedata.normalize("NFKC", password)) == (True, None)
