#!/usr/bin/env bash
# Side-by-side broker benchmark (issue 7): our broker, Eclipse Mosquitto and
# rumqttd (and, with --before, an older build of ours), driven by the same load generator (benches/src/bin/loadgen.rs), on
# this machine, in one run.
#
#   benches/compare.sh                  # full: 3 repetitions, pinned and unpinned
#   benches/compare.sh --quick          # smoke run: short, 1 repetition
#   benches/compare.sh --duration 5 --reps 3 --modes "pinned unpinned" \
#       --cases "fan-in-qos1 latency" --out target/compare/mine
#   benches/compare.sh --before /path/to/old/mqtt-broker --brokers "ours before" \
#       [--before-drop "max_queued_bytes max_offline_bytes"]  # keys it refuses
#   benches/compare.sh --persist --cases fan-in-qos1
#                                       # durable: our broker on a data directory
#                                       # (fsync per commit), Mosquitto with
#                                       # persistence on (autosave every second),
#                                       # subscribers with persistent sessions
#                                       # before/after: an older build of ours
#                                       # as a fourth broker ("before"), with the
#                                       # same configuration; an A/B table
#
# Every broker is started fresh for every run, on a free loopback port, with
# equivalent limits: 100 QoS 1/2 messages in flight per client, queues large
# enough that no QoS 1/2 message is dropped, no $SYS publishing, no
# persistence, 20,000 connections. Runs are interleaved (each case runs
# against all three brokers before the next case; the broker order rotates
# between repetitions), so a disturbance of the shared machine spreads over
# all three. Modes: "pinned" runs the broker on CPU 0 and the generator on
# CPU 1 (taskset); "unpinned" lets the scheduler place both.
#
# Output (in --out, default target/compare/<UTC time>): results.jsonl (one
# record per run, loadgen's own), report.md (the tables, also printed), and
# logs/ (each broker's output, first MiB). Only ratios from one run should be
# compared: absolute figures move with the machine's load.
#
# Cargo runs under `flock $CARGO_LOCK` when that file exists (default
# /tmp/cargo.lock, the lock the shared development machine uses).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

quick=0
reps=3
duration=10
modes="pinned unpinned"
cases=""
out=""
before_src=""
# Configuration keys the older build does not know (it refuses unknown
# keys): left out of its configuration, e.g. --before-drop "max_offline_bytes".
before_drop=""
brokers=""
persist=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --reps) reps=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --cases) cases=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --before) before_src=$2; shift 2 ;;
    --before-drop) before_drop=$2; shift 2 ;;
    --brokers) brokers=$2; shift 2 ;;
    --persist) persist=1; shift ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

# Scale of each case: full size, or the smoke run's.
if [ "$quick" = 1 ]; then
  reps=1
  duration=2
  pairs=100
  subscribers=100
  connections=2000
else
  pairs=500
  subscribers=100
  connections=15000
fi
all_cases="fan-in-qos0 fan-in-qos1 fan-in-qos2 fan-out-qos0 fan-out-qos1 pairs-qos1 latency connections"
cases=${cases:-$all_cases}
if [ -z "$brokers" ]; then
  brokers="ours mosquitto rumqttd"
  [ -n "$before_src" ] && brokers="ours before mosquitto rumqttd"
fi
case " $brokers " in
  *" before "*) [ -x "$before_src" ] || { echo "compare.sh: --before needs an executable mqtt-broker" >&2; exit 2; } ;;
esac

