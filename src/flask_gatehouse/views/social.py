"""Social login's pages: the button's redirect to the provider, the provider's callback, and
linking and unlinking provider accounts on the account page.

The buttons are links (GET), not forms: the page's Content-Security-Policy (``form-action
'self'``) would stop a form's redirect to the provider. Starting a flow changes nothing;
``state``, bound to this browser's session, is what makes the callback safe.
"""

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from .. import messages
from ..access import login_required, recent_login_required, signed_in_user
from ..flows import provider_accounts, signin, social
from ..flows.provider_accounts import Finished
from ..forms import ConfirmForm
from ..services import mail, oidc
from ..services.identities import IdentityProvider
from .auth import next_url_of


def _provider(key: str) -> oidc.Provider:
    found = oidc.find(key)
    if found is None:
        abort(404)
    return found


def _callback_url(provider: oidc.Provider) -> str:
    """The redirect URI registered at the provider: built from GATEHOUSE_BASE_URL, never from
    the request's Host header."""
    return mail.link("gatehouse.social_callback", provider=provider.key)


def _start(provider: oidc.Provider, purpose: social.Purpose) -> ResponseReturnValue:
    try:
        url = social.begin(
            provider,
            purpose,
            redirect_uri=_callback_url(provider),
            next_url=request.args.get("next"),
        )
    except oidc.ProviderError as error:
        return refusal_page(provider, str(error), 503)
    return redirect(url)


def social_login(provider: str) -> ResponseReturnValue:
    """Send the browser to sign in at the provider."""
    found = _provider(provider)
    if current_user.is_authenticated:
        return redirect(signin.landing_url(request.args.get("next")))
    return _start(found, "sign_in")


def social_callback(provider: str) -> ResponseReturnValue:
    """The provider sends the browser back here, with a code (or an error). A callback that
    does not sign in or link answers with its own 4xx page, never a redirect."""
    found = _provider(provider)
    finished = social.finish(found, request.args.get("state"))
    return finished_page(
        found, finished, connect_url=url_for("gatehouse.connect_provider", provider=found.key)
    )


def finished_page(
    provider: IdentityProvider, finished: Finished, *, connect_url: str, code: int = 302
) -> ResponseReturnValue:
    """Where a provider's answer sends the browser (``code`` 303 after a POST), or the 4xx
    page of its refusal, which offers to sign in and connect at ``connect_url`` when the
    address has an account."""
    if finished.outcome == "signed_in" and finished.sign_in is not None:
        return redirect(next_url_of(finished.sign_in), code)
    if finished.outcome == "linked":
        flash(messages.provider_linked(provider.name), "success")
        return redirect(url_for("gatehouse.account"), code)
    if finished.outcome == "already_linked":
        flash(messages.provider_already_linked(provider.name), "info")
        return redirect(url_for("gatehouse.account"), code)
    return refusal_page(
        provider,
        finished.message,
        finished.status,
        login_url=url_for("gatehouse.login", next=connect_url) if finished.offer_link else None,
    )


def refusal_page(
    provider: IdentityProvider, message: str, status: int, *, login_url: str | None = None
) -> ResponseReturnValue:
    """A provider's refusal: its own page with its 4xx (or 503) status."""
    page = render_template(
        "gatehouse/social_refused.html", provider=provider, message=message, login_url=login_url
    )
    return page, status


@recent_login_required
def connect_provider(provider: str) -> ResponseReturnValue:
    """Link an account at the provider to the signed-in user (after a recent sign-in)."""
    return _start(_provider(provider), "link")


@login_required
def disconnect_provider(identity_id: int) -> ResponseReturnValue:
    """Unlink a provider account, unless it is the last way to sign in."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash(messages.FORM_EXPIRED, "error")
        return redirect(url_for("gatehouse.account"))
    outcome = provider_accounts.unlink(signed_in_user(), identity_id)
    if outcome == "unlinked":
        flash(messages.PROVIDER_UNLINKED, "success")
    elif outcome == "last_way_in":
        flash(messages.LAST_WAY_IN, "error")
    else:
        flash(messages.PROVIDER_GONE, "info")
    return redirect(url_for("gatehouse.account"))
