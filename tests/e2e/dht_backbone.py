"""End-to-end: the DHT front end (BEP 5) as a trackerless backbone over the tracker's swarms.

1. Raw KRPC against a lone daemon: ping and find_node answers (a client that answered the
   node's ping is handed out to others), get_peers gives a token, announce_peer with it puts
   the peer into the tracker's swarm (HTTP scrape and announce see it), a tracker-announced
   peer comes back in get_peers' values, noseed and implied_port are honoured; a token used
   from another IP, an unknown method and a malformed query get BEP 5 errors; garbage gets
   nothing and is counted.
2. Three ring daemons: announce_peer at node A, get_peers at node C returns the peer, scrape at
   node B counts it (the DHT is served from the ring's owner, wherever it is).
3. Real clients: a libtorrent seeder announces over HTTP to node A only (its DHT is off); a
   leecher without trackers whose DHT knows only node C finds the seeder through C, downloads
   and verifies the file, and its own DHT announce lands in the ring's swarm.
"""

import os
import random
import socket
import time

import cluster_swarm as cs
import harness as h

REPLY_TIMEOUT_S = 3.0
QUIET_S = 0.5
CONVERGE_TIMEOUT_S = 30.0
FILE_BYTES = 2 * 1024 * 1024
DOWNLOAD_TIMEOUT_S = 60
SWARM_TIMEOUT_S = 20


def benc(x):
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, str):
        x = x.encode()
    if isinstance(x, bytes):
        return b"%d:%s" % (len(x), x)
    if isinstance(x, list):
        return b"l" + b"".join(benc(i) for i in x) + b"e"
    if isinstance(x, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in x.items())
        return b"d" + b"".join(benc(k) + benc(v) for k, v in items) + b"e"
    raise TypeError(type(x))


def compact(host, port):
    return socket.inet_aton(host) + port.to_bytes(2, "big")


class KrpcClient:
    """A DHT node of its own (random id) on one UDP socket: sends queries and reads replies,
    answering the daemon's pings in between, as a real node does."""

    def __init__(self, host="127.0.0.1", rng=random):
        self.id = bytes(rng.randrange(256) for _ in range(20))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.addr = self.sock.getsockname()
        self.txid = 0
        self.pinged = 0

    def close(self):
        self.sock.close()

    def _serve(self, msg, src):
        if msg.get(b"y") == b"q" and msg.get(b"q") == b"ping":
            self.pinged += 1
            self.sock.sendto(benc({"t": msg[b"t"], "y": "r", "r": {"id": self.id}}), src)

    def read(self, timeout_s):
        """Next message that is not a query to this node (those are answered), or None."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, src = self.sock.recvfrom(65536)
            except socket.timeout:
                return None
            msg = h.bdecode(data)
            if msg.get(b"y") == b"q":
                self._serve(msg, src)
                continue
            return msg

    def serve(self, seconds):
        """Answers the daemon's queries for a while (e.g. the ping that follows a first query)."""
        h.check(self.read(seconds) is None, "no unsolicited reply while serving")

    def send(self, endpoint, raw):
        self.sock.sendto(raw, endpoint)

    def query(self, endpoint, method, args, top=None):
        self.txid += 1
        t = self.txid.to_bytes(2, "big")
        msg = {"t": t, "y": "q", "q": method, "a": dict(args, id=self.id)}
        msg.update(top or {})
        self.send(endpoint, benc(msg))
        reply = self.read(REPLY_TIMEOUT_S)
        if reply is None:
            raise h.CheckFailed(f"no answer to {method} from {endpoint}")
        h.check_eq(reply.get(b"t"), t, f"{method} reply echoes the transaction id")
        return reply

    def ok(self, endpoint, method, args, top=None):
        reply = self.query(endpoint, method, args, top)
        if reply.get(b"y") != b"r":
            raise h.CheckFailed(f"{method} refused: {reply!r}")
        return reply[b"r"]

    def error(self, endpoint, method, args, want_code):
        reply = self.query(endpoint, method, args)
        h.check_eq(reply.get(b"y"), b"e", f"{method} with bad arguments is an error")
        h.check_eq(reply[b"e"][0], want_code, f"{method} error code")
        return reply[b"e"][1]


def values_of(r):
    return {(socket.inet_ntoa(v[:4]), int.from_bytes(v[4:6], "big")) for v in r.get(b"values", [])}


def scrape_of(endpoint, info_hash):
    d = h.http_scrape(endpoint, [info_hash])
    f = d.get(b"files", {}).get(info_hash)
    return (f[b"complete"], f[b"incomplete"]) if f else (0, 0)


