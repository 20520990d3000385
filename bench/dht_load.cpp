// Mainline DHT (BEP 5) load generator: many sockets act as many DHT nodes sending get_peers and
// announce_peer for Zipf-popular torrents to one node, a fixed number of queries in flight, and
// prints one JSON line shaped like udp_load's (so the comparison scripts read both). It answers
// the node's pings (so it enters the node's table, as real nodes do) and checks that every reply
// echoes its transaction id. It measures; it is not a DHT client: no lookups, IPv4 only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "bench/load_common.hpp"

namespace ringtracker::bench {
namespace {

constexpr std::size_t kDatagramMax = 2048;
constexpr std::size_t kSocketsMax = 4096;
constexpr std::uint32_t kWindowMax = 65536;
constexpr int kPollMs = 5;
constexpr std::int64_t kTimeoutScanNs = 10'000'000;
constexpr double kDurationMax = 24 * 3600.0;
// Announced ports start above the privileged range.
constexpr std::uint32_t kPortBase = 1024;

struct Options {
  sockaddr_in target{};
  double duration_s = 10;
  std::uint32_t window = 256;
  std::uint32_t sockets = 64;
  std::uint32_t torrents = 10000;
  double zipf = 1.0;
  std::uint32_t announce_pct = 20;
  std::uint64_t hash_seed = 0;
  std::uint64_t seed = 1;
  std::int64_t timeout_ns = 1'000'000'000;
};

void usage(std::FILE* out) {
  std::fputs(
      "usage: dht_load --target IP:PORT [--duration S] [--window N] [--sockets N]\n"
      "                [--torrents N] [--zipf S] [--announce-pct P] [--hash-seed N] [--seed N]\n"
      "                [--timeout-ms N]\n"
      "  --window N        queries in flight in total, spread over the sockets (default 256)\n"
      "  --announce-pct P  share of announce_peer among the queries (default 20; rest get_peers)\n"
      "  --torrents/--zipf/--hash-seed  the same torrents as udp_load with the same values\n",
      out);
}

bool parse_target(const char* text, sockaddr_in& out) {
  std::string s(text);
  const auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  out.sin_family = AF_INET;
  out.sin_port = htons(static_cast<std::uint16_t>(std::atoi(s.c_str() + colon + 1)));
  return inet_pton(AF_INET, s.substr(0, colon).c_str(), &out.sin_addr) == 1 && out.sin_port != 0;
}

/// Bencoded string "<len>:<bytes>" appended to `out`.
void put_string(std::string& out, std::string_view s) {
  out += std::to_string(s.size());
  out += ':';
  out.append(s);
}

/// The value of the bencoded string that follows `key` (itself bencoded) in `msg`; empty if
/// absent. A load generator's shortcut, not a decoder: the node's replies are its own format.
std::string_view string_after(std::string_view msg, std::string_view key) {
  const auto at = msg.find(key);
  if (at == std::string_view::npos) return {};
  std::size_t p = at + key.size();
  std::size_t len = 0;
  while (p < msg.size() && msg[p] >= '0' && msg[p] <= '9') len = len * 10 + (msg[p++] - '0');
  if (p >= msg.size() || msg[p] != ':' || p + 1 + len > msg.size()) return {};
  return msg.substr(p + 1, len);
}

struct Slot {
  bool busy = false;
  std::int64_t sent_ns = 0;
};

struct Node {
  int fd = -1;
  std::string id;
  std::vector<Slot> slots;
};

class Generator {
 public:
  explicit Generator(const Options& o) : o_(o), rng_(o.seed), zipf_(o.torrents, o.zipf) {}

  bool setup() {
    const std::uint32_t per = std::max<std::uint32_t>(1, o_.window / o_.sockets);
    for (std::uint32_t i = 0; i < o_.sockets; ++i) {
      Node n;
      n.fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
      if (n.fd < 0) return fail("socket");
      sockaddr_in local{};
      local.sin_family = AF_INET;
      local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::bind(n.fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ||
          ::connect(n.fd, reinterpret_cast<const sockaddr*>(&o_.target), sizeof(o_.target)) != 0)
        return fail("bind/connect");
      for (int b = 0; b < 20; ++b) n.id.push_back(static_cast<char>(rng_.next()));
      n.slots.resize(per);
      nodes_.push_back(std::move(n));
    }
    return fetch_token();
  }

