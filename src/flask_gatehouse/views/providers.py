"""The outside providers as pages show them: a button each on the login and sign-up pages,
and a "Connect" link each on the account page."""

from dataclasses import dataclass

from flask import request, url_for

from ..services import oidc, saml


@dataclass(frozen=True)
class Button:
    """One provider on a page: ``key`` as its linked accounts record it."""

    key: str
    name: str
    login_url: str
    connect_url: str


def sign_in_buttons() -> list[Button]:
    """Social login's providers, then SAML's, in their configured order (``next`` kept)."""
    landing = request.args.get("next")
    buttons = [
        Button(
            provider.key,
            provider.name,
            url_for("gatehouse.social_login", provider=provider.key, next=landing),
            url_for("gatehouse.connect_provider", provider=provider.key),
        )
        for provider in oidc.providers()
    ]
    buttons += [
        Button(
            provider.key,
            provider.name,
            url_for("gatehouse.saml_login", provider=provider.slug, next=landing),
            url_for("gatehouse.saml_connect", provider=provider.slug),
        )
        for provider in saml.providers()
    ]
    return buttons
