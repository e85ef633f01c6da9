"""Normalisation of user identities: the ONE place emails and usernames are canonicalised.

Every look-up, uniqueness check, lockout/throttle key and stored value goes through
:func:`normalize_email` (for the login identifier) or :func:`normalize_username` (for the
display name), so two spellings of one identity can never become two accounts or two
throttle buckets.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

__all__ = [
    "EMAIL_MAX_LENGTH",
    "LOCAL_PART_MAX_LENGTH",
    "USERNAME_MAX_LENGTH",
    "InvalidIdentity",
    "TypedEmail",
    "normalize_email",
    "normalize_username",
    "typed_email",
]

#: RFC 5321 4.5.3.1.3 (path limit 256 minus the angle brackets).
EMAIL_MAX_LENGTH = 254
#: RFC 5321 4.5.3.1.1, in octets (UTF-8 for internationalised addresses, RFC 6531): servers
#: refuse mail to a longer local part, so such an address could never be confirmed.
LOCAL_PART_MAX_LENGTH = 64
#: Maximum length of a display name, counted in code points after NFKC.
USERNAME_MAX_LENGTH = 64

_ASCII_WHITESPACE = " \t\n\r\x0b\x0c"
#: The longest canonical decomposition (U+1FA2 and its kin are 4 code points under NFD).
_NFKC_MAX_SHRINK = 4

# Unicode general categories refused in usernames: controls, format characters (zero-width
# joiners/spaces, bidi overrides and isolates, BOM, ...), surrogates, private use, unassigned,
# and the line/paragraph separators.
_FORBIDDEN_USERNAME_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})

_MSG_EMAIL_INVALID = "Enter a valid email address."
_MSG_EMAIL_TOO_LONG = f"Email addresses can be at most {EMAIL_MAX_LENGTH} characters long."
_MSG_LOCAL_PART_TOO_LONG = (
    f"The part before the @ can be at most {LOCAL_PART_MAX_LENGTH} characters long "
    "(accented and non-Latin letters count as two or more)."
)
_MSG_USERNAME_EMPTY = "Enter a username."
_MSG_USERNAME_TOO_LONG = f"Use at most {USERNAME_MAX_LENGTH} characters."
_MSG_USERNAME_INVISIBLE = "Usernames can't contain invisible or control characters."
_MSG_USERNAME_WHITESPACE = "Usernames can only contain plain spaces, not tabs or other whitespace."


class InvalidIdentity(ValueError):  # noqa: N818 - public name fixed by the API
    """An email or username that cannot be accepted; str(exc) is a sentence for the form."""


def _nfkc(value: str) -> str:
    """NFKC form without surrounding ASCII whitespace (which NFKC may have produced)."""
    return unicodedata.normalize("NFKC", value).strip(_ASCII_WHITESPACE)


def _has_control_char(value: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in value)


@functools.lru_cache(maxsize=1024)
def _normalize_email_once(value: str) -> str:
    """Validate *value* (ASCII whitespace stripped) with email-validator: the canonical form.

    Cached: one login normalises the same address several times (form, lockout key, look-up,
    audit), and email-validator's checks are the costly part. Refusals raise, so they are
    never cached, and only addresses of at most 254 characters are."""
    # NFKC composes at most 4 code points into one: longer text can never fit, and is refused
    # before NFKC is spent on it.
    if len(value) > _NFKC_MAX_SHRINK * EMAIL_MAX_LENGTH:
        raise InvalidIdentity(_MSG_EMAIL_TOO_LONG)
    # NFKC can turn an input method's spaces (U+3000) into ASCII ones: strip them too.
    value = _nfkc(value)
    if len(value) > EMAIL_MAX_LENGTH:
        raise InvalidIdentity(_MSG_EMAIL_TOO_LONG)
    if _has_control_char(value):
        raise InvalidIdentity(_MSG_EMAIL_INVALID)
    try:
        info = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidIdentity(_MSG_EMAIL_INVALID) from exc
    local, _, domain = info.normalized.rpartition("@")
    if not local or not domain:  # pragma: no cover - email-validator guarantees both parts
        raise InvalidIdentity(_MSG_EMAIL_INVALID)
    local = local.lower()
    if len(local.encode("utf-8", "surrogatepass")) > LOCAL_PART_MAX_LENGTH:
        raise InvalidIdentity(_MSG_LOCAL_PART_TOO_LONG)
    result = f"{local}@{domain}"
    if len(result) > EMAIL_MAX_LENGTH:
        raise InvalidIdentity(_MSG_EMAIL_TOO_LONG)
    return result


def normalize_email(raw: str) -> str:
    """Return the canonical form of an email address, or raise :class:`InvalidIdentity`.

    Steps: NFKC-normalise, strip surrounding ASCII whitespace (pasted addresses), refuse
    anything over 254 characters or containing NUL or another control character, validate the
    syntax with ``email_validator`` (no DNS look-up; internationalised SMTPUTF8 addresses are
    allowed as email-validator allows them), take its ``.normalized`` form (domain lowercased
    and IDNA-decoded to Unicode), lowercase the local part and refuse it over 64 octets
    (RFC 5321: mail to it would not be delivered). So ``Bob@Example.COM`` and
    ``bob@example.com`` are one identity.

    Why NFKC: a CJK input method's full-width mode types ``abc@example.com`` as
    ``\uff41\uff42\uff43@example.com`` (even ``@`` as ``\uff20``); ligatures, superscripts
    and the like are compatibility forms too. Left alone they would make a second account
    beside ``abc@example.com``, for a mailbox that almost certainly does not exist. The domain
    already gets this mapping from IDNA (UTS #46); NFKC gives it to the local part, as
    usernames and passwords get it. A mailbox whose real name holds such a character
    (practically none do) cannot be used: mail goes only to the stored, NFKC form.

    Why lowercasing the local part is safe here: RFC 5321 lets a mailbox be case-sensitive,
    but practically no real mail system treats ``Bob@`` and ``bob@`` as different people, and
    treating them as two accounts is what enables look-alike duplicate sign-ups and split
    lockout counters.  The normalised address is what is stored, and mail (confirmation,
    password reset, notices) is sent **only to the stored address**, never to the variant
    the user typed.  That is what Django CVE-2019-19844 got wrong: a reset request for
    ``m\u0131ke@example.org`` (U+0131, dotless i) matched the account ``mike@example.org`` by a
    case-insensitive comparison and the reset mail went to the attacker's typed address.
    Here the dotless and dotted spellings are simply different identities (U+0131 lowercases
    to itself and has no compatibility mapping), and even a matching look-up can only ever
    mail the owner.

    The result is a fixed point: ``normalize_email(normalize_email(x)) == normalize_email(x)``
    (addresses whose lowercased form would normalise differently are refused).  Only
    :class:`InvalidIdentity` is raised, for any ``str`` input.
    """
    if not isinstance(raw, str):
        raise InvalidIdentity(_MSG_EMAIL_INVALID)
    value = raw.strip(_ASCII_WHITESPACE)
    result = _normalize_email_once(value)
    # Lowercasing can change a Unicode local part (e.g. "İ" -> "i̇", two code points); insist
    # the canonical form is stable so stored values, look-ups and keys always agree.
    if _normalize_email_once(result) != result:
        raise InvalidIdentity(_MSG_EMAIL_INVALID)
    return result


def normalize_username(raw: str) -> str:
    """Return the canonical display name, or raise :class:`InvalidIdentity`.

    NFKC-normalises (so fullwidth letters such as U+FF21 become ASCII ``A``), strips surrounding
    whitespace, and refuses an empty name, more than 64 code points, invisible or control
    characters (Unicode categories Cc, Cf, Cs, Co, Cn, Zl, Zp: e.g. U+200B zero-width space,
    U+200D zero-width joiner, U+202E right-to-left override, U+2066 isolates) and any
    whitespace other than the plain space U+0020.  Idempotent; only :class:`InvalidIdentity`
    is raised, for any ``str`` input.
    """
    if not isinstance(raw, str):
        raise InvalidIdentity(_MSG_USERNAME_EMPTY)
    value = unicodedata.normalize("NFKC", raw).strip()
    # Stripping can in theory expose a sequence that NFKC would compose differently; repeat
    # until stable so the function is idempotent.
    for _ in range(4):
        again = unicodedata.normalize("NFKC", value).strip()
        if again == value:
            break
        value = again
    else:  # pragma: no cover - NFKC + strip converges immediately in practice
        raise InvalidIdentity(_MSG_USERNAME_INVISIBLE)
    if not value:
        raise InvalidIdentity(_MSG_USERNAME_EMPTY)
    for ch in value:
        if unicodedata.category(ch) in _FORBIDDEN_USERNAME_CATEGORIES:
            raise InvalidIdentity(_MSG_USERNAME_INVISIBLE)
        if ch != " " and ch.isspace():
            raise InvalidIdentity(_MSG_USERNAME_WHITESPACE)
    if len(value) > USERNAME_MAX_LENGTH:
        raise InvalidIdentity(_MSG_USERNAME_TOO_LONG)
    return value


@dataclass(frozen=True)
class TypedEmail:
    """What was typed as an account's address, normalised once, at the form.

    ``canonical`` is the ``normalize_email`` form, or None when the text is not a valid
    address (it then matches no account, and is still counted: a login with it costs the same
    hash work and is limited like any other). ``key`` names it for counters either way: the
    canonical address, or the NFKC, case-folded text, so that spellings ``normalize_email``
    would merge share a counter even when the text is refused.
    """

    canonical: str | None
    key: str


def typed_email(raw: str) -> TypedEmail:
    """Normalise what was typed as an address, for a form that must not refuse it (login,
    forgot password): invalid text yields no canonical address instead of an error."""
    try:
        canonical = normalize_email(raw)
    except InvalidIdentity:
        return TypedEmail(None, _nfkc(raw).casefold())
    return TypedEmail(canonical, canonical)