def lone_node(args, workdir, rng):
    h.log("=== raw KRPC against a lone daemon ===")
    t = h.Tracker(args.daemon, os.path.join(workdir, "lone"), extra_args=["--dht", "127.0.0.1:0"])
    os.makedirs(t.workdir, exist_ok=True)
    t.start()
    h.check(len(t.dht) == 1, "the listening line names the DHT endpoint")
    dht, http = t.dht[0], t.endpoint("http")
    a, b, c = KrpcClient(rng=rng), KrpcClient(rng=rng), KrpcClient(rng=rng)
    other_ip = KrpcClient("127.0.0.2", rng=rng)
    ih = bytes(rng.randrange(256) for _ in range(20))

    r = a.ok(dht, "ping", {})
    node_id = r[b"id"]
    h.check_eq(len(node_id), 20, "ping reply carries a 20-byte node id")
    reply = a.query(dht, "ping", {})
    h.check_eq(reply.get(b"ip"), compact(*a.addr), "BEP 42: reply echoes the asker's address")

    # The daemon pings an unknown querier; once it answered, others are told about it.
    h.wait_until(lambda: (a.serve(0.2), a.pinged > 0)[1], REPLY_TIMEOUT_S, "the daemon's ping of a")
    r = b.ok(dht, "find_node", {"target": a.id})
    nodes = r.get(b"nodes", b"")
    h.check(a.id + compact(*a.addr) in [nodes[i:i + 26] for i in range(0, len(nodes), 26)],
            f"find_node names the node that answered the daemon's ping ({len(nodes) // 26} nodes)")

    r = a.ok(dht, "get_peers", {"info_hash": ih})
    token = r.get(b"token")
    h.check(token, "get_peers gives a token")
    h.check(not r.get(b"values"), "no values for an unknown torrent")
    h.check_eq(scrape_of(http, ih), (0, 0), "get_peers creates no swarm")

    a.ok(dht, "announce_peer", {"info_hash": ih, "port": 40001, "token": token})
    h.check_eq(scrape_of(http, ih), (0, 1), "DHT announce is a leecher in the tracker's swarm")
    tc = c.ok(dht, "get_peers", {"info_hash": ih})[b"token"]
    c.ok(dht, "announce_peer", {"info_hash": ih, "port": 40002, "token": tc, "seed": 1})
    h.check_eq(scrape_of(http, ih), (1, 1), "BEP 33 seed=1 counts as a seeder")

    d = h.http_announce(http, ih, b"-RT0001-httppeer0001", 40003, left=10)
    h.check_eq(h.reply_peers(d), {("127.0.0.1", 40001), ("127.0.0.1", 40002)},
               "an HTTP announce gets the DHT-announced peers")
    r = b.ok(dht, "get_peers", {"info_hash": ih})
    h.check_eq(values_of(r), {("127.0.0.1", p) for p in (40001, 40002, 40003)},
               "get_peers returns the tracker's swarm")
    r = b.ok(dht, "get_peers", {"info_hash": ih, "noseed": 1})
    h.check_eq(values_of(r), {("127.0.0.1", p) for p in (40001, 40003)}, "noseed leaves out seeds")

    # implied_port: the datagram's source port is what gets stored.
    tb = b.ok(dht, "get_peers", {"info_hash": ih})[b"token"]
    b.ok(dht, "announce_peer", {"info_hash": ih, "port": 1, "implied_port": 1, "token": tb})
    r = c.ok(dht, "get_peers", {"info_hash": ih})
    h.check(("127.0.0.1", b.addr[1]) in values_of(r), "implied_port stores the source port")
    h.check(("127.0.0.1", 1) not in values_of(r), "and not the port argument")

    msg = other_ip.error(dht, "announce_peer", {"info_hash": ih, "port": 40009, "token": token},
                         203)
    h.check_eq(msg, b"bad token", "a token is bound to the IP it was given to")
    h.check_eq(scrape_of(http, ih), (1, 3), "a refused announce stores nothing")
    a.error(dht, "put", {"v": "x"}, 204)
    a.error(dht, "find_node", {"target": b"short"}, 203)

    before = t.counters().get("dht_drop_malformed", 0)
    a.send(dht, b"GET / HTTP/1.1\r\n\r\n")
    a.send(dht, b"d1:t2:aa1:y1:xe")
    h.check(a.read(QUIET_S) is None, "garbage gets no answer")
    h.check_eq(t.counters().get("dht_drop_malformed", 0) - before, 2, "garbage is counted")
    h.check(t.counters().get("dht_queries_get_peers", 0) >= 6, "/stats counts get_peers")
    for k in (a, b, c, other_ip):
        k.close()
    t.stop()


