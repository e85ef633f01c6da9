# The README's commands. `make run` serves the demo; `make test` is what CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := cd examples/blog && FLASK_DEBUG=1 ../../$(BIN)/flask --app blog
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1/test
REDIS_URL ?= redis://127.0.0.1:6379/0
SCALE_OUT_PG_URL ?= postgresql+psycopg://postgres@127.0.0.1/gatehouse_scale_out
SCALE_OUT_REDIS_URL ?= redis://127.0.0.1:6379/1

.PHONY: run test lint typecheck pytest pytest-sqlite pytest-postgresql bench deps test-deps chromium screenshots \
	api-docs oidc-provider xmlsec1

$(BIN)/flask:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

deps: $(BIN)/flask
	$(BIN)/pip install --quiet -e .

test-deps: $(BIN)/flask chromium oidc-provider xmlsec1
	$(BIN)/pip install --quiet -e '.[test]'

# The SAML identity provider of the tests (pysaml2) will not start without Debian's xmlsec1
# program (it signs through the xmlsec binding). Gatehouse itself needs nothing from Debian:
# the xmlsec wheel bundles its libraries.
xmlsec1:
	@command -v xmlsec1 >/dev/null || (apt-get update -qq && apt-get install -y -qq xmlsec1)

# The OpenID Connect provider the social-login tests start (node's oidc-provider, from npm).
oidc-provider: tests/oidc_provider/node_modules/.package-lock.json

tests/oidc_provider/node_modules/.package-lock.json: tests/oidc_provider/package-lock.json
	@command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	cd tests/oidc_provider && npm ci --silent --no-audit --no-fund

# Debian's Chromium drives the browser tests (Playwright cannot download its own here).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

# The demo on http://localhost:5000 with an embedded SQLite database (instance/blog.db),
# migrated on the way. Debug mode (a random secret key is kept in instance/secret_key) and
# plain-HTTP development, so the Secure cookie flag is turned off.
run: deps
	$(DEMO) db upgrade
	cd examples/blog && FLASK_DEBUG=1 FLASK_GATEHOUSE_COOKIE_SECURE=false \
		../../$(BIN)/flask --app blog run --host localhost --port 5000

# Lint, type-check, then the whole suite twice: SQLite with in-memory rate-limit counters,
# and PostgreSQL with counters in Redis. tests/test_api_contract.py (schemathesis's command
# line against the demo served by gunicorn, on a database of its own) runs in the first only.
test: test-deps lint typecheck pytest

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

# The two passes run side by side (one per core), each with its own scale-out database and
# Redis database; each pass's output is printed whole when it ends.
pytest:
	$(MAKE) --no-print-directory -j2 --output-sync=target pytest-sqlite pytest-postgresql

pytest-sqlite:
	GATEHOUSE_SCALE_OUT_DATABASE_URL=$(SCALE_OUT_PG_URL) GATEHOUSE_SCALE_OUT_REDIS_URL=$(SCALE_OUT_REDIS_URL) \
		$(BIN)/pytest

pytest-postgresql:
	$(BIN)/pytest --database-url $(PG_URL) --ratelimit-storage-uri $(REDIS_URL) \
		--ignore tests/test_api_contract.py

# Refresh the README's screenshots from the browser tests.
screenshots: test-deps
	GATEHOUSE_SCREENSHOTS=docs/screenshots $(BIN)/pytest tests/browser

# The API's reference page, docs/api-reference.html, from its OpenAPI document (Redocly's
# static page; needs Node.js). tests/test_openapi.py fails while the page is out of date.
REDOCLY := @redocly/cli@2.77.0
api-docs:
	REDOCLY_TELEMETRY=off npx --yes $(REDOCLY) build-docs src/flask_gatehouse/api/openapi.json \
		--title "Gatehouse API reference" --openapi.disableTelemetry=true \
		--output docs/api-reference.html

bench: deps
	$(BIN)/python bench/blogs.py
