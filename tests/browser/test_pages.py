"""The demo blog's pages in a real browser: sign-up form, login, logout, keyboard use, sessions.

The session cookie is ``__Host-gatehouse_session`` (Secure): Chromium treats
http://localhost as a secure context, so it keeps Secure and ``__Host-`` cookies there.
Screenshots are written to $GATEHOUSE_SCREENSHOTS (`make screenshots` points it at
docs/screenshots/ for the README), else to a temporary folder.
Every test also fails on console errors, page errors and CSP violations (conftest.py).
"""

import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Request, Response, expect

SCREENSHOTS = Path(
    os.environ.get("GATEHOUSE_SCREENSHOTS") or Path(tempfile.gettempdir()) / "gatehouse-screenshots"
)
COOKIE = "__Host-gatehouse_session"
PHONE = {"width": 390, "height": 844}
PHONE_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Mobile Safari/537.36"
)
LOGIN_REDIRECT = re.compile(r"/login\?next=(/|%2F)blogs$")
REFUSED = (
    "Incorrect email or password. If you have just created your account, confirm your address "
    "first: follow the link in the email we sent you."
)

#: What has the focus, and whether it shows a focus indicator.
_FOCUSED = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {
    tag: el.tagName.toLowerCase(), id: el.id, type: el.getAttribute("type"),
    text: (el.innerText || "").trim(), focusVisible: el.matches(":focus-visible"),
    outlineStyle: style.outlineStyle, outlineWidth: style.outlineWidth,
  };
}"""


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / name, full_page=True, animations="disabled")


def session_cookie(context: BrowserContext) -> dict[str, Any] | None:
    return next((dict(c) for c in context.cookies() if c["name"] == COOKIE), None)


def log_in(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/blogs$"))
    # The URL changes before the page has loaded; a navigation started now would abort its
    # stylesheet requests (the browser's doing, not the server's).
    page.wait_for_load_state("load")


def open_settled(page: Page, path: str) -> None:
    """Open ``path`` and let two frames render: browsers apply ``autofocus`` while rendering,
    after the load event, and a person cannot press a key before the page is drawn."""
    page.goto(path)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def focused(page: Page) -> dict[str, Any]:
    info: dict[str, Any] = page.evaluate(_FOCUSED)
    return info


def assert_focus_shown(info: dict[str, Any]) -> None:
    assert info["focusVisible"], f"focus is not :focus-visible on {info}"
    assert info["outlineStyle"] != "none", f"no focus outline on {info}"
    assert info["outlineWidth"] != "0px", f"zero-width focus outline on {info}"


def test_sign_up_marks_a_bad_field_and_keeps_the_others(page: Page) -> None:
    page.goto("/register")
    expect(page).to_have_title("Create an account · The Blog")
    page.get_by_label("Email", exact=True).fill("bob@example.com")
    page.get_by_label("Username", exact=True).fill("bob")
    page.get_by_label("Password", exact=True).fill("too short")
    page.get_by_role("button", name="Create an account").click()

    password = page.get_by_label("Password", exact=True)
    expect(page.locator("#password-error")).to_contain_text("15")
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(password).to_have_attribute("aria-describedby", "password-help password-error")
    expect(password).to_be_focused()
    expect(page.get_by_label("Email", exact=True)).to_have_value("bob@example.com")
    screenshot(page, "register.png")


@pytest.mark.parametrize("path", ["/register", "/login", "/forgot", "/confirm/resend"])
def test_a_form_sent_back_focuses_its_first_invalid_field(page: Page, path: str) -> None:
    """The cursor lands where the work is, not on the page body."""
    page.goto(path)
    page.locator("main form button[type=submit]").first.click()
    invalid = page.locator("[aria-invalid=true]")
    expect(invalid.first).to_be_visible()
    expect(invalid.first).to_be_focused()
    assert page.locator("[autofocus]").count() == 1, "one autofocus per page"


def test_a_signed_in_form_sent_back_focuses_its_first_invalid_field(page: Page, user: Any) -> None:
    log_in(page, user.email, user.password)
    page.goto("/account/password")
    page.get_by_label("New password", exact=True).fill("too short")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_label("Current password", exact=True)).to_be_focused()


def test_log_in_log_out(page: Page, user: Any) -> None:
    """Sign-up and confirmation have their own browser tests (test_signup_browser.py)."""
    log_in(page, user.email, user.password)
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome to the Blog")
    expect(page.get_by_role("heading", level=2)).to_have_text(f"Hi {user.username}")
    cookie = session_cookie(page.context)
    assert cookie is not None, "Chromium dropped the Secure __Host- cookie on http://localhost"
    assert cookie["secure"]
    assert cookie["httpOnly"]
    assert (cookie["path"], cookie["sameSite"], cookie["expires"]) == ("/", "Lax", -1)
    screenshot(page, "blogs.png")

    page.get_by_role("main").get_by_role("link", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/logout\??$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign out")
    screenshot(page, "logout.png")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_have_text("You have been signed out.")
    assert session_cookie(page.context) is None
    page.goto("/blogs")
    expect(page).to_have_url(LOGIN_REDIRECT)


def test_navigation_and_pages_use_the_same_words(page: Page, user: Any) -> None:
    """One set of words: a link in the header leads to a page of the same name."""
    page.goto("/login")
    nav = page.get_by_role("navigation", name="Account")
    heading = page.get_by_role("heading", level=1)
    expect(nav.get_by_role("link")).to_have_text(["Sign in", "Create an account"])
    nav.get_by_role("link", name="Create an account").click()
    expect(heading).to_have_text("Create an account")
    expect(page.get_by_role("button", name="Create an account")).to_be_visible()
    nav.get_by_role("link", name="Sign in").click()
    expect(heading).to_have_text("Sign in")

    log_in(page, user.email, user.password)
    expect(nav.get_by_role("link")).to_have_text(["Account", "Sign out"])
    nav.get_by_role("link", name="Sign out").click()
    expect(heading).to_have_text("Sign out")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_login_page_fits_a_phone(new_context: Any) -> None:
    page = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    page.goto("/login")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for control in ("#email", "#password", "button[type=submit]"):
        box = page.locator(control).bounding_box()
        assert box is not None
        assert box["x"] >= 0, control
        assert box["x"] + box["width"] <= PHONE["width"], control
    screenshot(page, "login-mobile.png")


def test_first_tab_reaches_the_skip_link(page: Page) -> None:
    open_settled(page, "/login")
    page.keyboard.press("Tab")
    first = focused(page)
    assert (first["tag"], first["text"]) == ("a", "Skip to content"), (
        f"the first Tab on /login went to {first}, not the skip link"
    )
    assert_focus_shown(first)
    box = page.locator(".skip-link").bounding_box()
    assert box is not None
    assert box["x"] >= 0, "the focused skip link is off screen"

    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/login#main$"))
    assert focused(page)["id"] == "main"
    page.keyboard.press("Tab")
    assert focused(page)["id"] == "email"


def test_keyboard_only_login(page: Page, user: Any) -> None:
    open_settled(page, "/login")
    for _ in range(8):  # past the skip link and the header's links, unless autofocused
        if focused(page)["id"] == "email":
            break
        page.keyboard.press("Tab")
    email = focused(page)
    assert email["id"] == "email"
    assert_focus_shown(email)
    page.keyboard.type(user.email)

    page.keyboard.press("Tab")
    password = focused(page)
    assert (password["id"], password["type"]) == ("password", "password")
    assert_focus_shown(password)
    page.keyboard.type(user.password)

    page.keyboard.press("Tab")
    remember = focused(page)
    assert (remember["id"], remember["type"]) == ("remember", "checkbox")
    assert_focus_shown(remember)
    page.keyboard.press("Space")
    expect(page.get_by_label("Keep me signed in")).to_be_checked()

    page.keyboard.press("Tab")
    button = focused(page)
    assert (button["tag"], button["text"]) == ("button", "Sign in")
    assert_focus_shown(button)

    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/blogs$"))
    cookie = session_cookie(page.context)
    assert cookie is not None
    assert cookie["expires"] > time.time() + 29 * 86400, "remember me did not persist the cookie"


def test_wrong_password_keeps_the_email_and_alerts(page: Page, user: Any) -> None:
    page.goto("/login")
    page.get_by_label("Email", exact=True).fill(user.email)
    page.get_by_label("Password", exact=True).fill("not the right password at all")
    page.get_by_role("button", name="Sign in", exact=True).click()

    expect(page.get_by_role("alert")).to_have_text(REFUSED)
    expect(page.get_by_label("Email", exact=True)).to_have_value(user.email)
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    expect(page.get_by_label("Password", exact=True)).to_be_focused()
    assert session_cookie(page.context) is None

    # An address with no account gets exactly the same answer.
    page.get_by_label("Email", exact=True).fill("nobody@example.com")
    page.get_by_label("Password", exact=True).fill("not the right password at all")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_label("Email", exact=True)).to_have_value("nobody@example.com")
    expect(page.get_by_role("alert")).to_have_text(REFUSED)


def test_sign_out_everywhere_else(new_context: Any, user: Any) -> None:
    laptop = new_context().new_page()
    phone = new_context(user_agent=PHONE_USER_AGENT).new_page()
    log_in(laptop, user.email, user.password)
    log_in(phone, user.email, user.password)

    laptop.goto("/account")
    rows = laptop.locator("table.sessions tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="this device")).to_have_count(1)
    expect(laptop.locator("tr.current")).to_contain_text("this device")
    expect(rows.filter(has_not_text="this device")).to_contain_text("Android")
    screenshot(laptop, "account.png")

    laptop.get_by_role("button", name="Sign out everywhere else").click()
    expect(laptop).to_have_url(re.compile(r"/account$"))
    expect(laptop.get_by_role("status")).to_have_text("Signed out 1 other session.")
    expect(rows).to_have_count(1)
    expect(laptop.get_by_role("button", name="Sign out everywhere else")).to_have_count(0)

    phone.goto("/blogs")
    expect(phone).to_have_url(LOGIN_REDIRECT)
    laptop.goto("/blogs")
    expect(laptop.get_by_role("heading", level=1)).to_have_text("Welcome to the Blog")


#: Per cell of the account page's tables: its caption as drawn (the ::before box), whether
#: it clears the value, and how many lines the cell's date takes.
_CELLS = """(selector) => [...document.querySelectorAll(selector)].map((cell) => {
  const before = getComputedStyle(cell, "::before");
  const time = cell.querySelector("time");
  return {
    label: cell.dataset.label, caption: before.content, display: before.display,
    visibility: before.visibility, captionWidth: parseFloat(before.width),
    indent: parseFloat(getComputedStyle(cell).paddingLeft),
    dateLines: time ? time.getClientRects().length : null,
  };
})"""


def test_account_tables_keep_their_labels_on_a_phone(new_context: Any, user: Any) -> None:
    """At 390 px the header row gives way to a caption beside each value; dates stay on one
    line; nothing scrolls sideways."""
    laptop = new_context().new_page()
    log_in(laptop, user.email, user.password)
    page = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    log_in(page, user.email, user.password)
    page.goto("/account")
    expect(page.locator("table.sessions tbody tr")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    expect(page.locator("table.sessions thead")).to_be_hidden()

    for table, labels in (
        ("sessions", {"Device", "IP address", "Last active (UTC)"}),
        ("events", {"When (UTC)", "What", "Result", "IP address"}),
    ):
        cells = page.evaluate(_CELLS, f"table.{table} td[data-label]")
        assert {cell["label"] for cell in cells} == labels
        for cell in cells:
            assert cell["caption"] == f'"{cell["label"]}"', cell
            assert cell["display"] != "none", cell
            assert cell["visibility"] == "visible", cell
            assert 0 < cell["captionWidth"] < cell["indent"], f"caption overlaps value: {cell}"
            assert cell["dateLines"] in (None, 1), f"a date wraps: {cell}"
    screenshot(page, "account-mobile.png")


@pytest.mark.parametrize("signed_in", [False, True], ids=["visitor", "member"])
def test_pages_load_cleanly(
    page: Page, user: Any, browser_problems: list[str], signed_in: bool
) -> None:
    """Every page's resources load (stylesheets as text/css), with nothing in the console."""
    failures: list[str] = []

    def check(response: Response) -> None:
        request = response.request
        if request.resource_type == "document":
            return
        if response.status != 200:
            failures.append(f"{request.url} answered {response.status}")
        elif request.resource_type == "stylesheet":
            kind = response.header_value("content-type") or ""
            if not kind.startswith("text/css"):
                failures.append(f"{request.url} came as {kind}")

    def failed(request: Request) -> None:
        # Chromium fetches a page's icon after its load event, and the next goto may cancel
        # that fetch (the browser's doing); an icon that arrives is checked like the rest.
        cancelled_icon = request.url.endswith("/favicon.svg") and "ABORTED" in (
            request.failure or ""
        )
        if request.resource_type != "document" and not cancelled_icon:
            failures.append(f"{request.url} failed to load: {request.failure}")

    page.on("response", check)
    page.on("requestfailed", failed)
    if signed_in:
        log_in(page, user.email, user.password)
        paths = ["/blogs", "/account", "/logout", "/no-such-page"]
    else:
        paths = ["/login", "/register", "/no-such-page"]
    for path in paths:
        page.goto(path)
        expect(page.locator("main h1, main h2").first).to_be_visible()
        # The login page's script fetches passkey options after the load; leaving before it
        # answers would cancel the fetch (the test's doing, not the page's).
        page.wait_for_load_state("networkidle")
    if not signed_in:  # the pages sent back with errors
        page.goto("/register")
        page.get_by_role("button", name="Create an account").click()
        expect(page.locator(".field-invalid").first).to_be_visible()
        page.wait_for_load_state("load")
        page.goto("/login")
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.locator(".field-invalid").first).to_be_visible()
        page.wait_for_load_state("load")

    problems = failures + browser_problems
    browser_problems.clear()  # reported here, not again at teardown
    assert not problems, "\n".join(problems)
