"""gunicorn settings for the demo: ``gunicorn -c gunicorn.conf.py 'blog:create_app()'``.

Command-line flags (``-b``, ``-w``) override these. gunicorn sends ``Server: gunicorn`` with no
version, and trusts ``X-Forwarded-Proto`` only from ``forwarded_allow_ips`` (a proxy on this
host), so HTTPS is detected behind a local TLS proxy and HSTS is sent.
"""

import gc
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "sync"
threads = 1
# One database connection per thread, plus a little headroom, per worker process.
if "FLASK_SQLALCHEMY_ENGINE_OPTIONS" not in os.environ:
    raw_env = [f'FLASK_SQLALCHEMY_ENGINE_OPTIONS={{"pool_size": {threads + 1}, "max_overflow": 2}}']
timeout = 30
# Recycle workers now and then so a slow leak can never grow unbounded.
max_requests = 10_000
max_requests_jitter = 1_000
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
# The reverse proxy logs every request already (docs/deploy.md); gunicorn's own access log
# costs each request about 65 us, so it is opt-in: GUNICORN_ACCESS_LOG=- (stdout) or a path.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
# The app is built once in the master and forked: workers share its code and data (copy on
# write) instead of each importing everything again. The app opens no connection and starts
# no thread while it is built (tests/test_deployment.py), and each app's state rebuilds its
# pools and locks in a forked child (flask_gatehouse.state).
preload_app = True


def when_ready(server: object) -> None:
    """Before the first fork: move everything the preloaded app allocated out of the garbage
    collector's sight, so a worker's collections neither scan it nor touch (and so copy) the
    pages it lives on."""
    gc.freeze()
