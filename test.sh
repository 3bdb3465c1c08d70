#!/usr/bin/env bash
# Set up (first time) and run the whole test suite: unit tests and the end-to-end tests on a real small model.
# Pass pytest options through, e.g. ./test.sh -m "not e2e" for the fast unit tests only.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
if ! .venv/bin/python -c "import agent, llama_cpp, pytest, sentence_transformers" 2>/dev/null || [ pyproject.toml -nt .venv/.installed-dev ]; then
  echo "Installing (the first time compiles llama.cpp: about 8 minutes on 2 cores; the sentence-transformers step of the RAG test brings torch, about 3 minutes more)…" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[local,dev,ray,quality]"
  touch .venv/.installed-dev
fi
# The browser tests drive Debian's Chromium (never a browser download).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the browser tests…" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
fi
# The history test on PostgreSQL starts a throwaway cluster from Debian's binaries.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's postgresql for the history test…" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null
fi
exec .venv/bin/python -m pytest "$@"
