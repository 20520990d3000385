"""End-to-end: the DHT front end (BEP 5) as a trackerless backbone over the tracker's swarms.

1. Raw KRPC against a lone daemon: ping and find_node answers (a client that answered the
   node's ping is handed out to others), get_peers gives a token, announce_peer with it puts
   the peer into the tracker's swarm (HTTP scrape and announce see it), a tracker-announced
   peer comes back in get_peers' values, noseed and implied_port are honoured; a token used
   from another IP, an unknown method and a malformed query get BEP 5 errors; garbage gets
   nothing and is counted. Over ::1 (when this machine has it) values are 18-byte IPv6 peers.
   Then seeded fuzzing (random and mutated KRPC datagrams, oversized and deeply nested ones):
   every reply is valid bencode within one datagram, the daemon stays up and the swarm intact.
2. Three ring daemons, B's and C's DHT bootstrapped from A's: C's find_node names A and B;
   announce_peer at node A, get_peers at node C returns the peer, scrape at node B counts it
   (the DHT is served from the ring's owner, wherever it is).
3. Real clients: a libtorrent seeder announces over HTTP to node A only (its DHT is off); a
   leecher without trackers whose DHT knows only node C finds the seeder through C, downloads
   and verifies the file, and its own DHT announce lands in the ring's swarm. Then aria2c, with
   the same trackerless torrent and node B as its only DHT entry point, does the same (aria2
   opens peer connections every 10 s, so this part takes about that long).
4. kill -9 node A, where every DHT peer above was announced: once the two others have repaired
   the ring, get_peers at node C still returns each of them (the replicas took over).
"""

import os
import socket
import subprocess
import time

import cluster_swarm as cs
import harness as h

REPLY_TIMEOUT_S = 3.0
QUIET_S = 0.5
CONVERGE_TIMEOUT_S = 30.0
FILE_BYTES = 2 * 1024 * 1024
DOWNLOAD_TIMEOUT_S = 60
SWARM_TIMEOUT_S = 20
# dht.queries_per_ip_per_second's default, and a burst well above it.
DEFAULT_LIMIT = 500
FLOOD_PINGS = 1500
# dht.external_ip of the lone daemon (a documentation address): its DHT id must follow BEP 42.
EXTERNAL_IP = "203.0.113.7"
# aria2 looks again 5 s after a lookup that found no DHT node and connects to peers every 10 s.
ARIA2_TIMEOUT_S = 60


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

    def __init__(self, rng, host="127.0.0.1"):
        self.id = bytes(rng.randrange(256) for _ in range(20))
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
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
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while True:
            # Late answers to earlier datagrams (the fuzzing's) carry other transaction ids.
            reply = self.read(max(0.0, deadline - time.monotonic()))
            if reply is None:
                raise h.CheckFailed(f"no answer to {method} from {endpoint} with t={t!r}")
            if reply.get(b"t") == t:
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


def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 & -(crc & 1))
    return crc ^ 0xffffffff


def bep42_valid(node_id, ipv4):
    """BEP 42: the id's top 21 bits are crc32c of the masked IP with r = last byte & 7."""
    masked = bytearray(b & m for b, m in zip(socket.inet_aton(ipv4), (0x03, 0x0f, 0x3f, 0xff)))
    masked[0] |= (node_id[19] & 7) << 5
    crc = crc32c(bytes(masked))
    return (node_id[0] == crc >> 24 and node_id[1] == (crc >> 16) & 0xff
            and node_id[2] & 0xf8 == (crc >> 8) & 0xf8)


def values_of(r):
    out = set()
    for v in r.get(b"values", []):
        fam = socket.AF_INET6 if len(v) == 18 else socket.AF_INET
        h.check(len(v) in (6, 18), f"a value is a compact peer ({len(v)} bytes)")
        out.add((socket.inet_ntop(fam, v[:-2]), int.from_bytes(v[-2:], "big")))
    return out


def scrape_of(endpoint, info_hash):
    d = h.http_scrape(endpoint, [info_hash])
    f = d.get(b"files", {}).get(info_hash)
    return (f[b"complete"], f[b"incomplete"]) if f else (0, 0)


