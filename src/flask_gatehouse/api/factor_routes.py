"""Second factors and passkeys on the account, through the API: the twins of the two-factor
page, the account page's "forget this browser" and the passkeys page, calling the same flows
behind the same decorators (and so spending the same route limits).

Signing in with a code or a passkey is the sign-in's (``auth_routes``). A personal access
token never reaches these routes: they change how the account signs in.
"""

from typing import Any

from flask.typing import ResponseReturnValue

from .. import messages
from ..access import account_change_limits, login_required, recent_login_required, signed_in_user
from ..flows import passkeys, two_factor
from ..flows.passkeys import NAME_LENGTH
from ..forms import CodeForm, PasskeyNameForm
from ..models import TrustedBrowser, WebAuthnCredential
from ..services import json_body
from ..services.passkeys import mode
from .guard import api_route, form
from .replies import invalid, refusal, reply, timestamp

_ALREADY_ON = "Two-factor authentication is already on."
_BAD_NAME = f"Give the passkey a name of 1 to {NAME_LENGTH} characters."


# --- two-factor authentication ----------------------------------------------------------------


def _browser(browser: TrustedBrowser) -> dict[str, Any]:
    return {
        "id": browser.id,
        "device": browser.device,
        "created_at": timestamp(browser.created_at),
        "last_used_at": timestamp(browser.last_used_at),
        "expires_at": timestamp(browser.expires_at),
    }


@api_route
@recent_login_required
def two_factor_status() -> ResponseReturnValue:
    """What the two-factor page shows: whether it is on, the recovery codes left, whether the
    site requires it, and the browsers that skip the code."""
    found = two_factor.status(signed_in_user())
    return reply(
        {
            "enabled": found.enabled,
            "enabled_at": timestamp(found.enabled_at),
            "unused_recovery_codes": found.unused_recovery_codes,
            "required": found.required,
            "trusted_browsers": [_browser(browser) for browser in found.trusted_browsers],
        }
    )


@api_route
@account_change_limits("two_factor_enrol")
@recent_login_required
def two_factor_enrol_start() -> ResponseReturnValue:
    """A fresh secret for an authenticator app (replacing an unconfirmed one); its first code
    then goes to ``two_factor_enrol``."""
    user = signed_in_user()
    if user.email_confirmed_at is None:
        return refusal(400, messages.CONFIRM_FIRST)
    if two_factor.status(user).enabled:
        return refusal(409, _ALREADY_ON)
    enrolment = two_factor.start_enrolment(user)
    return reply({"secret": "".join(enrolment.key_groups), "otpauth_uri": enrolment.uri})


@api_route
@account_change_limits("two_factor_enrol")
@recent_login_required
def two_factor_enrol() -> ResponseReturnValue:
    """Switch two-factor on with the app's first code: the recovery codes, shown this once."""
    user = signed_in_user()
    if user.email_confirmed_at is None:
        return refusal(400, messages.CONFIRM_FIRST)
    if two_factor.status(user).enabled:
        return refusal(409, _ALREADY_ON)
    found = form(CodeForm)
    if not found.validate_on_submit():
        return invalid(found)
    codes = two_factor.confirm_enrolment(user, found.code.data or "")
    if codes is None:
        return refusal(
            400, messages.WRONG_ENROLMENT_CODE, fields={"code": messages.WRONG_ENROLMENT_CODE}
        )
    return reply({"recovery_codes": codes})


@api_route
@account_change_limits("two_factor_disable")
@recent_login_required
def two_factor_disable() -> ResponseReturnValue:
    """Remove the app, the security keys, the recovery codes and the trusted browsers (done
    already when it was off)."""
    if two_factor.disable(signed_in_user()) == "required":
        return refusal(403, messages.TWO_FACTOR_REQUIRED)
    return reply({"message": messages.TWO_FACTOR_OFF})


@api_route
@account_change_limits("recovery_codes")
@recent_login_required
def recovery_codes() -> ResponseReturnValue:
    """New recovery codes, shown this once: the old ones stop working."""
    codes = two_factor.regenerate_recovery_codes(signed_in_user())
    if codes is None:
        return refusal(409, "Two-factor authentication is off: switch it on first.")
    return reply({"recovery_codes": codes})


