"""End-to-end: five ringtracker daemons on loopback act as ONE tracker.

A python3-libtorrent seeder announces at node A and a leecher at node C (no DHT, LSD, UPnP,
NAT-PMP or peer exchange, so the tracker is their only way to meet); the download must verify
byte for byte. The owner of the info-hash (computed from the ring ids, confirmed by /stats) is
then killed with SIGKILL: a new leecher announcing at node B must still get the seeder, and a
scrape at every surviving node must report the same counts. Last, a sixth node joins while a
thread announces many peers over UDP at every node; it must take over its range and no answered
peer may be missing afterwards (announce with a large numwant, scrape at every node).

Requests made while the ring is detecting a failure may be refused with "retry": the test
retries like a real client, a bounded number of times. The ring helpers here are shared with
cluster_partition.py.
"""

import json
import os
import signal
import socket
import threading
import time

import harness as h

NODES = 5
# Faster maintenance than production so the test stays short; the protocol is the same.
STABILIZE_MS = 1000
SUCCESSORS = 4
REPLICAS = 3
# Converging after joins or crashes takes a few periods (2 x RTO to declare death, then a
# stabilize round per hop of repair); ~30 periods is far beyond what it needs.
CONVERGE_TIMEOUT_S = 30.0
# A refused or unanswered request is retried this many times, this far apart (a client backs
# off for longer; the ring repairs within a few stabilize periods, which this covers).
RETRY_ATTEMPTS = 20
RETRY_PAUSE_S = 0.5
FILE_BYTES = 4 * 1024 * 1024
LT_TIMEOUT_S = 40
# Replicas and promotions settle within a few periods once the ring is correct.
SETTLE_TIMEOUT_S = 20.0
# Join under load: torrents, peers per torrent, and the share of torrents placed on purpose in
# the joining node's future range (the rest are uniform), so the take-over is never trivial.
LOAD_TORRENTS = 120
# New peers keep arriving during the join (at most this many per torrent, below numwant 200).
LOAD_PEERS_PER_TORRENT = 150
# Peers answered before the joiner starts.
LOAD_BEFORE_JOIN = 1500
LOAD_JOINER_SHARE = 0.5
# How long the load keeps running after the joiner owns its range (replication batches and
# requests re-routed to the joiner are then covered too).
LOAD_AFTER_TAKEOVER_S = 3.0
# HTTP scrape of this many hashes keeps the request line below the daemon's header limit.
SCRAPE_CHUNK = 40


# ---------------------------------------------------------------------------------------------
# Ring helpers (also used by cluster_partition.py)


def chosen_id(ring_addr, ring_ids):
    """The id a node joining a ring of `ring_ids` takes: the candidate whose smaller piece of
    the gap it falls into is largest (the first such candidate on a tie)."""
    space = 1 << 160
    ordered = sorted(int(x, 16) for x in ring_ids)
    best, best_piece = None, -1
    for c_hex in h.ring_candidate_ids(ring_addr):
        c = int(c_hex, 16)
        pred = max((x for x in ordered if x < c), default=ordered[-1])
        succ = min((x for x in ordered if x >= c), default=ordered[0])
        piece = min((c - pred) % space, (succ - c) % space if len(ordered) > 1 else (pred - c) % space)
        if piece > best_piece:
            best, best_piece = c_hex, piece
    return best


def owner_of(info_hash, ids):
    """The first id >= info_hash as 160-bit big-endian numbers, wrapping around."""
    key = int.from_bytes(info_hash, "big")
    ordered = sorted(ids, key=lambda x: int(x, 16))
    for i in ordered:
        if int(i, 16) >= key:
            return i
    return ordered[0]


def hash_in_range(rng, lo_hex, hi_hex):
    """A random 20-byte key in the ring interval (lo, hi] (wrapping)."""
    lo, hi = int(lo_hex, 16), int(hi_hex, 16)
    span = (hi - lo) % (1 << 160)
    k = (lo + 1 + rng.randrange(span)) % (1 << 160)
    return k.to_bytes(20, "big")


