"""Tests for flask_gatehouse.services.identity (email and username normalisation)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flask_gatehouse.services.identity import (
    InvalidIdentity,
    normalize_email,
    normalize_username,
    typed_email,
)

# --- normalize_email ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("bob@example.com", "bob@example.com"),
        ("Bob@Example.COM", "bob@example.com"),
        ("BOB@EXAMPLE.COM", "bob@example.com"),
        ("  bob@example.com  ", "bob@example.com"),
        ("\tbob@example.com\r\n", "bob@example.com"),
        ("first.Last+Tag@Sub.Example.org", "first.last+tag@sub.example.org"),
        # Domain: lowercased and IDNA-decoded to its Unicode form.
        ("bob@BÜCHER.de", "bob@bücher.de"),
        ("bob@xn--bcher-kva.de", "bob@bücher.de"),
        ("bob@XN--BCHER-KVA.DE", "bob@bücher.de"),
        ("bob@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com", "bob@example.com"),
        # Internationalised (SMTPUTF8) local parts are allowed and lowercased.
        ("Ünal@example.com", "ünal@example.com"),
        ("ΣΑΣ@example.com", "σας@example.com"),
        ("\u212a@example.com", "k@example.com"),  # KELVIN SIGN -> K (NFC) -> k
        # Dotless i (U+0131) stays itself: two identities (CVE-2019-19844).
        ("m\u0131ke@example.com", "m\u0131ke@example.com"),
        # Compatibility forms (NFKC): full-width letters, @ and dot, ligatures, superscripts.
        ("\uff41\uff42\uff43@example.com", "abc@example.com"),
        (
            "\uff21\uff22\uff23\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0ecom",
            "abc@example.com",
        ),
        ("\ufb01ne@example.com", "fine@example.com"),
        ("bob\u00b2@example.com", "bob2@example.com"),
        # 64 octets before the @ is the most RFC 5321 allows.
        ("A" * 64 + "@example.com", "a" * 64 + "@example.com"),
        ("\u00dc" * 32 + "@example.com", "\u00fc" * 32 + "@example.com"),
    ],
)
def test_normalize_email_good(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


def test_email_case_variants_are_one_identity() -> None:
    variants = ["bob@example.com", "Bob@Example.COM", " BOB@example.com", "bOb@EXAMPLE.com\n"]
    assert {normalize_email(v) for v in variants} == {"bob@example.com"}


def test_dotless_i_is_not_merged_with_i() -> None:
    assert normalize_email("m\u0131ke@example.com") != normalize_email("mike@example.com")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        " ",
        "bob",
        "bob@",
        "@example.com",
        "bob@@example.com",
        "bob@example",
        "bob@localhost",
        "bob@example..com",
        "bob.@example.com",
        ".bob@example.com",
        "bob example@example.com",
        "bob@exam ple.com",
        '"bob"@example.com',
        "bob@[127.0.0.1]",
        "<bob@example.com>",
        "Bob <bob@example.com>",
        "bob@example.com, eve@evil.com",
        "bob@example.com\x00",
        "\x00bob@example.com",
        "bo\x00b@example.com",
        "bob\x01@example.com",
        "bob@exa\x7fmple.com",
        "bob@example.com\x85",
        "bob\r\n@example.com",
        "bob@example.com\r\nBcc: eve@evil.com",
        "bob\u200b@example.com",
        "bob\u202e@example.com",
        "a" * 64 + "@" + ("b" * 63 + ".") * 3 + "com",  # > 254
        "x" * 300,
        "bob@example.com" + "x" * 300,
        "a@b" * 100,
    ],
)
def test_normalize_email_bad(raw: str) -> None:
    with pytest.raises(InvalidIdentity) as info:
        normalize_email(raw)
    assert str(info.value)


def test_email_over_254_characters_refused() -> None:
    local = "a" * 64
    domain_254 = ".".join(["b" * 61] * 3) + ".com"  # 61*3 + 2 + 4 = 189
    ok = f"{local}@{domain_254}"
    assert len(ok) == 254
    assert normalize_email(ok) == ok
    too_long = f"{local}@b{domain_254}"
    assert len(too_long) == 255
    with pytest.raises(InvalidIdentity):
        normalize_email(too_long)


@pytest.mark.parametrize(
    "local",
    [
        "a" * 65,
        "\u00fc" * 33,  # 66 octets in UTF-8
        "\u674e" * 22,  # 66 octets
        "\ufb03" * 22,  # 22 ligatures, 66 letters after NFKC
    ],
)
def test_local_part_over_64_octets_refused(local: str) -> None:
    message = (
        "The part before the @ can be at most 64 characters long "
        "(accented and non-Latin letters count as two or more)."
    )
    with pytest.raises(InvalidIdentity) as info:
        normalize_email(f"{local}@example.com")
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("typed", "plain"),
    [
        ("\uff41\uff42\uff43@example.com", "abc@example.com"),
        (
            "\uff41\uff42\uff43\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d",
            "ABC@example.com",
        ),
        ("\uff4e\uff4f\uff54 \uff41\uff4e \uff45\uff4d\uff41\uff49\uff4c", "Not an email"),
        ("\uff41" * 65 + "@example.com", "a" * 65 + "@example.com"),  # refused, still one key
    ],
)
def test_compatibility_forms_share_a_counter_key(typed: str, plain: str) -> None:
    """Lockout and per-address limits count the spellings normalize_email merges as one,
    whether or not the text is a valid address."""
    assert typed_email(typed) == typed_email(plain)


def test_email_error_message_is_a_sentence() -> None:
    with pytest.raises(InvalidIdentity, match=r"^Enter a valid email address\.$"):
        normalize_email("not an email")


def test_invalid_identity_is_a_value_error() -> None:
    assert issubclass(InvalidIdentity, ValueError)


def _email_or_none(raw: str) -> str | None:
    """normalize_email(raw), or None when it raises InvalidIdentity (with a message)."""
    try:
        return normalize_email(raw)
    except InvalidIdentity as exc:
        message = str(exc)
    assert message.endswith(".")
    return None


email_like = st.one_of(
    st.text(),
    st.emails().map(lambda e: e.upper()),
    st.emails(),
    st.builds(
        lambda local, domain: f"{local}@{domain}",
        st.text(min_size=1, max_size=20),
        st.sampled_from(["example.com", "EXAMPLE.COM", "bücher.de", "xn--bcher-kva.de"]),
    ),
)


@given(email_like)
def test_normalize_email_only_raises_invalid_identity_and_is_idempotent(raw: str) -> None:
    once = _email_or_none(raw)
    if once is None:
        return
    assert normalize_email(once) == once
    assert len(once) <= 254
    assert not any(unicodedata.category(ch) == "Cc" for ch in once)
    assert once == once.strip()
    local, _, domain = once.rpartition("@")
    assert local == local.lower()
    assert domain == domain.lower()


@given(email_like)
def test_compatibility_forms_are_one_identity(raw: str) -> None:
    assert _email_or_none(unicodedata.normalize("NFKC", raw)) == _email_or_none(raw)
    assert typed_email(unicodedata.normalize("NFKC", raw)) == typed_email(raw)


@given(st.emails())
def test_generated_emails_are_case_insensitive(raw: str) -> None:
    try:
        normal = normalize_email(raw)
    except InvalidIdentity:
        return  # e.g. special-use domains that email-validator refuses
    assert normalize_email(raw.upper()) == normal
    assert normalize_email(f"  {raw.swapcase()}\t") == normal


# --- normalize_username ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice", "alice"),
        ("Alice Smith", "Alice Smith"),
        ("  Alice  ", "Alice"),
        ("\tAlice\n", "Alice"),
        ("\uff21\uff4c\uff49\uff43\uff45", "Alice"),  # fullwidth letters -> ASCII
        ("ﬁne", "fine"),  # ligature
        ("Alice\u00a0Smith", "Alice Smith"),  # NBSP -> space under NFKC
        ("Ame\u0301lie", "Amélie"),  # composed
        ("李小龙", "李小龙"),
        ("Zoë 🦊", "Zoë 🦊"),
        ("a" * 64, "a" * 64),
        ("  " + "a" * 64 + "  ", "a" * 64),
    ],
)
def test_normalize_username_good(raw: str, expected: str) -> None:
    assert normalize_username(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "ali\u200bce",  # zero-width space (Cf)
        "ali\u200dce",  # zero-width joiner (Cf)
        "ali\u200cce",  # zero-width non-joiner (Cf)
        "alice\u202e",  # right-to-left override (Cf)
        "\u202eecila",
        "ali\u2066ce\u2069",  # left-to-right isolate / pop isolate (Cf)
        "ali\u2067ce",
        "ali\u2068ce",
        "\ufeffalice",  # BOM (Cf)
        "ali\u00adce",  # soft hyphen (Cf)
        "ali\x00ce",  # NUL
        "alice\x00",
        "ali\x1bce",  # ESC
        "ali\x7fce",  # DEL
        "ali\x85ce",  # NEL (C1)
        "ali\u2028ce",  # line separator (Zl)
        "ali\u2029ce",  # paragraph separator (Zp)
        "ali\ue000ce",  # private use (Co)
        "ali\U000f0000ce",  # supplementary private use (Co)
        "ali\udc80ce",  # lone surrogate (Cs)
        "ali\U000e0041ce",  # tag character (Cf)
        "ali\u0378ce",  # unassigned (Cn)
    ],
)
def test_normalize_username_invisible_refused(raw: str) -> None:
    with pytest.raises(InvalidIdentity, match="invisible or control"):
        normalize_username(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "ali\tce",
        "ali\nce",
        "ali\rce",
        "ali\x0bce",
        "ali\x0cce",
        "ali\u1680ce",  # ogham space mark (Zs, not changed by NFKC)
    ],
)
def test_normalize_username_other_whitespace_refused(raw: str) -> None:
    with pytest.raises(InvalidIdentity):
        normalize_username(raw)


@pytest.mark.parametrize("raw", ["", " ", "   ", "\t\n", "\u3000", "\u00a0\u2003"])
def test_normalize_username_empty_refused(raw: str) -> None:
    with pytest.raises(InvalidIdentity, match=r"^Enter a username\.$"):
        normalize_username(raw)


@pytest.mark.parametrize("raw", ["a" * 65, "李" * 65, "a" * 10_000, "ﬁ" * 33])
def test_normalize_username_too_long_refused(raw: str) -> None:
    with pytest.raises(InvalidIdentity, match=r"^Use at most 64 characters\.$"):
        normalize_username(raw)


def test_username_length_counts_code_points_after_nfkc() -> None:
    # 64 fullwidth letters are 64 code points after NFKC, whatever their UTF-8 size.
    assert normalize_username("\uff21" * 64) == "A" * 64
    # A ligature expands to two code points under NFKC and so counts twice.
    assert normalize_username("ﬁ" * 32) == "fi" * 32


def _assert_valid_username(value: str) -> None:
    assert value
    assert value == value.strip()
    assert len(value) <= 64
    assert unicodedata.is_normalized("NFKC", value)
    for ch in value:
        assert unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
        assert ch == " " or not ch.isspace()


def _username_or_none(raw: str) -> str | None:
    """normalize_username(raw), or None when it raises InvalidIdentity (with a message)."""
    try:
        return normalize_username(raw)
    except InvalidIdentity as exc:
        message = str(exc)
    assert message.endswith(".")
    return None


username_like = st.one_of(
    st.text(),
    st.text(max_size=80),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=70),
    st.lists(
        st.sampled_from(
            [
                "a",
                "\uff21",
                " ",
                "\u00a0",
                "\u3000",
                "\u0301",
                "\u0307",
                "\u200b",
                "\u202e",
                "\t",
                "ﬁ",
                "\u2126",
                "\u1100",
                "\u1161",
                "\u11a8",
                "ｶ",
                "\uff9e",
            ]
        ),
        max_size=70,
    ).map("".join),
)


@given(username_like)
def test_normalize_username_only_raises_invalid_identity_and_is_idempotent(raw: str) -> None:
    once = _username_or_none(raw)
    if once is None:
        return
    _assert_valid_username(once)
    assert normalize_username(once) == once
