#!/usr/bin/env bash
# Side-by-side benchmark of ringtracker and Debian's opentracker in ONE run: both daemons live at
# once on loopback, each pinned to one core, the load generator pinned to another; rounds alternate
# between the two trackers and report responses/s, requests per tracker CPU-second and the ratio
# ringtracker/opentracker per round and as a median. It does not build anything and never touches
# port 6969 or a system service; it stops only the processes it started, by PID.
#
# usage: bench/compare.sh [--rounds N] [--seconds S] [--tests "udp http http-close dht"]
#                         [--no-memory] [--opentracker-only]
# The dht test puts ringtracker's DHT front end (BEP 5 get_peers and announce_peer, DHT_LOAD)
# against opentracker's nearest equivalent, BEP 15 announces (opentracker has no DHT): both
# answer "peers for this info-hash" over UDP, and the ratio is per tracker CPU-second.
# environment: RT_BIN OT_BIN UDP_LOAD DHT_LOAD WRK (binaries), RT_ARGS (extra daemon flags), RT_CONFIG
#   (daemon config; default: one that turns HTTP keep-alive on, the rest built-in defaults),
#   TRACKER_CPU LOAD_CPU (cores, default 0 and 1), TORRENTS PEERS ZIPF WINDOW SOCKETS NUMWANT
#   SCRAPE_PCT WARMUP (UDP load), HTTP_CONNS (wrk connections), plus memory.sh's variables.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
RT_BIN=${RT_BIN:-$root/build/release/tracker/ringtracker}
OT_BIN=${OT_BIN:-/usr/bin/opentracker}
UDP_LOAD=${UDP_LOAD:-$root/build/release/bench/udp_load}
DHT_LOAD=${DHT_LOAD:-$root/build/release/bench/dht_load}
WRK=${WRK:-wrk}
RT_ARGS=${RT_ARGS:---log-level warn}
RT_CONFIG=${RT_CONFIG:-}
TRACKER_CPU=${TRACKER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
TORRENTS=${TORRENTS:-10000}
PEERS=${PEERS:-100000}
ZIPF=${ZIPF:-1.0}
WINDOW=${WINDOW:-128}
SOCKETS=${SOCKETS:-64}
NUMWANT=${NUMWANT:-50}
SCRAPE_PCT=${SCRAPE_PCT:-0}
ANNOUNCE_PCT=${ANNOUNCE_PCT:-20}
WARMUP=${WARMUP:-3}
HTTP_CONNS=${HTTP_CONNS:-32}
rounds=5
seconds=10
tests="udp http http-close dht"
memory=1
rt_enabled=1

while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --tests) tests=$2; shift 2 ;;
    --no-memory) memory=0; shift ;;
    --opentracker-only) rt_enabled=0; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

die() { echo "compare.sh: $*" >&2; exit 1; }
[[ -x $UDP_LOAD ]] || die "no load generator at $UDP_LOAD (build target udp_load, or set UDP_LOAD)"
if [[ " $tests " == *" dht "* && ! -x $DHT_LOAD ]]; then
  die "no DHT load generator at $DHT_LOAD (build target dht_load, or set DHT_LOAD)"
fi
[[ -x $OT_BIN ]] || die "no opentracker at $OT_BIN (apt-get install opentracker, or set OT_BIN)"
command -v "$WRK" >/dev/null || die "no wrk (apt-get install wrk, or set WRK)"
command -v taskset >/dev/null || die "no taskset (util-linux)"
if [[ $rt_enabled == 1 && ! -x $RT_BIN ]]; then
  echo "compare.sh: no ringtracker at $RT_BIN: measuring opentracker only" >&2
  rt_enabled=0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rt-bench.XXXXXX")
# opentracker drops its privileges before it reads the whitelist: the files must be world-readable.
chmod 755 "$tmp"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