out=${out:-target/compare/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
results="$out/results.jsonl"
: > "$results"

CARGO_LOCK=${CARGO_LOCK-/tmp/cargo.lock}
cargo_() {
  if [ -n "$CARGO_LOCK" ] && [ -e "$CARGO_LOCK" ]; then
    flock "$CARGO_LOCK" cargo "$@"
  else
    cargo "$@"
  fi
}

echo "== building our broker and the load generator (release)"
cargo_ build --release -p mqtt-engine-broker
cargo_ build --release -p mqtt-benches --bin loadgen
# Copies, so that a rebuild in the shared target directory during the run
# (another session at work) cannot change the binaries between runs.
mkdir -p "$out/bin"
cp "$root/target/release/mqtt-broker" "$root/target/release/loadgen" "$out/bin/"
ours_bin="$out/bin/mqtt-broker"
before_bin=""
if [ -n "$before_src" ]; then
  cp "$before_src" "$out/bin/mqtt-broker-before"
  before_bin="$out/bin/mqtt-broker-before"
fi
loadgen="$out/bin/loadgen"
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if ! git diff --quiet HEAD -- mqtt-codec mqtt-session mqtt-router mqtt-client adapters/broker benches 2>/dev/null; then
  revision="$revision with uncommitted changes"
fi

echo "== the peers"
mosquitto_bin=""
rumqttd_bin=""
case " $brokers " in *" mosquitto "*)
mosquitto_bin=$(command -v mosquitto || true)
[ -z "$mosquitto_bin" ] && [ -x /usr/sbin/mosquitto ] && mosquitto_bin=/usr/sbin/mosquitto
if [ -z "$mosquitto_bin" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto
  mosquitto_bin=/usr/sbin/mosquitto
fi
;; esac
case " $brokers " in *" rumqttd "*)
rumqttd_bin=$(command -v rumqttd || true)
[ -z "$rumqttd_bin" ] && [ -x "$HOME/.cargo/bin/rumqttd" ] && rumqttd_bin="$HOME/.cargo/bin/rumqttd"
if [ -z "$rumqttd_bin" ]; then
  # Not --locked: rumqttd 0.20.0's own lock file pins metrics 0.22.1, which
  # current rustc refuses (E0521); the newest compatible versions build.
  cargo_ install rumqttd --version 0.20.0
  rumqttd_bin="$HOME/.cargo/bin/rumqttd"
fi
;; esac
mosquitto_version=$([ -n "$mosquitto_bin" ] && "$mosquitto_bin" -h 2>/dev/null | head -1 || true)
rumqttd_version=$([ -n "$rumqttd_bin" ] && "$rumqttd_bin" --version 2>/dev/null || true)
echo "mosquitto: $mosquitto_bin ($mosquitto_version); rumqttd: $rumqttd_bin ($rumqttd_version)"

# The connection case needs ~15,000 descriptors in the broker and in the
# generator; brokers inherit this shell's limit.
ulimit -n "$(ulimit -Hn)"
echo "open files: soft $(ulimit -Sn), hard $(ulimit -Hn)"

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Writes the broker's configuration for $port into $2 (a directory) and
# prints the command line that starts it.
configure() {
  local broker=$1 dir=$2 port=$3
  case "$broker" in
    ours|before)
      cat > "$dir/ours.toml" <<EOF
[[listener]]
bind = "127.0.0.1:$port"

[limits]
max_connections = 20000
max_inflight = 100
receive_maximum = 100
max_queued_messages = 1000000
max_queued_bytes = 4294967296
max_offline_bytes = 4294967296
max_keep_alive = 3600

[sys]
interval = 0
EOF
      if [ "$persist" = 1 ]; then
        printf '\n[persistence]\npath = "%s"\n' "$dir/data-$broker" >> "$dir/ours.toml"
      fi
      if [ "$broker" = before ]; then
        for key in $before_drop; do
          sed -i "/^$key = /d" "$dir/ours.toml"
        done
        echo "$before_bin -c $dir/ours.toml"
      else
        echo "$ours_bin -c $dir/ours.toml"
      fi
      ;;
    mosquitto)
      cat > "$dir/mosquitto.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
max_connections -1
max_inflight_messages 100
max_queued_messages 0
max_queued_bytes 0
persistence $([ "$persist" = 1 ] && echo true || echo false)
persistence_location $dir/
autosave_interval 1
sys_interval 0
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
EOF
      echo "$mosquitto_bin -c $dir/mosquitto.conf"
      ;;
    rumqttd)
      # rumqttd 0.20: a commit log per filter in segments; a reader that
      # falls more than max_segment_count segments behind loses messages,
      # so segments are large. next_connection_delay_ms = 0: the default
      # config waits 1 ms between accepts.
      cat > "$dir/rumqttd.toml" <<EOF
id = 0

[router]
id = 0
max_connections = 20010
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "127.0.0.1:$port"
next_connection_delay_ms = 0
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 20480
    max_inflight_count = 100
    dynamic_filters = true
EOF
      echo "$rumqttd_bin -q -c $dir/rumqttd.toml"
      ;;
  esac
}

broker_pid=""
stop_broker() {
  [ -n "$broker_pid" ] || return 0
  kill -TERM "$broker_pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$broker_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$broker_pid" 2>/dev/null || true
  wait "$broker_pid" 2>/dev/null || true
  broker_pid=""
}
trap 'stop_broker' EXIT INT TERM

