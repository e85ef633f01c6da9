"""Passkeys in a real browser: Chromium's virtual authenticator (DevTools' WebAuthn domain)
stands in for the phone or security key, and passkeys.js drives the ceremonies.

The relying party is GATEHOUSE_BASE_URL's host, so the fixture points it at the live server
(http://localhost:PORT, rp id "localhost": WebAuthn refuses an IP address).

Chromium's virtual environment answers the login page's conditional request (the passkey in
the email field's autofill) by itself, at once, with no suggestion shown and no focus needed:
with a passkey in the authenticator, opening /login signs in. Tests that press a button first
switch the authenticator's presence off (every request then waits, as for a person who has
touched nothing) and switch it on for the ceremony the click starts, off again the moment the
page posts the answer, so the autofill that passkeys.js restarts after a refusal waits too.
"""

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from flask import Flask
from playwright.sync_api import CDPSession, Locator, Page, Response, Route, expect

from tests.browser.test_pages import LOGIN_REDIRECT, screenshot
from tests.browser.test_two_factor_browser import enrol
from tests.smtp import Mailbox, link_path, text

#: What the server answers a passkey it does not accept (views/passkeys.py).
REFUSED = "That passkey was not accepted. Try again, or use another way to sign in."
#: What passkeys.js says when the browser refuses (NotAllowedError).
NOT_USED = (
    "No passkey was used: the request was cancelled, timed out, or this device has none for "
    "this account. You can try again."
)

#: Records each navigator.credentials.get call's mediation on the console, and, once, bends
#: the next modal request as sessionStorage["bend"] says (the page's own options otherwise):
#: {"allowCredentials": <base64url id>} asks for another credential, {"userVerification":
#: "discouraged"} lets the authenticator answer without verifying its user.
_WATCH_AND_BEND = """
(() => {
  const get = navigator.credentials.get.bind(navigator.credentials);
  const decode = (text) => Uint8Array.from(
    atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  navigator.credentials.get = (options) => {
    console.info(`credentials.get mediation=${options.mediation || "optional"}`);
    const bend = sessionStorage.getItem("bend");
    if (bend && options.mediation !== "conditional" && options.publicKey) {
      sessionStorage.removeItem("bend");
      const { allowCredentials, userVerification } = JSON.parse(bend);
      if (allowCredentials) {
        options.publicKey.allowCredentials = [{ type: "public-key", id: decode(allowCredentials) }];
      }
      if (userVerification) {
        options.publicKey.userVerification = userVerification;
      }
    }
    return get(options);
  };
})();
"""


@dataclass
class Authenticator:
    """One virtual authenticator of the page (a platform authenticator holding passkeys)."""

    cdp: CDPSession
    id: str

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.cdp.send(
            f"WebAuthn.{method}", {"authenticatorId": self.id, **params}
        )
        return answer

    def credential(self, email: str) -> dict[str, Any]:
        """The passkey it holds for ``email`` (its userName)."""
        held = self.send("getCredentials")["credentials"]
        (found,) = [c for c in held if c["userName"] == email]
        return dict(found)

    def present(self, present: bool) -> None:
        """Whether the person touches it: off, every request waits."""
        self.send("setAutomaticPresenceSimulation", enabled=present)

    def replace(self, credential: dict[str, Any], **changes: Any) -> None:
        """Swap the held credential for a copy with ``changes`` (e.g. its signCount)."""
        self.send("removeCredential", credentialId=credential["credentialId"])
        self.send("addCredential", credential={**credential, **changes})


@pytest.fixture
def authenticator(app: Flask, live_server: str, page: Page) -> Authenticator:
    app.config["GATEHOUSE_BASE_URL"] = live_server
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return Authenticator(cdp, added["authenticatorId"])


@pytest.fixture
def browser_problems() -> Iterator[list[str | None]]:
    """conftest's check, less the console's line for each refusal a test expects and checks
    itself: Chromium logs a fetch's 4xx answer as "Failed to load resource", which the
    conftest takes for a broken resource. Tests add one ``None`` per refusal they expect."""
    problems: list[str | None] = []
    yield problems
    expected = problems.count(None)
    refusals = [p for p in problems if p is not None and _FETCH_400.search(p)]
    others = [p for p in problems if p is not None and not _FETCH_400.search(p)]
    assert not others, "the browser reported problems:\n" + "\n".join(others)
    assert len(refusals) == expected, f"expected {expected} refused fetches: {refusals}"


_FETCH_400 = re.compile(r": Failed to load resource: the server responded with a status of 400")


def base64url(standard: str) -> str:
    """DevTools' base64 as WebAuthn's JSON writes it (base64url, no padding)."""
    return base64.urlsafe_b64encode(base64.b64decode(standard)).rstrip(b"=").decode()