def lone_node(args, workdir, rng):
    h.log("=== raw KRPC against a lone daemon ===")
    v6 = h.ipv6_loopback_usable()
    dht_args = ["--dht", "127.0.0.1:0"] + (["--dht", "[::1]:0"] if v6 else [])
    http_binds = ("127.0.0.1:0", "[::1]:0") if v6 else ("127.0.0.1:0",)
    os.makedirs(os.path.join(workdir, "lone"))
    conf = os.path.join(workdir, "lone", "dht.toml")
    with open(conf, "w") as f:
        # No per-IP limit here: the fuzzing below sends thousands of datagrams from one IP.
        f.write(f'[dht]\nexternal_ip = "{EXTERNAL_IP}"\nqueries_per_ip_per_second = 0\n')
    t = h.Tracker(args.daemon, os.path.join(workdir, "lone"), http=http_binds,
                  extra_args=["--config", conf] + dht_args)
    t.start()
    h.check(len(t.dht) == len(dht_args) // 2, "the listening line names the DHT endpoints")
    dht, http = t.dht[0], t.endpoint("http")
    a, b, c = KrpcClient(rng), KrpcClient(rng), KrpcClient(rng)
    other_ip = KrpcClient(rng, "127.0.0.2")
    ih = bytes(rng.randrange(256) for _ in range(20))

    r = a.ok(dht, "ping", {})
    node_id = r[b"id"]
    h.check_eq(len(node_id), 20, "ping reply carries a 20-byte node id")
    h.check(bep42_valid(node_id, EXTERNAL_IP),
            f"BEP 42: the id {node_id.hex()} is derived from dht.external_ip {EXTERNAL_IP}")
    h.check(not bep42_valid(node_id, "198.51.100.7"), "and not from another address")
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

    if v6:
        six = KrpcClient(rng, "::1")
        dht6 = t.dht[1]
        http6 = t.endpoint("http", v6=True)
        h.http_announce(http6, ih, b"-RT0001-httppeer0006", 40006, left=3)
        r = six.ok(dht6, "get_peers", {"info_hash": ih})
        h.check_eq(values_of(r), {("::1", 40006)}, "over IPv6, get_peers returns the IPv6 peers")
        six.ok(dht6, "announce_peer", {"info_hash": ih, "port": 40007, "token": r[b"token"]})
        d = h.http_announce(http6, ih, b"-RT0001-httppeer0008", 40008, left=3)
        h.check(("::1", 40007) in h.reply_peers(d), "an IPv6 DHT announce reaches HTTP clients")
        six.close()
    else:
        h.log("*** IPv6 part SKIPPED: this machine cannot bind ::1 ***")

    fuzz(t, dht, http, ih, a, rng)
    for k in (a, b, c, other_ip):
        k.close()
    t.stop()


FUZZ_DATAGRAMS = 3000
FUZZ_BURST = 32


def fuzz(t, dht, http, ih, client, rng):
    h.log(f"=== fuzzing the DHT socket with {FUZZ_DATAGRAMS} datagrams ===")
    before = scrape_of(http, ih)
    valid = [
        benc({"t": "aa", "y": "q", "q": "ping", "a": {"id": client.id}}),
        benc({"t": "ab", "y": "q", "q": "find_node", "a": {"id": client.id, "target": ih}}),
        benc({"t": "ac", "y": "q", "q": "get_peers", "a": {"id": client.id, "info_hash": ih}}),
        benc({"t": "ad", "y": "q", "q": "announce_peer",
              "a": {"id": client.id, "info_hash": ih, "port": 9, "token": b"x" * 8}}),
        benc({"t": "ae", "y": "r", "r": {"id": client.id, "nodes": b"n" * 26}}),
        benc({"t": "af", "y": "e", "e": [201, "x"]}),
    ]
    replies = 0
    for i in range(FUZZ_DATAGRAMS):
        kind = rng.randrange(6)
        if kind == 0:
            d = rng.randbytes(rng.randrange(1, 200))
        elif kind == 1:
            d = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 4)):
                d[rng.randrange(len(d))] = rng.randrange(256)
            d = bytes(d)
        elif kind == 2:
            v = rng.choice(valid)
            d = v[:rng.randrange(len(v))]
        elif kind == 3:
            v = rng.choice(valid)
            at = rng.randrange(len(v))
            d = v[:at] + rng.randbytes(rng.randrange(1, 16)) + v[at:]
        elif kind == 4:
            n = rng.randrange(1, 400)
            d = b"d1:t2:zz1:y1:q1:q4:ping1:a" + b"l" * n + b"e" * n + b"e"
        else:
            d = b"d1:t2:zz1:y1:q1:q4:ping1:ad2:id20:" + client.id + b"e1:z" + \
                str(rng.randrange(1500, 9000)).encode() + b":"
            d += rng.randbytes(rng.randrange(1500, 9000)) + b"e"
        client.send(dht, d)
        if i % FUZZ_BURST == FUZZ_BURST - 1:
            while True:
                client.sock.settimeout(0.05)
                try:
                    data, _ = client.sock.recvfrom(65536)
                except socket.timeout:
                    break
                replies += 1
                h.check(len(data) <= 1500, f"a reply fits one datagram ({len(data)} bytes)")
                try:
                    h.bdecode(data)
                except ValueError as e:
                    raise h.CheckFailed(f"reply to fuzz is not bencode ({e}): {data[:80]!r}")
    h.check(t.alive(), "the daemon survived the fuzzing")
    c = t.counters()
    h.log(f"fuzz: {replies} replies; received {c.get('dht_datagrams_received')}, malformed "
          f"{c.get('dht_drop_malformed')}, oversized {c.get('dht_drop_oversized')}, errors sent "
          f"{c.get('dht_errors_sent')}, bad tokens {c.get('dht_bad_tokens')}")
    h.check(c.get("dht_drop_malformed", 0) > FUZZ_DATAGRAMS // 10, "garbage is counted")
    h.check(c.get("dht_drop_oversized", 0) > 0, "oversized datagrams are counted")
    h.check(client.ok(dht, "ping", {})[b"id"], "a normal ping is answered after the fuzzing")
    h.check_eq(scrape_of(http, ih), before, "the swarm is intact after the fuzzing")


def ring_nodes(args, workdir, rng, count=3):
    secret = "%032x" % rng.getrandbits(128)
    conf = cs.ring_conf(secret, stabilize_ms=200, successors=2, replicas=3)
    nodes = []
    for i in range(count):
        ring = f"127.0.0.1:{cs.free_udp_port()}"
        join = [nodes[0].ring] if nodes else []
        # Every later node's DHT starts from the first one's, as an operator would list them.
        boot = ["--dht-bootstrap", "%s:%d" % nodes[0].tracker.dht[0]] if nodes else []
        n = cs.ClusterNode(args.daemon, workdir, f"n{i}", ring, join, conf,
                           extra_args=["--dht", "127.0.0.1:0"] + boot)
        n.start()
        nodes.append(n)
    cs.converge(nodes, f"{count}-node ring", CONVERGE_TIMEOUT_S, successors=2)
    return nodes


def ring_dht_neighbours(nodes, rng):
    h.log("=== the ring nodes' DHTs know each other (bootstrap through node A) ===")
    k = KrpcClient(rng)
    c_dht = nodes[2].tracker.dht[0]
    others = {nodes[0].tracker.dht[0], nodes[1].tracker.dht[0]}

    def named():
        nodes_blob = k.ok(c_dht, "find_node", {"target": k.id}).get(b"nodes", b"")
        return {(socket.inet_ntoa(nodes_blob[i + 20:i + 24]),
                 int.from_bytes(nodes_blob[i + 24:i + 26], "big"))
                for i in range(0, len(nodes_blob), 26)}
    # B knows A from its bootstrap; C learns B from A's answer and pings it first.
    h.wait_until(lambda: others <= named(), CONVERGE_TIMEOUT_S,
                 "node C's find_node names the DHT endpoints of nodes A and B")
    k.close()


def ring_raw(nodes, rng):
    h.log("=== raw KRPC across a 3-node ring ===")
    a_dht, c_dht = nodes[0].tracker.dht[0], nodes[2].tracker.dht[0]
    k = KrpcClient(rng)
    # Eight hashes, the first four owned by node A (the one the failover part kills) and the
    # others by B or C, so that every part sees local and forwarded queries.
    ids = [n.id for n in nodes]
    owned_by_a, others = [], []
    while len(owned_by_a) < 4 or len(others) < 4:
        ih = bytes(rng.randrange(256) for _ in range(20))
        mine = cs.owner_of(ih, ids) == nodes[0].id
        bucket = owned_by_a if mine else others
        if len(bucket) < 4:
            bucket.append(ih)
    hashes = owned_by_a + others
    for i, ih in enumerate(hashes):
        token = k.ok(a_dht, "get_peers", {"info_hash": ih})[b"token"]
        k.ok(a_dht, "announce_peer", {"info_hash": ih, "port": 41000 + i, "token": token})
    for i, ih in enumerate(hashes):
        r = k.ok(c_dht, "get_peers", {"info_hash": ih})
        h.check_eq(values_of(r), {("127.0.0.1", 41000 + i)},
                   f"get_peers at node C finds the peer announced at node A ({ih.hex()[:8]})")
        h.check_eq(cs.scrape_counts(nodes[1].http, [ih])[ih], (0, 0, 1),
                   "scrape at node B counts the DHT peer")
    k.close()

    # The default per-IP limit: a burst from one address gets at most the limit per second.
    flood = KrpcClient(rng)
    before = nodes[2].tracker.counters().get("dht_drop_rate_limited", 0)
    ping = benc({"t": "fl", "y": "q", "q": "ping", "a": {"id": flood.id}})
    replies = 0
    t0 = time.monotonic()
    for i in range(FLOOD_PINGS):
        flood.send(c_dht, ping)
        if i % 50 == 49:  # read what came, so that the client's own buffer never overflows
            while flood.read(0.0005) is not None:
                replies += 1
    sent_s = time.monotonic() - t0
    while flood.read(QUIET_S) is not None:
        replies += 1
    limited = nodes[2].tracker.counters().get("dht_drop_rate_limited", 0) - before
    h.log(f"flood: {FLOOD_PINGS} pings in {sent_s:.3f} s, {replies} replies, {limited} limited")
    # A burst of S seconds touches at most int(S) + 2 one-second windows.
    windows = int(time.monotonic() - t0) + 2
    h.check(replies <= windows * DEFAULT_LIMIT,
            f"at most {windows} x {DEFAULT_LIMIT} replies to a burst")
    h.check(limited > 0, "the rest is dropped and counted")
    h.check_eq(replies + limited, FLOOD_PINGS, "every ping answered or counted as limited")
    flood.close()
    return hashes


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
        aria2_leecher(nodes, base, trackerless, digest)
    finally:
        del seeder, leecher


def aria2_leecher(nodes, base, trackerless, digest):
    h.log("=== aria2c: DHT only, node B as its entry point ===")
    d = os.path.join(base, "aria2")
    os.makedirs(os.path.join(d, "dl"))
    torrent = os.path.join(d, "trackerless.torrent")
    with open(torrent, "wb") as f:
        f.write(trackerless)
    b_host, b_port = nodes[1].tracker.dht[0]
    before = nodes[1].tracker.counters()
    argv = ["aria2c", "--enable-dht=true", f"--dht-listen-port={cs.free_udp_port()}",
            f"--dht-entry-point={b_host}:{b_port}",
            f"--dht-file-path={os.path.join(d, 'dht.dat')}", "--enable-dht6=false",
            "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--seed-time=0",
            f"--listen-port={h.free_port()}", "--disable-ipv6=true", f"--stop={ARIA2_TIMEOUT_S}",
            "--summary-interval=0", "--console-log-level=warn", "--file-allocation=none",
            f"--log={os.path.join(d, 'aria2.log')}", "--log-level=info",
            f"--dir={os.path.join(d, 'dl')}", torrent]
    t0 = time.monotonic()
    try:
        rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=ARIA2_TIMEOUT_S + 30).returncode
    except FileNotFoundError:
        raise h.CheckFailed("aria2c is not installed (make test installs it)")
    h.log(f"aria2c exited with {rc} after {time.monotonic() - t0:.1f} s")
    h.check_eq(rc, 0, "aria2c exit status (0 = download complete)")
    h.check_eq(h.sha256_file(os.path.join(d, "dl", "payload.bin")), digest, "aria2c file sha256")
    after = nodes[1].tracker.counters()
    for q in ("get_peers", "announce_peer"):
        key = f"dht_queries_{q}"
        h.check(after.get(key, 0) > before.get(key, 0), f"aria2 sent {q} to node B")