# Arguments of loadgen for a case.
case_args() {
  case "$1" in
    fan-in-qos0) echo "--scenario fan-in --qos 0" ;;
    fan-in-qos1) echo "--scenario fan-in --qos 1" ;;
    fan-in-qos2) echo "--scenario qos2" ;;
    fan-out-qos0) echo "--scenario fan-out --qos 0 --subscribers $subscribers" ;;
    fan-out-qos1) echo "--scenario fan-out --qos 1 --subscribers $subscribers" ;;
    pairs-qos1) echo "--scenario pairs --qos 1 --pairs $pairs" ;;
    latency) echo "--scenario latency --qos 1 --rate 1000" ;;
    connections) echo "--scenario connections --connections $connections" ;;
    *) echo "compare.sh: unknown case $1" >&2; return 1 ;;
  esac
}

run_one() {
  local broker=$1 case=$2 mode=$3 rep=$4
  local dir port cmd pin_broker="" pin_gen="" log
  dir=$(mktemp -d)
  port=$(free_port)
  cmd=$(configure "$broker" "$dir" "$port")
  if [ "$mode" = pinned ]; then
    pin_broker="taskset -c 0"
    pin_gen="taskset -c 1"
  fi
  log="$out/logs/$broker-$case-$mode-$rep.log"
  # shellcheck disable=SC2086
  $pin_broker $cmd > >(head -c 1048576 > "$log") 2>&1 &
  broker_pid=$!
  local up=0
  for _ in $(seq 100); do
    if ss -ltn "sport = :$port" | grep -q LISTEN; then up=1; break; fi
    sleep 0.1
  done
  if [ "$up" = 1 ]; then
    # shellcheck disable=SC2046
    timeout $((duration * 2 + 300)) $pin_gen "$loadgen" --broker "127.0.0.1:$port" \
      $(case_args "$case") --duration "$duration" --broker-pid "$broker_pid" \
      --json "$results" --tag "broker=$broker" --tag "case=$case" --tag "mode=$mode" \
      --tag "rep=$rep" --tag "persist=$persist" \
      $([ "$persist" = 1 ] && echo --persistent-subscribers) || echo "   (loadgen failed: exit $?)"
  else
    echo "   $broker did not start listening on $port; see $log"
    echo "{\"scenario\":\"none\",\"broker\":\"$broker\",\"case\":\"$case\",\"mode\":\"$mode\",\"rep\":\"$rep\",\"error\":\"broker did not start\"}" >> "$results"
  fi
  stop_broker
  rm -rf "$dir"
}

started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "== runs: cases [$cases], modes [$modes], $reps repetition(s), ${duration}s each; out $out"
for mode in $modes; do
  for rep in $(seq "$reps"); do
    # Rotate the broker order between repetitions.
    order=$brokers
    n_brokers=$(echo $brokers | wc -w)
    for _ in $(seq $(((rep - 1) % n_brokers))); do
      set -- $order
      first=$1; shift
      order="$* $first"
    done
    for case in $cases; do
      for broker in $order; do
        echo "-- $mode rep $rep: $case on $broker"
        run_one "$broker" "$case" "$mode" "$rep"
      done
    done
  done
done
finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)

/usr/bin/python3 - "$results" "$out/report.md" "$started" "$finished" "$duration" "$reps" \
  "$mosquitto_version" "$rumqttd_version" "$(nproc)" "$(uptime)" "$revision" <<'PY'
import json, statistics, sys

(results, report, started, finished, duration, reps,
 mosq_v, rum_v, nproc, uptime, revision) = sys.argv[1:12]
rows = [json.loads(l) for l in open(results) if l.strip()]
brokers = ["ours", "mosquitto", "rumqttd"]
names = {"ours": "ours", "mosquitto": "Mosquitto", "rumqttd": "rumqttd", "before": "before"}
# Metrics per case: (key, label, higher is better).
metrics = {
    "latency": [("p50_us", "p50 µs", False), ("p99_us", "p99 µs", False),
                ("p999_us", "p99.9 µs", False)],
    "connections": [("connect_per_s", "connects/s", True),
                    ("rss_per_conn_bytes", "RSS B/conn", False)],
}
default_metric = [("msg_per_s", "deliveries/s", True)]

def fmt(v):
    if v is None:
        return "–"
    a = abs(v)
    if a >= 100_000:
        return f"{v/1e6:.2f} M" if a >= 1e6 else f"{v/1e3:.0f} k"
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:.2f}" if a >= 1 else f"{v:.3f}"

def runs(mode, case, broker):
    return [r for r in rows if r.get("mode") == mode and r.get("case") == case
            and r.get("broker") == broker]

def values(rs, key):
    return [r[key] for r in rs if isinstance(r.get(key), (int, float)) and "error" not in r]

