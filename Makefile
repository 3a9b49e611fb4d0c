# Makefile — entry points for developers and CI. All real work lives in scripts/.
#
#   make run     bootstrap .venv, migrate the database, train the classifier if needed, run the monitor
#   make test    the whole suite (bootstrap, throwaway PostgreSQL, ruff, mypy, pytest) — what CI runs
#   make lint    ruff + mypy only
#   make clean   stop the test PostgreSQL and remove var/ (nothing else)
#
# Extras: `make bootstrap`, `make pg-start` / `make pg-stop`, `make fake-telegram` (port 8081).

SHELL := /bin/bash
VENV  := .venv

.PHONY: run test lint clean bootstrap pg-start pg-stop fake-telegram

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh

lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# var/ holds only throwaway state (test database, logs); stop the server before deleting its files.
clean:
	-bash scripts/pg.sh destroy
	rm -rf var

bootstrap:
	bash scripts/bootstrap.sh

pg-start:
	@bash scripts/pg.sh start

pg-stop:
	bash scripts/pg.sh stop

# A fake Telegram Bot API for trying `yuqing run` by hand (point the bot's base_url at
# http://127.0.0.1:8081/bot); prints every message the bot sends.
fake-telegram: bootstrap
	$(VENV)/bin/python -m tests.fake_telegram --port 8081
