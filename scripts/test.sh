#!/usr/bin/env bash
# scripts/test.sh — the whole test suite; the single command CI runs (`make test` calls it).
#
#   bash scripts/test.sh                              # everything
#   bash scripts/test.sh tests/test_fake_telegram.py  # extra args go to pytest (ruff/mypy still run)
#   bash scripts/test.sh -k deadline -x
#
# Steps, failing fast (the exit code is the first failing step's):
#   1. scripts/bootstrap.sh             (.venv with -e '.[dev]')
#   2. scripts/pg.sh start              (throwaway PostgreSQL; stopped again on exit)
#   3. .venv/bin/ruff check .
#   4. .venv/bin/mypy                   (files and strictness configured in pyproject.toml)
#   5. .venv/bin/python -m pytest -q "$@"
#
# Environment:
#   YUQING_TEST_PG_URL   when already set (e.g. CI provides a database service), pg.sh is skipped
#                        and this URL is used as is.
#   YUQING_REQUIRE_PG=1  is always exported: tests needing PostgreSQL must fail, not skip, without it.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

header() { printf '\n==> %s\n' "$*"; }

# Run one step; on failure report it and exit with its status (fail fast).
run_step() {
    local name="$1" rc=0
    shift
    header "$name"
    "$@" || rc=$?
    if [[ "$rc" != 0 ]]; then
        printf '\n==> FAILED: %s (exit %s)\n' "$name" "$rc" >&2
        exit "$rc"
    fi
}

run_step "bootstrap" bash scripts/bootstrap.sh

header "postgres"
if [[ -n "${YUQING_TEST_PG_URL:-}" ]]; then
    echo "using YUQING_TEST_PG_URL from the environment"
else
    # Stop the server on exit — unless it was already running before us (a developer's session).
    if ! bash scripts/pg.sh status >/dev/null 2>&1; then
        trap 'bash scripts/pg.sh stop >/dev/null 2>&1 || true' EXIT
    fi
    pg_env="$(bash scripts/pg.sh start)" || { rc=$?; echo "==> FAILED: postgres (exit $rc)" >&2; exit "$rc"; }
    eval "$pg_env"
fi
export YUQING_TEST_PG_URL
export YUQING_REQUIRE_PG=1
echo "YUQING_TEST_PG_URL=$YUQING_TEST_PG_URL"

run_step "ruff check ." .venv/bin/ruff check .
run_step "mypy" .venv/bin/mypy
run_step "pytest" .venv/bin/python -m pytest -q "$@"

header "all steps passed"
