#!/usr/bin/env bash
# Install everything the test suite needs into .venv and run the whole suite.
# This is the README's test command; .ci/run calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages, from Debian when missing (no test tool may download its own browser or
# database here): Chromium drives the browser tests, PostgreSQL is the team store's real
# server (tests/pg_server.py starts and stops its own cluster on 127.0.0.1).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium fonts-dejavu-core)
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = "0" ]; then
    # Install without starting services (the tests start their own PostgreSQL; a package's
    # service that cannot start in a container must not fail the install): the standard
    # policy-rc.d "101: not allowed" while apt runs, removed afterwards.
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
      made_policy=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
  else
    echo "missing Debian packages: ${missing[*]} (the browser and team-store tests need them)" >&2
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, alone: asked for by itself, pip takes this machine's CPU wheel (+cpu, from
# its find-links); resolved inside the whole test extra it can prefer PyPI's CUDA build
# and its ~3 GB of nvidia-* wheels. Installed first, the extra's torch==2.13.0 keeps it.
.venv/bin/python -m pip install -q "torch==2.13.0"
# The editable install also builds the JupyterLab extension (jlpm install + build).
.venv/bin/python -m pip install -q -e ".[test]"
# Frontend unit tests (node's test runner on the pure modules).
(cd labextension && ../.venv/bin/jlpm test)
# Frontend lint: eslint (typescript-eslint recommended) + prettier --check.
(cd labextension && ../.venv/bin/jlpm lint)
.venv/bin/python -m ruff format --check nbtrack tests benchmarks
.venv/bin/python -m ruff check nbtrack tests benchmarks
.venv/bin/python -m mypy
.venv/bin/python -m pytest "$@"
