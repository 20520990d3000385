"""End-to-end: a network partition splits a 5-node ring into two sides (2 + 3); both sides keep
accepting announces; after the network heals the nodes must form ONE ring again within a bound
and every swarm must be whole at every node.

Topology, all inside network namespaces this script creates: the script re-executes itself in a
private namespace (the "switch" side) that holds a bridge at 10.77.0.254; five named namespaces,
one per daemon, are joined to it by veth pairs and carry 10.77.0.1 .. 10.77.0.5. The partition is
an nft table in each daemon's namespace that drops input from the other side's addresses (the
test client on the bridge still reaches every node). Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN);
otherwise it exits 77 with a loud SKIPPED. Namespaces are removed in a finally block.

Requests refused while the ring repairs ("retry") are retried a bounded number of times, as a
client would; a peer counts as announced only when its announce was answered.
"""

import os
import re
import shutil
import subprocess
import sys
import time

import harness as h
import cluster_swarm as cs

NODES = 5
SIDE_X = (3, 4)  # node indices cut off from the other three (who hold the join seeds)
SUBNET = "10.77.0"
SWITCH_IP = f"{SUBNET}.254"
RING_PORT = 7000
STABILIZE_MS = 1000
# Seed checks (partition repair) this often when the daemon has the config key; a ring split
# in two is found by the first check of a node whose chosen seed lies on the other side.
SEED_CHECK_MS = 2000
# Bound on re-forming one ring after the heal: with SEED_CHECK_MS a few checks and a join plus
# stabilize rounds (~10 periods); without the key, production's 60 s checks need far longer.
HEAL_TIMEOUT_S = 45.0
HEAL_TIMEOUT_DEFAULT_SEED_CHECK_S = 150.0
# Each side forms a ring of its own after its neighbours are declared dead.
SIDE_CONVERGE_TIMEOUT_S = 30.0
# Both sides run at least this many stabilize periods as separate rings.
SPLIT_PERIODS = 3
TORRENTS = 30
PEERS_BEFORE = 3        # per torrent, before the split, at random nodes
PEERS_DURING = 2        # per torrent and side, during the split
# After one ring is back, range sync and replication must merge the swarms within this bound.
MERGE_TIMEOUT_S = 40.0
NS_PREFIX = "rtcp"
CMD_TIMEOUT_S = 10


