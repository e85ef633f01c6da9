"""Sign-up in a real browser: the confirmation mail, its link, the button, the first sign-in;
then the same through the dev mailbox of a debug-mode demo, as a developer would."""

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from werkzeug.serving import make_server

from tests.browser.test_pages import REFUSED, log_in, screenshot
from tests.conftest import all_mail_sent
from tests.smtp import Mailbox, link_path

PASSWORD = "quiet violet harbour lantern"
CHECK_INBOX = "Check your inbox: we sent you a link to confirm your address."
CONFIRMED = "Your email address is confirmed. You can sign in now."


def sign_up(page: Page, email: str, username: str) -> None:
    page.goto("/register")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create an account").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_have_text(CHECK_INBOX)


def confirm(page: Page, email: str) -> None:
    """On an opened confirmation link: the page names the address; the button confirms."""
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your email")
    expect(page.get_by_role("main")).to_contain_text(f"Confirm that {email} is your address.")
    screenshot(page, "confirm-email.png")
    page.get_by_role("button", name="Confirm my email").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_have_text(CONFIRMED)


def test_sign_up_confirm_and_sign_in(page: Page, mailbox: Mailbox) -> None:
    sign_up(page, "bob@example.com", "bob")

    page.get_by_label("Email", exact=True).fill("bob@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text(REFUSED)
    expect(page.get_by_role("link", name="Send a new link")).to_be_visible()

    # The sign-up's link, then a fresh one for the right password; either works.
    message = mailbox.wait_for(2)[1]
    page.goto(link_path(message, "/confirm/"))
    confirm(page, "bob@example.com")
    screenshot(page, "login.png")

    log_in(page, "bob@example.com", PASSWORD)
    expect(page.get_by_role("heading", level=2)).to_have_text("Hi bob")


@pytest.fixture
def dev_server(make_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The demo in debug mode with its dev mailbox (instance folder in tmp_path), served over
    HTTP; its mail links point at this server. Yields the base URL."""
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(tmp_path))
    app = make_app(DEBUG=True, GATEHOUSE_DEV_MAILBOX=True)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://localhost:{server.server_port}"
    app.config["GATEHOUSE_BASE_URL"] = url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()
    thread.join()


def test_sign_up_through_the_dev_mailbox(new_context: Any, dev_server: str) -> None:
    page = new_context(base_url=dev_server).new_page()
    sign_up(page, "carol@example.com", "carol")
    assert all_mail_sent()

    page.goto("/dev/mailbox")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dev mailbox")
    row = page.get_by_role("row").filter(has_text="carol@example.com")
    expect(row).to_have_count(1)
    screenshot(page, "dev-mailbox.png")

    row.get_by_role("link", name="The Blog: Confirm your email address").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "The Blog: Confirm your email address"
    )
    screenshot(page, "dev-mailbox-message.png")
    page.locator(f"pre a[href^='{dev_server}/confirm/']").click()
    confirm(page, "carol@example.com")

    log_in(page, "carol@example.com", PASSWORD)
    expect(page.get_by_role("heading", level=2)).to_have_text("Hi carol")