def is_post_to(path: str) -> Any:
    return lambda r: r.request.method == "POST" and urlsplit(r.url).path == path


def sent_credential_id(response: Response) -> str:
    """The id of the credential a ceremony's answer carried."""
    body = response.request.post_data_json
    assert isinstance(body, dict)
    return str(body["credential"]["id"])


def sign_in_with_password(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def log_in(page: Page, email: str, password: str) -> None:
    sign_in_with_password(page, email, password)
    expect(page).to_have_url(re.compile(r"/blogs$"))
    page.wait_for_load_state("load")


def sign_out(page: Page) -> None:
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Sign out").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))


def add_passkey(page: Page, authenticator: Authenticator, name: str = "") -> None:
    """From the signed-in account's passkeys page, as a person would."""
    authenticator.present(True)
    page.goto("/account/passkeys")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your passkeys")
    page.locator("#passkey-name").fill(name)
    page.locator("[data-gatehouse=passkey-add]").click()
    expect(page.get_by_role("status")).to_have_text("Passkey added.")
    page.wait_for_load_state("load")


def touch(page: Page, authenticator: Authenticator, answer: str) -> None:
    """The person touches the authenticator for the ceremony the next click starts: present
    from the click's options request until the page posts the browser's answer to ``answer``.
    Only once the page's autofill request has its options (``to_login``), so that request
    waits."""

    def press(route: Route) -> None:
        authenticator.present(True)
        route.fallback()

    def release(route: Route) -> None:
        authenticator.present(False)
        route.fallback()

    page.route(lambda url: urlsplit(url).path == f"{answer}/options", press, times=1)
    page.route(lambda url: urlsplit(url).path == answer, release, times=1)


def to_login(page: Page, authenticator: Authenticator) -> None:
    """Sign out to the login page, whose autofill request then waits for a person."""
    authenticator.present(False)
    with page.expect_response(is_post_to("/login/passkey/options")):
        sign_out(page)


def passkey_alert(page: Page) -> Locator:
    return page.locator(".passkey").get_by_role("alert")


def mail_to(mailbox: Mailbox, address: str, subject: str) -> EmailMessage:
    """The message to ``address`` whose subject ends with ``subject`` (others may come first)."""
    count = 1
    while True:
        for message in mailbox.wait_for(count):
            if address in str(message["To"]) and str(message["Subject"]).endswith(subject):
                return message
        count = len(mailbox.messages) + 1


def test_add_a_passkey_then_sign_in_with_it(
    page: Page, user: Any, authenticator: Authenticator, mailbox: Mailbox
) -> None:
    log_in(page, user.email, user.password)
    page.goto("/account/passkeys")
    expect(page.get_by_role("main")).to_contain_text("You have no passkeys yet.")
    add_passkey(page, authenticator, "Work laptop")
    expect(page).to_have_url(re.compile(r"/account/passkeys$"))
    rows = page.get_by_role("table").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.get_by_role("cell").first).to_have_text("Work laptop")
    held = authenticator.credential(user.email)
    assert (held["rpId"], held["isResidentCredential"]) == ("localhost", True)
    notice = mail_to(mailbox, user.email, "A passkey was added to your account")
    assert '"Work laptop"' in text(notice)
    screenshot(page, "passkeys.png")

    to_login(page, authenticator)
    button = page.get_by_role("button", name="Sign in with a passkey")
    expect(button).to_be_visible()
    page.wait_for_load_state("load")
    screenshot(page, "login-passkey.png")
    touch(page, authenticator, "/login/passkey")
    button.click()
    expect(page).to_have_url(re.compile(r"/blogs$"))
    expect(page.get_by_role("heading", level=2)).to_have_text(f"Hi {user.username}")
    assert authenticator.credential(user.email)["signCount"] > held["signCount"]


def test_the_login_page_signs_in_with_the_autofilled_passkey(
    page: Page, user: Any, authenticator: Authenticator
) -> None:
    gets: list[str] = []
    page.on(
        "console", lambda m: gets.append(m.text) if m.text.startswith("credentials.get") else None
    )
    page.add_init_script(_WATCH_AND_BEND)
    log_in(page, user.email, user.password)
    add_passkey(page, authenticator)
    authenticator.present(False)
    gets.clear()  # the autofill of the password sign-in's page
    with page.expect_console_message(lambda m: m.text.startswith("credentials.get")):
        sign_out(page)
    assert gets == ["credentials.get mediation=conditional"]
    expect(page.get_by_label("Email", exact=True)).to_have_attribute(
        "autocomplete", "username webauthn"
    )
    expect(page).to_have_url(re.compile(r"/login$"))  # waiting for the person to pick

    authenticator.present(True)  # Chromium's virtual environment picks the passkey itself
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/login/passkey")):
        page.goto("/login", wait_until="commit")
    expect(page).to_have_url(re.compile(r"/blogs$"))
    expect(page.get_by_role("heading", level=2)).to_have_text(f"Hi {user.username}")
    assert gets == ["credentials.get mediation=conditional"] * 2, "no button was pressed"


