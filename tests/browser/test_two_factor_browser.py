"""Two-factor authentication in a real browser: enrol an authenticator app from the account
page, keep the recovery codes, then sign in with the password and a code.

Codes are computed with pyotp from the key the enrolment page shows, on the real clock: the
server accepts the current 30-second step +-1 but only a step later than the last one used,
so the sign-in sends the code of the step after the enrolment's.
"""

import re
import time
from typing import Any

import pyotp
from playwright.sync_api import Page, expect

from tests.browser.test_pages import LOGIN_REDIRECT, screenshot

#: The start of the error a wrong code gets (the advice after it may change).
WRONG_CODE = "That code is not right."


def enrol(page: Page, password: str) -> str:
    """From the account page to the recovery codes, as a person would: the key read off the
    enrolment page and the code an app would show for it now."""
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    page.get_by_role("link", name="Set up two-factor authentication").click()
    page.wait_for_load_state("load")
    if "/reauthenticate" in page.url:  # only when the sign-in is no longer recent
        page.get_by_label("Password", exact=True).fill(password)
        page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/account/two-factor$"))

    qr_code = page.get_by_role("img", name="QR code holding the key below")
    expect(qr_code).to_be_visible()
    # Drawn, not a broken image: the SVG data URI passed the CSP's img-src.
    assert qr_code.evaluate("img => img.complete && img.naturalWidth > 0")
    key = page.locator("code.totp-key").inner_text()
    assert re.fullmatch(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", key), key
    secret = key.replace(" ", "")
    page.wait_for_load_state("load")
    screenshot(page, "two-factor-setup.png")

    page.get_by_label("Code", exact=True).fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Switch two-factor authentication on").click()
    return secret


def test_enrol_then_sign_in_with_a_code(page: Page, user: Any) -> None:
    page.goto("/login")
    page.get_by_label("Email", exact=True).fill(user.email)
    page.get_by_label("Password", exact=True).fill(user.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/blogs$"))

    secret = enrol(page, user.password)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    expect(page.get_by_role("status")).to_have_text("Two-factor authentication is on.")
    codes = page.get_by_role("main").get_by_role("listitem")
    expect(codes).to_have_count(10)
    for code in codes.all_inner_texts():
        assert re.fullmatch(r"[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}", code), code
    download = page.get_by_role("link", name="Download the codes as a text file")
    expect(download).to_have_attribute("download", "recovery-codes.txt")
    expect(download).to_have_attribute("href", re.compile(r"^data:text/plain;"))
    page.wait_for_load_state("load")
    screenshot(page, "recovery-codes.png")

    page.get_by_role("navigation", name="Account").get_by_role("link", name="Sign out").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))

    page.get_by_label("Email", exact=True).fill(user.email)
    page.get_by_label("Password", exact=True).fill(user.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login/two-factor$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-factor authentication")
    code_field = page.get_by_label("Code", exact=True)
    expect(code_field).to_be_focused()
    page.wait_for_load_state("load")
    screenshot(page, "login-two-factor.png")

    # A code no step of the window (now +-1, and the next one) would accept.
    totp = pyotp.TOTP(secret)
    window = {totp.at(time.time() + offset) for offset in (-30, 0, 30, 60)}
    wrong = next(code for code in ("000000", "111111", "222222", "333333") if code not in window)
    code_field.fill(wrong)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login/two-factor$"))
    expect(page.locator("#code-error")).to_contain_text(WRONG_CODE)
    expect(code_field).to_have_attribute("aria-invalid", "true")
    expect(code_field).to_be_focused()
    elsewhere = page.context.new_page()  # same cookies: the password alone opened nothing
    elsewhere.goto("/blogs")
    expect(elsewhere).to_have_url(LOGIN_REDIRECT)
    elsewhere.close()

    # The enrolment used the current step; the next step's code is later and still inside
    # the window.
    code_field.fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/blogs$"))
    expect(page.get_by_role("heading", level=2)).to_have_text(f"Hi {user.username}")
