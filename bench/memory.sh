#!/usr/bin/env bash
# Memory per peer of ringtracker and Debian's opentracker: starts each tracker fresh on loopback,
# loads PEERS peers (unique ip:port, many source addresses) over TORRENTS torrents with the UDP
# generator's --load mode, checks the tracker's own peer count, and reports VmRSS/VmHWM growth as
# bytes per peer. One tracker at a time; it stops only the processes it started, by PID.
#
# usage: bench/memory.sh [--opentracker-only]
# environment: RT_BIN OT_BIN UDP_LOAD RT_ARGS TRACKER_CPU LOAD_CPU, MEM_PEERS (1000000),
#   MEM_TORRENTS (100000), MEM_ZIPF (0 = every torrent gets PEERS/TORRENTS peers), MEM_SOCKETS,
#   MEM_WINDOW
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
RT_BIN=${RT_BIN:-$root/build/release/tracker/ringtracker}
OT_BIN=${OT_BIN:-/usr/bin/opentracker}
UDP_LOAD=${UDP_LOAD:-$root/build/release/bench/udp_load}
RT_ARGS=${RT_ARGS:---log-level warn}
TRACKER_CPU=${TRACKER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
MEM_PEERS=${MEM_PEERS:-1000000}
MEM_TORRENTS=${MEM_TORRENTS:-100000}
MEM_ZIPF=${MEM_ZIPF:-0}
MEM_SOCKETS=${MEM_SOCKETS:-64}
MEM_WINDOW=${MEM_WINDOW:-128}
rt_enabled=1
[[ ${1:-} == --opentracker-only ]] && rt_enabled=0

die() { echo "memory.sh: $*" >&2; exit 1; }
[[ -x $UDP_LOAD ]] || die "no load generator at $UDP_LOAD"
[[ -x $OT_BIN ]] || die "no opentracker at $OT_BIN"
if [[ $rt_enabled == 1 && ! -x $RT_BIN ]]; then
  echo "memory.sh: no ringtracker at $RT_BIN: measuring opentracker only" >&2
  rt_enabled=0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rt-mem.XXXXXX")
# opentracker drops its privileges before it reads the whitelist: the files must be world-readable.
chmod 755 "$tmp"
pid=""
stop_tracker() {
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
  fi
}
cleanup() { stop_tracker; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

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

status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

"$UDP_LOAD" --print-hashes --torrents "$MEM_TORRENTS" >"$tmp/hashes.txt"

# Sets pid, udp (ip:port) and stats_cmd for the tracker NAME.
start() {
  local port line
  case "$1" in
    opentracker)
      port=$(free_port)
      printf 'access.whitelist %s\naccess.stats 127.0.0.1\n' "$tmp/hashes.txt" >"$tmp/ot.conf"
      (cd "$tmp" && exec taskset -c "$TRACKER_CPU" "$OT_BIN" -i 127.0.0.1 -p "$port" -P "$port" \
          -f "$tmp/ot.conf" >"$tmp/ot.log" 2>&1) &
      pid=$!
      udp=127.0.0.1:$port
      stats_cmd=(ot_peers "$port")
      for _ in $(seq 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/stats?mode=peer" && return 0
        sleep 0.1
      done
      die "opentracker did not start: $(cat "$tmp/ot.log")" ;;
    ringtracker)
      # shellcheck disable=SC2086
      taskset -c "$TRACKER_CPU" "$RT_BIN" --http 127.0.0.1:0 --udp 127.0.0.1:0 $RT_ARGS \
          >"$tmp/rt.out" 2>"$tmp/rt.err" &
      pid=$!
      for _ in $(seq 100); do
        line=$(grep -m1 '^listening' "$tmp/rt.out" 2>/dev/null || true)
        if [[ -n $line ]]; then
          udp=$(sed -n 's/.*udp=\([0-9.]*:[0-9]*\).*/\1/p' <<<"$line")
          stats_cmd=(rt_peers "$(sed -n 's/.*http=\([0-9.]*:[0-9]*\).*/\1/p' <<<"$line")")
          return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      die "ringtracker did not start: $(cat "$tmp/rt.err")" ;;
  esac
}

ot_peers() { curl -sf "http://127.0.0.1:$1/stats?mode=peer" | head -1; }
rt_peers() {
  curl -sf "http://$1/stats" |
    python3 -c 'import json,sys; s=json.load(sys.stdin)["swarms"]; print(s["peers"], s["torrents"])'
}

trackers=(opentracker)
[[ $rt_enabled == 1 ]] && trackers=(ringtracker opentracker)
echo "# memory.sh: $MEM_PEERS peers over $MEM_TORRENTS torrents (zipf $MEM_ZIPF), UDP --load"
for name in "${trackers[@]}"; do
  start "$name"
  sleep 0.5
  rss0=$(status_kb "$pid" VmRSS)
  out=$(taskset -c "$LOAD_CPU" "$UDP_LOAD" --target "$udp" --load --peers "$MEM_PEERS" \
      --torrents "$MEM_TORRENTS" --zipf "$MEM_ZIPF" --sockets "$MEM_SOCKETS" \
      --window "$MEM_WINDOW" --timeout-ms 2000 --retries 5 2>"$tmp/load.err") || true
  out=$(grep -m1 '^{' <<<"$out" || true)
  [[ -n $out ]] || die "load generator failed: $(cat "$tmp/load.err")"
  cat "$tmp/load.err" >&2
  sleep 0.5
  rss1=$(status_kb "$pid" VmRSS)
  hwm=$(status_kb "$pid" VmHWM)
  counted=$("${stats_cmd[@]}" || echo "?")
  python3 - "$name" "$rss0" "$rss1" "$hwm" "$counted" "$out" <<'EOF'
import json, sys
name, rss0, rss1, hwm, counted, raw = sys.argv[1:]
r = json.loads(raw)
loaded = r["loaded_peers"]
rss0, rss1, hwm = int(rss0), int(rss1), int(hwm)
per = lambda kb: kb * 1024 / loaded if loaded else float("nan")
print(f"{name:12s} loaded {loaded} peers in {r['window_s']:.1f}s ({r['rps']:.0f} resp/s, "
      f"{r['timeouts']} timeouts, {r['invalid']} invalid); tracker counts: {counted}")
print(f"{name:12s} VmRSS {rss0} -> {rss1} kB, VmHWM {hwm} kB: "
      f"{per(rss1 - rss0):.1f} bytes/peer (RSS growth), {per(rss1):.1f} (total RSS), "
      f"{per(hwm):.1f} (HWM)")
EOF
  stop_tracker
done
