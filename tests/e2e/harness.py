"""Shared pieces of the end-to-end tests: start a tracker daemon on free loopback ports and stop
it by PID, small protocol clients (HTTP announce/scrape with binary percent-encoding, BEP 15 UDP),
a strict bencode codec, libtorrent session and torrent helpers, and check/skip reporting.
It does not decide what a test asserts; each test script owns its scenario.

Every blocking step has a timeout; every process started here is stopped in a finally/atexit path.
"""

import argparse
import atexit
import hashlib
import http.client
import ipaddress
import json
import os
import queue
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

# Exit code ctest treats as "skipped" when a test sets SKIP_RETURN_CODE; also printed loudly.
SKIP_EXIT_CODE = 77

# How long a daemon may take to print its `listening` line (cold caches, slow CI machine).
DAEMON_START_TIMEOUT_S = 15.0
# How long SIGTERM may take to end the daemon before it counts as a failure.
DAEMON_STOP_TIMEOUT_S = 10.0
# Timeout of one HTTP or UDP request to the tracker on loopback.
REQUEST_TIMEOUT_S = 5.0

UDP_PROTOCOL_ID = 0x41727101980  # BEP 15 magic connection id of a connect request
UDP_ACTION_CONNECT = 0
UDP_ACTION_ANNOUNCE = 1
UDP_ACTION_SCRAPE = 2
UDP_ACTION_ERROR = 3
UDP_EVENTS = {"none": 0, "completed": 1, "started": 2, "stopped": 3}


class CheckFailed(Exception):
    """A user-visible expectation did not hold."""


class Skip(Exception):
    """The test cannot run on this machine (printed loudly, exit SKIP_EXIT_CODE)."""


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check(cond, what):
    """Records one expectation; raises CheckFailed with `what` when it does not hold."""
    if not cond:
        raise CheckFailed(what)
    log(f"ok: {what}")


def check_eq(actual, expected, what):
    if actual != expected:
        if isinstance(actual, set) and isinstance(expected, set):
            raise CheckFailed(f"{what}: missing {sorted(expected - actual)!r}, "
                              f"unexpected {sorted(actual - expected)!r}")
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")
    log(f"ok: {what} == {_short(expected)}")


def _short(value, limit=160):
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value)} items)" if hasattr(value, "__len__") else ""
    return text[:limit] + "..." + size


def wait_until(pred, timeout_s, what, interval_s=0.1):
    """Polls pred() until it returns a truthy value (returned) or fails after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval_s)
    raise CheckFailed(f"timed out after {timeout_s:.0f}s waiting for: {what} (last: {last!r})")


def wait_for_value(fn, expected, timeout_s, what, interval_s=0.1):
    """Polls fn() until it equals expected; fails with the last value seen."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last == expected:
            log(f"ok: {what} == {_short(expected)}")
            return last
        time.sleep(interval_s)
    raise CheckFailed(f"{what}: expected {expected!r} within {timeout_s:.0f}s, last {last!r}")


# cluster.id_choices (the daemon's default): a joining ring node takes one of this many ids.
RING_ID_CHOICES = 16


def ring_candidate_ids(ring_addr, choices=RING_ID_CHOICES):
    """The ids a ring node may take, as 40 hex digits: SHA-1 of its advertised ring "ip:port"
    text, or of that text with "#<v>" for a virtual index 0 < v < choices."""
    return [hashlib.sha1((ring_addr if v == 0 else f"{ring_addr}#{v}").encode()).hexdigest()
            for v in range(choices)]


def reported_ring_id(stats, ring_addr, last):
    """The id a ring node reports in its /stats (a dict, or None while it does not answer:
    then `last`), checked to be one of its address's candidates."""
    if stats is None:
        return last
    got = stats["node"]["id"]
    if got not in ring_candidate_ids(ring_addr):
        raise CheckFailed(f"{ring_addr} reports id {got}, not one of its candidates")
    return got


def free_port(family=socket.AF_INET, kind=socket.SOCK_STREAM, host="127.0.0.1"):
    """A port that was free a moment ago, for clients that cannot bind port 0 themselves."""
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_loopback_usable():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


