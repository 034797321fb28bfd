#!/usr/bin/env bash
# Control a throwaway ContextForge gateway (and tiny MCP peers) on loopback for tests and the demo.
#
#   cf.sh install              install the pinned gateway into ./.venv (reused when present)
#   cf.sh start DIR            start a gateway with a fresh SQLite file in DIR; prints its URL
#   cf.sh stop DIR             stop the gateway (and peers) started in DIR
#   cf.sh restart DIR          restart the gateway in DIR on the same port and database
#   cf.sh peer DIR NAME        start a tiny FastMCP peer server; prints its MCP URL
#   cf.sh env DIR              print the gateway's environment (secrets for tests)
#
# Settings can be overridden through the environment before `start`:
#   CF_JWT_SECRET, CF_AUTH_SECRET, CF_ADMIN_EMAIL, CF_EXTRA_ENV ("K=V K2=V2")
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${CF_VENV:-$ROOT/.venv}"
VERSION="1.0.7.post20260921"
PY="${PYTHON:-python3}"

die() { echo "cf.sh: $*" >&2; exit 1; }

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

install() {
  (
    flock 9
    if [ -x "$VENV/bin/mcpgateway" ] \
      && [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp-contextforge-gateway"))' 2>/dev/null)" = "$VERSION" ]; then
      exit 0
    fi
    echo "cf.sh: installing mcp-contextforge-gateway==$VERSION into $VENV" >&2
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV" || die "cannot create venv at $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "mcp-contextforge-gateway==$VERSION" >&2 \
      || die "pip install of mcp-contextforge-gateway==$VERSION failed"
  ) 9>"$ROOT/.venv.lock"
}

wait_http() { # url seconds pidfile logfile
  local url="$1" secs="$2" pidfile="$3" log="$4" i
  for ((i = 0; i < secs * 10; i++)); do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "cf.sh: process exited before it became ready; last log lines:" >&2
      tail -n 40 "$log" >&2 || true
      return 1
    fi
    if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "cf.sh: $url not ready after ${secs}s; last log lines:" >&2
  tail -n 40 "$log" >&2 || true
  return 1
}

start() {
  local dir="$1"; [ -n "$dir" ] || die "usage: cf.sh start DIR"
  install
  mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
  local port; port="$(free_port)"
  cat > "$dir/gateway.env" <<ENV
HOST=127.0.0.1
PORT=$port
DATABASE_URL=sqlite:///$dir/gateway.db
JWT_SECRET_KEY=${CF_JWT_SECRET:-test-jwt-secret-key-for-mcp-gitops-tests}
AUTH_ENCRYPTION_SECRET=${CF_AUTH_SECRET:-test-auth-encryption-secret-0123456789abcdef}
PLATFORM_ADMIN_EMAIL=${CF_ADMIN_EMAIL:-admin@example.com}
PLATFORM_ADMIN_PASSWORD=${CF_ADMIN_PASSWORD:-Changeme-Changeme-Changeme-1!}
PLATFORM_ADMIN_FULL_NAME="Platform Admin"
MCPGATEWAY_UI_ENABLED=false
MCPGATEWAY_ADMIN_API_ENABLED=true
MCPGATEWAY_BULK_IMPORT_ENABLED=true
SSRF_PROTECTION_ENABLED=true
SSRF_ALLOW_LOCALHOST=true
SSRF_ALLOW_PRIVATE_NETWORKS=true
SSRF_DNS_FAIL_CLOSED=false
ROOT_ALLOWED_SCHEMES='["http","https"]'
ROOT_ALLOW_FILE_SCHEME=true
ROOT_ALLOWED_FILE_PREFIXES='["/"]'
EXPOSE_ERROR_DETAILS=true
LOG_LEVEL=WARNING
CACHE_TYPE=memory
PLUGINS_ENABLED=false
OBSERVABILITY_ENABLED=false
ENV
  for kv in ${CF_EXTRA_ENV:-}; do echo "$kv" >> "$dir/gateway.env"; done
  echo "http://127.0.0.1:$port" > "$dir/url"
  launch "$dir" "$port"
}

launch() { # dir port: run the gateway configured in DIR/gateway.env, wait until healthy
  local dir="$1" port="$2"
  (
    cd "$dir"
    set -a; . "$dir/gateway.env"; set +a
    # CF_NICE: the gateway's niceness (default 0), for benchmarks that separate its CPU use
    # from what they measure.
    exec nice -n "${CF_NICE:-0}" "$VENV/bin/mcpgateway" --host 127.0.0.1 --port "$port" >> "$dir/gateway.log" 2>&1
  ) &
  echo $! > "$dir/gateway.pid"
  if ! wait_http "http://127.0.0.1:$port/health" "${CF_START_TIMEOUT:-120}" "$dir/gateway.pid" "$dir/gateway.log"; then
    stop "$dir"; die "gateway did not start (log: $dir/gateway.log)"
  fi
  echo "http://127.0.0.1:$port"
}

restart() {
  local dir="$1"; [ -f "$dir/gateway.env" ] || die "usage: cf.sh restart DIR (no gateway in $dir)"
  dir="$(cd "$dir" && pwd)"
  kill_pidfile "$dir/gateway.pid"
  local port; port="$(sed -n 's/^PORT=//p' "$dir/gateway.env")"
  launch "$dir" "$port"
}

kill_pidfile() {
  local f="$1" pid i
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill "$pid" 2>/dev/null; then
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

stop() {
  local dir="$1"; [ -d "$dir" ] || return 0
  for f in "$dir"/peer-*.pid "$dir"/gateway.pid; do kill_pidfile "$f"; done
}

peer() {
  local dir="$1" name="$2"; [ -n "$name" ] || die "usage: cf.sh peer DIR NAME [PORT]"
  install
  mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
  local port="${3:-}"; [ -n "$port" ] || port="$(free_port)"
  "$VENV/bin/python" "$HERE/peer.py" --name "$name" --port "$port" > "$dir/peer-$name.log" 2>&1 &
  echo $! > "$dir/peer-$name.pid"
  # A plain GET on the MCP endpoint answers (406/400) once the server listens.
  local i
  for ((i = 0; i < 300; i++)); do
    kill -0 "$(cat "$dir/peer-$name.pid")" 2>/dev/null || { tail -n 20 "$dir/peer-$name.log" >&2; die "peer $name exited"; }
    if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/mcp"; then
      echo "http://127.0.0.1:$port/mcp"; return 0
    fi
    sleep 0.1
  done
  die "peer $name did not start"
}

cmd="${1:-}"; shift || true
case "$cmd" in
  install) install ;;
  start) start "${1:-}" ;;
  stop) stop "${1:-}" ;;
  restart) restart "${1:-}" ;;
  peer) peer "${1:-}" "${2:-}" "${3:-}" ;;
  env) cat "${1:?DIR}/gateway.env" ;;
  *) die "usage: cf.sh install|start DIR|stop DIR|peer DIR NAME [PORT]|env DIR" ;;
esac
