"""The demo's deployment: gunicorn forks workers from an app built once (``preload_app``), so
building the app must open no connection and start no thread that a fork would share."""

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import TEST_CONFIG

DEMO = Path(__file__).resolve().parent.parent / "examples" / "blog"

#: Build the app as gunicorn's master does, then report its threads and open sockets.
_PROBE = """
import json, os, threading
from blog import create_app
create_app()
def kind(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # the listing's own descriptor, closed by now
        return ""
sockets = [fd for fd in os.listdir("/proc/self/fd") if kind(fd).startswith("socket:")]
print(json.dumps({"threads": threading.active_count(), "sockets": len(sockets)}))
"""


def test_building_the_app_opens_no_connection_and_starts_no_thread(
    database_url: str, ratelimit_storage_uri: str, smtp_server: object
) -> None:
    env = {
        "PATH": str(Path(sys.executable).parent),
        "FLASK_SECRET_KEY": TEST_CONFIG["SECRET_KEY"],
        "FLASK_SQLALCHEMY_DATABASE_URI": database_url,
        "FLASK_GATEHOUSE_BASE_URL": "https://gatehouse.test",
        "FLASK_GATEHOUSE_RATELIMIT_STORAGE_URI": ratelimit_storage_uri,
        "FLASK_MAIL_SERVER": "127.0.0.1",
    }
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=DEMO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout.strip().splitlines()[-1]) == {"threads": 1, "sockets": 0}


def test_the_demos_gunicorn_settings_preload_and_log_access_only_when_asked() -> None:
    settings: dict[str, object] = {}
    exec((DEMO / "gunicorn.conf.py").read_text(), settings)  # noqa: S102 - the demo's own file
    assert settings["preload_app"] is True
    assert settings["accesslog"] is None
    assert callable(settings["when_ready"])
