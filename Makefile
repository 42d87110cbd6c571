# Sendora SMS — `make run` (embedded: SQLite, in-process tasks, demo org) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed

# Test services (override to move them): PostgreSQL and Redis at the standard local ports.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/sendora
# TEST_REDIS_URL is the rate-limit cache; the Celery broker is TEST_BROKER_URL, by default the next database of
# the same Redis (…/9 → …/10; settings.py), so the tests' cache.clear() never drops a queued task.
TEST_REDIS_URL ?= redis://127.0.0.1:6379/9
TEST_BROKER_URL ?=
TEST_ENV = DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
	$(if $(strip $(TEST_BROKER_URL)),CELERY_BROKER_URL=$(TEST_BROKER_URL)) \
	SECRET_KEY=test-secret-key-not-for-production DEBUG=false ALLOWED_HOSTS='*' \
	SMS_ENCRYPTION_KEYS=c2VuZG9yYS10ZXN0LWtleS0wMDAwMDAwMDAwMDAwMDA= NO_PROXY=127.0.0.1,localhost

.PHONY: run test venv migrate demo clean

$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=python3"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $(STAMP)

venv: $(STAMP)

# The embedded development mode turns DEBUG on explicitly (settings default to production: DEBUG off).
RUN_ENV = DEBUG=true

migrate: venv
	$(RUN_ENV) $(BIN)/python manage.py migrate --noinput

demo: migrate
	$(RUN_ENV) $(BIN)/python manage.py seed_demo

run: demo
	$(RUN_ENV) $(BIN)/python manage.py runserver 127.0.0.1:8000

test: venv
	$(TEST_ENV) $(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf var test-artifacts
