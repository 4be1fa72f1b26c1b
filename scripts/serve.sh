#!/usr/bin/env bash
# Serve the app to a whole class: N Streamlit replicas behind HAProxy with sticky sessions.
#
#   bash scripts/serve.sh --replicas N [--port P] [--address A] [--run-dir DIR]
#
# One Streamlit process runs every session's script under one GIL, so a second process is how a
# second core gets used. Each replica listens on a free port of 127.0.0.1; HAProxy listens on A:P
# (default 0.0.0.0:8501), pins every browser to one replica with a cookie, carries the websockets
# and checks /_stcore/health. All replicas share one user models folder (AE_USER_MODELS_DIR, or the
# app's default). The environment is passed on (AE_DATA_DIR, AE_RUN_LOG, ...). Ctrl-C or SIGTERM
# stops everything. deploy/haproxy.cfg is the HAProxy configuration; deploy/README.md explains it
# and how to spread replicas over several machines.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
cd "$AE_ROOT"

usage() { echo "usage: bash scripts/serve.sh --replicas N [--port P] [--address A] [--run-dir DIR]" >&2; exit 2; }
replicas=2 port=8501 address=0.0.0.0 run_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --replicas) replicas="${2:-}"; shift 2 || usage ;;
    --port) port="${2:-}"; shift 2 || usage ;;
    --address) address="${2:-}"; shift 2 || usage ;;
    --run-dir) run_dir="${2:-}"; shift 2 || usage ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument $1" >&2; usage ;;
  esac
done
[[ "$replicas" =~ ^[1-9][0-9]?$ ]] || { echo "error: --replicas must be 1 to 99, not '$replicas'" >&2; exit 2; }
[[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] \
  || { echo "error: --port must be 1 to 65535, not '$port'" >&2; exit 2; }

# Debian's HAProxy, installed like scripts/test.sh installs Chromium.
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
if [ ! -x "$HAPROXY" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "Installing Debian's haproxy..." >&2
    apt-get install -y -q haproxy >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q haproxy >/dev/null; }
    HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
  else
    echo "error: haproxy is not installed (as root: apt-get install haproxy)" >&2
    exit 1
  fi
fi

# Every replica must save and list models in the same folder: resolve it once, for all of them.
AE_USER_MODELS_DIR=$(python -c 'from ae.weights import user_models_dir; print(user_models_dir().resolve())')
export AE_USER_MODELS_DIR
mkdir -p "$AE_USER_MODELS_DIR"

if [ -z "$run_dir" ]; then run_dir=$(mktemp -d "${TMPDIR:-/tmp}/ae-serve.XXXXXX"); fi
mkdir -p "$run_dir"
run_dir=$(cd "$run_dir" && pwd)

names=() ports=() pids=() haproxy_pid=""
stopping=0
stop_all() {
  stopping=1
  trap - INT TERM EXIT
  [ -n "$haproxy_pid" ] && kill -TERM "$haproxy_pid" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # Streamlit stops its sessions (and any training) on SIGTERM; give it a while, then insist.
  for _ in $(seq 100); do
    alive=0
    for pid in "${pids[@]}" $haproxy_pid; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}" $haproxy_pid; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "Stopped (logs in $run_dir)." >&2
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

free_port() { python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_replica() {  # $1: index into names/ports; the log is appended, so restarts keep their history
  local i=$1
  streamlit run app.py --server.headless true --server.address 127.0.0.1 --server.port "${ports[$i]}" \
    --browser.gatherUsageStats false >>"$run_dir/${names[$i]}.log" 2>&1 &
  pids[$i]=$!
}

write_replicas() {  # name, address and pid of each replica, for scripts that watch them
  for ((j = 0; j < ${#pids[@]}; j++)); do echo "${names[$j]} 127.0.0.1:${ports[$j]} ${pids[$j]}"; done > "$run_dir/replicas.txt"
}

healthy() { python -c 'import sys, urllib.request; sys.exit(urllib.request.urlopen(sys.argv[1], timeout=2).read() != b"ok")' \
  "http://127.0.0.1:$1/_stcore/health" 2>/dev/null; }

for ((i = 0; i < replicas; i++)); do
  names[$i]="r$((i + 1))"
  ports[$i]=$(free_port)
  start_replica "$i"
done
echo "Starting $replicas replicas (models folder $AE_USER_MODELS_DIR, logs in $run_dir)..." >&2
deadline=$((SECONDS + 120))
for ((i = 0; i < replicas; i++)); do
  until healthy "${ports[$i]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null || [ $SECONDS -gt $deadline ]; then
      echo "error: replica ${names[$i]} did not start; the end of its log:" >&2
      tail -n 30 "$run_dir/${names[$i]}.log" >&2
      exit 1
    fi
    sleep 0.5
  done
done
write_replicas

# The template ends inside its backend section, so the appended server lines belong to it.
cfg="$run_dir/haproxy.cfg"
{
  cat deploy/haproxy.cfg
  for ((i = 0; i < replicas; i++)); do
    echo "    server ${names[$i]} 127.0.0.1:${ports[$i]} check cookie ${names[$i]}"
  done
} > "$cfg"
export AE_BIND="$address:$port" AE_RUN_DIR="$run_dir"
"$HAPROXY" -c -q -f "$cfg" || { echo "error: HAProxy rejected $cfg" >&2; exit 1; }
"$HAPROXY" -db -f "$cfg" >>"$run_dir/haproxy.log" 2>&1 &
haproxy_pid=$!
until python -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()' \
    "$([ "$address" = 0.0.0.0 ] && echo 127.0.0.1 || echo "$address")" "$port" 2>/dev/null; do
  kill -0 "$haproxy_pid" 2>/dev/null || { echo "error: HAProxy did not start:" >&2; tail -n 20 "$run_dir/haproxy.log" >&2; exit 1; }
  sleep 0.2
done
echo "$haproxy_pid" > "$run_dir/haproxy.pid"
echo "Serving on http://$address:$port/ with $replicas replicas (${ports[*]}); Ctrl-C stops. Logs: $run_dir" >&2
echo ready > "$run_dir/ready"

# Supervise: a replica that dies is started again on its port (HAProxy's health check sends its
# users elsewhere meanwhile; their tabs reconnect with a fresh session). HAProxy dying ends it all.
while true; do
  wait -n || true
  [ $stopping = 1 ] && break
  if ! kill -0 "$haproxy_pid" 2>/dev/null; then
    echo "error: HAProxy exited; the end of its log:" >&2
    tail -n 20 "$run_dir/haproxy.log" >&2
    exit 1
  fi
  for ((i = 0; i < replicas; i++)); do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "replica ${names[$i]} exited; starting it again (its log: $run_dir/${names[$i]}.log)" >&2
      sleep 1  # no busy loop if it cannot start at all
      start_replica "$i"
      write_replicas
    fi
  done
done