  void run() {
    start_ns_ = now_ns();
    const std::int64_t end_ns = start_ns_ + static_cast<std::int64_t>(o_.duration_s * 1e9);
    for (std::size_t n = 0; n < nodes_.size(); ++n)
      for (std::size_t s = 0; s < nodes_[n].slots.size(); ++s) send(n, s, start_ns_);
    std::vector<pollfd> fds(nodes_.size());
    for (std::size_t n = 0; n < nodes_.size(); ++n) fds[n] = {nodes_[n].fd, POLLIN, 0};
    std::int64_t next_scan = start_ns_ + kTimeoutScanNs;
    for (;;) {
      const std::int64_t now = now_ns();
      if (now >= end_ns) break;
      if (::poll(fds.data(), fds.size(), kPollMs) < 0 && errno != EINTR) break;
      for (std::size_t n = 0; n < nodes_.size(); ++n) {
        if (fds[n].revents & POLLIN) drain(n, end_ns);
      }
      if (now >= next_scan) {
        expire(now);
        next_scan = now + kTimeoutScanNs;
      }
    }
    stop_ns_ = now_ns();
  }

  void report() const {
    const double secs = static_cast<double>(stop_ns_ - start_ns_) / 1e9;
    std::printf(
        "{\"mode\":\"dht\",\"window_s\":%.3f,\"sockets\":%zu,\"torrents\":%u,\"zipf\":%.3f,"
        "\"announce_pct\":%u,\"requests\":%llu,\"responses\":%llu,\"rps\":%.1f,\"errors\":%llu,"
        "\"invalid\":%llu,\"timeouts\":%llu,\"pings_answered\":%llu,\"p50_us\":%.1f,"
        "\"p99_us\":%.1f}\n",
        secs, nodes_.size(), o_.torrents, o_.zipf, o_.announce_pct, ull(requests_),
        ull(responses_), secs > 0 ? static_cast<double>(responses_) / secs : 0.0, ull(errors_),
        ull(invalid_), ull(timeouts_), ull(pings_), static_cast<double>(hist_.quantile(0.5)) / 1e3,
        static_cast<double>(hist_.quantile(0.99)) / 1e3);
  }

  bool clean() const { return invalid_ == 0 && errors_ == 0; }

 private:
  static unsigned long long ull(std::uint64_t v) { return v; }

  bool fail(const char* what) {
    std::fprintf(stderr, "dht_load: %s: %s\n", what, std::strerror(errno));
    return false;
  }