def test_a_passkey_as_the_second_factor(
    page: Page, user: Any, authenticator: Authenticator
) -> None:
    log_in(page, user.email, user.password)
    enrol(page, user.password)
    expect(page.get_by_role("status")).to_have_text("Two-factor authentication is on.")
    add_passkey(page, authenticator)
    authenticator.present(False)  # else the login page's autofill signs in with the passkey
    sign_out(page)

    sign_in_with_password(page, user.email, user.password)
    expect(page).to_have_url(re.compile(r"/login/two-factor$"))
    button = page.get_by_role("button", name="Use a security key or passkey")
    expect(button).to_have_attribute("data-gatehouse", "passkey-second-factor")
    expect(button).to_be_visible()
    authenticator.present(True)
    button.click()
    expect(page).to_have_url(re.compile(r"/blogs$"))
    expect(page.get_by_role("heading", level=2)).to_have_text(f"Hi {user.username}")


def test_a_cloned_passkey_is_refused_and_flagged(
    page: Page,
    user: Any,
    authenticator: Authenticator,
    mailbox: Mailbox,
    browser_problems: list[str | None],
) -> None:
    log_in(page, user.email, user.password)
    add_passkey(page, authenticator, "Phone")
    registered = authenticator.credential(user.email)
    to_login(page, authenticator)
    button = page.get_by_role("button", name="Sign in with a passkey")
    touch(page, authenticator, "/login/passkey")
    button.click()
    expect(page).to_have_url(re.compile(r"/blogs$"))
    used = authenticator.credential(user.email)
    assert used["signCount"] > registered["signCount"]

    # A copy of the passkey made before that sign-in: its counter is behind the server's. (The
    # authenticator's credentials change only while no request is pending: a pending one
    # would go on with the credential it started with.)
    authenticator.replace(used, signCount=0)
    to_login(page, authenticator)
    touch(page, authenticator, "/login/passkey")
    with page.expect_response(is_post_to("/login/passkey")) as answer:
        button.click()
    assert answer.value.status == 400
    browser_problems.append(None)
    expect(passkey_alert(page)).to_have_text(REFUSED)
    expect(page).to_have_url(re.compile(r"/login$"))
    warning = mail_to(mailbox, user.email, "One of your passkeys may have been copied")
    assert '"Phone"' in text(warning)

    log_in(page, user.email, user.password)
    page.goto("/account/passkeys")
    expect(page.get_by_role("table").locator("tbody tr")).to_contain_text(
        "possibly cloned: refused"
    )

    # Refused from now on, even with a counter far ahead of the server's.
    authenticator.replace(used, signCount=used["signCount"] + 1000)
    to_login(page, authenticator)
    touch(page, authenticator, "/login/passkey")
    with page.expect_response(is_post_to("/login/passkey")) as again:
        button.click()
    assert again.value.status == 400
    browser_problems.append(None)
    expect(passkey_alert(page)).to_have_text(REFUSED)
    page.goto("/blogs")
    expect(page).to_have_url(LOGIN_REDIRECT)


