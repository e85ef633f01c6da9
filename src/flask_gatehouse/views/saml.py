"""SAML single sign-on's pages: the button's redirect to the identity provider, the
assertion consumer service the IdP posts back to, the SP's metadata, and connecting an IdP
account from the account page."""

from flask import Response, abort, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from .. import messages
from ..access import recent_login_required, signed_in_user
from ..flows import saml as saml_flow
from ..flows import signin
from ..models import User
from ..services import saml
from .social import finished_page, refusal_page


def _provider(slug: str) -> saml.Provider:
    found = saml.find(slug)
    if found is None:
        abort(404)
    return found


def _start(provider: saml.Provider, user: User | None) -> ResponseReturnValue:
    try:
        url = saml_flow.begin(provider, user=user, next_url=request.args.get("next"))
    except saml.ProviderError:
        return refusal_page(provider, messages.SAML_UNREACHABLE, 503)
    return redirect(url)


def saml_login(provider: str) -> ResponseReturnValue:
    """Send the browser to sign in at the identity provider."""
    found = _provider(provider)
    if current_user.is_authenticated:
        return redirect(signin.landing_url(request.args.get("next")))
    return _start(found, None)


@recent_login_required
def saml_connect(provider: str) -> ResponseReturnValue:
    """Link the signed-in user's account at the identity provider (after a recent sign-in)."""
    return _start(_provider(provider), signed_in_user())


def saml_acs(provider: str) -> ResponseReturnValue:
    """The IdP posts its response here (a cross-site POST: no session cookie, no CSRF token;
    the pending request's own cookie and the signed response stand for them)."""
    found = _provider(provider)
    form = dict(request.form.items())
    finished = saml_flow.consume(found, form)
    connect_url = url_for("gatehouse.saml_connect", provider=found.slug)
    return finished_page(found, finished, connect_url=connect_url, code=303)


def saml_metadata(provider: str) -> ResponseReturnValue:
    """The SP's metadata, for the IdP's administrator."""
    found = _provider(provider)
    try:
        xml = saml.sp_metadata(found)
    except saml.ProviderError:
        return refusal_page(found, messages.SAML_UNREACHABLE, 503)
    return Response(xml, mimetype="application/samlmetadata+xml")


def saml_sls(provider: str) -> ResponseReturnValue:
    """Single logout started at the IdP: its signed LogoutRequest arrives through the browser
    (a top-level GET, so the session cookie comes with it)."""
    found = _provider(provider)
    user = signed_in_user() if current_user.is_authenticated else None
    try:
        back = saml_flow.single_logout(found, request.args.to_dict(), user)
    except saml.ProviderError:
        return refusal_page(found, messages.SAML_UNREACHABLE, 503)
    if back is None:
        return refusal_page(found, messages.SAML_LOGOUT_REFUSED, 400)
    return redirect(back)
