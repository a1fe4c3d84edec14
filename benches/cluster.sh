#!/usr/bin/env bash
# The cluster's cost (issue 23): the same load generator run against one
# broker node, and across two nodes joined by NATS (publishers on node 1,
# subscribers on node 2, so every message crosses), on this machine, in one
# run, interleaved. Reports each run's figures and the CPU seconds of every
# process (both nodes and nats-server) per million deliveries.
#
#   benches/cluster.sh [--reps 3] [--duration 5] [--cases "fan-out-qos1 latency"] \
#       [--loadgen "--drain 60 --idle 20"]   # extra loadgen flags
#
# Needs nats-server on the PATH and release builds of mqtt-broker and
# loadgen (cargo build --release -p mqtt-engine-broker -p mqtt-benches); the
# target directory is $CARGO_TARGET_DIR or target/.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=3
duration=5
cases="fan-out-qos0 fan-out-qos1 latency"
extra=""
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --cases) cases=$2; shift 2 ;;
    --loadgen) extra=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
bin=${CARGO_TARGET_DIR:-target}/release
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp "$work"/*.log "$KEEP_LOGS"/; fi; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# utime+stime of a process, in clock ticks.
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

nats_port=$(free_port)
nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$work/js" >"$work/nats.log" 2>&1 &
nats_pid=$!; pids+=("$nats_pid")
wait_port "$nats_port"

start_node() { # name cluster(yes|no) -> "pid port"
  local port; port=$(free_port)
  {
    printf '[[listener]]\nbind = "127.0.0.1:%s"\n[sys]\ninterval = 0\n' "$port"
    printf '[limits]\nmax_queued_messages = 1000000\nmax_queued_bytes = 1073741824\nmax_inflight = 100\nreceive_maximum = 100\n'
    if [ "$2" = yes ]; then printf '[cluster]\nnats = ["nats://127.0.0.1:%s"]\nnode = "%s"\n' "$nats_port" "$1"; fi
  } >"$work/$1.toml"
  "$bin/mqtt-broker" -c "$work/$1.toml" >"$work/$1.log" 2>&1 &
  local pid=$!; pids+=("$pid")
  wait_port "$port"
  echo "$pid $port"
}

args_of() {
  case "$1" in
    fan-out-qos0) echo "--scenario fan-out --qos 0 --subscribers 100" ;;
    fan-out-qos1) echo "--scenario fan-out --qos 1 --subscribers 100" ;;
    pairs-qos1) echo "--scenario pairs --qos 1 --pairs 100" ;;
    latency) echo "--scenario latency --qos 1 --rate 1000" ;;
    *) echo "unknown case $1" >&2; exit 2 ;;
  esac
}

# start_node runs in a subshell: its pids are recorded here, for cleanup.
read -r single_pid single_port < <(start_node single no)
read -r n1_pid n1_port < <(start_node n1 yes)
read -r n2_pid n2_port < <(start_node n2 yes)
pids+=("$single_pid" "$n1_pid" "$n2_pid")
sleep 2
hz=$(getconf CLK_TCK)
echo "case,setup,rep,msg_per_s,p50_us,p99_us,lost,cpu_s_per_M(nodes+nats)"
for rep in $(seq "$reps"); do
  for c in $cases; do
    for setup in single cluster; do
      if [ "$setup" = single ]; then
        target="--broker 127.0.0.1:$single_port"; watch=("$single_pid")
      else
        target="--broker 127.0.0.1:$n1_port --sub-broker 127.0.0.1:$n2_port --settle 1"
        watch=("$n1_pid" "$n2_pid" "$nats_pid")
      fi
      before=0; for p in "${watch[@]}"; do before=$((before + $(ticks "$p"))); done
      out="$work/run.json"; rm -f "$out"
      # shellcheck disable=SC2046
      "$bin/loadgen" $(args_of "$c") $target --duration "$duration" --topic-prefix "r$rep$setup" --json "$out" $extra >/dev/null
      after=0; for p in "${watch[@]}"; do after=$((after + $(ticks "$p"))); done
      python3 - "$out" "$c" "$setup" "$rep" "$((after - before))" "$hz" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
ticks, hz = int(sys.argv[5]), int(sys.argv[6])
d = r.get("delivered", 0)
cpu = ticks / hz / (d / 1e6) if d else float("nan")
print(f'{sys.argv[2]},{sys.argv[3]},{sys.argv[4]},{r.get("msg_per_s", 0):.0f},'
      f'{r.get("p50_us", "")},{r.get("p99_us", "")},{r.get("lost", "")},{cpu:.3f}')
PY
    done
  done
done
