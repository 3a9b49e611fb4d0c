#!/usr/bin/env bash
# scripts/bootstrap.sh — prepare the development environment (idempotent).
#
#   bash scripts/bootstrap.sh          # from any directory
#
# Steps (one output line each):
#   1. make sure `make` exists (apt-get install when root on Debian),
#   2. find a Python >= 3.11 whose `venv` module works (apt-get install python3 / python3-venv when
#      root on Debian and it is missing or broken),
#   3. create .venv in the repository root when it is missing or unusable,
#   4. `pip install -e '.[dev]'` into .venv — skipped when a stamp file under .venv says the installed
#      state is current. The stamp key hashes pyproject.toml, the venv's Python version and the list of
#      top-level importable packages/modules (setuptools' editable finder maps packages that existed
#      at install time, so a newly added package needs a re-install).
#
# Environment knobs:
#   PYTHON=/path/to/python3.12   use this interpreter instead of searching for one
#   YUQING_BOOTSTRAP_FORCE=1     re-run pip even when the stamp is current
set -euo pipefail

# Work from the repository root whatever the caller's cwd is.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

VENV="$REPO_ROOT/.venv"
STAMP="$VENV/.yuqing-bootstrap.stamp"
PIP_LOG="$VENV/.yuqing-pip.log"
MIN_PY_CHECK='import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'

say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: ERROR: %s\n' "$*" >&2; exit 1; }

# --- apt helpers ------------------------------------------------------------------------------
# We only ever install system packages when running as root on a Debian-like system; otherwise we
# tell the user what is missing.
can_apt() { [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; }

APT_UPDATED=0
apt_install() {
    can_apt || die "missing system package(s): $* (install them, or re-run as root on Debian)"
    export DEBIAN_FRONTEND=noninteractive
    if [[ "$APT_UPDATED" == 0 ]]; then
        apt-get update -qq >/dev/null || die "apt-get update failed"
        APT_UPDATED=1
    fi
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null || die "apt-get install $* failed"
}

# --- 1. make ----------------------------------------------------------------------------------
if command -v make >/dev/null 2>&1; then
    say "make: present"
else
    apt_install make
    say "make: installed with apt-get"
fi

# --- 2. a Python >= 3.11 ------------------------------------------------------------------------
find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3 python3.13 python3.12 python3.11; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "$MIN_PY_CHECK" 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

PY="$(find_python || true)"
if [[ -z "$PY" ]]; then
    # Fresh Debian images ship without Python; Debian 12 (bookworm) and newer carry >= 3.11.
    apt_install python3 python3-venv
    PY="$(find_python || true)"
    [[ -n "$PY" ]] || die "no Python >= 3.11 found (set PYTHON=/path/to/python3.11+)"
fi
PY_VERSION="$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
say "python: $PY ($PY_VERSION)"

# --- 3. .venv ---------------------------------------------------------------------------------
venv_ok() {
    [[ -x "$VENV/bin/python" ]] \
        && "$VENV/bin/python" -c "$MIN_PY_CHECK" 2>/dev/null \
        && "$VENV/bin/python" -m pip --version >/dev/null 2>&1
}

make_venv() {
    rm -rf "$VENV"
    "$PY" -m venv "$VENV" >/dev/null 2>&1
}

if venv_ok; then
    say "venv: $VENV exists"
else
    if ! make_venv; then
        # Debian splits `ensurepip` into python3-venv / python3.X-venv; without it `python -m venv`
        # fails with "ensurepip is not available". Install both names (the versioned one matters when
        # $PY is not the distribution's default python3).
        py_mm="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
        if can_apt; then
            apt_install python3-venv "python${py_mm}-venv"
        fi
        make_venv || die "'$PY -m venv' does not work (on Debian: apt-get install python${py_mm}-venv)"
    fi
    venv_ok || die "created $VENV but it has no working pip"
    rm -f "$STAMP"
    say "venv: created $VENV"
fi

# --- 4. pip install -e '.[dev]' (skipped when current) --------------------------------------------
# Stamp key: pyproject.toml + legacy setup files + venv Python version + top-level package layout.
stamp_key() {
    {
        cat pyproject.toml
        [[ -f setup.cfg ]] && cat setup.cfg
        [[ -f setup.py ]] && cat setup.py
        "$VENV/bin/python" -c 'import sys; print(sys.version)'
        # Top-level packages (directories with __init__.py) and the pipeline module.
        ls -1d -- */__init__.py pipeline.py 2>/dev/null || true
    } | sha256sum | cut -d' ' -f1
}

KEY="$(stamp_key)"
if [[ "${YUQING_BOOTSTRAP_FORCE:-0}" != 1 && -f "$STAMP" && "$(cat "$STAMP")" == "$KEY" ]]; then
    say "deps: up to date (pyproject.toml unchanged)"
    exit 0
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
if ! "$VENV/bin/python" -m pip install -e '.[dev]' >"$PIP_LOG" 2>&1; then
    tail -n 40 "$PIP_LOG" >&2
    die "pip install -e '.[dev]' failed (full log: $PIP_LOG)"
fi
printf '%s\n' "$KEY" >"$STAMP"
say "deps: installed -e '.[dev]' into .venv"