clk_tck=$(getconf CLK_TCK)
# utime + stime of a process (all its threads), in clock ticks (/proc/PID/stat fields 14 and 15;
# the name field may hold spaces, so count from the closing parenthesis).
cpu_ticks() {
  local stat
  stat=$(<"/proc/$1/stat")
  stat=${stat##*) }
  awk '{print $12 + $13}' <<<"$stat"
}

free_port() {
  python3 - <<'EOF'
import socket
for _ in range(100):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        u.close()
        t.close()
    if port != 6969:
        print(port)
        break
EOF
}

json_field() {  # json_field FIELD <<< '{"FIELD": ...}'
  python3 -c 'import json,sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$1"
}

# Debian's opentracker only serves whitelisted info-hashes: list the generator's torrents.
"$UDP_LOAD" --print-hashes --torrents "$TORRENTS" >"$tmp/hashes.txt"

start_opentracker() {
  ot_port=$(free_port)
  cat >"$tmp/opentracker.conf" <<EOF
access.whitelist $tmp/hashes.txt
access.stats 127.0.0.1
EOF
  (cd "$tmp" && exec taskset -c "$TRACKER_CPU" "$OT_BIN" -i 127.0.0.1 -p "$ot_port" -P "$ot_port" \
      -f "$tmp/opentracker.conf" >"$tmp/ot.log" 2>&1) &
  ot_pid=$!
  pids+=("$ot_pid")
  for _ in $(seq 50); do
    if curl -sf -o /dev/null "http://127.0.0.1:$ot_port/stats?mode=peer"; then
      sleep 0.5  # the whitelist is read by a thread of its own
      return 0
    fi
    kill -0 "$ot_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$tmp/ot.log" >&2
  die "opentracker did not start"
}

start_ringtracker() {
  if [[ -z $RT_CONFIG ]]; then
    # Keep-alive is off by default (like public trackers); the keep-alive test needs it on.
    # A client's "Connection: close" still closes, so the http-close test is unchanged.
    RT_CONFIG=$tmp/ringtracker.toml
    # dht_load is one source IP: the DHT's per-IP limit (a reflection guard) is off.
    printf '[http]\nkeep_alive = true\n[dht]\nqueries_per_ip_per_second = 0\n' >"$RT_CONFIG"
  fi
  # shellcheck disable=SC2086  # RT_ARGS is a list of flags
  taskset -c "$TRACKER_CPU" "$RT_BIN" --config "$RT_CONFIG" --http 127.0.0.1:0 \
      --udp 127.0.0.1:0 --dht 127.0.0.1:0 $RT_ARGS >"$tmp/rt.out" 2>"$tmp/rt.err" &
  rt_pid=$!
  pids+=("$rt_pid")
  local line
  for _ in $(seq 100); do
    line=$(grep -m1 '^listening' "$tmp/rt.out" 2>/dev/null || true)
    if [[ -n $line ]]; then
      rt_http=$(sed -n 's/.*http=\([0-9.]*:[0-9]*\).*/\1/p' <<<"$line")
      rt_udp=$(sed -n 's/.*udp=\([0-9.]*:[0-9]*\).*/\1/p' <<<"$line")
      rt_dht=$(sed -n 's/.*dht=\([0-9.]*:[0-9]*\).*/\1/p' <<<"$line")
      [[ -n $rt_http && -n $rt_udp && -n $rt_dht ]] || die "cannot parse: $line"
      return 0
    fi
    kill -0 "$rt_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$tmp/rt.err" >&2
  die "ringtracker did not start"
}

results=$tmp/results.tsv
: >"$results"

# measure TEST ROUND NAME PID COMMAND...: runs the load, records rate and tracker CPU time.
measure() {
  local test=$1 round=$2 name=$3 pid=$4
  shift 4
  local before after out rc=0
  before=$(cpu_ticks "$pid")
  out=$("$@" 2>"$tmp/load.err") || rc=$?
  after=$(cpu_ticks "$pid")
  kill -0 "$pid" 2>/dev/null || die "$name died during $test round $round"
  if [[ $test == udp* || $test == dht ]]; then
    out=$(grep -m1 '^{' <<<"$out" || true)
  else
    out=$(sed -n 's/^JSON //p' <<<"$out" | head -1)
  fi
  if [[ -z $out ]]; then
    cat "$tmp/load.err" >&2
    die "no result from the load generator ($name, $test)"
  fi
  python3 - "$results" "$test" "$round" "$name" "$((after - before))" "$clk_tck" "$rc" "$out" \
      <<'EOF'
import json, sys
results, test, rnd, name, ticks, hz, rc, raw = sys.argv[1:]
r = json.loads(raw)
cpu_s = int(ticks) / int(hz)
if test.startswith("udp") or test == "dht":
    done, rate = r["responses"], r["rps"]
    bad = r["errors"] + r["invalid"] + r["timeouts"]
    note = f"timeouts {r['timeouts']}"
else:
    # opentracker closes every HTTP connection itself; wrk counts each close as a read error, so
    # read errors are reported ("closed") but are not failures.
    done, rate = r["requests"], r["rps"]
    bad = r["connect_errors"] + r["status_errors"] + r["timeouts"] + r["check_failures"]
    note = f"closed {r['read_errors']}"
per_cpu = done / cpu_s if cpu_s > 0 else float("nan")
with open(results, "a") as f:
    f.write("\t".join(str(x) for x in (test, rnd, name, f"{rate:.0f}", done, f"{cpu_s:.2f}",
                                      f"{per_cpu:.0f}", bad, r["p50_us"], r["p99_us"], rc)) + "\n")
print(f"  {test:10s} round {rnd} {name:12s} {rate:9.0f} resp/s {per_cpu:9.0f} req/cpu-s "
      f"(cpu {cpu_s:.2f}s, bad {bad}, {note}, p50 {r['p50_us']:.0f}us p99 {r['p99_us']:.0f}us)")
EOF
}

udp_cmd() {  # udp_cmd ADDR:PORT SECONDS
  taskset -c "$LOAD_CPU" "$UDP_LOAD" --target "$1" --duration "$2" --torrents "$TORRENTS" \
      --peers "$PEERS" --zipf "$ZIPF" --window "$WINDOW" --sockets "$SOCKETS" \
      --numwant "$NUMWANT" --scrape-pct "$SCRAPE_PCT"
}

dht_cmd() {  # dht_cmd ADDR:PORT SECONDS
  taskset -c "$LOAD_CPU" "$DHT_LOAD" --target "$1" --duration "$2" --torrents "$TORRENTS" \
      --zipf "$ZIPF" --window "$WINDOW" --sockets "$SOCKETS" --announce-pct "$ANNOUNCE_PCT"
}

http_cmd() {  # http_cmd URL keepalive|close
  local extra=()
  [[ $2 == close ]] && extra=(-H 'Connection: close')
  taskset -c "$LOAD_CPU" "$WRK" -t1 -c"$HTTP_CONNS" -d"${seconds}s" "${extra[@]}" \
      -s "$here/http_announce.lua" "$1" -- "$tmp/hashes.txt" "$NUMWANT"
}

trackers=(opentracker)
start_opentracker
if [[ $rt_enabled == 1 ]]; then
  start_ringtracker
  trackers=(ringtracker opentracker)
fi

echo "# compare.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -r), $(nproc) cores," \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "# rounds=$rounds seconds=$seconds tests='$tests' tracker cpu=$TRACKER_CPU load cpu=$LOAD_CPU"
echo "# udp: torrents=$TORRENTS peers=$PEERS zipf=$ZIPF window=$WINDOW sockets=$SOCKETS" \
  "numwant=$NUMWANT scrape_pct=$SCRAPE_PCT; http: wrk -t1 -c$HTTP_CONNS;" \
  "dht: announce_pct=$ANNOUNCE_PCT (opentracker: the udp load)"
echo "# opentracker pid $ot_pid udp+http 127.0.0.1:$ot_port"
[[ $rt_enabled == 1 ]] && echo "# ringtracker pid $rt_pid http $rt_http udp $rt_udp dht $rt_dht" \
  "($RT_BIN --config $RT_CONFIG $RT_ARGS: $(tr '\n' ' ' <"$RT_CONFIG"))"

target_of() {  # target_of NAME TEST -> address for the load generator
  case "$1:$2" in
    ringtracker:udp) echo "$rt_udp" ;;
    opentracker:udp) echo "127.0.0.1:$ot_port" ;;
    ringtracker:http*) echo "http://$rt_http/announce" ;;
    opentracker:http*) echo "http://127.0.0.1:$ot_port/announce" ;;
  esac
}
pid_of() { if [[ $1 == ringtracker ]]; then echo "$rt_pid"; else echo "$ot_pid"; fi; }

