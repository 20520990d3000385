"""End-to-end: two real libtorrent sessions (a seeder and a leecher) that can find each other
only through the tracker under test (no DHT, LSD, UPnP, NAT-PMP or peer exchange) share a random
file over loopback; the download must verify byte for byte, and libtorrent's scrape, a raw scrape
and /stats must all report the swarm as it is (2 seeders, 0 leechers, 1 download). Removing the
leecher's torrent makes libtorrent announce `stopped`: the swarm must drop to 1 seeder with the
download still counted.
Run once with --proto http and once with --proto udp; each run covers IPv4 and then IPv6 (::1),
skipping the IPv6 half loudly only when this machine cannot bind ::1 at all.
"""

import os
import time

import harness as h

FILE_BYTES = 4 * 1024 * 1024
# Whole transfer of 4 MiB on loopback takes well under a second; the rest is slack for a slow CI.
DOWNLOAD_TIMEOUT_S = 60
ANNOUNCE_TIMEOUT_S = 20
SCRAPE_TIMEOUT_S = 20


def run_swarm(tracker, proto, v6, workdir, rng, expect_stats):
    fam = "IPv6" if v6 else "IPv4"
    h.log(f"=== {proto} swarm over {fam} ===")
    L = h.lt()
    base = os.path.join(workdir, f"{proto}-{fam}")
    seed_dir, leech_dir = os.path.join(base, "seed"), os.path.join(base, "leech")
    os.makedirs(seed_dir)
    os.makedirs(leech_dir)
    data_path = os.path.join(seed_dir, "payload.bin")
    digest = h.random_file(data_path, FILE_BYTES, rng)
    url = tracker.announce_url(proto, v6=v6)
    blob, info_hash = h.make_torrent(data_path, url)
    h.allow(tracker, info_hash)
    h.log(f"torrent {info_hash.hex()} tracker {url}")

    listen = "[::1]:0" if v6 else "127.0.0.1:0"
    seeder, leecher = h.lt_session(listen), h.lt_session(listen)
    alerts = h.AlertLog({"seeder": seeder, "leecher": leecher})
    try:
        sh = h.lt_add(seeder, blob, seed_dir)

        def seeder_announced():
            alerts.pump()
            failed = alerts.find("seeder", "listen_failed")
            if failed and v6:
                raise h.Skip(f"IPv6 half: libtorrent cannot listen on ::1 ({failed.message}); "
                             "the IPv4 half passed")
            if failed:
                raise h.CheckFailed(f"libtorrent cannot listen: {failed.message}")
            return sh.status().is_seeding and alerts.find("seeder", "tracker_reply")
        h.wait_until(seeder_announced, ANNOUNCE_TIMEOUT_S, "seeder's first tracker reply")

        mark = len(alerts.seen)
        lh = h.lt_add(leecher, blob, leech_dir)

        def leecher_got_peer():
            alerts.pump()
            for n, a in alerts.seen[mark:]:
                if n == "leecher" and a.what == "tracker_reply" and a.num_peers >= 1:
                    return a
            err = alerts.find("leecher", "tracker_error", mark)
            if err:
                raise h.CheckFailed(f"leecher tracker error: {err.message}")
            return None
        reply = h.wait_until(leecher_got_peer, ANNOUNCE_TIMEOUT_S,
                             "leecher's tracker reply naming the seeder")
        # Exactly the seeder: the announcer never gets itself back. (opentracker does return
        # the announcer, so a reference run only requires the seeder to be among the peers.)
        if not tracker.is_reference:
            h.check(reply.num_peers == 1,
                    f"tracker gave the leecher exactly the seeder (num_peers={reply.num_peers})")

        peer_sources = {}  # (ip, port) -> libtorrent peer_source_flags seen while downloading

        def leecher_done():
            alerts.pump()
            for p in lh.get_peer_info():
                peer_sources[tuple(p.ip)] = peer_sources.get(tuple(p.ip), 0) | p.source
            return lh.status().is_seeding
        t0 = time.monotonic()
        h.wait_until(leecher_done, DOWNLOAD_TIMEOUT_S, "leecher download to complete")
        h.log(f"download took {time.monotonic() - t0:.2f}s")
        h.check_eq(h.sha256_file(os.path.join(leech_dir, "payload.bin")), digest,
                   "downloaded file sha256")
        # A small download can finish (and both sides, now seeds, disconnect) between two
        # samples of get_peer_info: the leecher's connection alerts name its peers too. The
        # only peer the tracker named is the seeder (checked above: num_peers == 1).
        seeder_ep = ("::1" if v6 else "127.0.0.1", seeder.listen_port())
        connected = {r.endpoint for n, r in alerts.seen[mark:]
                     if n == "leecher" and r.what == "peer_connect" and r.endpoint}
        h.check((peer_sources or connected) and
                all(src & L.peer_info.tracker for src in peer_sources.values()) and
                connected <= {seeder_ep},
                f"every peer of the leecher came from the tracker (sampled {peer_sources}, "
                f"connected to {connected}, seeder {seeder_ep})")

        # The leecher reports `completed` right after finishing; wait until the swarm shows it.
        h.wait_for_value(lambda: scrape_counts(tracker, proto, v6, info_hash), (2, 1, 0),
                         SCRAPE_TIMEOUT_S, f"raw {proto} scrape (complete, downloaded, incomplete)")

        mark = len(alerts.seen)
        lh.scrape_tracker(0)

        def scraped():
            alerts.pump()
            for n, a in alerts.seen[mark:]:
                if n == "leecher" and a.what == "scrape_reply":
                    return a
                if n == "leecher" and a.what == "scrape_failed":
                    raise h.CheckFailed(f"libtorrent scrape failed: {a.message} ({a.error})")
            return None
        a = h.wait_until(scraped, SCRAPE_TIMEOUT_S, "libtorrent scrape_reply_alert")
        h.check_eq((a.complete, a.incomplete), (2, 0), "libtorrent scrape (complete, incomplete)")

        check_stats(tracker, expect_stats)

        # Removing the torrent makes libtorrent announce `stopped`: the leecher-turned-seeder
        # leaves the swarm, the download stays counted.
        lh.pause()  # no more re-announces of any kind; remove_torrent sends the stopped one
        leecher.remove_torrent(lh)
        h.wait_for_value(lambda: scrape_counts(tracker, proto, v6, info_hash), (1, 1, 0),
                         SCRAPE_TIMEOUT_S, f"{proto} scrape after the leecher's torrent was "
                         "removed (complete, downloaded, incomplete)")
        after = dict(expect_stats, peers=expect_stats["peers"] - 1,
                     seeders=expect_stats["seeders"] - 1)
        check_stats(tracker, after)
    finally:
        alerts.pump()
    # The sessions stay alive until the script ends: destroying one announces `stopped` for
    # its torrents in the background, which would make later /stats figures racy.
    return seeder, leecher