def ring_failover(nodes, hashes, rng):
    h.log("=== kill -9 node A: the DHT peers survive on the replicas ===")
    nodes[0].kill9()
    live = nodes[1:]
    cs.converge(live, "2-node ring after the crash", CONVERGE_TIMEOUT_S, successors=2)
    c_dht = nodes[2].tracker.dht[0]
    k = KrpcClient(rng)
    for i, ih in enumerate(hashes):
        # A request that meets the repair in progress fails with a reason; clients ask again.
        def found():
            reply = k.query(c_dht, "get_peers", {"info_hash": ih})
            return reply.get(b"y") == b"r" and values_of(reply[b"r"]) == {("127.0.0.1", 41000 + i)}
        h.wait_until(found, SWARM_TIMEOUT_S, f"get_peers at node C after the crash ({ih.hex()[:8]})")
    h.log(f"ok: all {len(hashes)} DHT peers announced at the dead node (which owned 4 of "
          "them) are still served")
    k.close()


def body(args, workdir, rng):
    lone_node(args, workdir, rng)
    nodes = ring_nodes(args, workdir, rng)
    ring_dht_neighbours(nodes, rng)
    hashes = ring_raw(nodes, rng)
    ring_clients(nodes, workdir, rng)
    ring_failover(nodes, hashes, rng)
    for n in nodes[1:]:
        n.tracker.stop()


def main():
    h.main_for_ringtracker(__doc__, body,
                           "dht_backbone.py runs ringtracker daemons only (opentracker has no DHT)")


if __name__ == "__main__":
    main()
