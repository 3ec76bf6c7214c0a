# Two commands do all set-up: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test install install-dev migrate lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(STAMP)

# The application's packages for `make run`; the test tools on top of them for `make test`.
$(DEV_STAMP): requirements-dev.txt $(STAMP)
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(DEV_STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)

# The console on http://127.0.0.1:8000 with web, worker and beat, on the embedded default
# (a PostgreSQL server with its data under var/ and a filesystem broker) unless DATABASE_URL /
# REDIS_URL say otherwise. The first command to connect starts the server; it is stopped when
# honcho exits or a step fails, Ctrl-C included (the shell traps INT only to go on to the stop).
run: export DEBUG ?= 1
run: export LOG_FORMAT ?= console
# Warnings and errors only: the terminal ends on the login box (demo_lab --announce-login), not
# under a stream of progress lines; the console shows progress.
run: export LOG_LEVEL ?= WARNING
run: export CELERY_LOG_LEVEL ?= WARNING
run: install
	trap : INT TERM; status=0; \
	$(BIN)/python manage.py migrate --noinput && \
	$(BIN)/python manage.py seed_demo --login-file var/demo-login && \
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile || status=$$?; \
	$(BIN)/python manage.py embedded_db stop; exit $$status

# The layers' contract (.importlinter) first: a broken one fails the run before any test.
test: install-dev
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	-[ ! -d var/postgres ] || DEBUG=1 WATCHPOST_VAR_DIR=var $(BIN)/python manage.py embedded_db stop
	rm -rf var/ staticfiles/
