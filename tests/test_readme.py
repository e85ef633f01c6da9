"""The README's "Add it to your app" runs as written: its Python block saved as ``app.py``, its
shell block's variables, debug mode (``flask run --debug``); then a new user signs up, reads
the confirmation mail in the dev mailbox, follows it, signs in and is greeted."""

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from flask_gatehouse import testing
from tests.conftest import PASSWORD, TEST_CONFIG, csrf_token, login

README = Path(__file__).parent.parent / "README.md"


def section() -> str:
    text = README.read_text()
    start = text.index("\n## Add it to your app\n")
    return text[start : text.index("\n## ", start + 1)]


def block(language: str) -> str:
    """The section's first code block in ``language``."""
    found = re.search(rf"^```{language}\n(.*?)^```$", section(), re.DOTALL | re.MULTILINE)
    assert found, f"no {language} block under 'Add it to your app'"
    return found.group(1)


def shell_variables() -> dict[str, str]:
    """The FLASK_* variables the shell block exports, as bash sets them (the block without
    its last line, the one that starts the server)."""
    *exports, run = block("sh").strip().splitlines()
    assert run.startswith("flask --app app run --debug")
    bin_dir = str(Path(sys.executable).parent)
    script = "\n".join([*exports, "env -0"])
    output = subprocess.run(
        ["bash", "-c", script],
        env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pairs = (line.partition("=") for line in output.split("\0") if line)
    return {name: value for name, _, value in pairs if name.startswith("FLASK_")}


@pytest.fixture
def readme_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """``create_app()`` of the README's app.py, in a folder of its own (its SQLite database and
    dev mailbox land in ``instance/`` there)."""
    variables = shell_variables()
    assert {"FLASK_SECRET_KEY", "FLASK_GATEHOUSE_BASE_URL"} <= variables.keys()
    cheap_hashes = {
        f"FLASK_{key}": str(value) for key, value in TEST_CONFIG.items() if "ARGON2" in key
    }
    for name, value in {**variables, **cheap_hashes, "FLASK_DEBUG": "1"}.items():
        monkeypatch.setenv(name, value)  # FLASK_DEBUG: flask run --debug
    path = tmp_path / "app.py"
    path.write_text(block("python"))
    spec = importlib.util.spec_from_file_location("readme_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Flask finds the app's folder (and so its instance folder) through sys.modules.
    monkeypatch.setitem(sys.modules, "readme_app", module)
    spec.loader.exec_module(module)
    app: Flask = module.create_app()
    yield app
    testing.stop_mail(app)
    with app.app_context():
        module.db.engine.dispose()


def test_the_snippet_signs_up_confirms_signs_in_and_greets(readme_app: Flask) -> None:
    client = readme_app.test_client()
    assert client.get("/").status_code == 302  # sign in first

    form = {"email": "bob@example.com", "username": "bob", "password": PASSWORD}
    form["csrf_token"] = csrf_token(client.get("/register"))
    assert client.post("/register", data=form).status_code == 302

    assert testing.wait_for_mail(readme_app)
    listing = client.get("/dev/mailbox")
    assert listing.status_code == 200
    (message_url,) = re.findall(r'href="(/dev/mailbox/[^"]+)"', listing.text)
    message = client.get(message_url).text
    base_url = re.escape(readme_app.config["GATEHOUSE_BASE_URL"])
    (link,) = set(re.findall(rf'href="{base_url}(/confirm/[^"]+)"', message))
    confirm = {"csrf_token": csrf_token(client.get(link))}
    assert client.post(link, data=confirm).status_code == 302

    assert login(client, "bob@example.com").headers["Location"] == "/"
    greeting = client.get("/")
    assert greeting.status_code == 200
    assert greeting.text == "Hello, bob!"
