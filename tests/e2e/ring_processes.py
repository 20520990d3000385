"""End-to-end: real ringtracker processes form a Chord ring on loopback and repair it.

Eight daemons join through --join; kill -9 removes three (two adjacent, one apart); the five
survivors' /stats must converge to the correct ring; a killed node restarts on its old address
and rejoins; SIGTERM makes a node leave gracefully and its neighbours close the gap at once
(well before a failure could have been detected). Bounds are generous; measured times print.
"""

import json
import os
import signal
import socket
import time

import harness as h

NODES = 8
# Faster maintenance than production so the test stays short; the protocol is the same.
STABILIZE_MS = 1000
SUCCESSORS = 4
# Converging after joins or crashes takes a few periods (2 x RTO to declare death, then a
# stabilize round per hop of repair); this bound is ~20 periods, far beyond what it needs.
CONVERGE_TIMEOUT_S = 40.0
# A graceful leave is announced to both neighbours at once; no failure detection involved.
# One stabilize period plus slack, far below the 2 x RTO + period a crash would need.
LEAVE_CLOSE_TIMEOUT_S = 1.0 * STABILIZE_MS / 1000 + 0.5


class Node:
    def __init__(self, binary, workdir, index, ring_port, join, secret="ring-e2e-secret"):
        self.index = index
        self.ring = f"127.0.0.1:{ring_port}"
        self._id = h.ring_candidate_ids(self.ring)[0]
        self.binary = binary
        self.workdir = os.path.join(workdir, f"node{index}")
        os.makedirs(self.workdir, exist_ok=True)
        self.join = join
        self.secret = secret
        self.tracker = None

    def start(self):
        conf = os.path.join(self.workdir, "ring.toml")
        with open(conf, "w") as f:
            f.write(f"[cluster]\nsuccessors = {SUCCESSORS}\nstabilize_period_ms = {STABILIZE_MS}\n"
                    f"secrets = [\"{self.secret}\"]\n"
                    # Odd nodes turn off the yield after sending; even ones keep the default.
                    + ("yield_after_send = false\n" if self.index % 2 else ""))
        args = ["--config", conf, "--ring", self.ring]
        for j in self.join:
            args += ["--join", j]
        self.tracker = h.Tracker(self.binary, self.workdir, http=("127.0.0.1:0",), udp=(),
                                 extra_args=args, log_level="warn")
        self.tracker.start()
        return self

    @property
    def id(self):
        """The id the node reports (checked against its address); while it does not answer,
        the last one it reported."""
        self._id = h.reported_ring_id(self.stats(), self.ring, self._id)
        return self._id

    def stats(self):
        try:
            status, _, body = h.http_get(self.tracker.endpoint("http"), "/stats")
            return json.loads(body) if status == 200 else None
        except (OSError, ValueError):
            return None


def ring_ok(nodes):
    """True when every live node's predecessor and successor list match the ideal ring."""
    live = sorted(nodes, key=lambda n: n.id)
    for i, n in enumerate(live):
        s = n.stats()
        if s is None:
            return False
        want_succ = [live[(i + k) % len(live)].ring for k in range(1, min(SUCCESSORS, len(live) - 1) + 1)]
        got_succ = [x["ring"] for x in s["successors"]]
        want_pred = live[(i - 1) % len(live)].ring
        got_pred = s["predecessor"]["ring"] if s["predecessor"] else None
        if got_succ != want_succ or got_pred != want_pred:
            return False
    return True


def describe(nodes):
    out = []
    for n in sorted(nodes, key=lambda x: x.id):
        s = n.stats()
        if s:
            out.append(f"  {n.ring} pred={s['predecessor'] and s['predecessor']['ring']} "
                       f"succ={[x['ring'] for x in s['successors']]}")
    return "\n".join(out)


def converge(nodes, what, timeout_s=CONVERGE_TIMEOUT_S):
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    while time.monotonic() < deadline:
        if ring_ok(nodes):
            h.log(f"ok: {what} after {time.monotonic() - t0:.2f} s")
            return time.monotonic() - t0
        time.sleep(0.1)
    raise h.CheckFailed(f"{what}: ring not correct within {timeout_s} s\n{describe(nodes)}")


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def body(args, workdir):
    ports = [free_udp_port() for _ in range(NODES)]
    first = Node(args.daemon, workdir, 0, ports[0], []).start()
    nodes = [first]
    for i in range(1, NODES):
        # Join through one or two members, as an operator would list seeds.
        seeds = [first.ring] if i % 2 else [nodes[-1].ring, first.ring]
        nodes.append(Node(args.daemon, workdir, i, ports[i], seeds).start())
    converge(nodes, f"{NODES} nodes form one ordered ring")
    h.check(all((n.stats()["counters"]["ring_yields"] > 0) == (n.index % 2 == 0) for n in nodes),
            "nodes yield the CPU after passes that sent ring datagrams (the default), those "
            "with cluster.yield_after_send = false never")

    ordered = sorted(nodes, key=lambda n: n.id)
    # Two adjacent victims and one apart from both.
    victims = [ordered[1], ordered[2], ordered[5]]
    for v in victims:
        h.log(f"kill -9 {v.ring}")
        v.tracker.proc.send_signal(signal.SIGKILL)
        v.tracker.proc.wait(timeout=5)
    survivors = [n for n in nodes if n not in victims]
    t = converge(survivors, "5 survivors repair the ring after 3 crashes (2 adjacent)")
    h.log(f"measured: crash repair {t:.2f} s with stabilize {STABILIZE_MS} ms")

    back = victims[0]
    back.join = [survivors[0].ring]
    h.log(f"restart {back.ring}")
    back.start()
    survivors.append(back)
    converge(survivors, "restarted node rejoins on its old address")

    live = sorted(survivors, key=lambda n: n.id)
    leaver = live[2]
    pred, succ = live[1], live[3]
    h.log(f"SIGTERM {leaver.ring}")
    t0 = time.monotonic()
    leaver.tracker.stop()  # asserts exit status 0
    stop_s = time.monotonic() - t0

    def gap_closed():
        ps, ss = pred.stats(), succ.stats()
        return (ps and ps["successors"] and ps["successors"][0]["ring"] == succ.ring and
                ss and ss["predecessor"] and ss["predecessor"]["ring"] == pred.ring)

    h.wait_until(gap_closed, LEAVE_CLOSE_TIMEOUT_S,
                 "neighbours of a gracefully leaving node adopt each other at once")
    h.log(f"measured: leave closed within {time.monotonic() - t0:.2f} s (daemon exit {stop_s:.2f} s)")
    survivors.remove(leaver)
    converge(survivors, "ring correct after the graceful leave")

    # A node with the wrong cluster secret cannot join: its datagrams fail authentication.
    seed = survivors[0]
    before = seed.stats()["counters"]["ring_drop_unauthenticated"]
    intruder = Node(args.daemon, workdir, 99, free_udp_port(), [seed.ring], secret="wrong").start()
    h.wait_until(lambda: seed.stats()["counters"]["ring_drop_unauthenticated"] > before, 10.0,
                 "ring datagrams from a node with the wrong secret are dropped and counted")
    time.sleep(3 * STABILIZE_MS / 1000)
    check_ring = ring_ok(survivors)
    h.check(check_ring, "ring unchanged by the unauthenticated node")
    h.check(all(x["ring"] != intruder.ring for n in survivors for x in n.stats()["successors"]),
            "no member lists the unauthenticated node")
    intruder.tracker.stop()
    for n in survivors:
        n.tracker.stop()


if __name__ == "__main__":
    a = h.parse_args(__doc__)
    h.run_main(lambda wd: body(a, wd), a)
