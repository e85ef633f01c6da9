"""The demo as a visitor meets it: one set of words on every page and in every mail ("Sign in",
"Sign out", "Create an account"), and an icon where browsers look for one."""

import re
from html import unescape
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import csrf_token, login
from tests.smtp import Mailbox, html, text
from tests.test_confirmation import sign_up

#: The other set of words, which the pages no longer mix in.
OTHER_WORDS = re.compile(r"\b(log ?in|log ?out|logged (in|out)|register|sign[ -]?up)\b", re.I)


def words(page: str) -> str:
    """What a reader sees of a page or a mail: its text, without tags, attributes or URLs."""
    return re.sub(r"https?://\S+", " ", unescape(re.sub(r"<[^>]*>", " ", page)))


def sent_back(client: FlaskClient, path: str) -> str:
    """The form at ``path`` submitted empty: the page with its errors."""
    return client.post(path, data={"csrf_token": csrf_token(client.get(path))}).text


def test_pages_and_mail_use_one_set_of_words(app: Flask, user: Any, mailbox: Mailbox) -> None:
    visitor = app.test_client()
    pages = {path: visitor.get(path).text for path in ("/login", "/register", "/forgot")}
    pages |= {f"{path} (errors)": sent_back(visitor, path) for path in ("/login", "/register")}
    pages["/no-such-page"] = visitor.get("/no-such-page").text
    member = app.test_client()
    assert login(member, user.email).status_code == 302
    for path in ("/blogs", "/account", "/account/password", "/account/email", "/logout"):
        pages[path] = member.get(path).text
    for path, page in pages.items():
        found = OTHER_WORDS.search(words(page))
        assert found is None, f"{path} says {found.group()!r}"

    assert sign_up(app.test_client(), "new@example.com").status_code == 302
    assert sign_up(app.test_client(), user.email, username="someone").status_code == 302
    messages = mailbox.wait_for(2)
    assert len(messages) == 2
    for message in messages:
        for part in (str(message["Subject"]), text(message), html(message)):
            found = OTHER_WORDS.search(words(part))
            assert found is None, f"{message['Subject']} says {found.group()!r}"


@pytest.mark.parametrize("signed_in", [False, True], ids=["visitor", "member"])
def test_the_icon_is_linked_and_served(client: FlaskClient, user: Any, signed_in: bool) -> None:
    if signed_in:
        assert login(client, user.email).status_code == 302
    page = client.get("/login" if not signed_in else "/account")
    (href,) = re.findall(r'<link rel="icon" href="([^"]+)"', page.text)
    for path in (href, "/favicon.ico"):
        with client.get(path) as icon:
            assert icon.status_code == 200, path
            assert icon.mimetype == "image/svg+xml", path
            assert icon.data.startswith(b"<svg "), path