for test in $tests; do
  echo "== $test"
  if [[ ($test == udp || $test == dht) && $WARMUP != 0 ]]; then
    # First contact fills the swarms (event=started); measure the steady state afterwards.
    for name in "${trackers[@]}"; do
      udp_cmd "$(target_of "$name" udp)" "$WARMUP" >/dev/null 2>&1 || true
    done
  fi
  for round in $(seq "$rounds"); do
    order=("${trackers[@]}")
    if (( round % 2 == 0 )) && [[ ${#trackers[@]} == 2 ]]; then
      order=("${trackers[1]}" "${trackers[0]}")
    fi
    for name in "${order[@]}"; do
      case "$test" in
        udp)
          measure udp "$round" "$name" "$(pid_of "$name")" \
              udp_cmd "$(target_of "$name" udp)" "$seconds" ;;
        http) measure http "$round" "$name" "$(pid_of "$name")" \
              http_cmd "$(target_of "$name" http)" keepalive ;;
        http-close) measure http-close "$round" "$name" "$(pid_of "$name")" \
              http_cmd "$(target_of "$name" http)" close ;;
        dht)
          if [[ $name == ringtracker ]]; then
            measure dht "$round" "$name" "$rt_pid" dht_cmd "$rt_dht" "$seconds"
          else
            measure dht "$round" "$name" "$ot_pid" udp_cmd "127.0.0.1:$ot_port" "$seconds"
          fi ;;
        *) die "unknown test $test" ;;
      esac
    done
  done
