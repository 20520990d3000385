"""End-to-end robustness and protocol rules of a running tracker, seen from outside.

1. 50 peers (distinct 127.0.0.N addresses and ports, 10 seeders) announce one swarm, half over
   HTTP and half over BEP 15 UDP; the info-hash holds the bytes 0x00 '+' '&' '%'.
2. Protocol rules a client can observe: required reply keys, compact and dictionary models with
   and without no_peer_id, peers6 for an IPv6 peer (HTTP and UDP over ::1), numwant=0, seeders
   get no seeders, the announcer never gets itself, event=stopped removes (HTTP and UDP), '+' is
   a literal byte, multi-hash scrape (sorted BEP 48 `files`, UDP in request order), a repeated
   info_hash in announce fails, BEP 41 options are answered, BEP 15 errors go to verified
   clients only and unverified sources get no reply at all.
3. Seeded fuzzing (the seed is printed; rerun with --seed): thousands of random and mutated UDP
   datagrams (truncated, flipped bytes, wrong actions, oversized, random connection ids,
   BEP 41 garbage tails) and HTTP requests (bad percent-encoding, missing keys, huge queries,
   random paths, mutated queries, binary junk over raw TCP, idle half-sent connections).
4. Afterwards: the process is alive, answers a normal announce at once, still returns exactly
   the peers announced before, and /stats counters account for the drops.
"""

import random
import re
import socket
import struct
import time

import harness as h

PEERS = 50
SEEDERS = 10
FUZZ_UDP_PACKETS = 10000
FUZZ_HTTP_REQUESTS = 1500
JUNK_TCP_CONNECTIONS = 60
# Datagrams sent back to back before the test lets the daemon drain its socket buffer.
UDP_BURST = 64
# Largest datagram loopback carries (65535 - IPv4 header - UDP header).
UDP_PAYLOAD_MAX = 65507
# Datagrams above this size must be dropped as oversized: the largest BEP 15 request is a
# 74-hash scrape (1496 bytes) or an announce with BEP 41 options; 4 KiB leaves room for any
# receive buffer a server may choose. Sizes between 1500 and this go through the mutations.
UDP_SURELY_OVERSIZED = 4096
# Per-reply bound the tracker promises (one 1280-byte IPv6 datagram minus headers).
UDP_REPLY_BYTES_MAX = 1232


def peer_ip(i):
    return f"127.0.0.{10 + i}"


def peer_port(i):
    return 10000 + i


def peer_id(i, tag=b"E"):
    return b"-RT0001-" + tag + f"{i:011d}".encode()


def is_failure(status, d):
    return status == 200 and isinstance(d.get(b"failure reason"), bytes) and \
        len(d[b"failure reason"]) > 0


def check_failure(tracker, query, what):
    status, d = h.http_announce_raw(tracker.endpoint("http"), query)
    h.check(is_failure(status, d), f"{what} -> HTTP 200 + bencoded failure reason "
            f"(got {status} {d!r:.120})")
    return d


def udp_kernel_drops():
    """Datagrams the kernel dropped for full receive buffers (all sockets, v4 + v6)."""
    total = 0
    for path, key in (("/proc/net/snmp", "Udp:"), ("/proc/net/snmp6", "Udp6RcvbufErrors")):
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        if key == "Udp:":
            rows = [l.split() for l in lines if l.startswith("Udp:")]
            if len(rows) >= 2 and "RcvbufErrors" in rows[0]:
                total += int(rows[1][rows[0].index("RcvbufErrors")])
        else:
            for l in lines:
                if l.startswith(key):
                    total += int(l.split()[1])
    return total


