#!/usr/bin/env bash
# Idempotent set-up on Debian 12 (run as root, or with sudo available): the OpenGL/EGL libraries
# the headless simulator needs, a virtual environment in .venv, and this package with its dev
# tools. Fast (a hash check) when nothing changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libegl1 libgl1 libglu1-mesa libglib2.0-0 libfreetype6 libfontconfig1)
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

apt_install() {
  echo "bootstrap: apt-get install $*" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

if ! command -v dpkg >/dev/null || ! command -v apt-get >/dev/null; then
  echo "bootstrap: error: this script sets up Debian/Ubuntu (dpkg + apt-get); elsewhere install the" \
       "libraries behind ${APT_PACKAGES[*]} yourself and use a Python 3.11 venv with 'pip install -e .[dev]'" >&2
  exit 1
fi
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ -n $SUDO ]] && ! command -v sudo >/dev/null; then
    echo "bootstrap: error: missing Debian packages ${missing[*]}; run as root or install sudo" >&2
    exit 1
  fi
  apt_install "${missing[@]}"
fi

PY="${PYTHON:-}"
if [[ -z $PY ]]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY=$candidate; break
    fi
  done
fi
if [[ -z $PY ]]; then
  echo "bootstrap: error: Python 3.11 is required (python3.11 not found); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then apt_install python3.11-venv; fi

want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
stamp=.venv/.bootstrap-stamp
if [[ -f $stamp && $(cat "$stamp") == "$want" ]] && .venv/bin/python -c 'import sim2real_env, agents, generators' 2>/dev/null; then
  exit 0
fi

[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q --upgrade pip
# torch first and exactly: the CPU build of 2.13.0 is on local disk; anything looser pulls a
# multi-GB CUDA build (see pyproject.toml).
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e '.[dev]'
echo "$want" > "$stamp"
echo "bootstrap: environment ready in .venv" >&2
