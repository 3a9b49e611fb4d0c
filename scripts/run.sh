#!/usr/bin/env bash
# scripts/run.sh — the main job (`make run` calls it): prepare everything, then start the service.
#
#   bash scripts/run.sh                 # embedded SQLite (var/yuqing.db) and the bundled offline demo sources
#   bash scripts/run.sh --drill 3600    # extra args go to `yuqing run` (here: a duty drill, 5 h in 5 s)
#
# Steps: bootstrap .venv, migrate the database, train the default classifier if none is active, run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/bootstrap.sh
.venv/bin/yuqing db upgrade
.venv/bin/yuqing train --if-missing
exec .venv/bin/yuqing run "$@"