class Scenario:
    def __init__(self, tracker, rng):
        self.t = tracker
        self.rng = rng
        self.http = tracker.endpoint("http")
        self.udp = tracker.endpoint("udp")
        s = bytearray(rng.randbytes(20))
        s[0:4] = b"\x00+&%"  # bytes that break naive query parsers
        self.swarm = bytes(s)
        self.expected = set()     # (ip, port) announced and not stopped
        self.seeders = set()
        self.udp_clients = {}

    # -- announcing the 50 peers ----------------------------------------------------------

    def announce_peer(self, i, event="started"):
        left = 0 if i < SEEDERS else 1000
        if i % 2 == 0:
            h.http_announce(self.http, self.swarm, peer_id(i), peer_port(i), left=left,
                            event=event, source_ip=peer_ip(i), numwant=0)
        else:
            c = self.udp_clients.get(i)
            if c is None:
                c = self.udp_clients[i] = h.UdpClient(self.udp, source_ip=peer_ip(i))
            c.announce(self.swarm, peer_id(i), peer_port(i), left=left, event=event, numwant=0)
        key = (peer_ip(i), peer_port(i))
        if event == "stopped":
            self.expected.discard(key)
            self.seeders.discard(key)
        else:
            self.expected.add(key)
            if left == 0:
                self.seeders.add(key)

    def observe(self, proto, seeder=False, ip="127.0.0.200", port=20000):
        """Announces a fresh peer (numwant 200), returns (reply, peer set), then stops it."""
        left = 0 if seeder else 5
        pid = peer_id(port, b"O")
        if proto == "http":
            d = h.http_announce(self.http, self.swarm, pid, port, left=left, numwant=200,
                                source_ip=ip)
            peers = h.reply_peers(d)
            h.http_announce(self.http, self.swarm, pid, port, left=left, event="stopped",
                            source_ip=ip)
            return (d[b"complete"], d[b"incomplete"]), peers
        c = h.UdpClient(self.udp, source_ip=ip)
        try:
            r = c.announce(self.swarm, pid, port, left=left, numwant=200)
            c.announce(self.swarm, pid, port, left=left, event="stopped")
            return (r["seeders"], r["leechers"]), r["peers"]
        finally:
            c.close()

    def check_swarm_intact(self, when):
        n_seed = len(self.seeders)
        n_leech = len(self.expected) - n_seed
        for proto in ("http", "udp"):
            counts, peers = self.observe(proto)
            h.check_eq(peers, self.expected, f"{when}: {proto} leecher gets every announced peer")
            h.check_eq(counts, (n_seed, n_leech + 1), f"{when}: {proto} (complete, incomplete) "
                       "incl. the announcing leecher")
            counts, peers = self.observe(proto, seeder=True, ip="127.0.0.201", port=20001)
            h.check_eq(peers, self.expected - self.seeders,
                       f"{when}: {proto} seeder gets exactly the leechers")
        f = h.http_scrape(self.http, [self.swarm])[b"files"][self.swarm]
        h.check_eq((f[b"complete"], f[b"incomplete"]), (n_seed, n_leech),
                   f"{when}: scrape (complete, incomplete)")

    # -- protocol rules -------------------------------------------------------------------

    def protocol_rules(self):
        t, http, swarm = self.t, self.http, self.swarm
        # Reply shape.
        d = h.http_announce(http, swarm, peer_id(1, b"R"), 21000, left=7, source_ip="127.0.0.202")
        for k in (b"interval", b"min interval", b"complete", b"incomplete", b"peers", b"peers6"):
            h.check(k in d, f"compact announce reply has {k.decode()!r}")
        h.check(300 <= d[b"interval"] <= 3 * 3600 and d[b"min interval"] <= d[b"interval"],
                f"interval {d[b'interval']} in 300..10800 and min interval "
                f"{d[b'min interval']} <= interval")
        h.check(("127.0.0.202", 21000) not in h.reply_peers(d),
                "the announcer is not in its own peer list")
        self.expected.add(("127.0.0.202", 21000))

        # numwant=0: no peers, both strings present and empty.
        d = h.http_announce(http, swarm, peer_id(2, b"R"), 21001, left=7, numwant=0,
                            source_ip="127.0.0.203")
        h.check_eq((d[b"peers"], d[b"peers6"]), (b"", b""), "numwant=0 -> empty peers, peers6")
        h.http_announce(http, swarm, peer_id(2, b"R"), 21001, left=7, event="stopped",
                        source_ip="127.0.0.203")
        c = h.UdpClient(self.udp, source_ip="127.0.0.203")
        r = c.announce(swarm, peer_id(3, b"R"), 21002, left=7, numwant=0)
        h.check_eq(r["peers"], set(), "UDP numwant=0 -> no peers")
        c.announce(swarm, peer_id(3, b"R"), 21002, left=7, event="stopped")
        c.close()

        # Dictionary model.
        q = h.announce_query(swarm, peer_id(4, b"R"), 21003, left=7, compact=0, numwant=200)
        status, d = h.http_announce_raw(http, q, source_ip="127.0.0.204")
        h.check(status == 200 and isinstance(d.get(b"peers"), list),
                "compact=0 -> peers is a list of dictionaries")
        h.check_eq(h.reply_peers(d), self.expected, "compact=0 peer list")
        ids = {(p[b"ip"].decode(), p[b"port"]): p.get(b"peer id") for p in d[b"peers"]}
        known = {(peer_ip(i), peer_port(i)): peer_id(i) for i in range(PEERS)}
        with_id = [k for k, v in ids.items() if v is not None]
        h.check(all(ids[k] == known[k] for k in with_id if k in known),
                f"compact=0 'peer id', where given ({len(with_id)} of {len(ids)}), is the "
                "announced one")
        q = h.announce_query(swarm, peer_id(4, b"R"), 21003, left=7, compact=0, no_peer_id=1,
                             numwant=200)
        status, d = h.http_announce_raw(http, q, source_ip="127.0.0.204")
        h.check(status == 200 and all(set(p) == {b"ip", b"port"} for p in d[b"peers"]) and
                len(d[b"peers"]) == len(self.expected),
                "compact=0&no_peer_id=1 -> every peer dict is exactly {ip, port}")
        h.http_announce(http, swarm, peer_id(4, b"R"), 21003, left=7, event="stopped",
                        source_ip="127.0.0.204")

        # '+' is a literal byte, not a space: the hash starts 00 2B 26 25.
        literal = "%00+%26%25" + h.pct(swarm[4:])
        q = (f"info_hash={literal}&peer_id={h.pct(peer_id(5, b'R'))}&port=21004&uploaded=0"
             f"&downloaded=0&left=7&numwant=200")
        status, d = h.http_announce_raw(http, q, source_ip="127.0.0.205")
        h.check(status == 200 and b"failure reason" not in d and
                h.reply_peers(d) == self.expected,
                "an unencoded '+' in info_hash is the byte 0x2B (same swarm)")
        h.http_announce(http, swarm, peer_id(5, b"R"), 21004, left=7, event="stopped",
                        source_ip="127.0.0.205")
        # Lower-case percent escapes decode the same.
        q = h.announce_query(swarm, peer_id(6, b"R"), 21005, left=7, numwant=200)
        q = re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), q)
        status, d = h.http_announce_raw(http, q, source_ip="127.0.0.206")
        h.check(status == 200 and h.reply_peers(d) == self.expected,
                "lower-case percent escapes name the same swarm")
        h.http_announce(http, swarm, peer_id(6, b"R"), 21005, left=7, event="stopped",
                        source_ip="127.0.0.206")

        # IPv6 peers: peers6 over HTTP, 18-byte entries over UDP on ::1.
        if h.ipv6_loopback_usable():
            self.ipv6_rules()
        else:
            h.log("*** NOTE: ::1 unusable here, IPv6 rules not checked ***")

        # event=stopped removes, over both protocols (peers 0 = HTTP, 1 = UDP).
        for i in (0, 1):
            self.announce_peer(i, event="stopped")
        # peers 0, 1 are seeders; come back as seeders later in check_swarm_intact expectations.

        # Multi-hash scrape: sorted `files`, known hash right, unknown zero or absent.
        other = self.rng.randbytes(20)
        unknown = self.rng.randbytes(20)
        h.http_announce(http, other, peer_id(7, b"R"), 21006, left=0, source_ip="127.0.0.207")
        d = h.http_scrape(http, [swarm, other, unknown, swarm])  # strict decode: keys sorted
        files = d.get(b"files", {})
        n_seed = len(self.seeders)
        got = files.get(swarm, {})
        h.check_eq((got.get(b"complete"), got.get(b"incomplete")),
                   (n_seed, len(self.expected) - n_seed), "multi scrape: main swarm")
        got = files.get(other, {})
        h.check_eq((got.get(b"complete"), got.get(b"incomplete")), (1, 0),
                   "multi scrape: second swarm")
        u = files.get(unknown)
        h.check(u is None or (u[b"complete"], u[b"incomplete"], u[b"downloaded"]) == (0, 0, 0),
                "multi scrape: unknown hash absent or all zero")
        h.check(set(files) <= {swarm, other, unknown}, "multi scrape: no extra keys")
        c = h.UdpClient(self.udp)
        rows = c.scrape([other, swarm, unknown])
        c.close()
        h.check_eq([(r[0], r[2]) for r in rows],
                   [(1, 0), (n_seed, len(self.expected) - n_seed), (0, 0)],
                   "UDP multi scrape in request order (seeders, leechers)")
        h.http_announce(http, other, peer_id(7, b"R"), 21006, left=0, event="stopped",
                        source_ip="127.0.0.207")

        # Failures a client sees as 200 + failure reason.
        q = h.announce_query(swarm, peer_id(8, b"R"), 21007, left=7) + \
            f"&info_hash={h.pct(other)}"
        check_failure(t, q, "a repeated info_hash in announce")
        check_failure(t, h.announce_query(swarm[:19], peer_id(8, b"R"), 21007, left=7),
                      "a 19-byte info_hash")
        check_failure(t, h.announce_query(swarm + b"x", peer_id(8, b"R"), 21007, left=7),
                      "a 21-byte info_hash")
        check_failure(t, h.announce_query(swarm, peer_id(8, b"R")[:19], 21007, left=7),
                      "a 19-byte peer_id")
        base = h.announce_query(swarm, peer_id(8, b"R"), 21007, left=7)
        for key in ("info_hash", "peer_id", "port"):
            q = "&".join(p for p in base.split("&") if not p.startswith(key + "="))
            check_failure(t, q, f"announce without {key}")
        check_failure(t, base.replace("info_hash=", "info_hash=%zz", 1), "info_hash with %zz")
        check_failure(t, base.replace("port=21007", "port=70000"), "port=70000")
        status, _, body = h.http_get(http, "/scrape")
        h.check(status == 200 and is_failure(200, h.bdecode(body)),
                "scrape without info_hash -> failure reason")
        h.check_eq(self.t.alive(), True, "daemon alive after protocol rules")

    def ipv6_rules(self):
        h6 = self.t.endpoint("http", v6=True)
        u6 = self.t.endpoint("udp", v6=True)
        s6 = self.rng.randbytes(20)
        h.http_announce(h6, s6, peer_id(1, b"6"), 30000, left=3)
        d = h.http_announce(self.http, s6, peer_id(2, b"6"), 30001, left=3, numwant=50,
                            source_ip="127.0.0.210")
        h.check_eq(h.compact_peers(d[b"peers6"], v6=True), {("::1", 30000)},
                   "IPv6 peer comes back in peers6 (18-byte entries) to an IPv4 client")
        h.check_eq(h.compact_peers(d[b"peers"]), set(), "peers has no IPv6 entry")
        c6 = h.UdpClient(u6)
        r = c6.announce(s6, peer_id(3, b"6"), 30002, left=3, numwant=50)
        h.check_eq(r["peers"], {("::1", 30000)}, "UDP over ::1 returns the IPv6 peer (18 bytes)")
        c4 = h.UdpClient(self.udp, source_ip="127.0.0.211")
        r = c4.announce(s6, peer_id(4, b"6"), 30003, left=3, numwant=50)
        h.check_eq(r["peers"], {("127.0.0.210", 30001)},
                   "UDP over IPv4 returns only IPv4 peers (6 bytes)")
        for c, pid, port in ((c6, peer_id(3, b"6"), 30002), (c4, peer_id(4, b"6"), 30003)):
            c.announce(s6, pid, port, left=3, event="stopped")
            c.close()
        d = h.http_announce(h6, s6, peer_id(1, b"6"), 30000, left=3, numwant=50)
        h.check_eq(h.reply_peers(d), {("127.0.0.210", 30001)},
                   "IPv6 HTTP client gets the IPv4 peer in peers")

    def udp_rules(self):
        c = h.UdpClient(self.udp, source_ip="127.0.0.220")
        c.connect()
        # BEP 41: URLData + NOP + EndOfOptions after byte 98 are parsed, not rejected.
        path = b"/announce?key=1"
        tail = bytes([2, len(path)]) + path + b"\x01\x00"
        tid = 0x1234ABCD
        pkt = c.announce_packet(self.swarm, peer_id(1, b"U"), 22000, left=9, numwant=200,
                                tid=tid, tail=tail)
        r = c.request(pkt, tid)
        h.check_eq(struct.unpack(">I", r[:4])[0], h.UDP_ACTION_ANNOUNCE,
                   "announce with BEP 41 options is answered")
        h.check_eq(h.compact_peers(r[20:]), self.expected, "BEP 41 announce returns the swarm")
        c.announce(self.swarm, peer_id(1, b"U"), 22000, left=9, event="stopped")
        # A verified client gets BEP 15 errors (action 3, its transaction id, no NUL).
        for what, pkt_fn in (
                ("scrape of 25 bytes of hashes",
                 lambda tid: struct.pack(">QII", c.connection_id, 2, tid) + b"x" * 25),
                ("unknown action 9",
                 lambda tid: struct.pack(">QII", c.connection_id, 9, tid) + b"y" * 20)):
            tid = self.rng.getrandbits(32)
            r = c.request(pkt_fn(tid), tid)
            action = struct.unpack(">I", r[:4])[0]
            h.check(action == h.UDP_ACTION_ERROR and b"\x00" not in r[8:] and len(r) > 8,
                    f"{what} from a verified client -> BEP 15 error with message ({r[8:]!r})")
        c.close()
        # An unverified source gets nothing back, whatever it sends.
        q = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        q.bind(("127.0.0.221", 0))
        q.settimeout(0.5)
        for tid in range(5):
            q.sendto(struct.pack(">QII", self.rng.getrandbits(64), 2, tid) + self.swarm,
                     self.udp)
            q.sendto(struct.pack(">QII", self.rng.getrandbits(64), 9, tid) + b"z" * 3, self.udp)
        try:
            data = q.recv(2048)
        except socket.timeout:
            data = None
        q.close()
        h.check(data is None, "random connection ids and garbage get no reply at all")

    # -- fuzzing --------------------------------------------------------------------------

    def fuzz_udp(self):
        rng = self.rng
        fuzz_hash = rng.randbytes(20)
        good = h.UdpClient(self.udp, source_ip="127.0.0.230")
        good.connect()
        bad = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # random connection ids only
        bad.bind(("127.0.0.231", 0))
        bad.setblocking(False)
        good.sock.setblocking(False)

        def valid_announce():
            return good.announce_packet(fuzz_hash, rng.randbytes(20), rng.randrange(1, 65536),
                                        left=rng.randrange(0, 3), tid=rng.getrandbits(32),
                                        event=rng.choice(list(h.UDP_EVENTS)),
                                        numwant=rng.choice([-1, 0, 5, 200, 100000]))

        def valid_scrape():
            return struct.pack(">QII", good.connection_id, 2, rng.getrandbits(32)) + \
                b"".join(rng.randbytes(20) for _ in range(rng.randrange(1, 80)))

        def valid_connect():
            return struct.pack(">QII", h.UDP_PROTOCOL_ID, 0, rng.getrandbits(32))

        def mutate(p):
            kind = rng.randrange(7)
            if kind == 0:                          # truncated
                return p[:rng.randrange(0, len(p))], "truncated"
            if kind == 1:                          # flipped bytes
                b = bytearray(p)
                for _ in range(rng.randrange(1, 9)):
                    b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
                return bytes(b), "flipped"
            if kind == 2:                          # wrong action
                return p[:8] + struct.pack(">I", rng.getrandbits(32)) + p[12:], "action"
            if kind == 3:                          # BEP 41 garbage tail, up to beyond 1500
                return p + rng.randbytes(rng.randrange(1, UDP_SURELY_OVERSIZED)), "tail"
            if kind == 4:                          # option lengths that run off the end
                return p + bytes([2, 255]) + rng.randbytes(rng.randrange(0, 50)), "tail"
            if kind == 5:                          # random bytes
                return rng.randbytes(rng.randrange(0, 200)), "random"
            return p[:16] + rng.randbytes(rng.randrange(0, 120)), "random"

        sent = {"bad_cid": 0, "oversized": 0, "mutated": 0, "valid": 0}
        replies = []
        drops_before = udp_kernel_drops()
        for n in range(FUZZ_UDP_PACKETS):
            r = rng.random()
            if r < 0.25:
                pkt = valid_announce() if rng.random() < 0.7 else valid_scrape()[:16 + 20 * 3]
                pkt = struct.pack(">Q", rng.getrandbits(64)) + pkt[8:]
                bad.sendto(pkt, self.udp)
                sent["bad_cid"] += 1
            elif r < 0.27:
                size = rng.randrange(UDP_SURELY_OVERSIZED + 1, UDP_PAYLOAD_MAX + 1)
                good.sock.sendto(valid_announce() + rng.randbytes(size - 98), self.udp)
                sent["oversized"] += 1
            elif r < 0.35:
                good.sock.sendto(rng.choice([valid_announce, valid_scrape, valid_connect])(),
                                 self.udp)
                sent["valid"] += 1
            else:
                pkt, _ = mutate(rng.choice([valid_announce, valid_scrape, valid_connect])())
                good.sock.sendto(pkt, self.udp)
                sent["mutated"] += 1
            if n % UDP_BURST == UDP_BURST - 1:
                time.sleep(0.003)
                replies += _drain(good.sock)
        time.sleep(0.3)
        replies += _drain(good.sock)
        bad_replies = _drain(bad)
        kernel_drops = udp_kernel_drops() - drops_before
        good.close()
        bad.close()
        h.log(f"UDP fuzz sent {sent}, got {len(replies)} replies, kernel drops {kernel_drops}")
        h.check_eq(len(bad_replies), 0, "replies to datagrams with random connection ids")
        malformed = [r for r in replies if not _well_formed_udp_reply(r)]
        h.check(not malformed, f"every UDP reply is a well-formed BEP 15 reply of at most "
                f"{UDP_REPLY_BYTES_MAX} bytes (bad: {malformed[:3]!r})")
        return sent, kernel_drops

    def fuzz_http(self):
        rng = self.rng
        fuzz_hash = rng.randbytes(20)
        seen = {"not_found": 0, "failure": 0, "ok": 0, "4xx": 0}

        def valid_query():
            return h.announce_query(fuzz_hash, rng.randbytes(20), rng.randrange(1, 65536),
                                    left=rng.randrange(0, 3), numwant=rng.randrange(-5, 300),
                                    event=rng.choice([None, "started", "completed", "stopped"]),
                                    compact=rng.choice([None, 0, 1]))

        def bad_pct(q):
            i = rng.randrange(len(q))
            return q[:i] + rng.choice(["%", "%z", "%zz", "%4", "%G0", "%%"]) + q[i:]

        def missing_key(q):
            key = rng.choice(["info_hash", "peer_id", "port", "left"])
            return "&".join(p for p in q.split("&") if not p.startswith(key + "="))

        def mutated(q):
            b = bytearray(q.encode())
            for _ in range(rng.randrange(1, 6)):
                b[rng.randrange(len(b))] = rng.choice(b"%&=+#?0123456789abcdefXYZ_")
            return b.decode()

        for n in range(FUZZ_HTTP_REQUESTS):
            r = rng.random()
            must_fail = False
            if r < 0.15:
                path = "/" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789_-./")
                                     for _ in range(rng.randrange(0, 40)))
                if path.split("?")[0] in ("/announce", "/scrape", "/stats", "/metrics"):
                    continue
                status, _, _ = h.http_get(self.http, path)
                if status != 404:
                    raise h.CheckFailed(f"random path {path!r} -> {status}, expected 404")
                seen["not_found"] += 1
                continue
            if r < 0.35:
                target, must_fail = "/announce?" + bad_pct(valid_query()), False
            elif r < 0.55:
                target, must_fail = "/announce?" + missing_key(valid_query()), True
            elif r < 0.60:
                target = "/announce?" + valid_query() + "&x=" + "A" * rng.randrange(5000, 200000)
            elif r < 0.80:
                target = "/announce?" + mutated(valid_query())
            elif r < 0.90:
                target = "/scrape?" + mutated("&".join(
                    f"info_hash={h.pct(rng.randbytes(20))}" for _ in range(rng.randrange(1, 90))))
            else:
                target = "/announce?" + h.pct(rng.randbytes(rng.randrange(0, 300)))
            try:
                status, _, body = h.http_get(self.http, target)
            except (ConnectionError, OSError) as e:
                if len(target) > 8192:
                    seen["4xx"] += 1  # the server may close on an over-long request line
                    continue
                raise h.CheckFailed(f"HTTP request failed ({e}) for {target[:100]!r}")
            if 400 <= status < 500 and len(target) > 4096:
                seen["4xx"] += 1
                continue
            if status != 200:
                raise h.CheckFailed(f"HTTP {status} for {target[:100]!r}: {body[:100]!r}")
            try:
                d = h.bdecode(body)
            except ValueError as e:
                raise h.CheckFailed(f"reply is not canonical bencode ({e}) for "
                                    f"{target[:100]!r}: {body[:100]!r}")
            if b"failure reason" in d:
                seen["failure"] += 1
            else:
                if must_fail:
                    raise h.CheckFailed(f"no failure reason for {target[:150]!r}: {d!r:.100}")
                seen["ok"] += 1
        h.log(f"HTTP fuzz: {seen}")
        h.check(seen["not_found"] > 0 and seen["failure"] > 0,
                "HTTP fuzz: every random path got 404, every reply was 200 + canonical bencode "
                "(4xx only for over-long requests)")
        return seen

    def junk_tcp(self):
        """Binary junk over raw TCP; half the connections stay open, idle, while a normal
        announce must still be answered promptly."""
        rng = self.rng
        held = []
        answered = silent = 0
        for n in range(JUNK_TCP_CONNECTIONS):
            s = socket.create_connection(self.http, timeout=1)
            junk = rng.randbytes(rng.randrange(1, 3000))
            if n % 3 == 0:
                junk = b"GET /announce?" + junk + b" HTTP/1.1\r\n\r\n"
            elif n % 3 == 1:
                junk = junk.replace(b"\n", b"")  # no line end: a request that never ends
            try:
                s.sendall(junk)
            except OSError:
                pass
            if n % 2 == 0:
                held.append(s)
                continue
            try:
                s.shutdown(socket.SHUT_WR)
                reply = s.recv(4096)
                if reply:
                    answered += 1
                    if not reply.startswith(b"HTTP/1."):
                        raise h.CheckFailed(f"junk reply is not HTTP: {reply[:60]!r}")
            except socket.timeout:
                silent += 1
            except OSError:
                pass
            s.close()
        h.log(f"junk TCP: {answered} answered with HTTP, {silent} silent for 1 s, "
              f"{len(held)} held open")
        t0 = time.monotonic()
        d = h.http_announce(self.http, self.swarm, peer_id(9, b"J"), 23000, left=3, numwant=200,
                            source_ip="127.0.0.240")
        took = time.monotonic() - t0
        h.check(took < 2.0, f"announce answered in {took * 1000:.0f} ms while "
                f"{len(held)} junk connections are held open")
        h.check_eq(h.reply_peers(d), self.expected, "that announce returns the swarm")
        h.http_announce(self.http, self.swarm, peer_id(9, b"J"), 23000, left=3, event="stopped",
                        source_ip="127.0.0.240")
        for s in held:
            s.close()