class ClusterNode:
    """One daemon in ring mode. `wrapper` is an optional argv prefix program (e.g. a script that
    runs the daemon inside a network namespace with exec, so the PID stays the daemon's)."""

    def __init__(self, binary, workdir, name, ring_addr, join, conf_text, http="127.0.0.1:0",
                 udp="127.0.0.1:0", extra_args=()):
        self.name = name
        self.ring = ring_addr
        self._id = h.ring_candidate_ids(ring_addr)[0]
        self.binary = binary
        self.workdir = os.path.join(workdir, name)
        os.makedirs(self.workdir, exist_ok=True)
        self.join = list(join)
        self.conf_text = conf_text
        self.http_bind, self.udp_bind = http, udp
        self.extra_args = list(extra_args)
        self.tracker = None

    def start(self):
        conf = os.path.join(self.workdir, "ring.toml")
        with open(conf, "w") as f:
            f.write(self.conf_text)
        args = ["--config", conf, "--ring", self.ring]
        for j in self.join:
            args += ["--join", j]
        args += self.extra_args
        self.tracker = h.Tracker(self.binary, self.workdir, http=(self.http_bind,),
                                 udp=(self.udp_bind,), extra_args=args, log_level="warn")
        self.tracker.start()
        return self

    @property
    def id(self):
        """The id the node reports (a joiner chooses one of its candidates); while it does not
        answer, the last one it reported."""
        self._id = h.reported_ring_id(self.stats(), self.ring, self._id)
        return self._id

    @property
    def http(self):
        return self.tracker.endpoint("http")

    @property
    def udp(self):
        return self.tracker.endpoint("udp")

    def announce_url(self, proto="http"):
        return self.tracker.announce_url(proto)

    def alive(self):
        return self.tracker is not None and self.tracker.alive()

    def kill9(self):
        h.log(f"kill -9 {self.name} {self.ring} (pid {self.tracker.proc.pid})")
        self.tracker.proc.send_signal(signal.SIGKILL)
        self.tracker.proc.wait(timeout=5)

    def stats(self):
        """/stats as a dict, or None while the node does not answer."""
        try:
            status, _, body = h.http_get(self.http, "/stats", timeout=2.0)
            return json.loads(body) if status == 200 else None
        except (OSError, ValueError):
            return None

    def swarms(self):
        s = self.stats()
        return s["swarms"] if s else None


def ring_state(nodes, successors=SUCCESSORS):
    """None when every node's predecessor and successor list match the ideal ring of `nodes`,
    else a description of the first mismatch."""
    live = sorted(nodes, key=lambda n: int(n.id, 16))
    want_len = min(successors, len(live) - 1)
    for i, n in enumerate(live):
        s = n.stats()
        if s is None:
            return f"{n.name} does not answer /stats"
        want_succ = [live[(i + k) % len(live)].ring for k in range(1, want_len + 1)]
        got_succ = [x["ring"] for x in s.get("successors", [])]
        want_pred = live[(i - 1) % len(live)].ring
        got_pred = s["predecessor"]["ring"] if s.get("predecessor") else None
        if got_succ != want_succ or got_pred != want_pred:
            return (f"{n.name}: pred {got_pred} succ {got_succ}, want pred {want_pred} "
                    f"succ {want_succ}")
    return None


def describe(nodes):
    out = []
    for n in sorted(nodes, key=lambda x: int(x.id, 16)):
        s = n.stats()
        if s:
            out.append(f"  {n.name} {n.ring} {n.id[:8]} pred="
                       f"{s['predecessor'] and s['predecessor']['ring']} "
                       f"succ={[x['ring'] for x in s['successors']]} swarms={s['swarms']}\n    "
                       + " ".join(f"{k}={v}" for k, v in s["counters"].items()
                                  if v and (k.startswith("cluster_") or k.startswith("http_a"))))
        else:
            out.append(f"  {n.name} {n.ring}: no /stats")
    return "\n".join(out)