@api_route
@login_required
def forget_trusted_browser(browser_id: int) -> ResponseReturnValue:
    """Stop trusting a browser: its next sign-in asks for the second factor again."""
    if not two_factor.forget_browser(signed_in_user(), browser_id):
        return refusal(404, messages.BROWSER_WAS_NOT_TRUSTED)
    return reply({"message": messages.BROWSER_FORGOTTEN})


# --- passkeys ---------------------------------------------------------------------------------


def _passkey(record: WebAuthnCredential) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "kind": record.kind,
        "synced": record.backup_state,
        "created_at": timestamp(record.created_at),
        "last_used_at": timestamp(record.last_used_at),
        "flagged_at": timestamp(record.flagged_at),
    }


def _passkeys_off() -> bool:
    return mode() not in ("on", "second-factor-only")


@api_route
@recent_login_required
def passkeys_list() -> ResponseReturnValue:
    """The account's passkeys (security keys where the site takes them as a second factor
    only), and how many it may have. One ``flagged_at`` answered as a clone would: refused
    since, to be removed."""
    if _passkeys_off():
        return refusal(404, messages.PASSKEYS_OFF)
    found = passkeys.overview(signed_in_user())
    return reply(
        {
            "passkeys": [_passkey(record) for record in found.passkeys],
            "limit": found.limit,
            "second_factor_only": found.second_factor_only,
        }
    )


@api_route
@recent_login_required
def passkey_add_options() -> ResponseReturnValue:
    """Options for ``navigator.credentials.create()``."""
    if _passkeys_off():
        return refusal(404, messages.PASSKEYS_OFF)
    user = signed_in_user()
    if user.email_confirmed_at is None:
        return refusal(400, messages.CONFIRM_FIRST)
    options = passkeys.add_options(user)
    if options is None:
        return refusal(400, messages.PASSKEYS_FULL)
    return reply({"publicKey": options})


@api_route
@account_change_limits("passkey_add")
@recent_login_required
def passkey_add() -> ResponseReturnValue:
    """The new credential (``credential.toJSON()``) and an optional name. A security key that
    is the account's only second factor comes with ``needs_recovery_codes``: make them now."""
    if _passkeys_off():
        return refusal(404, messages.PASSKEYS_OFF)
    body = json_body.read()
    credential = json_body.credential(body)
    name = body.get("name", "")
    if not isinstance(name, str) or len(name) > NAME_LENGTH:
        message = f"A passkey's name is at most {NAME_LENGTH} characters (or leave it out)."
        return refusal(400, message, fields={"name": message})
    user = signed_in_user()
    if user.email_confirmed_at is None:
        return refusal(400, messages.CONFIRM_FIRST)
    added = passkeys.add(user, credential, name)
    if added.passkey is None:
        message = messages.PASSKEY_NOT_ADDED
        return refusal(400, message, fields={"credential": message})
    answer = {
        "passkey": _passkey(added.passkey),
        "needs_recovery_codes": added.needs_recovery_codes,
    }
    return reply(answer, 201)


@api_route
@account_change_limits("passkey_rename")
@recent_login_required
def passkey_rename(passkey_id: int) -> ResponseReturnValue:
    if _passkeys_off():
        return refusal(404, messages.PASSKEYS_OFF)
    found = form(PasskeyNameForm)
    if not found.validate_on_submit():
        return refusal(400, _BAD_NAME, fields={"name": _BAD_NAME})
    if not passkeys.rename(signed_in_user(), passkey_id, found.name.data or ""):
        return refusal(404, messages.PASSKEY_GONE)
    return reply({"message": "Renamed."})


@api_route
@account_change_limits("passkey_remove")
@recent_login_required
def passkey_remove(passkey_id: int) -> ResponseReturnValue:
    if _passkeys_off():
        return refusal(404, messages.PASSKEYS_OFF)
    outcome = passkeys.remove(signed_in_user(), passkey_id)
    if outcome == "required":
        message = messages.LAST_FACTOR_REQUIRED
        return refusal(403, message)
    if outcome == "gone":
        return refusal(404, messages.PASSKEY_GONE)
    return reply({"message": messages.PASSKEY_REMOVED})
