"""Validation of post-login ``next`` targets (open-redirect defence).

A ``next`` parameter is attacker input.  Checking the *raw* string is not enough, because the
browser (WHATWG URL parsing) and Werkzeug normalise it before it is used: leading C0 controls
and spaces are stripped, tabs/CR/LF anywhere are removed, and in http(s) URLs a backslash is a
slash.  So ``/\\evil.com``, ``\\\\evil.com``, ``/<TAB>/evil.com`` and ``<NUL>//evil.com`` all
become the protocol-relative ``//evil.com`` and send the user off-site.

Flask-Security was bitten twice: CVE-2021-32618 (``get_post_login_redirect`` accepted
backslash/whitespace variants of ``//host``) and CVE-2023-49438 (a bypass of the fix through
characters Werkzeug strips before sending the ``Location`` header).  Here the value is first
normalised exactly as a browser would, the *normalised* value is checked, and that same
normalised value is what is returned, so what is redirected to is exactly what was checked.
Only same-origin paths (with optional query and fragment) are allowed.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["MAX_NEXT_LENGTH", "safe_next"]

#: Longer values are refused outright.
MAX_NEXT_LENGTH = 2048

# What the WHATWG URL parser strips from both ends of the input.
_C0_AND_SPACE = "".join(chr(i) for i in range(0x21))
# What the WHATWG URL parser removes from anywhere in the input.
_TAB_OR_NEWLINE = str.maketrans("", "", "\t\n\r")
# C0 controls, DEL and C1 controls; plus lone surrogates, which cannot be encoded into a
# Location header at all (Werkzeug would raise UnicodeEncodeError -> a 500).
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# A dot segment as the WHATWG URL parser sees it ("." / ".." and percent-encoded variants).
_SINGLE_DOT = frozenset({".", "%2e"})
_DOUBLE_DOT = frozenset({"..", ".%2e", "%2e.", "%2e%2e"})


def _normalise(target: str) -> str:
    value = target.strip(_C0_AND_SPACE)
    value = value.translate(_TAB_OR_NEWLINE)
    return value.replace("\\", "/")


def _resolved_path(path: str) -> str:
    """Remove dot segments from an absolute *path* the way a browser does (RFC 3986 5.2.4)."""
    out: list[str] = []
    segments = path.split("/")[1:]
    for index, segment in enumerate(segments):
        lowered = segment.lower()
        is_last = index == len(segments) - 1
        if lowered in _DOUBLE_DOT:
            if out:
                out.pop()
            if is_last:
                out.append("")
        elif lowered in _SINGLE_DOT:
            if is_last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)


def safe_next(target: object) -> str | None:
    """Return *target* as a safe same-origin path for ``redirect()``, or ``None``.

    The returned value is the browser-normalised form of *target* (surrounding C0 controls
    and spaces stripped, tabs/CR/LF removed, backslashes turned into slashes); it starts with
    exactly one ``/`` and has no scheme and no authority.  Percent-escapes are left alone:
    browsers do not decode them when finding the authority, so ``/%2F%2Fevil.com`` stays a
    path on this site.  Anything else (non-strings, over-long values, control characters,
    absolute or protocol-relative URLs, bare host names) gives ``None``.
    """
    if not isinstance(target, str) or len(target) > MAX_NEXT_LENGTH:
        return None
    value = _normalise(target)
    if _FORBIDDEN.search(value):
        return None
    if not value.startswith("/") or value.startswith("//"):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme or parts.netloc:
        return None
    # Defence in depth: browsers resolve dot segments, so "/..//evil.com" ends up with the
    # path "//evil.com".  That stays on this host, but a path that later gets reused as a
    # relative reference (e.g. a "return to" link built from request.path) would not.
    if _resolved_path(parts.path).startswith("//"):
        return None
    return value
