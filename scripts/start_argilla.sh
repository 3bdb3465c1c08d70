#!/usr/bin/env bash
# Start a real argilla-server 2.8.0 for the tests, idempotently, and print its URL.
#
#   - its own virtualenv (.argilla-venv/: the server pins older fastapi/pydantic than the app);
#   - SQLite under $ARGILLA_HOME (default .argilla-venv/home, wiped on each fresh start so the
#     in-memory search index and the database agree);
#   - Debian's redis-server (installed with apt-get when missing and run as root), daemonized;
#   - the in-memory search engine of tests/argilla_server (no Elasticsearch/OpenSearch here);
#   - an owner user "argilla" with a known API key ($ARGILLA_API_KEY, default below).
#
# Env: ARGILLA_PORT (6900), REDIS_PORT (6379), ARGILLA_API_KEY (argilla.test-owner-key).
# Eval-able output on stdout: `eval "$(scripts/start_argilla.sh)"` exports ARGILLA_API_URL/KEY.
# Measured on 2 cores: cold venv install about 40 s, server start about 7-10 s, re-run ~0.1 s.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PORT=${ARGILLA_PORT:-6900}
REDIS_PORT=${REDIS_PORT:-6379}
API_KEY=${ARGILLA_API_KEY:-argilla.test-owner-key}
VENV=$ROOT/.argilla-venv
HOME_DIR=${ARGILLA_HOME:-$VENV/home}
URL="http://127.0.0.1:$PORT"
log() { echo "[start_argilla] $*" >&2; }
emit() { printf 'export ARGILLA_API_URL=%s\nexport ARGILLA_API_KEY=%s\n' "$URL" "$API_KEY"; }

up() { curl -fsS -m 2 -H "X-Argilla-Api-Key: $API_KEY" "$URL/api/v1/me" >/dev/null 2>&1; }
if up; then log "already running at $URL"; emit; exit 0; fi

# 1. virtualenv
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if ! "$VENV/bin/python" -c "import argilla_server" 2>/dev/null; then
  log "installing argilla-server 2.8.0 into $VENV (about 40 s)…"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q "argilla-server==2.8.0" "click<8.2" >&2
fi

# 2. redis
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian's redis-server…"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2
  else
    log "redis-server is missing: install it (apt-get install redis-server)"; exit 1
  fi
fi
if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  log "starting redis on port $REDIS_PORT"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --save "" --appendonly no \
    --dir /tmp --logfile "/tmp/argilla-redis-$REDIS_PORT.log" >&2
fi

# 3. database and owner user (fresh each start)
export ARGILLA_HOME_PATH=$HOME_DIR
export ARGILLA_DATABASE_URL="sqlite+aiosqlite:///$HOME_DIR/argilla.db?check_same_thread=False"
export ARGILLA_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export ARGILLA_SEARCH_ENGINE=memory
export HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1
rm -rf "$HOME_DIR" && mkdir -p "$HOME_DIR"
if ! { "$VENV/bin/python" -m argilla_server database migrate &&
  "$VENV/bin/python" -m argilla_server database users create --first-name Owner --username argilla \
    --password argilla-test-password --role owner --api-key "$API_KEY" --workspace argilla; } \
  >"$HOME_DIR/setup.log" 2>&1; then
  log "database setup failed:"; tail -20 "$HOME_DIR/setup.log" >&2; exit 1
fi

# 4. server in the background
log "starting argilla-server at $URL (log: $HOME_DIR/server.log)"
nohup "$VENV/bin/python" "$ROOT/tests/argilla_server/serve.py" 127.0.0.1 "$PORT" \
  >"$HOME_DIR/server.log" 2>&1 </dev/null &
echo $! >"$HOME_DIR/server.pid"
for _ in $(seq 1 120); do
  if up; then log "ready at $URL"; emit; exit 0; fi
  if ! kill -0 "$(cat "$HOME_DIR/server.pid")" 2>/dev/null; then break; fi
  sleep 0.5
done
log "argilla-server did not come up; last log lines:"; tail -20 "$HOME_DIR/server.log" >&2
exit 1