NETNS_ENV = "RT_E2E_IN_NETNS"


def in_private_netns(addresses):
    """Makes this script run inside a network namespace of its own whose loopback carries the
    given extra IPv4 addresses (for clients that refuse 127.0.0.0/8 peers). Outside the
    namespace it re-executes the script under `unshare --net` (needs CAP_SYS_ADMIN) and never
    returns; inside it adds the addresses and returns None. Returns a reason string when no
    namespace can be made, so the caller can skip loudly."""
    ip_tool = shutil.which("ip") or "/usr/sbin/ip"
    if os.environ.get(NETNS_ENV) == "1":
        subprocess.run([ip_tool, "link", "set", "lo", "up"], check=True, timeout=10)
        for a in addresses:
            subprocess.run([ip_tool, "addr", "add", f"{a}/32", "dev", "lo"], check=True,
                           timeout=10)
        return None
    unshare = shutil.which("unshare")
    if not unshare:
        return "unshare(1) is not installed"
    probe = subprocess.run([unshare, "--net", "true"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        return ("cannot create a network namespace: " +
                probe.stderr.decode("utf-8", "replace").strip())
    sys.stdout.flush()
    env = dict(os.environ, **{NETNS_ENV: "1"})
    os.execve(unshare, [unshare, "--net", "--", sys.executable, *sys.argv], env)
    return "unreachable"


def parse_args(description, extra=None):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--daemon", help="path of the ringtracker binary under test")
    p.add_argument("--opentracker", action="store_true",
                   help="run against Debian's opentracker instead (client-side checks only)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory")
    p.add_argument("--seed", type=int, default=None, help="RNG seed (default: random, printed)")
    if extra:
        extra(p)
    args = p.parse_args()
    if not args.daemon and not args.opentracker:
        p.error("--daemon PATH (or --opentracker) is required")
    return args


def seeded_rng(args):
    """random.Random seeded from --seed, or from a fresh seed; the seed is logged for a rerun."""
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    log(f"seed {seed} (rerun with --seed {seed})")
    return random.Random(seed)


def main_for_ringtracker(description, body, why_not_opentracker):
    """The whole main() of a script that runs ringtracker daemons only: parses the arguments,
    refuses --opentracker with `why_not_opentracker`, and runs body(args, workdir, rng)."""
    args = parse_args(description)
    if args.opentracker:
        raise SystemExit(why_not_opentracker)
    rng = seeded_rng(args)
    run_main(lambda wd: body(args, wd, rng), args)


def run_main(body, args):
    """Runs body(workdir) with a per-test temp dir; maps outcomes to exit codes and prints them."""
    workdir = tempfile.mkdtemp(prefix="rt-e2e-")
    code = 1
    try:
        body(workdir)
        log("PASS")
        code = 0
    except Skip as e:
        print(f"\n*** SKIPPED: {e} ***\n", flush=True)
        code = SKIP_EXIT_CODE
    except CheckFailed as e:
        print(f"\n*** FAIL: {e} ***\n", flush=True)
    except Exception:  # a crash of the test itself is a failure too, with its traceback
        import traceback
        traceback.print_exc()
        print("\n*** FAIL: unexpected exception ***\n", flush=True)
    finally:
        _cleanup_all()
        if args.keep_tmp:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(code)


# ---------------------------------------------------------------------------------------------
# Process bookkeeping

_live_processes = []


def _cleanup_all():
    for proc in list(_live_processes):
        _kill(proc)


def _kill(proc):
    if proc.poll() is None:
        try:
            proc.kill()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
    if proc in _live_processes:
        _live_processes.remove(proc)


atexit.register(_cleanup_all)


def spawn(argv, **kw):
    """Starts a process that is killed by PID at exit if the test does not stop it first."""
    proc = subprocess.Popen(argv, **kw)
    _live_processes.append(proc)
    return proc


def stop_process(proc, timeout_s=DAEMON_STOP_TIMEOUT_S, sig=signal.SIGTERM):
    """Sends sig (SIGTERM), then waits; returns the exit status, or None if it had to be
    killed."""
    if proc.poll() is not None:
        _kill(proc)
        return proc.returncode
    proc.send_signal(sig)
    try:
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(proc)
        return None
    _kill(proc)
    return rc


# ---------------------------------------------------------------------------------------------
# The tracker under test


def _split_hostport(text):
    """'127.0.0.1:80' or '[::1]:80' -> ('127.0.0.1', 80) / ('::1', 80)."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    return host, int(port)


def _url_host(host):
    return f"[{host}]" if ":" in host else host


class Tracker:
    """A ringtracker daemon on loopback, started with port 0 and read back from its stdout line.

    http/udp: lists of (host, port) by family, filled by start(). Stop with stop() (SIGTERM,
    checks the exit status) or let the atexit hook kill it.
    """

    def __init__(self, binary, workdir, http=("127.0.0.1:0",), udp=("127.0.0.1:0",),
                 extra_args=(), log_level="warn"):
        self.binary = binary
        self.workdir = workdir
        self.http_binds = list(http)
        self.udp_binds = list(udp)
        self.extra_args = list(extra_args)
        self.log_level = log_level
        self.http = []
        self.udp = []
        self.dht = []  # (host, port) of each --dht listener given in extra_args
        self.proc = None
        self._lines = queue.Queue()
        self.stderr_path = os.path.join(workdir, "tracker.stderr")
        self.stdout_path = os.path.join(workdir, "tracker.stdout")

    is_reference = False

    def start(self):
        argv = [self.binary, "--log-level", self.log_level]
        for b in self.http_binds:
            argv += ["--http", b]
        for b in self.udp_binds:
            argv += ["--udp", b]
        argv += self.extra_args
        log("starting " + " ".join(argv))
        self._stderr = open(self.stderr_path, "wb")
        self.proc = spawn(argv, stdout=subprocess.PIPE, stderr=self._stderr,
                          stdin=subprocess.DEVNULL)
        threading.Thread(target=self._drain_stdout, daemon=True).start()
        line = None
        deadline = time.monotonic() + DAEMON_START_TIMEOUT_S
        while line is None and time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self._lines.empty():
                    break  # exited without the line; its stderr says why
        if not line or not line.startswith("listening"):
            self.dump_stderr()
            raise CheckFailed(f"daemon did not print its listening line (got {line!r}, "
                              f"exit status {self.proc.poll()})")
        log(f"daemon says: {line.strip()}")
        for tok in line.split()[1:]:
            key, _, val = tok.partition("=")
            if key in ("http", "udp", "dht"):
                getattr(self, key).append(_split_hostport(val))
        check(len(self.http) == len(self.http_binds) and len(self.udp) == len(self.udp_binds),
              "listening line names every requested http/udp address")
        return self

    def _drain_stdout(self):
        with open(self.stdout_path, "w") as out:
            for raw in self.proc.stdout:
                text = raw.decode("utf-8", "replace")
                out.write(text)
                out.flush()
                self._lines.put(text)

    def endpoint(self, proto, v6=False):
        for host, port in getattr(self, proto):
            if (":" in host) == v6:
                return host, port
        raise Skip(f"tracker has no {'IPv6' if v6 else 'IPv4'} {proto} listener")

    def announce_url(self, proto, v6=False):
        host, port = self.endpoint(proto, v6)
        return f"{proto}://{_url_host(host)}:{port}/announce"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stats(self):
        """GET /stats parsed as JSON (over the first HTTP listener)."""
        status, _, body = http_get(self.endpoint("http"), "/stats")
        check_eq(status, 200, "GET /stats status")
        return json.loads(body)

    def counters(self):
        return self.stats().get("counters", {})

    def dump_stderr(self, limit=4000):
        try:
            with open(self.stderr_path, "rb") as f:
                data = f.read()[-limit:]
            if data:
                print("---- daemon stderr (tail) ----\n" + data.decode("utf-8", "replace") +
                      "\n------------------------------", flush=True)
        except OSError:
            pass

    def stop(self):
        """SIGTERM; asserts the daemon exits cleanly with status 0."""
        rc = stop_process(self.proc)
        if rc != 0:
            self.dump_stderr()
        check_eq(rc, 0, "daemon exit status after SIGTERM")


class ReferenceTracker(Tracker):
    """Debian's opentracker on chosen loopback ports, used only to validate the client-side
    steps of a test before the daemon exists. Its Debian build serves whitelisted info-hashes
    only, so tests call allow(info_hash) for every torrent they create. It has no /stats."""

    is_reference = True

    def __init__(self, workdir, **_ignored):
        super().__init__("/usr/bin/opentracker", workdir)
        self.whitelist = os.path.join(workdir, "whitelist.txt")
        self.hashes = []

    def start(self, host="127.0.0.1"):
        v6 = ":" in host
        port = free_port(socket.AF_INET6 if v6 else socket.AF_INET, host=host)
        self.http = [(host, port)]
        self.udp = [(host, port)]
        os.chmod(self.workdir, 0o755)  # it drops to `nobody` and must read the whitelist
        open(self.whitelist, "w").close()
        conf = os.path.join(self.workdir, "opentracker.conf")
        with open(conf, "w") as f:
            f.write(f"access.whitelist {self.whitelist}\n")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = spawn(["/usr/bin/opentracker", "-f", conf, "-i", host, "-p", str(port),
                           "-P", str(port), "-u", "nobody", "-d", "/"],
                          stdout=self._stderr, stderr=self._stderr, stdin=subprocess.DEVNULL)
        wait_until(lambda: _tcp_open(host, port), DAEMON_START_TIMEOUT_S, "opentracker port")
        log(f"opentracker on {host}:{port}")
        return self

    def allow(self, info_hash):
        self.hashes.append(info_hash.hex())
        with open(self.whitelist, "w") as f:
            f.write("\n".join(self.hashes) + "\n")
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)

    def stats(self):
        raise Skip("opentracker has no /stats")

    def stop(self):
        stop_process(self.proc)  # opentracker dies by the signal; its status means nothing


def _tcp_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def make_tracker(args, workdir, **kw):
    """The tracker a test runs against: the daemon under test, or opentracker for dev runs."""
    if args.opentracker:
        host, _ = _split_hostport(kw.get("http", ["127.0.0.1:0"])[0])
        return ReferenceTracker(workdir).start(host)
    return Tracker(args.daemon, workdir, **kw).start()


def allow(tracker, info_hash):
    if tracker.is_reference:
        tracker.allow(info_hash)


# ---------------------------------------------------------------------------------------------
# Bencode (strict: canonical integers, sorted unique dict keys, no trailing bytes)


def bdecode(data):
    """Decodes bytes into int / bytes / list / dict (bytes keys). Raises ValueError if the input
    is not canonical bencode, so a reply with unsorted keys or trailing junk fails the test."""
    value, pos = _bdecode_at(data, 0, 0)
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} trailing bytes after bencoded value")
    return value


def _bdecode_at(data, pos, depth):
    if depth > 64:
        raise ValueError("nesting too deep")
    if pos >= len(data):
        raise ValueError("truncated")
    c = data[pos:pos + 1]
    if c == b"i":
        end = data.index(b"e", pos)
        text = data[pos + 1:end]
        if text in (b"", b"-", b"-0") or (text.startswith(b"0") and text != b"0") or \
                text.startswith(b"-0"):
            raise ValueError(f"non-canonical integer {text!r}")
        return int(text), end + 1
    if c == b"l":
        out, pos = [], pos + 1
        while data[pos:pos + 1] != b"e":
            v, pos = _bdecode_at(data, pos, depth + 1)
            out.append(v)
        return out, pos + 1
    if c == b"d":
        out, pos, last = {}, pos + 1, None
        while data[pos:pos + 1] != b"e":
            k, pos = _bdecode_at(data, pos, depth + 1)
            if not isinstance(k, bytes):
                raise ValueError("dict key is not a string")
            if last is not None and k <= last:
                raise ValueError(f"dict keys not sorted/unique: {last!r} then {k!r}")
            last = k
            out[k], pos = _bdecode_at(data, pos, depth + 1)
        return out, pos + 1
    if c.isdigit():
        colon = data.index(b":", pos)
        n = int(data[pos:colon])
        if colon + 1 + n > len(data):
            raise ValueError("string runs past the end")
        return data[colon + 1:colon + 1 + n], colon + 1 + n
    raise ValueError(f"unexpected byte {c!r} at {pos}")


# ---------------------------------------------------------------------------------------------
# HTTP tracker client


def pct(data):
    """Percent-encodes every byte that is not unreserved (binary-safe, '+' never used)."""
    return urllib.parse.quote_from_bytes(data, safe="")


def http_get(endpoint, target, source_ip=None, timeout=REQUEST_TIMEOUT_S, headers=None):
    """One GET over a fresh connection; returns (status, headers dict, body bytes)."""
    host, port = endpoint
    src = (source_ip, 0) if source_ip else None
    conn = http.client.HTTPConnection(host, port, timeout=timeout, source_address=src)
    try:
        conn.putrequest("GET", target, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def announce_query(info_hash, peer_id, port, left=0, uploaded=0, downloaded=0, event=None,
                   numwant=None, compact=None, no_peer_id=None, extra=""):
    q = (f"info_hash={pct(info_hash)}&peer_id={pct(peer_id)}&port={port}"
         f"&uploaded={uploaded}&downloaded={downloaded}&left={left}")
    if event:
        q += f"&event={event}"
    if numwant is not None:
        q += f"&numwant={numwant}"
    if compact is not None:
        q += f"&compact={compact}"
    if no_peer_id is not None:
        q += f"&no_peer_id={no_peer_id}"
    return q + extra


def http_announce_raw(endpoint, query, source_ip=None):
    """Returns (status, decoded body dict). The body must be canonical bencode."""
    status, _, body = http_get(endpoint, "/announce?" + query, source_ip=source_ip)
    try:
        return status, bdecode(body)
    except ValueError as e:
        raise CheckFailed(f"announce reply is not valid bencode ({e}): {body[:200]!r}")


def http_announce(endpoint, info_hash, peer_id, port, source_ip=None, **kw):
    status, d = http_announce_raw(endpoint, announce_query(info_hash, peer_id, port, **kw),
                                  source_ip=source_ip)
    if status != 200 or b"failure reason" in d:
        raise CheckFailed(f"announce failed: status {status}, body {d!r}")
    return d


def http_scrape(endpoint, hashes):
    q = "&".join(f"info_hash={pct(h)}" for h in hashes)
    status, _, body = http_get(endpoint, "/scrape?" + q)
    if status != 200:
        raise CheckFailed(f"scrape status {status}: {body[:200]!r}")
    try:
        return bdecode(body)
    except ValueError as e:
        raise CheckFailed(f"scrape reply is not valid bencode ({e}): {body[:200]!r}")


def compact_peers(blob, v6=False):
    """Compact peer string -> set of (ip text, port)."""
    size = 18 if v6 else 6
    if len(blob) % size:
        raise CheckFailed(f"compact peers length {len(blob)} is not a multiple of {size}")
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    out = set()
    for i in range(0, len(blob), size):
        ip = socket.inet_ntop(fam, blob[i:i + size - 2])
        out.add((ip, struct.unpack(">H", blob[i + size - 2:i + size])[0]))
    return out


def reply_peers(d):
    """Every peer in an HTTP announce reply (compact v4 + v6, or the dictionary model)."""
    peers = d.get(b"peers", b"")
    if isinstance(peers, list):
        return {(str(ipaddress.ip_address(p[b"ip"].decode())), p[b"port"]) for p in peers}
    return compact_peers(peers) | compact_peers(d.get(b"peers6", b""), v6=True)


# ---------------------------------------------------------------------------------------------
# BEP 15 UDP tracker client


class UdpClient:
    """A BEP 15 client on one socket (optionally bound to a chosen loopback source address)."""

    def __init__(self, endpoint, source_ip=None):
        self.endpoint = endpoint
        fam = socket.AF_INET6 if ":" in endpoint[0] else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        if source_ip:
            self.sock.bind((source_ip, 0))
        self.sock.settimeout(REQUEST_TIMEOUT_S)
        self.connection_id = None

    def close(self):
        self.sock.close()

    def _tid(self):
        return random.getrandbits(32)

    def request(self, packet, tid, tries=3):
        """Sends and waits for the reply with this transaction id (retries on loss)."""
        for _ in range(tries):
            self.sock.sendto(packet, self.endpoint)
            deadline = time.monotonic() + REQUEST_TIMEOUT_S / tries
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    data, _ = self.sock.recvfrom(65536)
                except socket.timeout:
                    break
                if len(data) >= 8 and struct.unpack(">I", data[4:8])[0] == tid:
                    return data
        raise CheckFailed(f"no UDP reply from {self.endpoint} to action "
                          f"{struct.unpack('>I', packet[8:12])[0]}")

    def connect(self):
        tid = self._tid()
        r = self.request(struct.pack(">QII", UDP_PROTOCOL_ID, UDP_ACTION_CONNECT, tid), tid)
        action, rtid, cid = struct.unpack(">IIQ", r[:16])
        if action != UDP_ACTION_CONNECT or len(r) != 16:
            raise CheckFailed(f"bad connect reply {r!r}")
        self.connection_id = cid
        return cid

    def announce_packet(self, info_hash, peer_id, port, left=0, event="none", numwant=-1,
                        downloaded=0, uploaded=0, key=0, tid=0, connection_id=None, tail=b""):
        cid = self.connection_id if connection_id is None else connection_id
        return struct.pack(">QII20s20sQQQIIIiH", cid, UDP_ACTION_ANNOUNCE, tid, info_hash,
                           peer_id, downloaded, left, uploaded, UDP_EVENTS[event], 0, key,
                           numwant, port) + tail

    def announce(self, info_hash, peer_id, port, **kw):
        """Returns dict(interval, leechers, seeders, peers=set of (ip, port)) or raises on error."""
        if self.connection_id is None:
            self.connect()
        tid = self._tid()
        r = self.request(self.announce_packet(info_hash, peer_id, port, tid=tid, **kw), tid)
        action = struct.unpack(">I", r[:4])[0]
        if action == UDP_ACTION_ERROR:
            raise CheckFailed(f"UDP announce error: {r[8:]!r}")
        if action != UDP_ACTION_ANNOUNCE or len(r) < 20:
            raise CheckFailed(f"bad announce reply {r[:40]!r}")
        interval, leechers, seeders = struct.unpack(">III", r[8:20])
        v6 = self.sock.family == socket.AF_INET6
        return {"interval": interval, "leechers": leechers, "seeders": seeders,
                "peers": compact_peers(r[20:], v6=v6)}

    def scrape(self, hashes):
        """Returns a list of (seeders, completed, leechers) in request order."""
        if self.connection_id is None:
            self.connect()
        tid = self._tid()
        pkt = struct.pack(">QII", self.connection_id, UDP_ACTION_SCRAPE, tid) + b"".join(hashes)
        r = self.request(pkt, tid)
        action = struct.unpack(">I", r[:4])[0]
        if action != UDP_ACTION_SCRAPE or len(r) != 8 + 12 * len(hashes):
            raise CheckFailed(f"bad scrape reply {r[:40]!r}")
        return [struct.unpack(">III", r[8 + 12 * i:20 + 12 * i]) for i in range(len(hashes))]


# ---------------------------------------------------------------------------------------------
# Files, torrents and libtorrent sessions


def random_file(path, size, rng):
    with open(path, "wb") as f:
        f.write(rng.randbytes(size))
    return sha256_file(path)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def lt():
    import libtorrent  # only tests that drive libtorrent need it
    return libtorrent


def make_torrent(data_path, tracker_url, piece_size=256 * 1024):
    """A v1-only single-file torrent whose only tracker is tracker_url. Returns (bytes,
    info-hash bytes). v1-only keeps one swarm per torrent (a hybrid torrent announces its v1
    and truncated v2 hashes as two swarms) and is what every client under test understands."""
    L = lt()
    fs = L.file_storage()
    L.add_files(fs, data_path)
    ct = L.create_torrent(fs, piece_size, flags=L.create_torrent.v1_only)
    ct.add_tracker(tracker_url, 0)
    ct.set_creator("ringtracker e2e")
    L.set_piece_hashes(ct, os.path.dirname(data_path))
    blob = L.bencode(ct.generate())
    info = L.torrent_info(blob)
    return blob, bytes.fromhex(str(info.info_hashes().v1))


def lt_session(listen, dht_bootstrap=None):
    """A libtorrent session that finds peers only through trackers: no DHT, LSD, UPnP,
    NAT-PMP, no default plugins (so no peer exchange), several connections per IP allowed.
    With dht_bootstrap ("ip:port"), its DHT is on and knows that one node to start from."""
    L = lt()
    verbose = os.environ.get(VERBOSE_ENV) == "1"
    settings = {
        "listen_interfaces": listen,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": L.alert.category_t.all_categories & ~(
            L.alert.category_t.peer_log_notification
            | L.alert.category_t.torrent_log_notification
            | L.alert.category_t.picker_log_notification
            | L.alert.category_t.block_progress_notification
            | L.alert.category_t.piece_progress_notification
            | L.alert.category_t.session_log_notification
            | L.alert.category_t.dht_log_notification
            | L.alert.category_t.port_mapping_log_notification
            | L.alert.category_t.stats_notification
            | L.alert.category_t.file_progress_notification) if not verbose
        else L.alert.category_t.all_categories,
        "user_agent": "ringtracker-e2e/1.0",
        # libtorrent refuses any localhost tracker request whose path is not /announce, which
        # blocks the /scrape of a loopback tracker; these tests run on loopback only.
        "ssrf_mitigation": False,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        # Loopback transfers must not be throttled as "local" or by rate limits.
        "upload_rate_limit": 0,
        "download_rate_limit": 0,
    }
    if dht_bootstrap:
        settings.update({
            "enable_dht": True,
            # Never the built-in public bootstrap nodes: this node is the only way in.
            "dht_bootstrap_nodes": dht_bootstrap,
            # Every node of a loopback test shares one IP.
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
        })
    return L.session(settings, 0)


def lt_add(session, torrent_blob, save_path, seed_mode=False):
    L = lt()
    p = L.add_torrent_params()
    p.ti = L.torrent_info(torrent_blob)
    p.save_path = save_path
    if seed_mode:
        p.flags |= L.torrent_flags.seed_mode
    return session.add_torrent(p)


# Set to 1 to log every libtorrent alert (peer and torrent logs included) when debugging a run.
VERBOSE_ENV = "RT_E2E_VERBOSE"


class AlertRecord:
    """A copy of the parts of an alert the tests read. libtorrent frees alert objects on the
    next pop_alerts(), so keeping the objects themselves would read freed memory."""

    COPIED = ("num_peers", "complete", "incomplete")

    def __init__(self, a):
        self.what = a.what()
        self.message = a.message()
        err = getattr(a, "error", None)
        self.error = f"{err.category().name()}:{err.value()} {err.message()}" if err else ""
        for k in self.COPIED:
            if hasattr(a, k):
                v = getattr(a, k)
                setattr(self, k, v if isinstance(v, int) else str(v))
        ep = getattr(a, "endpoint", None)  # peer alerts: (ip, port) of the other side
        self.endpoint = (str(ep[0]), int(ep[1])) if isinstance(ep, tuple) and len(ep) == 2 else None


class AlertLog:
    """Pops alerts of several sessions, logs the tracker-related ones, keeps copies for queries."""

    INTERESTING = ("tracker", "scrape", "listen", "peer_connect", "torrent_finished",
                   "torrent_error", "peer_disconnected", "peer_error")

    def __init__(self, sessions):
        self.sessions = sessions  # name -> session
        self.seen = []            # (name, AlertRecord)

    def pump(self):
        for name, s in self.sessions.items():
            for a in s.pop_alerts():
                r = AlertRecord(a)
                self.seen.append((name, r))
                if any(k in r.what for k in self.INTERESTING) or \
                        os.environ.get(VERBOSE_ENV) == "1":
                    log(f"  {name}: {r.what}: {r.message}")

    def find(self, name, what, since=0):
        for n, r in self.seen[since:]:
            if n == name and r.what == what:
                return r
        return None
