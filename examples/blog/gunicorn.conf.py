"""gunicorn settings for the demo: ``gunicorn -c gunicorn.conf.py 'blog:create_app()'``.

Command-line flags (``-b``, ``-w``) override these. gunicorn sends ``Server: gunicorn`` with no
version, and trusts ``X-Forwarded-Proto`` only from ``forwarded_allow_ips`` (a proxy on this
host), so HTTPS is detected behind a local TLS proxy and HSTS is sent.
"""

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
accesslog = "-"