def run(*argv, check=True):
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=CMD_TIMEOUT_S)
    if check and r.returncode != 0:
        raise h.CheckFailed(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def ns_name(i):
    return f"{NS_PREFIX}{os.getpid()}n{i}"


def remove_stale_namespaces(ip):
    """Namespaces left by an earlier run of this script that was killed (its PID is gone)."""
    out = run(ip, "netns", "list", check=False).stdout
    for line in out.splitlines():
        m = re.match(rf"^({NS_PREFIX}(\d+)n\d+)\b", line)
        if m and not os.path.exists(f"/proc/{m.group(2)}"):
            h.log(f"removing stale namespace {m.group(1)}")
            run(ip, "netns", "del", m.group(1), check=False)


class Network:
    """The bridge in this (private) namespace and one named namespace per daemon."""

    def __init__(self, ip, nft):
        self.ip, self.nft = ip, nft
        self.namespaces = []

    def build(self):
        ip = self.ip
        run(ip, "link", "add", "rtbr0", "type", "bridge")
        run(ip, "addr", "add", f"{SWITCH_IP}/24", "dev", "rtbr0")
        run(ip, "link", "set", "rtbr0", "up")
        for i in range(NODES):
            ns = ns_name(i)
            run(ip, "netns", "add", ns)
            self.namespaces.append(ns)
            run(ip, "link", "add", f"rtp{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            run(ip, "link", "set", f"rtp{i}", "master", "rtbr0")
            run(ip, "link", "set", f"rtp{i}", "up")
            run(ip, "netns", "exec", ns, ip, "link", "set", "lo", "up")
            run(ip, "netns", "exec", ns, ip, "addr", "add", f"{self.addr(i)}/24", "dev", "eth0")
            run(ip, "netns", "exec", ns, ip, "link", "set", "eth0", "up")

    @staticmethod
    def addr(i):
        return f"{SUBNET}.{i + 1}"

    def cut(self, side_a, side_b):
        """Drops, in every daemon namespace, input from the other side's addresses."""
        for mine, theirs in ((side_a, side_b), (side_b, side_a)):
            blocked = ", ".join(self.addr(j) for j in theirs)
            for i in mine:
                ns = self.namespaces[i]
                run(self.ip, "netns", "exec", ns, self.nft, "add", "table", "inet", "rtcut")
                run(self.ip, "netns", "exec", ns, self.nft, "add", "chain", "inet", "rtcut",
                    "input", "{ type filter hook input priority 0; policy accept; }")
                run(self.ip, "netns", "exec", ns, self.nft, "add", "rule", "inet", "rtcut",
                    "input", "ip", "saddr", f"{{ {blocked} }}", "drop")

    def heal(self):
        for ns in self.namespaces:
            run(self.ip, "netns", "exec", ns, self.nft, "delete", "table", "inet", "rtcut",
                check=False)

    def teardown(self):
        for ns in self.namespaces:
            r = run(self.ip, "netns", "del", ns, check=False)
            if r.returncode != 0:
                h.log(f"warning: cannot delete namespace {ns}: {r.stderr.strip()}")
        self.namespaces = []
        run(self.ip, "link", "del", "rtbr0", check=False)


def daemon_wrapper(workdir, binary, ip, ns):
    """A script that execs the daemon inside `ns` (exec keeps one PID: stop-by-PID works)."""
    path = os.path.join(workdir, f"in-{ns}.sh")
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\nexec {ip} netns exec {ns} {binary} \"$@\"\n")
    os.chmod(path, 0o755)
    return path


def daemon_has_key(binary, key):
    """Whether the daemon knows a config key (its parser names every key it accepts)."""
    with open(binary, "rb") as f:
        return key.encode() in f.read()


def body(args, workdir, rng):
    ip = shutil.which("ip") or "/usr/sbin/ip"
    nft = shutil.which("nft") or "/usr/sbin/nft"
    if not os.path.exists(nft):
        raise h.Skip("nft is not installed (apt-get install nftables)")
    remove_stale_namespaces(ip)
    net = Network(ip, nft)
    try:
        net.build()
        scenario(args, workdir, rng, net, ip)
    finally:
        cs_nodes = getattr(net, "nodes", [])
        for n in cs_nodes:
            if n.tracker and n.tracker.alive():
                h.stop_process(n.tracker.proc)
        net.teardown()


def scenario(args, workdir, rng, net, ip):
    binary = os.path.abspath(args.daemon)
    extra = ""
    heal_timeout = HEAL_TIMEOUT_S
    if daemon_has_key(binary, "seed_check_period_ms"):
        extra = f"seed_check_period_ms = {SEED_CHECK_MS}\n"
        h.log(f"seed checks every {SEED_CHECK_MS} ms")
    else:
        heal_timeout = HEAL_TIMEOUT_DEFAULT_SEED_CHECK_S
        h.log("WARNING: the daemon has no [cluster] seed_check_period_ms key; partition repair "
              f"runs at the default 60 s seed-check period (heal bound {heal_timeout:.0f} s)")
    conf = cs.ring_conf("%032x" % rng.getrandbits(128), stabilize_ms=STABILIZE_MS,
                        extra_cluster=extra)
    nodes = []
    net.nodes = nodes
    for i in range(NODES):
        a = net.addr(i)
        seeds = [f"{net.addr(j)}:{RING_PORT}" for j in (0, 1) if j < i]
        n = cs.ClusterNode(daemon_wrapper(workdir, binary, ip, net.namespaces[i]), workdir,
                           f"n{i}", f"{a}:{RING_PORT}", seeds, conf, http=f"{a}:0",
                           udp=f"{a}:0")
        nodes.append(n.start())
    cs.converge(nodes, f"{NODES} nodes in namespaces form one ring")

    hashes = [rng.randbytes(20) for _ in range(TORRENTS)]
    want = {x: {} for x in hashes}  # hash -> {port: left}
    origin = {}  # port -> (phase, node name): for diagnostics
    port_next = [10000]

    def add_peers(at_nodes, per_torrent, phase):
        for x in hashes:
            for _ in range(per_torrent):
                n = rng.choice(at_nodes)
                port = port_next[0]
                port_next[0] += 1
                left = 0 if port % 3 == 0 else 1000
                cs.announce(n.http, x, b"-CP0001-%012d" % port, port, left=left,
                            event="started", numwant=0)
                want[x][port] = left
                origin[port] = (phase, n.name)
        h.log(f"{phase}: {len(hashes) * per_torrent} peers announced at "
              f"{[n.name for n in at_nodes]}")

    add_peers(nodes, PEERS_BEFORE, "before the split")

    side_x = [nodes[i] for i in SIDE_X]
    side_y = [n for n in nodes if n not in side_x]
    h.log(f"=== partition: {[n.name for n in side_x]} | {[n.name for n in side_y]} ===")
    net.cut([nodes.index(n) for n in side_x], [nodes.index(n) for n in side_y])
    t_cut = time.monotonic()
    cs.converge(side_x, "side X forms a ring of its own", SIDE_CONVERGE_TIMEOUT_S)
    cs.converge(side_y, "side Y forms a ring of its own", SIDE_CONVERGE_TIMEOUT_S)
    t_sides = time.monotonic()
    add_peers(side_x, PEERS_DURING, "during the split, side X")
    add_peers(side_y, PEERS_DURING, "during the split, side Y")
    rest = SPLIT_PERIODS * STABILIZE_MS / 1000 - (time.monotonic() - t_sides)
    if rest > 0:
        time.sleep(rest)
    h.log(f"split lasted {time.monotonic() - t_cut:.1f} s")

    h.log("=== heal ===")
    net.heal()
    took = cs.converge(nodes, "ONE ring of all 5 after the heal", heal_timeout)
    h.log(f"measured: one ring {took:.2f} s after the heal")
    rejoins = {n.name: n.stats()["counters"].get("ring_rejoins") for n in nodes}
    h.log(f"ring_rejoins per node: {rejoins}")

    expect = {x: (sum(1 for v in p.values() if v == 0), sum(1 for v in p.values() if v != 0))
              for x, p in want.items()}
    t0 = time.monotonic()
    for n in nodes:
        def counts(n=n):
            got = cs.scrape_counts(n.http, hashes)
            return {x: (c, inc) for x, (c, _, inc) in got.items()}
        try:
            h.wait_for_value(counts, expect, MERGE_TIMEOUT_S,
                             f"scrape at {n.name}: every swarm whole (complete, incomplete)")
        except h.CheckFailed:
            last = counts()
            for x in hashes:
                if last.get(x) != expect[x]:
                    d = cs.announce(n.http, x, b"-CP0001-diag00000000", 8, left=1, numwant=200)
                    cs.announce(n.http, x, b"-CP0001-diag00000000", 8, left=1, event="stopped")
                    got = {p for _, p in h.reply_peers(d)}
                    h.log(f"  {x.hex()[:12]} at {n.name}: want {expect[x]} got {last.get(x)}; "
                          f"missing {[(p, origin[p]) for p in sorted(set(want[x]) - got)]}; "
                          f"extra {sorted(got - set(want[x]))}")
            h.log(cs.describe(nodes))
            raise
    h.log(f"measured: swarms whole at every node {time.monotonic() - t0:.2f} s after one ring")
    missing = []
    for k, x in enumerate(hashes):
        for n in nodes:
            pid = b"-CP0001-probe%03d%04d" % (k, nodes.index(n))
            d = cs.announce(n.http, x, pid, 9, left=1, numwant=200)
            lost = set(want[x]) - {p for _, p in h.reply_peers(d)}
            if lost:
                missing.append((x.hex()[:12], n.name, sorted(lost)))
            cs.announce(n.http, x, pid, 9, left=1, event="stopped")
    h.check(not missing, "every peer announced before or during the split is returned by every "
            f"node ({missing[:5]})")
    h.log(f"client retries during the whole test: {cs.retry_count}")
    for n in nodes:
        n.tracker.stop()


def main():
    args = h.parse_args(__doc__)
    if args.opentracker:
        raise SystemExit("cluster_partition.py runs ringtracker daemons only")
    if os.geteuid() != 0:
        print("\n*** SKIPPED: cluster_partition needs root (network namespaces, veth, nft) ***\n",
              flush=True)
        sys.exit(h.SKIP_EXIT_CODE)
    why = h.in_private_netns([])  # re-executes under `unshare --net`; returns inside it
    if why:
        print(f"\n*** SKIPPED: {why} ***\n", flush=True)
        sys.exit(h.SKIP_EXIT_CODE)
    rng = h.seeded_rng(args)
    h.run_main(lambda wd: body(args, wd, rng), args)


if __name__ == "__main__":
    main()