def ring_nodes(args, workdir, rng, count=3):
    secret = "%032x" % rng.getrandbits(128)
    conf = cs.ring_conf(secret, stabilize_ms=200, successors=2, replicas=3)
    nodes = []
    for i in range(count):
        ring = f"127.0.0.1:{cs.free_udp_port()}"
        join = [nodes[0].ring] if nodes else []
        n = cs.ClusterNode(args.daemon, workdir, f"n{i}", ring, join, conf,
                           extra_args=["--dht", "127.0.0.1:0"])
        n.start()
        nodes.append(n)
    cs.converge(nodes, f"{count}-node ring", CONVERGE_TIMEOUT_S, successors=2)
    return nodes


def ring_raw(nodes, rng):
    h.log("=== raw KRPC across a 3-node ring ===")
    a_dht, c_dht = nodes[0].tracker.dht[0], nodes[2].tracker.dht[0]
    k = KrpcClient(rng=rng)
    hashes = [bytes(rng.randrange(256) for _ in range(20)) for _ in range(8)]
    for i, ih in enumerate(hashes):
        token = k.ok(a_dht, "get_peers", {"info_hash": ih})[b"token"]
        k.ok(a_dht, "announce_peer", {"info_hash": ih, "port": 41000 + i, "token": token})
    for i, ih in enumerate(hashes):
        # The owner may be any node: eight hashes land on all three with near certainty.
        r = k.ok(c_dht, "get_peers", {"info_hash": ih})
        h.check_eq(values_of(r), {("127.0.0.1", 41000 + i)},
                   f"get_peers at node C finds the peer announced at node A ({ih.hex()[:8]})")
        h.check_eq(cs.scrape_counts(nodes[1].http, [ih])[ih], (0, 0, 1),
                   "scrape at node B counts the DHT peer")
    k.close()


def ring_clients(nodes, workdir, rng):
    h.log("=== libtorrent: seeder over HTTP at node A, DHT-only leecher via node C ===")
    L = h.lt()
    base = os.path.join(workdir, "lt")
    seed_dir, leech_dir = os.path.join(base, "seed"), os.path.join(base, "leech")
    os.makedirs(seed_dir)
    os.makedirs(leech_dir)
    data_path = os.path.join(seed_dir, "payload.bin")
    digest = h.random_file(data_path, FILE_BYTES, rng)
    blob, ih = h.make_torrent(data_path, nodes[0].announce_url("http"))
    meta = L.bdecode(blob)
    del meta[b"announce"]
    trackerless = L.bencode(meta)
    h.check_eq(bytes.fromhex(str(L.torrent_info(trackerless).info_hashes().v1)), ih,
               "the trackerless torrent has the same info-hash")

    c_host, c_port = nodes[2].tracker.dht[0]
    seeder = h.lt_session("127.0.0.1:0")
    leecher = h.lt_session("127.0.0.1:0", dht_bootstrap=f"{c_host}:{c_port}")
    alerts = h.AlertLog({"seeder": seeder, "leecher": leecher})
    try:
        sh = h.lt_add(seeder, blob, seed_dir, seed_mode=True)
        mark = len(alerts.seen)
        cs.wait_tracker_reply(alerts, "seeder", sh, mark, 0)
        h.check_eq(cs.scrape_counts(nodes[1].http, [ih])[ih][0], 1, "seeder is in the swarm")
        before = nodes[2].tracker.counters().get("dht_queries_get_peers", 0)
        lh = h.lt_add(leecher, trackerless, leech_dir)
        cs.download(alerts, "leecher", lh, leech_dir, digest)
        h.check(nodes[2].tracker.counters().get("dht_queries_get_peers", 0) > before,
                "the leecher asked node C")

        def both_in_swarm():
            complete, _, incomplete = cs.scrape_counts(nodes[1].http, [ih])[ih]
            return complete + incomplete == 2
        h.wait_until(both_in_swarm, SWARM_TIMEOUT_S,
                     "the leecher's DHT announce in the ring's swarm (scrape at node B)")
    finally:
        del seeder, leecher


def body(args, workdir, rng):
    lone_node(args, workdir, rng)
    nodes = ring_nodes(args, workdir, rng)
    ring_raw(nodes, rng)
    ring_clients(nodes, workdir, rng)
    for n in nodes:
        n.tracker.stop()


def main():
    args = h.parse_args(__doc__)
    if args.opentracker:
        raise SystemExit("dht_backbone.py runs ringtracker daemons only (opentracker has no DHT)")
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    h.log(f"seed {seed}")
    rng = random.Random(seed)
    h.run_main(lambda wd: body(args, wd, rng), args)


if __name__ == "__main__":
    main()
