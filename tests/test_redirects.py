"""Tests for flask_gatehouse.services.redirects.safe_next (open-redirect defence)."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.utils import redirect

from flask_gatehouse.services.redirects import MAX_NEXT_LENGTH, safe_next

SITE = "https://site.example/base/"

BAD = [
    "//evil.com",
    "///evil.com",
    "////evil.com",
    "/\\evil.com",
    "\\\\evil.com",
    "\\/evil.com",
    "/\\/evil.com",
    "/\t/evil.com",
    "/\n/evil.com",
    "/\r\n/evil.com",
    "\t//evil.com",
    "\x00//evil.com",
    "\x01/\\evil.com",
    " //evil.com",
    "//evil.com ",
    "\x0b//evil.com",
    "https://evil.com",
    "HTTPS://evil.com",
    "http:evil.com",
    "http:/evil.com",
    "http:\\\\evil.com",
    "javascript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.com",
    "evil.com/path",
    "@evil.com",
    "",
    " ",
    "\x00",
    "?next=/x",
    "#frag",
    "/a\x00b",
    "/a\x7fb",
    "/a\x85b",
    "/a\x9fb",
    "/a\x1bb",
    "/a\udcffb",
    "/..//evil.com",
    "/.//evil.com",
    "/a/..//evil.com",
    "/%2e%2e//evil.com",
    "/%2E.//evil.com",
    "/\\..\\\\evil.com",
    "/" + "a" * MAX_NEXT_LENGTH,
]

# (input, expected output)
GOOD = [
    ("/", "/"),
    ("/blogs", "/blogs"),
    ("/blogs?page=2#top", "/blogs?page=2#top"),
    ("/a/b/../c", "/a/b/../c"),
    ("/%2F%2Fevil.com", "/%2F%2Fevil.com"),
    ("/%5C%5Cevil.com", "/%5C%5Cevil.com"),
    ("/%09/evil.com", "/%09/evil.com"),
    ("/?next=//evil.com", "/?next=//evil.com"),
    ("/search?q=http://evil.com", "/search?q=http://evil.com"),
    ("/#//evil.com", "/#//evil.com"),
    ("/evil.com", "/evil.com"),
    ("/a:b", "/a:b"),
    ("/a//b", "/a//b"),
    ("/a/b/..", "/a/b/.."),
    ("/blogs/café", "/blogs/café"),
    # Normalisation the browser would apply anyway; the normalised form is returned.
    ("  /blogs  ", "/blogs"),
    ("\x00/blogs\x1f", "/blogs"),
    ("/bl\togs", "/blogs"),
    ("/bl\r\nogs", "/blogs"),
    ("/a\\b", "/a/b"),
    ("/" + "a" * (MAX_NEXT_LENGTH - 1), "/" + "a" * (MAX_NEXT_LENGTH - 1)),
]


@pytest.mark.parametrize("target", BAD)
def test_bad_targets_are_refused(target: str) -> None:
    assert safe_next(target) is None


@pytest.mark.parametrize(("target", "expected"), GOOD)
def test_good_targets_are_allowed(target: str, expected: str) -> None:
    assert safe_next(target) == expected


@pytest.mark.parametrize(
    "target", [None, 0, 1.5, b"/blogs", ["/blogs"], {"next": "/blogs"}, object(), ("/",)]
)
def test_non_strings_are_refused(target: object) -> None:
    assert safe_next(target) is None


def test_str_subclass_is_handled() -> None:
    class S(str):
        pass

    assert safe_next(S("/blogs")) == "/blogs"
    assert safe_next(S("//evil.com")) is None


# --- property tests ------------------------------------------------------------------------

ADVERSARIAL_FRAGMENTS = st.sampled_from(
    [
        "/",
        "\\",
        "\t",
        "\n",
        "\r",
        "\x00",
        " ",
        "evil.com",
        "http:",
        "https:",
        ":",
        "@",
        "%2F",
        "%2e",
        "..",
        ".",
        "?",
        "#",
        "\x0b",
        "\x7f",
        "\u2028",
        "\uff0f",
        "a",
    ]
)
adversarial = st.lists(ADVERSARIAL_FRAGMENTS, max_size=12).map("".join)
decoded_binary = st.one_of(
    st.binary().map(lambda b: b.decode("utf-8", errors="surrogateescape")),
    st.binary().map(lambda b: b.decode("latin-1")),
)
any_text = st.one_of(
    st.text(), adversarial, decoded_binary, st.text(alphabet=st.characters(codec="utf-8"))
)


def _assert_safe(value: str) -> None:
    assert value.startswith("/")
    assert not value.startswith("//")
    assert "\\" not in value
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in value)
    joined = urlsplit(urljoin(SITE, value))
    assert joined.scheme == "https"
    assert joined.netloc == "site.example"


def _wire_location(value: str) -> str:
    """The Location header exactly as Werkzeug would send it for redirect(value)."""
    environ = EnvironBuilder("/login", base_url="https://site.example/").get_environ()
    response = redirect(value)
    headers = response.get_wsgi_headers(environ)
    location = headers["Location"]
    location.encode("latin-1")  # must be sendable as an HTTP header
    return location


@given(any_text)
def test_safe_next_result_is_same_origin(target: str) -> None:
    value = safe_next(target)
    if value is None:
        return
    _assert_safe(value)
    location = _wire_location(value)
    assert location.startswith("/")
    assert location[1:2] not in ("/", "\\")
    joined = urlsplit(urljoin("https://site.example/login", location))
    assert joined.scheme == "https"
    assert joined.netloc == "site.example"


@given(adversarial)
def test_adversarial_fragments(target: str) -> None:
    value = safe_next(target)
    if value is not None:
        _assert_safe(value)
        # Idempotent: checking the returned value again gives the same value.
        assert safe_next(value) == value


@given(st.text())
def test_safe_next_is_idempotent(target: str) -> None:
    value = safe_next(target)
    if value is not None:
        assert safe_next(value) == value


@given(st.from_type(object))
def test_safe_next_never_raises_for_arbitrary_objects(target: object) -> None:
    value = safe_next(target)
    assert value is None or isinstance(value, str)


@given(st.text(min_size=1).filter(lambda s: s[0] not in "/\\" and s.strip() == s))
def test_prefixing_host_like_text_with_double_slash_is_refused(host: str) -> None:
    assert safe_next("//" + host) is None
    assert safe_next("/\\" + host) is None
    assert safe_next("\\\\" + host) is None
