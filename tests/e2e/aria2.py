"""End-to-end: aria2c downloads a random file from a libtorrent seeder that it can find only
through the tracker under test (aria2's DHT, local peer discovery and peer exchange off), once with
an http:// and once with a udp:// announce URL. The file must verify byte for byte, and afterwards
the tracker must show what aria2 told it.

aria2c with --seed-time=0 (the http run) sends no `completed` at all: its second and last announce
is `stopped` with left=0. So that run checks only that aria2 left the swarm (the libtorrent seeder
remains, no leecher). The udp run seeds for a few seconds (--seed-time=0.1), so aria2 announces
`completed` and later `stopped`: the scrape must show it as a seeder with one download while it
seeds, and the download still counted after it left.

aria2 speaks to udp:// trackers only through its DHT socket ("udp is not supported yet" when DHT
is off), so the udp run enables aria2's IPv4 DHT with an empty routing-table file and no entry
point: it knows no DHT node and can still find the seeder only through the tracker.
"""

import os
import subprocess
import time

import harness as h

FILE_BYTES = 3 * 1024 * 1024
ANNOUNCE_TIMEOUT_S = 20
# aria2c exits on its own once the download is complete (seed-time 0); --stop bounds it anyway.
ARIA2_TIMEOUT_S = 60
SCRAPE_TIMEOUT_S = 20

# Minutes aria2 seeds after completing, per protocol run (see the module comment).
SEED_TIME_MIN = {"http": "0", "udp": "0.1"}


def run_one(tracker, proto, workdir, rng):
    h.log(f"=== aria2c over {proto} ===")
    base = os.path.join(workdir, proto)
    seed_dir, dl_dir = os.path.join(base, "seed"), os.path.join(base, "aria2")
    os.makedirs(seed_dir)
    os.makedirs(dl_dir)
    data_path = os.path.join(seed_dir, "payload.bin")
    digest = h.random_file(data_path, FILE_BYTES, rng)
    url = tracker.announce_url(proto)
    blob, info_hash = h.make_torrent(data_path, url)
    h.allow(tracker, info_hash)
    torrent_path = os.path.join(base, "payload.torrent")
    with open(torrent_path, "wb") as f:
        f.write(blob)
    h.log(f"torrent {info_hash.hex()} tracker {url}")

    seeder = h.lt_session("127.0.0.1:0")
    alerts = h.AlertLog({"seeder": seeder})
    try:
        sh = h.lt_add(seeder, blob, seed_dir)

        def seeder_announced():
            alerts.pump()
            return sh.status().is_seeding and alerts.find("seeder", "tracker_reply")
        h.wait_until(seeder_announced, ANNOUNCE_TIMEOUT_S, "seeder's first tracker reply")

        port = h.free_port()
        if proto == "udp":
            dht_port = h.free_port(kind=h.socket.SOCK_DGRAM)
            dht = ["--enable-dht=true", f"--dht-listen-port={dht_port}",
                   f"--dht-file-path={os.path.join(base, 'dht.dat')}"]
        else:
            dht = ["--enable-dht=false"]
        argv = ["aria2c", f"--dir={dl_dir}", *dht, "--enable-dht6=false",
                "--bt-enable-lpd=false", "--enable-peer-exchange=false",
                f"--seed-time={SEED_TIME_MIN[proto]}",
                f"--listen-port={port}", "--disable-ipv6=true", "--bt-tracker-timeout=10",
                "--bt-tracker-connect-timeout=10", "--bt-stop-timeout=30",
                f"--stop={ARIA2_TIMEOUT_S}", "--summary-interval=0", "--console-log-level=warn",
                "--check-certificate=false", "--follow-torrent=false", "--file-allocation=none",
                f"--log={os.path.join(base, 'aria2.log')}", "--log-level=info", torrent_path]
        h.log("running " + " ".join(argv))
        out_path = os.path.join(base, "aria2.out")
        with open(out_path, "wb") as out:
            proc = h.spawn(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            t0 = time.monotonic()
            seeding_seen = None
            while proc.poll() is None and time.monotonic() - t0 < ARIA2_TIMEOUT_S + 10:
                alerts.pump()
                if proto == "udp" and seeding_seen is None:
                    c = scrape(tracker, proto, info_hash)
                    if c == (2, 1, 0):
                        seeding_seen = time.monotonic() - t0
                time.sleep(0.2)
            rc = h.stop_process(proc, timeout_s=5)
        h.log(f"aria2c exited with {rc} after {time.monotonic() - t0:.1f}s")
        if rc != 0:
            with open(out_path, "rb") as f:
                print(f.read()[-3000:].decode("utf-8", "replace"))
            _print_tracker_lines(os.path.join(base, "aria2.log"))
        h.check_eq(rc, 0, "aria2c exit status (0 = download complete)")
        got = os.path.join(dl_dir, "payload.bin")
        h.check(os.path.exists(got), "aria2c wrote the file")
        h.check_eq(h.sha256_file(got), digest, "aria2c file sha256")
        _print_tracker_lines(os.path.join(base, "aria2.log"))

        # aria2's `stopped` removed it: only the libtorrent seeder is left in the swarm.
        if proto == "udp":
            h.check(seeding_seen is not None, "while aria2 seeded, scrape showed (complete 2, "
                    "downloaded 1, incomplete 0)")
            h.wait_for_value(lambda: scrape(tracker, proto, info_hash), (1, 1, 0),
                             SCRAPE_TIMEOUT_S, "udp scrape after aria2 quit "
                             "(complete, downloaded, incomplete)")
        else:
            h.wait_for_value(lambda: (scrape(tracker, proto, info_hash) or ())[::2], (1, 0),
                             SCRAPE_TIMEOUT_S, "http scrape after aria2 quit (complete, "
                             "incomplete)")
    finally:
        alerts.pump()
        del seeder


def _print_tracker_lines(log_path):
    """aria2's own account of its tracker traffic, for whoever reads a failed run."""
    try:
        with open(log_path, "r", errors="replace") as f:
            for line in f:
                low = line.lower()
                if "tracker" in low or "announce" in low:
                    print("  aria2: " + line.rstrip()[:200])
    except OSError:
        pass


def scrape(tracker, proto, info_hash):
    ep = tracker.endpoint(proto)
    if proto == "http":
        f = h.http_scrape(ep, [info_hash]).get(b"files", {}).get(info_hash)
        return (f[b"complete"], f[b"downloaded"], f[b"incomplete"]) if f else None
    c = h.UdpClient(ep)
    try:
        return tuple(c.scrape([info_hash])[0])
    finally:
        c.close()


def main():
    args = h.parse_args(__doc__)
    rng = h.seeded_rng(args)

    def body(workdir):
        tracker = h.make_tracker(args, workdir)
        for proto in ("http", "udp"):
            run_one(tracker, proto, workdir, rng)
        tracker.stop()

    h.run_main(body, args)


if __name__ == "__main__":
    main()