def check_stats(tracker, expect):
    if tracker.is_reference:
        return
    sw = tracker.stats()["swarms"]
    h.check_eq({k: sw.get(k) for k in expect}, expect, "/stats swarms")


def scrape_counts(tracker, proto, v6, info_hash):
    """(complete, downloaded, incomplete) of one swarm through the tracker's own protocol."""
    ep = tracker.endpoint(proto, v6=v6)
    if proto == "http":
        d = h.http_scrape(ep, [info_hash])
        f = d.get(b"files", {}).get(info_hash)
        return (f[b"complete"], f[b"downloaded"], f[b"incomplete"]) if f else None
    c = h.UdpClient(ep)
    try:
        seeders, completed, leechers = c.scrape([info_hash])[0]
        return (seeders, completed, leechers)
    finally:
        c.close()


def main():
    args = h.parse_args(__doc__, lambda p: p.add_argument("--proto", choices=("http", "udp"),
                                                          required=True))
    rng = h.seeded_rng(args)

    def body(workdir):
        v6_ok = h.ipv6_loopback_usable()
        if args.opentracker:
            trackers = [(h.make_tracker(args, workdir), False)]
        else:
            binds = {"http": ["127.0.0.1:0"], "udp": ["127.0.0.1:0"]}
            if v6_ok:
                binds["http"].append("[::1]:0")
                binds["udp"].append("[::1]:0")
            t = h.make_tracker(args, workdir, http=binds["http"], udp=binds["udp"])
            trackers = [(t, False)] + ([(t, True)] if v6_ok else [])
        keep = []
        for n, (t, v6) in enumerate(trackers, start=1):
            # Each earlier swarm still holds its seeder; this one holds seeder and leecher.
            keep.append(run_swarm(t, args.proto, v6, workdir, rng,
                                  {"torrents": n, "peers": n + 1, "seeders": n + 1,
                                   "leechers": 0}))
        trackers[0][0].stop()
        del keep
        if not v6_ok:
            raise h.Skip("IPv6 half: this machine cannot bind ::1 (the IPv4 half passed)")

    h.run_main(body, args)


if __name__ == "__main__":
    main()