def test_reauthentication_takes_only_the_signed_in_users_passkey(
    page: Page,
    user: Any,
    user_factory: Any,
    authenticator: Authenticator,
    browser_problems: list[str | None],
) -> None:
    bob = user_factory(email="bob@example.com", username="bob")
    page.add_init_script(_WATCH_AND_BEND)
    log_in(page, bob.email, bob.password)
    add_passkey(page, authenticator)
    authenticator.present(False)  # else the login page's autofill signs Bob in again
    sign_out(page)
    log_in(page, user.email, user.password)
    add_passkey(page, authenticator)
    alice_id = base64url(authenticator.credential(user.email)["credentialId"])
    bob_id = base64url(authenticator.credential(bob.email)["credentialId"])

    # Later, when the sign-in is no longer recent.
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=16)):
        page.goto("/account/passkeys")
        expect(page).to_have_url(re.compile(r"/reauthenticate\?next="))
        button = page.locator("[data-gatehouse=passkey-reauthenticate]")
        expect(button).to_be_visible()

        # A page that swaps Bob's passkey in: his signature over Alice's challenge.
        page.evaluate(f"sessionStorage.setItem('bend', '{{\"allowCredentials\": \"{bob_id}\"}}')")
        with (
            page.expect_response(is_post_to("/reauthenticate/passkey/options")) as options,
            page.expect_response(is_post_to("/reauthenticate/passkey")) as answer,
        ):
            button.click()
        assert sent_credential_id(answer.value) == bob_id
        assert answer.value.status == 400
        browser_problems.append(None)
        allowed = options.value.json()["publicKey"]["allowCredentials"]
        assert [c["id"] for c in allowed] == [alice_id]
        expect(passkey_alert(page)).to_have_text(REFUSED)
        page.goto("/account/passkeys")
        expect(page).to_have_url(re.compile(r"/reauthenticate\?next="))

        with page.expect_response(is_post_to("/reauthenticate/passkey")) as own:
            button.click()
        assert sent_credential_id(own.value) == alice_id
        expect(page).to_have_url(re.compile(r"/account/passkeys$"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Your passkeys")


def test_no_passwordless_sign_in_without_user_verification(
    page: Page, user: Any, authenticator: Authenticator, browser_problems: list[str | None]
) -> None:
    page.add_init_script(_WATCH_AND_BEND)
    log_in(page, user.email, user.password)
    add_passkey(page, authenticator)
    # The authenticator is there but cannot verify its user (no fingerprint, no screen lock):
    # the browser refuses every request that requires it, the autofill's too (so it cannot
    # sign in by itself, nor loop), and passkeys.js says so only for the button's.
    authenticator.send("setUserVerified", isUserVerified=False)
    posted: list[Response] = []
    page.on("response", lambda r: posted.append(r) if is_post_to("/login/passkey")(r) else None)
    sign_out(page)
    button = page.get_by_role("button", name="Sign in with a passkey")
    button.click()
    expect(passkey_alert(page)).to_have_text(NOT_USED)  # the browser refused
    assert posted == []

    # A browser that asks without user verification gets an answer: the server refuses it.
    page.evaluate("""sessionStorage.setItem("bend", '{"userVerification": "discouraged"}')""")
    with page.expect_response(is_post_to("/login/passkey")) as answer:
        button.click()
    assert answer.value.status == 400
    browser_problems.append(None)
    expect(passkey_alert(page)).to_have_text(REFUSED)
    page.goto("/blogs")
    expect(page).to_have_url(LOGIN_REDIRECT)


def test_sign_up_with_a_passkey_instead_of_a_password(
    page: Page, authenticator: Authenticator, mailbox: Mailbox
) -> None:
    page.goto("/register")
    page.get_by_label("Email", exact=True).fill("nina@example.com")
    page.get_by_label("Username", exact=True).fill("nina")
    button = page.get_by_role("button", name="Create a passkey instead of a password")
    expect(button).to_be_visible()
    touch(page, authenticator, "/register/passkey")
    button.click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_contain_text("Check your inbox")
    held = authenticator.credential("nina@example.com")
    assert held["isResidentCredential"]

    confirm = mail_to(mailbox, "nina@example.com", "Confirm your email address")
    page.goto(link_path(confirm, "/confirm/"))
    # The login page's autofill asks for its options first, and waits (nobody touches yet).
    with page.expect_response(is_post_to("/login/passkey/options")):
        page.get_by_role("button", name="Confirm my email").click()
    expect(page).to_have_url(re.compile(r"/login$"))

    touch(page, authenticator, "/login/passkey")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page).to_have_url(re.compile(r"/blogs$"))
    expect(page.get_by_role("heading", level=2)).to_have_text("Hi nina")


def test_a_security_key_in_place_of_the_code_at_re_authentication(
    app: Flask, page: Page, user: Any, authenticator: Authenticator
) -> None:
    """ "second-factor-only": the key's answer goes into the form with the password."""
    app.config["GATEHOUSE_PASSKEYS"] = "second-factor-only"
    log_in(page, user.email, user.password)
    page.goto("/account/passkeys")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your security keys")
    page.locator("#passkey-name").fill("Blue key")
    page.locator("[data-gatehouse=passkey-add]").click()
    expect(page).to_have_url(re.compile(r"/account/two-factor$"))

    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=16)):
        page.goto("/account/password")
        expect(page).to_have_url(re.compile(r"/reauthenticate\?next="))
        page.get_by_label("Password", exact=True).fill(user.password)
        button = page.get_by_role("button", name="Use a security key or passkey instead of a code")
        with page.expect_response(is_post_to("/reauthenticate")) as sent:
            button.click()
        assert "passkey_assertion=" in (sent.value.request.post_data or "")
        expect(page).to_have_url(re.compile(r"/account/password$"))
