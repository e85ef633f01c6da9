"""Browser fixtures: Debian's Chromium driven by Playwright against the live demo app.

One browser serves the whole run (pytest-playwright's session-scoped ``browser``). Every
context opens at the live server's URL with a 1000x700 viewport, refuses any request that
is not for this machine, and records console errors, uncaught page errors and CSP
violations; a test that leaves any behind fails at teardown.
"""

import shutil
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Route, WebError

#: Without the background-networking flags Chromium keeps dialling out (see RECIPES.md).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

_OWN_STATUS = "Failed to load resource: the server responded with a status of 4"

VIEWPORT = {"width": 1000, "height": 700}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}

#: Turns every CSP violation into a console error, so the console check sees it even where
#: the browser's own report is worded differently or not logged.
_REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile || event.documentURI}:${event.lineNumber}`);
});
"""


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "The browser tests need Debian's Chromium, which is not installed: run "
            "`sudo apt-get update && sudo apt-get install -y chromium` "
            "(Playwright's own `playwright install` cannot download a browser here).",
            pytrace=False,
        )
    return {**browser_type_launch_args, "executable_path": executable, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    # base_url comes from the (per-test) live server and the viewport may vary per context:
    # both are new_context's arguments below (one keyword cannot come from both places).
    return {
        key: value
        for key, value in browser_context_args.items()
        if key not in {"base_url", "viewport"}
    }


def _is_local(url: str) -> bool:
    return urlsplit(url).hostname in LOCAL_HOSTS


@pytest.fixture
def browser_problems() -> Iterator[list[str]]:
    """Console errors, page errors, CSP violations and blocked requests of every context."""
    problems: list[str] = []
    yield problems
    assert not problems, "the browser reported problems:\n" + "\n".join(problems)


@pytest.fixture
def new_context(
    new_context: Callable[..., BrowserContext], live_server: str, browser_problems: list[str]
) -> Callable[..., BrowserContext]:
    """pytest-playwright's ``new_context``, pointed at the live server and watched."""

    def make(**kwargs: Any) -> BrowserContext:
        context = new_context(**{"base_url": live_server, "viewport": VIEWPORT, **kwargs})

        def block(route: Route) -> None:
            browser_problems.append(f"blocked a request off this machine: {route.request.url}")
            route.abort("blockedbyclient")

        def on_console(message: ConsoleMessage) -> None:
            if message.type != "error":
                return
            where = message.page.url if message.page else "?"
            # Chromium logs a page's own 4xx status (a form sent back with its errors is a
            # 400, the not-found page a 404) as "Failed to load resource" at the page's URL;
            # the tests check those pages' content. A stylesheet or other resource that
            # fails is still reported: its message carries the resource's URL.
            if message.text.startswith(_OWN_STATUS) and message.location["url"] == where:
                return
            browser_problems.append(f"console error on {where}: {message.text}")

        def on_web_error(error: WebError) -> None:
            where = error.page.url if error.page else "?"
            browser_problems.append(f"uncaught error on {where}: {error.error}")

        context.route(lambda url: not _is_local(url), block)
        context.add_init_script(_REPORT_CSP_VIOLATIONS)
        context.on("console", on_console)
        context.on("weberror", on_web_error)
        return context

    return make