def _drain(sock):
    out = []
    while True:
        try:
            out.append(sock.recv(65536))
        except (BlockingIOError, socket.timeout):
            return out
        except OSError:
            return out


def _well_formed_udp_reply(r):
    if len(r) < 8 or len(r) > UDP_REPLY_BYTES_MAX:
        return False
    action = struct.unpack(">I", r[:4])[0]
    if action == h.UDP_ACTION_CONNECT:
        return len(r) == 16
    if action == h.UDP_ACTION_ANNOUNCE:
        return len(r) >= 20 and (len(r) - 20) % 6 == 0
    if action == h.UDP_ACTION_SCRAPE:
        return (len(r) - 8) % 12 == 0 and len(r) > 8
    if action == h.UDP_ACTION_ERROR:
        return len(r) > 8 and b"\x00" not in r[8:]
    return False


def main():
    args = h.parse_args(__doc__)
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    print(f"*** robustness seed {seed} (rerun with --seed {seed}) ***", flush=True)
    rng = random.Random(seed)
    random.seed(rng.getrandbits(64))  # transaction ids in the harness follow the seed too

    def body(workdir):
        if args.opentracker:
            raise h.Skip("robustness checks need the daemon's /stats and both families")
        binds = {"http": ["127.0.0.1:0"], "udp": ["127.0.0.1:0"]}
        if h.ipv6_loopback_usable():
            binds["http"].append("[::1]:0")
            binds["udp"].append("[::1]:0")
        t = h.make_tracker(args, workdir, http=binds["http"], udp=binds["udp"])
        sc = Scenario(t, rng)
        t0 = time.monotonic()
        for i in range(PEERS):
            sc.announce_peer(i)
        h.log(f"announced {PEERS} peers in {time.monotonic() - t0:.2f}s")
        sc.check_swarm_intact("after announcing")
        sc.protocol_rules()
        sc.udp_rules()
        sc.check_swarm_intact("after protocol checks")

        before = t.counters()
        t0 = time.monotonic()
        sent, kernel_drops = sc.fuzz_udp()
        seen = sc.fuzz_http()
        sc.junk_tcp()
        h.log(f"fuzzing took {time.monotonic() - t0:.1f}s")

        h.check(t.alive(), "daemon process alive after fuzzing")
        sc.check_swarm_intact("after fuzzing")
        after = t.counters()
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        h.log(f"counter deltas: { {k: v for k, v in delta.items() if v} }")
        h.check(delta.get("udp_drop_bad_connection_id", 0) >= sent["bad_cid"] - kernel_drops,
                f"udp_drop_bad_connection_id grew by >= {sent['bad_cid']} - {kernel_drops} "
                f"kernel drops (grew {delta.get('udp_drop_bad_connection_id')})")
        h.check(delta.get("udp_drop_oversized", 0) >= sent["oversized"] - kernel_drops,
                f"udp_drop_oversized grew by >= {sent['oversized']} (grew "
                f"{delta.get('udp_drop_oversized')})")
        drops = sum(v for k, v in delta.items() if k.startswith("udp_drop_"))
        h.check(drops >= sent["bad_cid"] + sent["oversized"] - kernel_drops,
                f"udp_drop_* counters account for the dropped datagrams ({drops})")
        total = FUZZ_UDP_PACKETS
        h.check(delta.get("udp_packets_received", 0) + kernel_drops >= total,
                f"udp_packets_received ({delta.get('udp_packets_received')}) + kernel drops "
                f"covers the {total} fuzz datagrams")
        h.check(delta.get("http_not_found", 0) >= seen["not_found"],
                f"http_not_found grew by >= {seen['not_found']} "
                f"(grew {delta.get('http_not_found')})")
        h.check(delta.get("http_failures", 0) >= seen["failure"],
                f"http_failures grew by >= {seen['failure']} (grew {delta.get('http_failures')})")
        t.stop()

    h.run_main(body, args)


if __name__ == "__main__":
    main()