done

echo "== summary (ratio = ringtracker / opentracker, per round, then the median)"
python3 - "$results" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
targets = {"udp": 1.5, "http": 1.3, "http-close": 1.3}
by = {}
for test, rnd, name, rate, done, cpu, per_cpu, bad, p50, p99, rc in rows:
    by.setdefault(test, {}).setdefault(rnd, {})[name] = (float(rate), float(per_cpu), int(bad))
for test, rounds in by.items():
    med = {}
    for name in ("ringtracker", "opentracker"):
        vals = [r[name] for r in rounds.values() if name in r]
        if vals:
            med[name] = (statistics.median(v[0] for v in vals),
                         statistics.median(v[1] for v in vals), sum(v[2] for v in vals))
            print(f"{test:10s} {name:12s} median {med[name][0]:10.0f} resp/s "
                  f"{med[name][1]:10.0f} req/cpu-s  bad answers {med[name][2]}")
    ratios = [(r["ringtracker"][0] / r["opentracker"][0], r["ringtracker"][1] / r["opentracker"][1])
              for r in rounds.values() if "ringtracker" in r and "opentracker" in r]
    if ratios:
        per_round = " ".join(f"{a:.2f}/{b:.2f}" for a, b in ratios)
        m_rate = statistics.median(a for a, _ in ratios)
        m_cpu = statistics.median(b for _, b in ratios)
        goal = targets.get(test)
        verdict = ""
        if goal is not None:
            verdict = " (target >= %.1fx: %s)" % (goal, "met" if m_cpu >= goal else "NOT met")
        print(f"{test:10s} ratio per round (resp/s / req-per-cpu-s): {per_round}")
        print(f"{test:10s} MEDIAN RATIO resp/s {m_rate:.2f}x  req/cpu-s {m_cpu:.2f}x{verdict}")
EOF

if [[ $memory == 1 ]]; then
  echo "== memory"
  mem_args=()
  [[ $rt_enabled == 0 ]] && mem_args=(--opentracker-only)
  RT_BIN=$RT_BIN OT_BIN=$OT_BIN UDP_LOAD=$UDP_LOAD RT_ARGS=$RT_ARGS TRACKER_CPU=$TRACKER_CPU \
    LOAD_CPU=$LOAD_CPU bash "$here/memory.sh" "${mem_args[@]}"
fi
