"""Forgot password → reset link → sign in with the new password, in a real browser.

The mail comes through the test suite's SMTP server; its link (on GATEHOUSE_BASE_URL) is
opened on the live server instead.
"""

import re
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.test_pages import log_in, screenshot
from tests.smtp import Mailbox, link_path

NEW_PASSWORD = "quiet violet harbour lantern"


def test_forgot_reset_sign_in(page: Page, user: Any, mailbox: Mailbox) -> None:
    page.goto("/login")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page).to_have_url(re.compile(r"/forgot$"))
    email = page.get_by_label("Email", exact=True)
    expect(email).to_be_focused()
    email.fill(user.email)
    page.get_by_role("button", name="Email me a reset link").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_have_text(
        "If an account exists for that address, we've emailed a link to reset its password."
    )

    (message,) = mailbox.wait_for(1)
    page.goto(link_path(message, "/reset/"))
    expect(page).to_have_title("Choose a new password · The Blog")
    expect(page.get_by_role("main")).to_contain_text(user.email)
    password = page.get_by_label("New password", exact=True)
    expect(password).to_be_focused()
    password.fill("too short")
    page.get_by_role("button", name="Set new password").click()
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#password-error")).to_be_visible()
    page.wait_for_load_state("load")
    screenshot(page, "reset-password.png")

    password.fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set new password").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_have_text(
        "Your password has been changed. Sign in with your new password."
    )
    log_in(page, user.email, NEW_PASSWORD)
