#!/usr/bin/env bash
# Set up (first time) and start the app at http://127.0.0.1:8000 (HOST / PORT to change; other
# options pass through to `dataset-agent serve`, e.g. ./run.sh --open).
# Uses Ollama's llama3.1 when Ollama is running, else the small built-in model (the `local` extra,
# compiled on first install; without a C compiler the app is installed without it).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
LOG=.venv/install.log

# pip's own output, condensed: a dot per library, one line per compiled package (the full log
# goes to $LOG). Fails as pip does.
pip_step() {
  PYTHONUNBUFFERED=1 .venv/bin/python -m pip install --progress-bar off "$@" 2>&1 | tee -a "$LOG" |
    awk '/^Collecting /{n++; printf "."; fflush()}
         /Building wheel for [^ ]+ .*started/{printf "\n  compiling %s…", $4; fflush()}
         END{printf " %d libraries\n", n}' >&2
}

ready() {
  [ .venv/.installed -nt pyproject.toml ] && .venv/bin/python -c "import agent, chainlit" 2>/dev/null &&
    { [ -e .venv/.no-local ] || .venv/bin/python -c "import llama_cpp" 2>/dev/null; }
}

if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
if ! ready; then
  : >"$LOG"
  rm -f .venv/.no-local
  echo "Installing (the first time takes a few minutes; full log in $LOG)" >&2
  echo "[1/3] pip…" >&2
  .venv/bin/python -m pip install -q --upgrade pip >>"$LOG" 2>&1
  echo "[2/3] the app (about 170 libraries, 1–2 minutes)" >&2
  if ! pip_step -e .; then
    tail -n 20 "$LOG" >&2
    echo "The install failed (above; the full log is in $LOG)." >&2
    exit 1
  fi
  echo "[3/3] the built-in model: compiles llama.cpp the first time (about 8 minutes on 2 cores)" >&2
  if ! pip_step -e ".[local]"; then
    echo "The built-in model could not be installed (it needs a C compiler; details in $LOG): the app starts without it and uses Ollama." >&2
    touch .venv/.no-local
  fi
  touch .venv/.installed
fi
exec .venv/bin/dataset-agent serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" "$@"
