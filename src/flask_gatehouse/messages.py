"""What Gatehouse tells the user when an action ends: one text for each outcome, shown by a
page (a flash or the form) and by its JSON API twin alike, so the two never say different
things."""

from flask import current_app

CONFIRM_FIRST = "Confirm your email address first: follow the link in the email we sent you."
RESET_LINK_SENT = (
    "If an account exists for that address, we've emailed a link to reset its password."
)
PASSKEY_REMOVED = "Removed: it no longer signs in here."
BROWSER_WAS_NOT_TRUSTED = "That browser was no longer trusted."
BROWSER_FORGOTTEN = "That browser will be asked for a code at its next sign-in."
WRONG_ENROLMENT_CODE = "That code is not right. Enter the code your app shows now."
SAME_EMAIL = "That is already your email address."
NO_PASSKEY_FOR_LINK = "That link is no longer valid, or the account has no passkey."
PASSKEY_NOT_ADDED = "That passkey could not be added. Please try again."
PASSKEY_SIGN_UP_REFUSED = "That passkey could not be used. Fill in the form and try again."
PASSKEY_GONE = "That passkey no longer exists."
PASSKEY_REFUSED = "That passkey was not accepted. Try again, or use another way to sign in."
SESSION_GONE = "That session had already ended."
SESSION_REVOKED = "That session has been signed out."
SIGN_IN_EXPIRED = "That sign-in expired. Please sign in again."
TOKEN_GONE = "That token no longer exists."
TOKEN_REVOKED = "Token revoked: it no longer works."
GRACE_OVER = "The time to put this off has run out: set it up now to sign in."
LAST_FACTOR_REQUIRED = "This site requires a second factor: add another before removing this one."
TWO_FACTOR_REQUIRED = "This site requires two-factor authentication: it stays on."
TOO_MANY_CODES = "Too many wrong codes. Please sign in again."
TWO_FACTOR_OFF = "Two-factor authentication is off."
EMAIL_CHANGE_SENT = "We sent a confirmation link to the new address."
PASSKEYS_FULL = "You have as many passkeys as an account may have: remove one first."
SIGNED_OUT = "You have been signed out."
ACCOUNT_DELETED = "Your account has been deleted. Goodbye!"
EMAIL_CHANGED = "Your email address has been changed."
EMAIL_CONFIRMED = "Your email address is confirmed. You can sign in now."
PASSWORD_CHANGED = "Your password has been changed and every other device signed out."
PASSWORD_RESET = "Your password has been changed. Sign in with your new password."
PASSKEYS_OFF = "Passkeys are off on this site."
PASSKEY_SIGN_IN_OFF = "Signing in with a passkey is off on this site."
ACCOUNT_SECURED = (
    "Every browser signed in to your account was signed out and its password no longer works. "
    "We've emailed you a link to set a new password."
)
ACCOUNT_SECURED_ADDRESS_TAKEN = (
    "Every browser signed in to your account was signed out and its password no longer works, "
    "but your previous address now belongs to another account, so we could not put it back. "
    "Contact the site's administrators to recover your account."
)


def link_invalid(what: str) -> str:
    """What a spent, expired, replaced or unknown link's page says (``what``: "password reset
    link", ...)."""
    return f"This {what} has expired, has already been used, or was replaced by a newer one."


#: A refused login's one message. The right password for an unconfirmed address gets the same
#: answer as a wrong one (anything else tells an attacker the password is right); it also
#: gets a fresh link by mail, which the message points a new user to.
_LOGIN_REFUSED = {
    "required": "Incorrect email or password. If you have just created your account, confirm "
    "your address first: follow the link in the email we sent you.",
    "optional": "Incorrect email or password.",
    "off": "Incorrect email or password.",
}


def login_refusal() -> str:
    """What a refused login says (the page's and the API's alike)."""
    return _LOGIN_REFUSED[current_app.config["GATEHOUSE_EMAIL_CONFIRMATION"]]


def signed_up_message() -> str:
    """What a sign-up says, whether the address was new or taken. (No address in it: the
    pages' flashes travel in Flask's readable session cookie.)"""
    if current_app.config["GATEHOUSE_EMAIL_CONFIRMATION"] == "off":
        return "Your account is ready. Sign in to continue."
    return "Check your inbox: we sent you a link to confirm your address."


FORM_EXPIRED = "That form expired. Please try again."
PROVIDER_UNLINKED = "Disconnected: that account no longer signs you in here."
PROVIDER_GONE = "That connected account no longer exists."
LAST_WAY_IN = (
    "That is your only way to sign in: set a password (Forgot your password?) or add a passkey "
    "before disconnecting it."
)
SOCIAL_FLOW_INVALID = "That sign-in has expired or was already used. Please start again."
SOCIAL_RETRY = "That sign-in could not be completed. Please try again."
SOCIAL_ACCOUNT_REFUSED = "This account cannot sign in."
SOCIAL_LINK_SIGNED_OUT = "Sign in again to connect an account."
SOCIAL_LINK_NOT_RECENT = "Confirm it is you again to connect an account."


def provider_linked(name: str) -> str:
    return f"Connected: your {name} account now signs you in here."


def provider_already_linked(name: str) -> str:
    return f"That {name} account was already connected."


def provider_gave_no_address(name: str) -> str:
    return f"{name} did not share a usable email address, so no account can be made from it."


def address_has_account(email: str, name: str) -> str:
    """A provider's address belongs to an account the provider account is not linked to."""
    return (
        f"An account here already uses {email}. Sign in to it, then connect {name} from your "
        "account page."
    )


def provider_account_taken(name: str) -> str:
    return f"That {name} account is connected to another account here."


def confirm_address_first(email: str) -> str:
    return (
        f"Confirm your email address first: we sent a link to {email}. Follow it, then sign in "
        "again."
    )


SAML_UNSOLICITED = (
    "That sign-in was not started here, or it has expired. Please start again from the sign-in "
    "page."
)
SAML_REFUSED = "The identity provider's answer could not be accepted. Please sign in again."
SAML_LOGOUT_REFUSED = "That sign-out request could not be accepted."
SAML_UNREACHABLE = "The identity provider could not be reached. Please try again in a moment."


def saml_no_subject(name: str) -> str:
    return (
        f"{name} did not say who signed in for good (a transient name, or a missing "
        "attribute), so no account can be found from it. Ask the site's administrators."
    )