  /// Tokens are bound to the source IP: one get_peers gives the token every socket may use.
  bool fetch_token() {
    const std::int64_t deadline = now_ns() + 2'000'000'000;
    while (now_ns() < deadline) {
      send(0, 0, now_ns());
      pollfd p{nodes_[0].fd, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char buf[kDatagramMax];
      const ssize_t got = ::recv(nodes_[0].fd, buf, sizeof(buf), 0);
      if (got <= 0) continue;
      token_ = std::string(string_after(std::string_view(buf, static_cast<std::size_t>(got)),
                                        "5:token"));
      if (!token_.empty()) {
        // Answers to repeated attempts may still come: they must not count in the run.
        while (::poll(&p, 1, 50) > 0 && ::recv(nodes_[0].fd, buf, sizeof(buf), 0) > 0) {
        }
        nodes_[0].slots[0].busy = false;
        requests_ = 0;
        return true;
      }
    }
    std::fprintf(stderr, "dht_load: no token from the target (is its DHT on?)\n");
    return false;
  }

  std::string txid(std::size_t slot) const {
    return std::string{static_cast<char>(slot >> 8), static_cast<char>(slot & 0xff)};
  }

  void send(std::size_t n, std::size_t s, std::int64_t now) {
    Node& node = nodes_[n];
    const InfoHash ih = info_hash_of(zipf_.sample(rng_), o_.hash_seed);
    const std::string_view ihv(reinterpret_cast<const char*>(ih.data()), ih.size());
    const bool announce = !token_.empty() && rng_.below(100) < o_.announce_pct;
    std::string q = "d1:ad2:id";
    put_string(q, node.id);
    q += "9:info_hash";
    put_string(q, ihv);
    if (announce) {
      q += "4:porti" + std::to_string(kPortBase + rng_.below(65536 - kPortBase)) + "e5:token";
      put_string(q, token_);
      q += "e1:q13:announce_peer1:t";
    } else {
      q += "e1:q9:get_peers1:t";
    }
    put_string(q, txid(s));
    q += "1:y1:qe";
    node.slots[s] = Slot{true, now};
    ++requests_;
    (void)::send(node.fd, q.data(), q.size(), 0);
  }

  void drain(std::size_t n, std::int64_t end_ns) {
    Node& node = nodes_[n];
    char buf[kDatagramMax];
    for (;;) {
      const ssize_t got = ::recv(node.fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (got <= 0) return;
      const std::string_view msg(buf, static_cast<std::size_t>(got));
      const std::int64_t now = now_ns();
      const std::string_view t = string_after(msg, "1:t");
      if (msg.find("1:y1:q") != std::string_view::npos) {  // the node's ping: answer it
        std::string r = "d1:rd2:id";
        put_string(r, node.id);
        r += "e1:t";
        put_string(r, t);
        r += "1:y1:re";
        (void)::send(node.fd, r.data(), r.size(), 0);
        ++pings_;
        continue;
      }
      if (t.size() != 2) {
        ++invalid_;
        continue;
      }
      const std::size_t s = (static_cast<std::uint8_t>(t[0]) << 8) | static_cast<std::uint8_t>(t[1]);
      if (s >= node.slots.size() || !node.slots[s].busy) {
        ++invalid_;  // an answer nobody is waiting for (late, after a timeout)
        continue;
      }
      if (msg.find("1:y1:r") != std::string_view::npos) {
        ++responses_;
        hist_.record(now - node.slots[s].sent_ns);
      } else {
        ++errors_;
      }
      node.slots[s].busy = false;
      if (now < end_ns) send(n, s, now);
    }
  }

  void expire(std::int64_t now) {
    for (std::size_t n = 0; n < nodes_.size(); ++n) {
      for (std::size_t s = 0; s < nodes_[n].slots.size(); ++s) {
        if (nodes_[n].slots[s].busy && now - nodes_[n].slots[s].sent_ns > o_.timeout_ns) {
          ++timeouts_;
          send(n, s, now);
        }
      }
    }
  }

  Options o_;
  Rng rng_;
  ZipfSampler zipf_;
  LatencyHistogram hist_;
  std::vector<Node> nodes_;
  std::string token_;
  std::int64_t start_ns_ = 0;
  std::int64_t stop_ns_ = 0;
  std::uint64_t requests_ = 0;
  std::uint64_t responses_ = 0;
  std::uint64_t errors_ = 0;
  std::uint64_t invalid_ = 0;
  std::uint64_t timeouts_ = 0;
  std::uint64_t pings_ = 0;
};

bool parse_args(int argc, char** argv, Options& o) {
  bool has_target = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) return false;
    const char* v = argv[++i];
    const double d = std::atof(v);
    if (a == "--target") {
      has_target = parse_target(v, o.target);
      if (!has_target) return false;
    } else if (a == "--duration" && d > 0 && d <= kDurationMax) {
      o.duration_s = d;
    } else if (a == "--window" && d >= 1 && d <= kWindowMax) {
      o.window = static_cast<std::uint32_t>(d);
    } else if (a == "--sockets" && d >= 1 && d <= kSocketsMax) {
      o.sockets = static_cast<std::uint32_t>(d);
    } else if (a == "--torrents" && d >= 1 && d <= 1e8) {
      o.torrents = static_cast<std::uint32_t>(d);
    } else if (a == "--zipf" && d >= 0 && d <= 10) {
      o.zipf = d;
    } else if (a == "--announce-pct" && d >= 0 && d <= 100) {
      o.announce_pct = static_cast<std::uint32_t>(d);
    } else if (a == "--hash-seed") {
      o.hash_seed = std::strtoull(v, nullptr, 10);
    } else if (a == "--seed") {
      o.seed = std::strtoull(v, nullptr, 10);
    } else if (a == "--timeout-ms" && d >= 1 && d <= 60000) {
      o.timeout_ns = static_cast<std::int64_t>(d * 1e6);
    } else {
      return false;
    }
  }
  // The slot index travels as a 2-byte transaction id.
  return has_target && o.window / o.sockets <= 65536;
}

}  // namespace
}  // namespace ringtracker::bench

int main(int argc, char** argv) {
  using namespace ringtracker::bench;
  Options o;
  if (!parse_args(argc, argv, o)) {
    usage(stderr);
    return 2;
  }
  Generator g(o);
  if (!g.setup()) return 1;
  g.run();
  g.report();
  return g.clean() ? 0 : 3;
}