def cell(vs):
    if not vs:
        return "–"
    m = statistics.median(vs)
    if len(vs) == 1:
        return fmt(m)
    return f"{fmt(m)} ({fmt(min(vs))}–{fmt(max(vs))})"

def med(vs):
    return statistics.median(vs) if vs else None

def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"

lines = []
lines.append(f"Run {started} – {finished}; {reps} repetition(s) of {duration} s per case "
             f"and broker; `nproc` = {nproc}; load at the end: {uptime.split('load average:')[-1].strip()}.")
lines.append(f"Ours: mqtt-broker at {revision}. Peers: {mosq_v or 'mosquitto'}; {rum_v or 'rumqttd'}.")
lines.append("")
modes = [m for m in ["pinned", "unpinned"] if any(r.get("mode") == m for r in rows)]
cases = []
for r in rows:
    if r.get("case") not in cases:
        cases.append(r.get("case"))
for mode in modes:
    lines.append(f"#### {mode}" + (" (broker on CPU 0, generator on CPU 1)" if mode == "pinned" else ""))
    lines.append("")
    lines.append("| case | metric | ours | Mosquitto | rumqttd | ours / Mosquitto | ours / rumqttd "
                 "| broker CPU s per M deliveries (ours / Mosq. / rumqttd) "
                 "| generator CPU per wall second (ours / Mosq. / rumqttd) "
                 "| lost · dup · out of order (ours / Mosq. / rumqttd) |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case in cases:
        rs = {b: runs(mode, case, b) for b in brokers}
        if not any(rs.values()):
            continue
        cpu = " / ".join(fmt(med(values(rs[b], "broker_cpu_s_per_M"))) for b in brokers)
        gen = " / ".join(fmt(med(values(rs[b], "gen_cpu_per_wall"))) for b in brokers)
        def faults(b):
            ok = [r for r in rs[b] if "error" not in r]
            failed = len(rs[b]) - len(ok)
            if case == "connections":
                s = f"{sum(r.get('failed', 0) + r.get('dropped', 0) for r in ok)} failed/dropped"
            else:
                s = " · ".join(str(sum(r.get(k, 0) for r in ok))
                               for k in ("lost", "duplicates", "out_of_order"))
                wrong = sum(r.get("wrong_qos", 0) for r in ok)
                if wrong:
                    s += f" ({wrong} wrong QoS)"
            return s + (f", {failed} run(s) failed" if failed else "")
        fault = " / ".join(faults(b) for b in brokers)
        for i, (key, label, _) in enumerate(metrics.get(case, default_metric)):
            v = {b: values(rs[b], key) for b in brokers}
            m = {b: med(v[b]) for b in brokers}
            extra = f"| {cpu} | {gen} | {fault} |" if i == 0 else "| | | |"
            lines.append(f"| {case} | {label} | {cell(v['ours'])} | {cell(v['mosquitto'])} "
                         f"| {cell(v['rumqttd'])} | {ratio(m['ours'], m['mosquitto'])} "
                         f"| {ratio(m['ours'], m['rumqttd'])} {extra}")
    lines.append("")
    if any(r.get("broker") == "before" for r in rows):
        lines.append(f"Before / after ({mode}): ours at this revision against the older build of ours.")
        lines.append("")
        lines.append("| case | metric | ours | before | ours / before | broker CPU s per M (ours / before) |")
        lines.append("|---|---|---:|---:|---:|---:|")
        for case in cases:
            rs = {b: runs(mode, case, b) for b in ("ours", "before")}
            if not any(rs.values()):
                continue
            cpu = " / ".join(fmt(med(values(rs[b], "broker_cpu_s_per_M"))) for b in ("ours", "before"))
            for i, (key, label, _) in enumerate(metrics.get(case, default_metric)):
                v = {b: values(rs[b], key) for b in ("ours", "before")}
                lines.append(f"| {case} | {label} | {cell(v['ours'])} | {cell(v['before'])} "
                             f"| {ratio(med(v['ours']), med(v['before']))} | {cpu if i == 0 else ''} |")
        lines.append("")
errors = [r for r in rows if "error" in r or r.get("first_error")]
if errors:
    lines.append("Runs with errors:")
    lines.append("")
    for r in errors:
        lines.append(f"- {r.get('mode')} rep {r.get('rep')} {r.get('case')} on {r.get('broker')}: "
                     f"{r.get('error') or r.get('first_error')}")
    lines.append("")
text = "\n".join(lines)
open(report, "w").write(text + "\n")
print(text)
PY
echo "== report: $out/report.md"
