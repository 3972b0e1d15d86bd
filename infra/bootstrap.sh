#!/usr/bin/env bash
# Installs what dataops needs on a Debian or Ubuntu host, idempotently:
#   1. the Debian packages listed in src/dataops/local/apt-packages.txt (a project's copy:
#      infra/apt-packages.txt) plus python3-venv,
#      with services kept from auto-starting (dataops starts and owns them);
#   2. the virtualenv .venv with the exact versions of requirements.lock (installed with uv):
#      in the toolkit's own repository the dataops package itself (editable, from src/); in a
#      project `dataops init` made, the `dataops==VERSION` the lock pins, from the wheel in
#      vendor/ (no network needed for it).
# Run as root or with sudo. Interrupted? Run it again: every step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "bootstrap: run as root (or install sudo)" >&2; exit 3; }
  SUDO="sudo"
fi
say() { printf '\033[2m·\033[0m %s\n' "$*" >&2; }

# -- 1. Debian packages --------------------------------------------------------------------------
apt_list=src/dataops/local/apt-packages.txt
[ -f "$apt_list" ] || apt_list=infra/apt-packages.txt
need=()
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
command -v make >/dev/null || need+=(make)
command -v curl >/dev/null || need+=(curl)
while read -r package program; do
  case "$package" in ''|'#'*) continue ;; esac
  # shellcheck disable=SC2086
  if ! ls $program >/dev/null 2>&1; then need+=("$package"); fi
done < "$apt_list"

if [ ${#need[@]} -gt 0 ]; then
  say "installing Debian packages: ${need[*]}"
  added_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    # Keep maintainer scripts from starting a system postgres/registry/dockerd on our ports.
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  trap 'if [ -n "$added_policy" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi' EXIT
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
else
  say "Debian packages: all present"
fi

# -- 2. Python virtualenv ------------------------------------------------------------------------
if ! .venv/bin/python -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  say "creating .venv with $(python3 --version)"
  rm -rf .venv
  python3 -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  uv_pin=$(grep -E '^uv==' requirements.lock | head -n 1)
  say "installing ${uv_pin} into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check "${uv_pin}"
fi
say "syncing .venv with requirements.lock"
# Byte-compiled at install, as pip does by default and uv does not: with PYTHONDONTWRITEBYTECODE
# set (some CI hosts set it) no process writes a .pyc, so every Airflow process and CLI command
# would compile its modules from source again (the three deployments would start much slower).
# A re-run only checks the .pyc files.
if [ -d src/dataops ]; then
  .venv/bin/uv pip sync -q --compile-bytecode --python .venv/bin/python requirements.lock
  .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
  .venv/bin/python -m compileall -q -j 0 src/dataops >/dev/null
else
  grep -qE '^dataops==' requirements.lock || {
    echo "bootstrap: requirements.lock pins no dataops==VERSION (docs: Upgrade the toolkit)" >&2
    exit 3
  }
  .venv/bin/uv pip sync -q --compile-bytecode --python .venv/bin/python \
    --refresh-package dataops --find-links vendor requirements.lock
fi
say "ready: .venv/bin/dataops ($(.venv/bin/dataops --version))"