def converge(nodes, what, timeout_s=CONVERGE_TIMEOUT_S, successors=SUCCESSORS):
    """Waits until the ring of `nodes` is ideal; returns the seconds it took."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() < t0 + timeout_s:
        last = ring_state(nodes, successors)
        if last is None:
            took = time.monotonic() - t0
            h.log(f"ok: {what} after {took:.2f} s")
            return took
        time.sleep(0.1)
    raise h.CheckFailed(f"{what}: ring not correct within {timeout_s:.0f} s ({last})\n"
                        f"{describe(nodes)}")


def ring_conf(secret, stabilize_ms=STABILIZE_MS, successors=SUCCESSORS, replicas=REPLICAS,
              extra_cluster=""):
    # One shared secret: UDP connection ids from any node are valid at every node, and ring
    # messages are authenticated.
    return (f"[cluster]\nsuccessors = {successors}\nreplicas = {replicas}\n"
            f"stabilize_period_ms = {stabilize_ms}\nsecrets = [\"{secret}\"]\n{extra_cluster}")


def free_udp_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Retrying clients: a request refused while the ring repairs ("retry") or unanswered is sent
# again, as a real client would, a bounded number of times. Everything else fails at once.

retry_count = 0
_retry_lock = threading.Lock()


def _retryable(err):
    text = str(err)
    return isinstance(err, OSError) or "retry" in text or "no UDP reply" in text or \
        "in time" in text


def with_retries(fn, what, attempts=RETRY_ATTEMPTS, pause_s=RETRY_PAUSE_S):
    global retry_count
    last = None
    for attempt in range(attempts):
        try:
            return fn()
        except (h.CheckFailed, OSError) as e:
            if not _retryable(e):
                raise
            last = e
            with _retry_lock:
                retry_count += 1
            if attempt == 0:
                h.log(f"  retrying {what}: {e}")
            time.sleep(pause_s)
    raise h.CheckFailed(f"{what}: still refused after {attempts} attempts: {last}")


def announce(endpoint, info_hash, peer_id, port, **kw):
    return with_retries(lambda: h.http_announce(endpoint, info_hash, peer_id, port, **kw),
                        f"announce at {endpoint}")


def scrape_counts(endpoint, hashes):
    """{hash: (complete, downloaded, incomplete)} from HTTP scrapes (chunked), with retries."""
    out = {}
    for i in range(0, len(hashes), SCRAPE_CHUNK):
        chunk = hashes[i:i + SCRAPE_CHUNK]

        def one():
            d = h.http_scrape(endpoint, chunk)
            if b"failure reason" in d:
                raise h.CheckFailed(f"scrape failed: {d[b'failure reason']!r}")
            return d
        d = with_retries(one, f"scrape at {endpoint}")
        files = d.get(b"files", {})
        for x in chunk:
            f = files.get(x)
            out[x] = (f[b"complete"], f[b"downloaded"], f[b"incomplete"]) if f else (0, 0, 0)
    return out


# ---------------------------------------------------------------------------------------------
# libtorrent side


def wait_tracker_reply(alerts, name, handle, mark, want_peers, timeout_s=LT_TIMEOUT_S):
    """Waits for a tracker_reply of `name` naming at least want_peers peers; a tracker error
    (refused while the ring repairs) makes the session announce again, boundedly."""
    errors = 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alerts.pump()
        for n, a in alerts.seen[mark:]:
            if n == name and a.what == "tracker_reply" and a.num_peers >= want_peers:
                return a
        err = None
        for n, a in alerts.seen[mark:]:
            if n == name and a.what == "tracker_error":
                err = a
        if err:
            errors += 1
            if errors > RETRY_ATTEMPTS:
                raise h.CheckFailed(f"{name}: tracker kept failing: {err.message}")
            h.log(f"  {name} re-announces after: {err.message}")
            mark = len(alerts.seen)
            time.sleep(RETRY_PAUSE_S)
            handle.force_reannounce(0, -1)
        time.sleep(0.05)
    raise h.CheckFailed(f"{name}: no tracker reply with >= {want_peers} peers in {timeout_s} s")


def lt_torrent_at(data_path, url):
    blob, ih = h.make_torrent(data_path, url)
    return blob, ih


def dump_swarm(nodes, info_hash):
    """Diagnostics after a failed check: the swarm as each node returns it to a throwaway
    leecher (removed again right after)."""
    for n in nodes:
        try:
            pid = b"-CE0001-diag00000000"
            d = h.http_announce(n.http, info_hash, pid, 3, left=1, numwant=200)
            h.log(f"  {n.name}: complete {d.get(b'complete')} incomplete {d.get(b'incomplete')} "
                  f"peers {sorted(p for _, p in h.reply_peers(d))}")
            h.http_announce(n.http, info_hash, pid, 3, left=1, event="stopped")
        except (h.CheckFailed, OSError) as e:
            h.log(f"  {n.name}: {e}")
    h.log(describe(nodes))


def download(alerts, name, handle, leech_dir, digest):
    def done():
        alerts.pump()
        return handle.status().is_seeding
    t0 = time.monotonic()
    h.wait_until(done, LT_TIMEOUT_S, f"{name} download to complete")
    h.log(f"{name} download took {time.monotonic() - t0:.2f} s")
    h.check_eq(h.sha256_file(os.path.join(leech_dir, "payload.bin")), digest,
               f"{name}'s downloaded file sha256")


# ---------------------------------------------------------------------------------------------
# Load over UDP during the join


class UdpLoad(threading.Thread):
    """Announces new peers (unique peer_id and port) over UDP, round robin over `nodes`, until
    stopped (after the last new peer it refreshes the old ones). A refused or lost announce is
    retried a bounded number of times, like a client; the thread records which peers were sent
    and which were answered."""

    def __init__(self, nodes, hashes, peers_per_torrent):
        super().__init__(daemon=True)
        self.nodes = list(nodes)
        self.hashes = hashes
        self.total = len(hashes) * peers_per_torrent
        self.stop_flag = threading.Event()
        self.attempted = set()   # peer indices sent at least once
        self.answered = set()    # peer indices answered at least once
        self.refused = 0
        self.gave_up = 0
        self.requests = 0
        self.error = None

    def peer(self, i):
        t = i % len(self.hashes)
        seeder = (i // len(self.hashes)) % 3 == 0
        return (self.hashes[t], f"-CE0001-{i:012d}".encode(), 20000 + i, 0 if seeder else 1000)

    def run(self):
        clients = [h.UdpClient(n.udp) for n in self.nodes]
        try:
            i = 0
            while not self.stop_flag.is_set():
                idx = i % self.total
                c = clients[i % len(clients)]
                ih, pid, port, left = self.peer(idx)
                self.attempted.add(idx)
                for attempt in range(RETRY_ATTEMPTS):
                    self.requests += 1
                    try:
                        c.announce(ih, pid, port, left=left,
                                   event="started" if i < self.total else "none", numwant=0)
                        self.answered.add(idx)
                        break
                    except h.CheckFailed as e:
                        # Refused during repair, or lost: retried, as a client would.
                        self.refused += 1
                        if not _retryable(e):
                            self.error = e
                            return
                        c.connection_id = None
                        time.sleep(RETRY_PAUSE_S / 5)
                else:
                    self.gave_up += 1
                i += 1
        except Exception as e:  # reported by the main thread
            self.error = e
        finally:
            for c in clients:
                c.close()


# ---------------------------------------------------------------------------------------------


def body(args, workdir, rng):
    L = h.lt()
    secret = "%032x" % rng.getrandbits(128)
    conf = ring_conf(secret)
    ports = [free_udp_port() for _ in range(NODES)]
    names = [f"n{i}" for i in range(NODES)]
    nodes = []
    for i in range(NODES):
        join = [] if i == 0 else [nodes[0].ring]
        nodes.append(ClusterNode(args.daemon, workdir, names[i], f"127.0.0.1:{ports[i]}", join,
                                 conf).start())
    converge(nodes, f"{NODES} nodes form one ordered ring")
    by_id = {n.id: n for n in nodes}
    # Every node reports the share it owns; together they cover the key space once (each
    # rounded down by less than one millionth).
    shares = {n.name: n.stats()["key_space_ppm"] for n in nodes}
    h.log(f"key space owned (ppm): {shares}")
    h.check(1_000_000 - NODES < sum(shares.values()) <= 1_000_000,
            f"the owned shares add up to the whole key space ({sum(shares.values())} ppm)")

    # ---- 1. seeder at A, leecher at C, via the ring ------------------------------------------
    h.log("=== libtorrent seeder and leecher at different nodes ===")
    seed_dir = os.path.join(workdir, "seed")
    os.makedirs(seed_dir)
    data_path = os.path.join(seed_dir, "payload.bin")
    digest = h.random_file(data_path, FILE_BYTES, rng)
    _, info_hash = lt_torrent_at(data_path, nodes[0].announce_url())
    owner = by_id[owner_of(info_hash, by_id)]
    # A, B and C are the three first nodes that do not own the swarm, so that every libtorrent
    # announce is forwarded and the sessions keep their trackers when the owner dies.
    others = [n for n in nodes if n is not owner]
    node_a, node_b, node_c = others[0], others[1], others[2]
    h.log(f"info-hash {info_hash.hex()} owner {owner.name} ({owner.id[:8]}); "
          f"A={node_a.name} B={node_b.name} C={node_c.name}")
    blob_a, ih_a = lt_torrent_at(data_path, node_a.announce_url())
    blob_b, ih_b = lt_torrent_at(data_path, node_b.announce_url())
    blob_c, ih_c = lt_torrent_at(data_path, node_c.announce_url())
    h.check(ih_a == ih_b == ih_c == info_hash, "the torrents differ only in their tracker")

    seeder, leecher = h.lt_session("127.0.0.1:0"), h.lt_session("127.0.0.1:0")
    leecher2 = h.lt_session("127.0.0.1:0")
    alerts = h.AlertLog({"seeder": seeder, "leecher": leecher, "leecher2": leecher2})
    sh = h.lt_add(seeder, blob_a, seed_dir)
    h.wait_until(lambda: (alerts.pump(), sh.status().is_seeding)[1], LT_TIMEOUT_S,
                 "seeder checked its data")
    wait_tracker_reply(alerts, "seeder", sh, 0, 0)
    seeder_port = seeder.listen_port()

    leech_dir = os.path.join(workdir, "leech")
    os.makedirs(leech_dir)
    mark = len(alerts.seen)
    lh = h.lt_add(leecher, blob_c, leech_dir)
    reply = wait_tracker_reply(alerts, "leecher", lh, mark, 1)
    h.check_eq(reply.num_peers, 1, "node C gave the leecher exactly the seeder")
    download(alerts, "leecher", lh, leech_dir, digest)

    ids = list(by_id)
    sw = {n.name: n.swarms() for n in nodes}
    h.log(f"swarms per node: {sw}")
    h.check_eq(sw[owner.name]["torrents"], 1, f"owner {owner.name} holds the swarm (/stats)")
    h.check(all(sw[n.name]["torrents"] == 0 for n in others),
            "no other node holds the swarm as owner")
    ordered = sorted(ids, key=lambda x: int(x, 16))
    oi = ordered.index(owner.id)
    replica_names = [by_id[ordered[(oi + k) % NODES]].name for k in range(1, REPLICAS)]
    h.wait_until(lambda: all((by_id[ordered[(oi + k) % NODES]].swarms() or {}).get(
                     "replica_torrents") == 1 for k in range(1, REPLICAS)),
                 SETTLE_TIMEOUT_S, f"replicas on the owner's successors {replica_names}")
    # The crash below must come after the replication of the leecher's `completed` (the
    # guarantee covers peers answered more than one replication interval before a crash):
    # both replicas hold the whole swarm, 2 seeders, before the owner dies.
    h.wait_until(lambda: all(((by_id[ordered[(oi + k) % NODES]].swarms() or {}).get(
                     "replica_peers"), (by_id[ordered[(oi + k) % NODES]].swarms() or {}).get(
                     "replica_seeders")) == (2, 2) for k in range(1, REPLICAS)),
                 SETTLE_TIMEOUT_S, f"replicas {replica_names} hold both seeders")
    # The leecher announced `completed`: 2 seeders, 1 download, seen the same from every node.
    for n in nodes:
        h.wait_for_value(lambda: scrape_counts(n.http, [info_hash])[info_hash], (2, 1, 0),
                         SETTLE_TIMEOUT_S, f"scrape at {n.name} (complete, downloaded, incomplete)")

    # ---- 2. kill -9 the owner ----------------------------------------------------------------
    h.log("=== kill -9 the owner ===")
    owner.kill9()
    survivors = [n for n in nodes if n is not owner]
    t_kill = time.monotonic()
    # A raw client first: it asks node B right away, retrying while the ring notices the crash.
    probe_id = b"-CE0001-probe0000000"
    d = announce(node_b.http, info_hash, probe_id, 7001, left=FILE_BYTES, numwant=200)
    got = h.reply_peers(d)
    h.log(f"node B answered {time.monotonic() - t_kill:.2f} s after the crash with {got}")
    h.check(("127.0.0.1", seeder_port) in got,
            f"after the owner's crash node B still returns the seeder 127.0.0.1:{seeder_port}")
    announce(node_b.http, info_hash, probe_id, 7001, left=FILE_BYTES, event="stopped")

    leech2_dir = os.path.join(workdir, "leech2")
    os.makedirs(leech2_dir)
    mark = len(alerts.seen)
    lh2 = h.lt_add(leecher2, blob_b, leech2_dir)
    reply = wait_tracker_reply(alerts, "leecher2", lh2, mark, 1)
    h.log(f"leecher2 (at B) got {reply.num_peers} peers")
    h.check(reply.num_peers >= 1, "a new libtorrent leecher at node B gets peers")
    download(alerts, "leecher2", lh2, leech2_dir, digest)
    converge(survivors, "4 survivors repair the ring")
    new_owner = by_id[owner_of(info_hash, [n.id for n in survivors])]
    h.wait_for_value(lambda: (new_owner.swarms() or {}).get("torrents"), 1, SETTLE_TIMEOUT_S,
                     f"{new_owner.name} (the next node) owns the swarm after the crash")
    h.log(f"ports: seeder {seeder_port}, leecher {leecher.listen_port()}, "
          f"leecher2 {leecher2.listen_port()}, raw probe 7001")
    first = survivors[0]
    h.wait_until(lambda: len({scrape_counts(n.http, [info_hash])[info_hash]
                              for n in survivors}) == 1, SETTLE_TIMEOUT_S,
                 "scrape at every survivor reports the same counts")
    try:
        for n in survivors:
            h.wait_for_value(lambda: scrape_counts(n.http, [info_hash])[info_hash], (3, 2, 0),
                             SETTLE_TIMEOUT_S, f"scrape at survivor {n.name} after the crash "
                             "(complete, downloaded, incomplete)")
    except h.CheckFailed:
        dump_swarm(survivors, info_hash)
        raise

    # ---- 3. a node joins under load ----------------------------------------------------------
    h.log("=== a sixth node joins while peers are announced at every node ===")
    joiner_port = free_udp_port()
    joiner_ring = f"127.0.0.1:{joiner_port}"
    # The joiner's id is predicted from the ring it joins: a wrong prediction fails the
    # takeover count below (and the check right after convergence says why).
    joiner_id = chosen_id(joiner_ring, [n.id for n in survivors])
    ids_after = sorted([n.id for n in survivors] + [joiner_id], key=lambda x: int(x, 16))
    pred_id = ids_after[ids_after.index(joiner_id) - 1]
    n_joiner = int(LOAD_TORRENTS * LOAD_JOINER_SHARE)
    hashes = [hash_in_range(rng, pred_id, joiner_id) for _ in range(n_joiner)]
    hashes += [rng.randbytes(20) for _ in range(LOAD_TORRENTS - n_joiner)]
    load = UdpLoad(survivors, hashes, LOAD_PEERS_PER_TORRENT)
    load.start()
    h.wait_until(lambda: len(load.answered) >= LOAD_BEFORE_JOIN or load.error, 60,
                 f"{LOAD_BEFORE_JOIN} load peers announced before the join")
    joiner = ClusterNode(args.daemon, workdir, "F", joiner_ring, [survivors[1].ring],
                         conf).start()
    t_join = time.monotonic()
    ring6 = survivors + [joiner]
    all_hashes = hashes + [info_hash]
    want_owned = sum(1 for x in all_hashes if owner_of(x, ids_after) == joiner_id)
    converge(ring6, "the joiner is in the ring")
    h.check_eq(joiner.id, joiner_id, "the joiner took the candidate id that halves its gap best")
    h.wait_for_value(lambda: (joiner.swarms() or {}).get("torrents"), want_owned,
                     SETTLE_TIMEOUT_S, "torrents owned by the joiner (its whole range)")
    h.log(f"measured: joiner owns its {want_owned} swarms {time.monotonic() - t_join:.2f} s "
          "after it started")
    time.sleep(LOAD_AFTER_TAKEOVER_S)
    load.stop_flag.set()
    load.join(timeout=30)
    if load.error:
        raise h.CheckFailed(f"load thread failed: {load.error!r}")
    h.log(f"load: {load.requests} UDP announces for {len(load.attempted)} peers, "
          f"{len(load.answered)} answered, {load.refused} refused or lost and retried, "
          f"{load.gave_up} given up")
    h.check(load.gave_up == 0, "every load announce was answered within its retries")

    # Expected swarms: every answered peer (a peer whose announces all went unanswered may or
    # may not be there); seeders are the peers with left=0.
    sure = {x: (set(), set()) for x in hashes}
    maybe = {x: (set(), set()) for x in hashes}
    for i in load.attempted:
        ih, _, port, left = load.peer(i)
        maybe[ih][0 if left == 0 else 1].add(port)
        if i in load.answered:
            sure[ih][0 if left == 0 else 1].add(port)

    def bad_counts(n):
        got = scrape_counts(n.http, hashes)
        return {x.hex()[:12]: ((c, inc), (len(sure[x][0]), len(sure[x][1])))
                for x, (c, _, inc) in got.items()
                if not (len(sure[x][0]) <= c <= len(maybe[x][0]) and
                        len(sure[x][1]) <= inc <= len(maybe[x][1]))}
    for n in ring6:
        h.wait_until(lambda: not bad_counts(n), SETTLE_TIMEOUT_S,
                     f"scrape at {n.name} counts every answered load peer (and no other)")
        h.log(f"ok: scrape at {n.name}: all {len(hashes)} load swarms whole")
    h.wait_until(lambda: len({tuple(sorted(scrape_counts(n.http, all_hashes).items()))
                              for n in ring6}) == 1, SETTLE_TIMEOUT_S,
                 "every node reports the same counts for every swarm")
    for n in ring6:
        h.check_eq(scrape_counts(n.http, [info_hash])[info_hash], (3, 2, 0),
                   f"scrape at {n.name}: the libtorrent swarm is whole")
    # Every answered peer is returned to a new leecher, whichever node it asks.
    missing, phantom = [], []
    for k, x in enumerate(hashes):
        at = ring6[k % len(ring6)]
        pid = b"-CE0001-probe%07d" % k
        d = announce(at.http, x, pid, 9, left=1, numwant=200)
        ports = {p for ip, p in h.reply_peers(d)}
        lost = (sure[x][0] | sure[x][1]) - ports
        if lost:
            missing.append((x.hex(), at.name, sorted(lost)))
        extra = ports - (maybe[x][0] | maybe[x][1])
        if extra:
            phantom.append((x.hex(), at.name, sorted(extra)))
        announce(at.http, x, pid, 9, left=1, event="stopped")
    h.check(not missing, f"announce with numwant=200 returns every answered peer ({missing[:5]})")
    h.check(not phantom, f"and no peer that was never announced ({phantom[:5]})")
    h.log(f"client retries during the whole test: {retry_count}")

    del seeder, leecher, leecher2
    for n in ring6:
        n.tracker.stop()


def main():
    h.main_for_ringtracker(__doc__, body, "cluster_swarm.py runs ringtracker daemons only")


if __name__ == "__main__":
    main()
