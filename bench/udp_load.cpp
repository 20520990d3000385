// BEP 15 UDP tracker load generator: many sockets act as many clients (one connection id each),
// announcing for simulated peers (unique peer_id and ip:port) to Zipf-popular torrents, scraping,
// and validating every answer. It measures; it is not a client: it never contacts the returned
// peers, speaks IPv4 only, and retries only in --load mode.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/load_common.hpp"

namespace ringtracker::bench {
namespace {

// BEP 15: fixed magic of the connect request, packet sizes and actions.
constexpr std::uint64_t kProtocolId = 0x41727101980ULL;
constexpr std::size_t kConnectRequestSize = 16;
constexpr std::size_t kConnectResponseSize = 16;
constexpr std::size_t kAnnounceRequestSize = 98;
constexpr std::size_t kAnnounceResponseHeader = 20;
constexpr std::size_t kScrapeResponseHeader = 8;
constexpr std::size_t kScrapeEntrySize = 12;
constexpr std::size_t kIpv4PeerSize = 6;
constexpr std::size_t kErrorHeader = 8;
// BEP 15: about 74 info-hashes fit one scrape datagram.
constexpr std::uint32_t kScrapeHashesMax = 74;
constexpr std::uint32_t kActionConnect = 0;
constexpr std::uint32_t kActionAnnounce = 1;
constexpr std::uint32_t kActionScrape = 2;
constexpr std::uint32_t kActionError = 3;
constexpr std::uint32_t kEventNone = 0;
constexpr std::uint32_t kEventStarted = 2;

// Announced ports start above the privileged range; each source IP carries at most this many peers.
constexpr std::uint32_t kPortBase = 1024;
constexpr std::uint64_t kPortsPerIp = 65536 - kPortBase;
// Largest datagram we accept; a bigger answer is reported as truncated (200 IPv4 peers need 1220).
constexpr std::size_t kDatagramMax = 4096;
constexpr std::size_t kScrapeRequestMax = 16 + kScrapeHashesMax * 20;
// Batch sizes for recvmmsg/sendmmsg: large enough to amortise the syscall, small enough for cache.
constexpr std::size_t kRecvBatch = 64;
constexpr std::size_t kSendBatch = 64;
// Transaction id = slot index (low 24 bits) | generation (high 8 bits): caps in-flight requests.
constexpr std::uint32_t kSlotBits = 24;
constexpr std::uint32_t kSlotsMax = 1U << kSlotBits;
constexpr std::uint32_t kSocketsMax = 60'000;
constexpr int kEpollWaitMs = 5;
// Connects in flight at once: a tracker's default socket buffer holds only a few hundred small
// datagrams, so all sockets connecting at the same instant would measure drops, not the tracker.
constexpr std::uint32_t kConnectsInFlightMax = 16;
constexpr std::int64_t kTimeoutScanNs = 10'000'000;
// A run longer than this is a typo, not a benchmark.
constexpr double kDurationMax = 24 * 3600.0;

void put_u32(std::uint8_t* p, std::uint32_t v) {
  v = htonl(v);
  std::memcpy(p, &v, 4);
}
void put_u64(std::uint8_t* p, std::uint64_t v) {
  put_u32(p, static_cast<std::uint32_t>(v >> 32));
  put_u32(p + 4, static_cast<std::uint32_t>(v));
}
std::uint32_t get_u32(const std::uint8_t* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return ntohl(v);
}
std::uint64_t get_u64(const std::uint8_t* p) {
  return (static_cast<std::uint64_t>(get_u32(p)) << 32) | get_u32(p + 4);
}

/// --target may be repeated (clients spread over several tracker nodes), up to this many times.
constexpr std::size_t kTargetsMax = 64;

struct Options {
  std::vector<sockaddr_in> targets;  // socket s talks to targets[s % size]
  double duration_s = 10;
  std::uint32_t torrents = 10'000;
  std::uint64_t peers = 100'000;
  double zipf_s = 1.0;
  std::uint32_t sockets = 64;
  std::uint32_t source_ips = 0;  // 0: as few as the peers need
  in_addr source_base{htonl(INADDR_LOOPBACK)};
  std::uint32_t window = 256;
  std::uint32_t scrape_pct = 0;
  std::uint32_t scrape_hashes = 1;
  std::uint32_t seed_pct = 20;
  std::int32_t numwant = 50;
  std::uint32_t timeout_ms = 1000;
  std::uint32_t conn_reuse_s = 60;
  std::uint64_t seed = 1;
  std::uint64_t hash_seed = 0;
  std::uint64_t max_swarm = 0;  // 0: the number of simulated peers
  bool load = false;
  bool busy_poll = false;  // never sleep in epoll_wait: see --busy-poll
  std::uint32_t retries = 3;
  bool print_hashes = false;
  std::vector<InfoHash> hash_list;  // --hashes: used instead of info_hash_of() when not empty
};

void usage(std::FILE* out) {
  std::fputs(
      "usage: udp_load --target IP:PORT [--target IP:PORT...] [options]\n"
      "  --target IP:PORT    tracker; repeated: socket i talks to target i mod count\n"
      "  --duration S        seconds of load (default 10; ignored with --load)\n"
      "  --torrents N        number of torrents (default 10000)\n"
      "  --peers N           number of simulated peers (default 100000)\n"
      "  --zipf S            popularity exponent, 0 = uniform (default 1.0)\n"
      "  --sockets N         UDP sockets = clients, each its own source port (default 64)\n"
      "  --source-ips N      spread sockets over N source addresses from --source-base\n"
      "                      (default: the fewest that give every peer its own ip:port)\n"
      "  --source-base IP    first source address (default 127.0.0.1)\n"
      "  --window N          requests in flight in total, spread over sockets (default 256)\n"
      "  --scrape-pct P      percent of requests that are scrapes (default 0)\n"
      "  --scrape-hashes K   info-hashes per scrape, 1..74 (default 1)\n"
      "  --seed-pct P        percent of peers that are seeders (default 20)\n"
      "  --numwant N         numwant of announces (default 50)\n"
      "  --timeout-ms MS     request timeout (default 1000)\n"
      "  --conn-reuse S      reuse a connection id for S seconds (default 60)\n"
      "  --seed N            PRNG seed (default 1)\n"
      "  --hash-seed N       seed of the info-hash function (default 0)\n"
      "  --max-swarm N       sanity bound for seeders+leechers (default: --peers)\n"
      "  --load              announce every peer once (event=started), then stop\n"
      "  --retries N         resends of a timed-out announce in --load mode (default 3)\n"
      "  --busy-poll         poll the sockets without ever sleeping (uses its whole core): the\n"
      "                      tracker's answers then never have to wake this process, a cost\n"
      "                      that clients on other machines do not put on a tracker\n"
      "  --print-hashes      print the torrents' info-hashes as hex, one a line, and exit\n"
      "  --hashes FILE       use these info-hashes (40 hex digits a line) as the torrents;\n"
      "                      overrides --torrents and --hash-seed\n"
      "Peer p uses source address base+(p % source-ips) and announces port 1024 + p / source-ips.\n"
      "Prints one JSON line with the results on stdout; diagnostics go to stderr.\n",
      out);
}

bool parse_u64(std::string_view text, std::uint64_t& out) {
  if (text.empty()) return false;
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

bool parse_double(const std::string& text, double& out) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || end == text.c_str() || *end != '\0' || !std::isfinite(v)) return false;
  out = v;
  return true;
}

// Largest --hashes file line we read: 40 hex digits plus CR/LF and some slack.
constexpr std::size_t kHashLineMax = 128;

// Reads 40-hex-digit info-hashes, one a line (blank lines skipped); false on any other line.
bool read_hash_list(const std::string& path, std::vector<InfoHash>& out) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return false;
  char line[kHashLineMax];
  bool ok = true;
  while (ok && std::fgets(line, sizeof line, f) != nullptr) {
    std::string_view text(line);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    if (text.empty()) continue;
    if (text.size() != 40) {
      ok = false;
      break;
    }
    auto nibble = [&ok](char c) -> std::uint8_t {
      if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0');
      if (c >= 'a' && c <= 'f') return static_cast<std::uint8_t>(c - 'a' + 10);
      if (c >= 'A' && c <= 'F') return static_cast<std::uint8_t>(c - 'A' + 10);
      ok = false;
      return 0;
    };
    InfoHash h{};
    for (std::size_t i = 0; i < h.size(); ++i) {
      h[i] = static_cast<std::uint8_t>((nibble(text[2 * i]) << 4) | nibble(text[2 * i + 1]));
    }
    out.push_back(h);
  }
  std::fclose(f);
  return ok && !out.empty() && out.size() <= 100'000'000;
}

bool parse_ipv4_endpoint(const std::string& text, sockaddr_in& out) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  std::uint64_t port = 0;
  if (!parse_u64(std::string_view(text).substr(colon + 1), port) || port == 0 || port > 65535) {
    return false;
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, text.substr(0, colon).c_str(), &a.sin_addr) != 1) return false;
  out = a;
  return true;
}

// Returns 0 on success, otherwise the exit code (2 = usage error, 1 = help printed).
int parse_options(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (const auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      has_value = true;
    }
    auto flag = [&](const char* name) { return arg == name; };
    if (flag("--help") || flag("-h")) {
      usage(stdout);
      return 1;
    }
    if (flag("--load")) {
      o.load = true;
      continue;
    }
    if (flag("--busy-poll")) {
      o.busy_poll = true;
      continue;
    }
    if (flag("--print-hashes")) {
      o.print_hashes = true;
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "udp_load: %s needs a value\n", arg.c_str());
        return 2;
      }
      value = argv[++i];
    }
    std::uint64_t n = 0;
    bool ok = true;
    auto u32 = [&](std::uint32_t& dst, std::uint64_t lo, std::uint64_t hi) {
      ok = parse_u64(value, n) && n >= lo && n <= hi;
      if (ok) dst = static_cast<std::uint32_t>(n);
    };
    if (flag("--target")) {
      sockaddr_in t{};
      ok = parse_ipv4_endpoint(value, t) && o.targets.size() < kTargetsMax;
      if (ok) o.targets.push_back(t);
    } else if (flag("--duration")) {
      ok = parse_double(value, o.duration_s) && o.duration_s > 0 && o.duration_s <= kDurationMax;
    } else if (flag("--torrents")) {
      u32(o.torrents, 1, 100'000'000);
    } else if (flag("--peers")) {
      ok = parse_u64(value, o.peers) && o.peers >= 1 && o.peers <= 1'000'000'000;
    } else if (flag("--zipf")) {
      ok = parse_double(value, o.zipf_s) && o.zipf_s >= 0 && o.zipf_s <= 10;
    } else if (flag("--sockets")) {
      u32(o.sockets, 1, kSocketsMax);
    } else if (flag("--source-ips")) {
      u32(o.source_ips, 1, 65'536);
    } else if (flag("--source-base")) {
      ok = inet_pton(AF_INET, value.c_str(), &o.source_base) == 1;
    } else if (flag("--window")) {
      u32(o.window, 1, kSlotsMax);
    } else if (flag("--scrape-pct")) {
      u32(o.scrape_pct, 0, 100);
    } else if (flag("--scrape-hashes")) {
      u32(o.scrape_hashes, 1, kScrapeHashesMax);
    } else if (flag("--seed-pct")) {
      u32(o.seed_pct, 0, 100);
    } else if (flag("--numwant")) {
      std::uint32_t v = 0;
      u32(v, 0, 100'000);
      o.numwant = static_cast<std::int32_t>(v);
    } else if (flag("--timeout-ms")) {
      u32(o.timeout_ms, 1, 600'000);
    } else if (flag("--conn-reuse")) {
      u32(o.conn_reuse_s, 0, 3600);
    } else if (flag("--seed")) {
      ok = parse_u64(value, o.seed);
    } else if (flag("--hash-seed")) {
      ok = parse_u64(value, o.hash_seed);
    } else if (flag("--max-swarm")) {
      ok = parse_u64(value, o.max_swarm);
    } else if (flag("--retries")) {
      u32(o.retries, 0, 100);
    } else if (flag("--hashes")) {
      o.hash_list.clear();
      ok = read_hash_list(value, o.hash_list);
    } else {
      std::fprintf(stderr, "udp_load: unknown option %s (try --help)\n", arg.c_str());
      return 2;
    }
    if (!ok) {
      std::fprintf(stderr, "udp_load: bad value for %s: %s\n", arg.c_str(), value.c_str());
      return 2;
    }
  }
  if (!o.hash_list.empty()) o.torrents = static_cast<std::uint32_t>(o.hash_list.size());
  if (o.print_hashes) return 0;
  if (o.targets.empty()) {
    std::fprintf(stderr, "udp_load: --target IP:PORT is required (try --help)\n");
    return 2;
  }
  if (o.source_ips == 0) {
    o.source_ips = static_cast<std::uint32_t>((o.peers + kPortsPerIp - 1) / kPortsPerIp);
  }
  if (o.sockets < o.source_ips) {
    std::fprintf(stderr, "udp_load: --sockets must be at least --source-ips\n");
    return 2;
  }
  if ((o.peers + o.source_ips - 1) / o.source_ips > kPortsPerIp) {
    std::fprintf(stderr,
                 "udp_load: %llu peers need --source-ips >= %llu (%llu ports per address)\n",
                 static_cast<unsigned long long>(o.peers),
                 static_cast<unsigned long long>((o.peers + kPortsPerIp - 1) / kPortsPerIp),
                 static_cast<unsigned long long>(kPortsPerIp));
    return 2;
  }
  if (o.max_swarm == 0) o.max_swarm = o.peers;
  return 0;
}

enum class SlotKind : std::uint8_t { free, connect, announce, scrape };
enum class ConnState : std::uint8_t { none, connecting, ready };

struct Slot {
  std::int64_t sent_ns = 0;
  std::uint64_t peer = 0;  // announce: the simulated peer
  std::uint32_t client = 0;
  std::uint16_t scrape_count = 0;
  std::uint8_t generation = 0;
  SlotKind kind = SlotKind::free;
};

/// One socket = one client: its own source ip:port and connection id.
struct Client {
  int fd = -1;
  std::uint32_t ip_index = 0;        // which source address
  std::uint32_t lane = 0;            // which of the sockets sharing that address
  std::uint32_t source_ip = 0;       // host order, for the self-in-peers check
  std::uint64_t peer_count = 0;      // simulated peers carried by this socket
  std::uint64_t next_peer = 0;       // --load: next of its peers to announce
  std::vector<std::uint64_t> retry;  // --load: peers whose announce timed out
  std::vector<std::uint32_t> free_slots;
  std::uint32_t inflight = 0;
  ConnState conn_state = ConnState::none;
  bool queued = false;  // waiting for a connect turn
  std::uint64_t conn_id = 0;
  std::int64_t conn_at_ns = 0;
};

struct Counters {
  std::uint64_t sent_connect = 0, sent_announce = 0, sent_scrape = 0;
  std::uint64_t ok_connect = 0, ok_announce = 0, ok_scrape = 0;
  std::uint64_t error_responses = 0;  // BEP 15 action 3
  std::uint64_t invalid = 0;          // any malformed or implausible answer
  std::uint64_t timeouts = 0;
  std::uint64_t stray = 0;  // unknown or late transaction id
  std::uint64_t send_errors = 0;
  std::uint64_t recv_errors = 0;
  std::uint64_t peers_received = 0;
  std::uint64_t self_in_peers = 0;  // informational: announcer returned to itself
  std::uint64_t responses() const { return ok_connect + ok_announce + ok_scrape; }
};

class LoadGenerator {
 public:
  explicit LoadGenerator(const Options& o)
      : o_(o), rng_(o.seed), zipf_(o.torrents, o.zipf_s), hashes_(o.torrents) {}

  ~LoadGenerator() {
    for (const Client& c : clients_) {
      if (c.fd >= 0) ::close(c.fd);
    }
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
  }
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;

  /// Opens sockets and prepares the peer table; false (with a message) when the system refuses.
  bool setup() {
    for (std::uint32_t t = 0; t < o_.torrents; ++t) {
      hashes_[t] = o_.hash_list.empty() ? info_hash_of(t, o_.hash_seed) : o_.hash_list[t];
    }
    sockets_per_ip_ = o_.sockets / o_.source_ips;
    const std::uint32_t sockets = sockets_per_ip_ * o_.source_ips;
    per_socket_window_ = std::max<std::uint32_t>(1, o_.window / sockets);
    if (static_cast<std::uint64_t>(per_socket_window_) * sockets > kSlotsMax) {
      std::fprintf(stderr, "udp_load: window too large\n");
      return false;
    }
    torrent_of_.resize(o_.peers);
    seeder_.resize(o_.peers);
    started_.assign(o_.peers, 0);
    if (o_.load) attempts_.assign(o_.peers, 0);
    Rng assign(o_.seed ^ 0x5bd1e995ULL);
    for (std::uint64_t p = 0; p < o_.peers; ++p) {
      torrent_of_[p] =
          o_.zipf_s == 0 ? static_cast<std::uint32_t>(p % o_.torrents) : zipf_.sample(assign);
      seeder_[p] = assign.below(100) < o_.seed_pct ? 1 : 0;
    }
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) return fail("epoll_create1");
    slots_.resize(static_cast<std::size_t>(per_socket_window_) * sockets);
    clients_.resize(sockets);
    const std::uint64_t stride = static_cast<std::uint64_t>(o_.source_ips) * sockets_per_ip_;
    for (std::uint32_t s = 0; s < sockets; ++s) {
      Client& c = clients_[s];
      c.ip_index = s % o_.source_ips;
      c.lane = s / o_.source_ips;
      c.source_ip = ntohl(o_.source_base.s_addr) + c.ip_index;
      const std::uint64_t first = c.ip_index + static_cast<std::uint64_t>(o_.source_ips) * c.lane;
      c.peer_count = o_.peers > first ? (o_.peers - first + stride - 1) / stride : 0;
      for (std::uint32_t k = per_socket_window_; k-- > 0;) {
        const std::uint32_t slot = s * per_socket_window_ + k;
        slots_[slot].client = s;
        c.free_slots.push_back(slot);
      }
      c.fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c.fd < 0) return fail("socket");
      sockaddr_in local{};
      local.sin_family = AF_INET;
      local.sin_addr.s_addr = htonl(c.source_ip);
      if (::bind(c.fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) return fail("bind");
      // Connected: the kernel filters other sources and send needs no address.
      const sockaddr_in& target = o_.targets[s % o_.targets.size()];
      if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&target), sizeof target) != 0) {
        return fail("connect");
      }
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = s;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &ev) != 0) return fail("epoll_ctl");
    }
    for (auto& m : recv_msgs_) m = mmsghdr{};
    for (std::size_t i = 0; i < kRecvBatch; ++i) {
      recv_iov_[i] = iovec{recv_buf_[i].data(), recv_buf_[i].size()};
      recv_msgs_[i].msg_hdr.msg_iov = &recv_iov_[i];
      recv_msgs_[i].msg_hdr.msg_iovlen = 1;
    }
    return true;
  }

  /// Runs the load until the duration ends (or, with --load, every peer was announced) and the
  /// requests in flight were answered or timed out.
  void run() {
    start_ns_ = now_ns();
    const auto duration_ns = static_cast<std::int64_t>(o_.duration_s * 1e9);
    const std::int64_t timeout_ns = static_cast<std::int64_t>(o_.timeout_ms) * 1'000'000;
    std::int64_t last_scan = start_ns_;
    for (std::uint32_t s = 0; s < clients_.size(); ++s) pump(s, start_ns_);
    std::array<epoll_event, 256> events{};
    for (;;) {
      std::int64_t now = now_ns();
      if (!stopping_ && !o_.load && now - start_ns_ >= duration_ns) stop(now);
      if (!stopping_ && o_.load && load_finished()) stop(now);
      if (stopping_ && (inflight_ == 0 || now - stop_ns_ > timeout_ns * 2)) break;
      const int n =
          epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                     o_.busy_poll ? 0 : kEpollWaitMs);
      now = now_ns();
      for (int i = 0; i < n; ++i) {
        const std::uint32_t s = events[static_cast<std::size_t>(i)].data.u32;
        drain(s, now);
        pump(s, now);
      }
      if (now - last_scan >= kTimeoutScanNs) {
        last_scan = now;
        expire(now, timeout_ns);
      }
      while (connecting_ < kConnectsInFlightMax && !connect_queue_.empty()) {
        const std::uint32_t s = connect_queue_.front();
        connect_queue_.pop_front();
        clients_[s].queued = false;
        pump(s, now);
      }
    }
    end_ns_ = now_ns();
    if (!stopping_) stop(end_ns_);
    // Whatever is still in flight after the grace period is a timeout.
    for (Slot& slot : slots_) {
      if (slot.kind != SlotKind::free) {
        ++c_.timeouts;
        slot.kind = SlotKind::free;
      }
    }
  }

  void report() const {
    const double window_s = static_cast<double>(stop_ns_ - start_ns_) / 1e9;
    const double total_s = static_cast<double>(end_ns_ - start_ns_) / 1e9;
    const auto rate = [&](std::uint64_t n) {
      return window_s > 0 ? static_cast<double>(n) / window_s : 0.0;
    };
    std::string error_text;
    for (char ch : first_error_) {
      if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') error_text += ch;
    }
    std::printf(
        "{\"mode\":\"%s\",\"window_s\":%.3f,\"total_s\":%.3f,\"sockets\":%zu,\"source_ips\":%u,"
        "\"inflight_window\":%zu,\"torrents\":%u,\"peers\":%llu,\"zipf\":%.3f,"
        "\"sent\":%llu,\"responses\":%llu,\"connects\":%llu,\"announces\":%llu,\"scrapes\":%llu,"
        "\"rps\":%.1f,\"announce_rps\":%.1f,\"scrape_rps\":%.1f,"
        "\"window_responses\":%llu,\"loaded_peers\":%llu,"
        "\"errors\":%llu,\"invalid\":%llu,\"timeouts\":%llu,\"stray\":%llu,"
        "\"send_errors\":%llu,\"recv_errors\":%llu,\"peers_received\":%llu,\"self_in_peers\":%llu,"
        "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_latency_samples\":%llu,"
        "\"first_error\":\"%s\"}\n",
        o_.load ? "load" : "run", window_s, total_s, clients_.size(), o_.source_ips,
        static_cast<std::size_t>(per_socket_window_) * clients_.size(), o_.torrents, ull(o_.peers),
        o_.zipf_s, ull(c_.sent_connect + c_.sent_announce + c_.sent_scrape), ull(c_.responses()),
        ull(c_.ok_connect), ull(c_.ok_announce), ull(c_.ok_scrape), rate(at_stop_.responses()),
        rate(at_stop_.ok_announce), rate(at_stop_.ok_scrape), ull(at_stop_.responses()),
        ull(loaded_), ull(c_.error_responses), ull(c_.invalid), ull(c_.timeouts), ull(c_.stray),
        ull(c_.send_errors), ull(c_.recv_errors), ull(c_.peers_received), ull(c_.self_in_peers),
        static_cast<double>(latency_.quantile(0.50)) / 1e3,
        static_cast<double>(latency_.quantile(0.99)) / 1e3,
        static_cast<double>(latency_.quantile(0.999)) / 1e3, ull(latency_.count()),
        error_text.c_str());
    std::fflush(stdout);
    if (c_.invalid > 0) {
      std::fprintf(stderr, "udp_load: %llu invalid responses; first: %s\n", ull(c_.invalid),
                   first_invalid_.c_str());
    }
  }

  bool clean() const { return c_.invalid == 0; }

 private:
  static unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

  bool fail(const char* what) {
    std::fprintf(stderr, "udp_load: %s: %s\n", what, std::strerror(errno));
    return false;
  }

  void stop(std::int64_t now) {
    stopping_ = true;
    stop_ns_ = now;
    at_stop_ = c_;
  }

  bool load_finished() const {
    if (inflight_ != 0) return false;
    return std::all_of(clients_.begin(), clients_.end(), [](const Client& c) {
      return c.next_peer >= c.peer_count && c.retry.empty();
    });
  }

  std::uint64_t peer_of(const Client& c, std::uint64_t k) const {
    return c.ip_index + static_cast<std::uint64_t>(o_.source_ips) * (c.lane + sockets_per_ip_ * k);
  }
  std::uint16_t port_of(std::uint64_t peer) const {
    return static_cast<std::uint16_t>(kPortBase + peer / o_.source_ips);
  }

  std::uint32_t take_slot(Client& c, SlotKind kind, std::int64_t now) {
    const std::uint32_t slot = c.free_slots.back();
    c.free_slots.pop_back();
    Slot& s = slots_[slot];
    s.kind = kind;
    s.sent_ns = now;
    ++s.generation;
    ++c.inflight;
    ++inflight_;
    return slot;
  }
  void release_slot(std::uint32_t slot) {
    Slot& s = slots_[slot];
    Client& c = clients_[s.client];
    if (s.kind == SlotKind::connect) --connecting_;
    s.kind = SlotKind::free;
    c.free_slots.push_back(slot);
    --c.inflight;
    --inflight_;
  }
  std::uint32_t tid_of(std::uint32_t slot) const {
    return slot | (static_cast<std::uint32_t>(slots_[slot].generation) << kSlotBits);
  }

  // Picks the next request of client `c` into buf; returns its size, or 0 when it has no work.
  std::size_t build(Client& c, std::uint8_t* buf, std::int64_t now) {
    bool scrape = false;
    std::uint64_t peer = 0;
    if (o_.load) {
      if (!c.retry.empty()) {
        peer = c.retry.back();
        c.retry.pop_back();
      } else if (c.next_peer < c.peer_count) {
        peer = peer_of(c, c.next_peer++);
      } else {
        return 0;
      }
    } else {
      scrape = o_.scrape_pct > 0 && rng_.below(100) < o_.scrape_pct;
      if (!scrape) {
        if (c.peer_count == 0) return 0;
        peer = peer_of(c, rng_.below(c.peer_count));
      }
    }
    const std::uint32_t slot = take_slot(c, scrape ? SlotKind::scrape : SlotKind::announce, now);
    put_u64(buf, c.conn_id);
    put_u32(buf + 12, tid_of(slot));
    if (scrape) {
      put_u32(buf + 8, kActionScrape);
      for (std::uint32_t i = 0; i < o_.scrape_hashes; ++i) {
        std::memcpy(buf + 16 + 20 * i, hashes_[zipf_.sample(rng_)].data(), 20);
      }
      slots_[slot].scrape_count = static_cast<std::uint16_t>(o_.scrape_hashes);
      ++c_.sent_scrape;
      return 16 + 20 * static_cast<std::size_t>(o_.scrape_hashes);
    }
    slots_[slot].peer = peer;
    put_u32(buf + 8, kActionAnnounce);
    std::memcpy(buf + 16, hashes_[torrent_of_[peer]].data(), 20);
    // peer_id: client prefix, then the peer index as 12 hex digits (unique for 2^48 peers).
    char id[21];
    std::snprintf(id, sizeof id, "-RB0001-%012llx", ull(peer));
    std::memcpy(buf + 36, id, 20);
    const bool seeder = seeder_[peer] != 0;
    put_u64(buf + 56, seeder ? 1'048'576 : 0);  // downloaded
    put_u64(buf + 64, seeder ? 0 : 1'048'576);  // left
    put_u64(buf + 72, 0);                       // uploaded
    const bool first = started_[peer] == 0;
    started_[peer] = 1;
    put_u32(buf + 80, first ? kEventStarted : kEventNone);
    put_u32(buf + 84, 0);                                                 // ip: the source address
    put_u32(buf + 88, static_cast<std::uint32_t>(peer * 0x9e3779b1ULL));  // key
    put_u32(buf + 92, static_cast<std::uint32_t>(o_.numwant));
    const std::uint16_t port = htons(port_of(peer));
    std::memcpy(buf + 96, &port, 2);
    ++c_.sent_announce;
    return kAnnounceRequestSize;
  }

  // Sends what client `s` may send now: a connect when it has no valid id, else requests up to
  // its share of the window.
  void pump(std::uint32_t s, std::int64_t now) {
    if (stopping_) return;
    Client& c = clients_[s];
    if (c.conn_state == ConnState::ready &&
        now - c.conn_at_ns >= static_cast<std::int64_t>(o_.conn_reuse_s) * 1'000'000'000) {
      c.conn_state = ConnState::none;
    }
    std::size_t count = 0;
    if (c.conn_state != ConnState::ready) {
      if (c.conn_state == ConnState::connecting || c.free_slots.empty()) return;
      if (o_.load && c.next_peer >= c.peer_count && c.retry.empty()) return;
      if (!o_.load && c.peer_count == 0 && o_.scrape_pct == 0) return;
      if (connecting_ >= kConnectsInFlightMax) {
        if (!c.queued) {
          c.queued = true;
          connect_queue_.push_back(s);
        }
        return;
      }
      const std::uint32_t slot = take_slot(c, SlotKind::connect, now);
      std::uint8_t* buf = send_buf_[0].data();
      put_u64(buf, kProtocolId);
      put_u32(buf + 8, kActionConnect);
      put_u32(buf + 12, tid_of(slot));
      send_iov_[0] = iovec{buf, kConnectRequestSize};
      c.conn_state = ConnState::connecting;
      ++connecting_;
      ++c_.sent_connect;
      count = 1;
      flush(c, count);
      return;
    }
    while (!c.free_slots.empty()) {
      const std::size_t size = build(c, send_buf_[count].data(), now);
      if (size == 0) break;
      send_iov_[count] = iovec{send_buf_[count].data(), size};
      if (++count == kSendBatch) {
        flush(c, count);
        count = 0;
      }
    }
    if (count > 0) flush(c, count);
  }

  void flush(Client& c, std::size_t count) {
    std::array<mmsghdr, kSendBatch> msgs{};
    for (std::size_t i = 0; i < count; ++i) {
      msgs[i].msg_hdr.msg_iov = &send_iov_[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    std::size_t done = 0;
    while (done < count) {
      const int n = sendmmsg(c.fd, msgs.data() + done, static_cast<unsigned>(count - done), 0);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    if (done < count) {
      // The unsent requests never reached the tracker: free their slots, count the failure.
      // Their transaction ids sit at bytes 12..16 of each buffer.
      for (std::size_t i = done; i < count; ++i) {
        const auto* p = static_cast<const std::uint8_t*>(send_iov_[i].iov_base);
        const std::uint32_t slot = get_u32(p + 12) & (kSlotsMax - 1);
        if (slots_[slot].kind == SlotKind::connect) c.conn_state = ConnState::none;
        if (o_.load && slots_[slot].kind == SlotKind::announce)
          c.retry.push_back(slots_[slot].peer);
        release_slot(slot);
        ++c_.send_errors;
      }
    }
  }

  void drain(std::uint32_t s, std::int64_t now) {
    Client& c = clients_[s];
    for (;;) {
      for (std::size_t i = 0; i < kRecvBatch; ++i) recv_msgs_[i].msg_hdr.msg_flags = 0;
      const int n = recvmmsg(c.fd, recv_msgs_.data(), kRecvBatch, MSG_DONTWAIT, nullptr);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR) continue;
        // ECONNREFUSED: an ICMP error from a tracker that is gone; counted, not fatal.
        ++c_.recv_errors;
        return;
      }
      for (int i = 0; i < n; ++i) {
        const mmsghdr& m = recv_msgs_[static_cast<std::size_t>(i)];
        handle(c, recv_buf_[static_cast<std::size_t>(i)].data(), m.msg_len,
               (m.msg_hdr.msg_flags & MSG_TRUNC) != 0, now);
      }
      if (static_cast<std::size_t>(n) < kRecvBatch) return;
    }
  }

  void mark_invalid(const char* why, std::uint32_t action, std::size_t size) {
    ++c_.invalid;
    if (first_invalid_.empty()) {
      first_invalid_ = std::string(why) + " (action " + std::to_string(action) + ", " +
                       std::to_string(size) + " bytes)";
    }
  }

  void handle(Client& c, const std::uint8_t* p, std::size_t size, bool truncated,
              std::int64_t now) {
    if (size < 8) {
      mark_invalid("shorter than 8 bytes", 0, size);
      return;
    }
    const std::uint32_t action = get_u32(p);
    const std::uint32_t tid = get_u32(p + 4);
    const std::uint32_t slot_index = tid & (kSlotsMax - 1);
    if (slot_index >= slots_.size() || &clients_[slots_[slot_index].client] != &c ||
        slots_[slot_index].kind == SlotKind::free ||
        slots_[slot_index].generation != (tid >> kSlotBits)) {
      ++c_.stray;  // late (already timed out) or never sent
      return;
    }
    Slot& slot = slots_[slot_index];
    const SlotKind kind = slot.kind;
    latency_.record(now - slot.sent_ns);
    if (truncated) {
      mark_invalid("truncated datagram", action, size);
    } else if (action == kActionError) {
      ++c_.error_responses;
      if (first_error_.empty()) {
        first_error_.assign(reinterpret_cast<const char*>(p + kErrorHeader), size - kErrorHeader);
      }
      if (kind == SlotKind::connect) c.conn_state = ConnState::none;
    } else if (kind == SlotKind::connect) {
      if (action != kActionConnect || size != kConnectResponseSize) {
        mark_invalid("bad connect response", action, size);
        c.conn_state = ConnState::none;
      } else {
        c.conn_id = get_u64(p + 8);
        // BEP 15: the id is valid for a minute from when it was issued; count from our send.
        c.conn_at_ns = slot.sent_ns;
        c.conn_state = ConnState::ready;
        ++c_.ok_connect;
      }
    } else if (kind == SlotKind::announce) {
      check_announce(c, slot, p, size, action);
    } else {
      check_scrape(slot, p, size, action);
    }
    release_slot(slot_index);
  }

  void check_announce(Client& c, const Slot& slot, const std::uint8_t* p, std::size_t size,
                      std::uint32_t action) {
    if (action != kActionAnnounce)
      return mark_invalid("announce answered with other action", action, size);
    if (size < kAnnounceResponseHeader || (size - kAnnounceResponseHeader) % kIpv4PeerSize != 0) {
      return mark_invalid("announce response size", action, size);
    }
    const std::uint32_t interval = get_u32(p + 8);
    const std::uint64_t leechers = get_u32(p + 12);
    const std::uint64_t seeders = get_u32(p + 16);
    const std::size_t peers = (size - kAnnounceResponseHeader) / kIpv4PeerSize;
    if (interval == 0) return mark_invalid("announce interval 0", action, size);
    if (seeders + leechers > o_.max_swarm) {
      return mark_invalid("seeders+leechers above the simulated swarm", action, size);
    }
    // The announcer was just added, so its own category counts at least itself.
    if ((seeder_[slot.peer] != 0 ? seeders : leechers) == 0) {
      return mark_invalid("announcer not counted in seeders/leechers", action, size);
    }
    if (peers > seeders + leechers) return mark_invalid("more peers than swarm", action, size);
    if (o_.numwant >= 0 && peers > static_cast<std::size_t>(o_.numwant)) {
      return mark_invalid("more peers than numwant", action, size);
    }
    const std::uint16_t own_port = port_of(slot.peer);
    for (std::size_t i = 0; i < peers; ++i) {
      const std::uint8_t* e = p + kAnnounceResponseHeader + i * kIpv4PeerSize;
      if (get_u32(e) == c.source_ip && ((e[4] << 8) | e[5]) == own_port) ++c_.self_in_peers;
    }
    c_.peers_received += peers;
    ++c_.ok_announce;
    if (o_.load && attempts_[slot.peer] != kLoadedMark) {
      attempts_[slot.peer] = kLoadedMark;
      ++loaded_;
    }
  }

  void check_scrape(const Slot& slot, const std::uint8_t* p, std::size_t size,
                    std::uint32_t action) {
    if (action != kActionScrape)
      return mark_invalid("scrape answered with other action", action, size);
    if (size != kScrapeResponseHeader + kScrapeEntrySize * slot.scrape_count) {
      return mark_invalid("scrape response size", action, size);
    }
    for (std::size_t i = 0; i < slot.scrape_count; ++i) {
      const std::uint8_t* e = p + kScrapeResponseHeader + i * kScrapeEntrySize;
      const std::uint64_t seeders = get_u32(e);
      const std::uint64_t leechers = get_u32(e + 8);
      if (seeders + leechers > o_.max_swarm) {
        return mark_invalid("scraped seeders+leechers above the simulated swarm", action, size);
      }
    }
    ++c_.ok_scrape;
  }

  void expire(std::int64_t now, std::int64_t timeout_ns) {
    for (std::uint32_t i = 0; i < slots_.size(); ++i) {
      Slot& slot = slots_[i];
      if (slot.kind == SlotKind::free || now - slot.sent_ns < timeout_ns) continue;
      Client& c = clients_[slot.client];
      ++c_.timeouts;
      if (slot.kind == SlotKind::connect) c.conn_state = ConnState::none;
      if (o_.load && slot.kind == SlotKind::announce && attempts_[slot.peer] != kLoadedMark &&
          attempts_[slot.peer] < o_.retries) {
        ++attempts_[slot.peer];
        c.retry.push_back(slot.peer);
      }
      release_slot(i);
      pump(slot.client, now);
    }
  }

  static constexpr std::uint8_t kLoadedMark = 0xff;

  const Options& o_;
  Rng rng_;
  ZipfSampler zipf_;
  std::vector<InfoHash> hashes_;
  std::vector<std::uint32_t> torrent_of_;
  std::vector<std::uint8_t> seeder_;
  std::vector<std::uint8_t> started_;
  std::vector<std::uint8_t> attempts_;  // --load: resends so far, kLoadedMark once answered
  std::vector<Client> clients_;
  std::vector<Slot> slots_;
  std::uint32_t sockets_per_ip_ = 1;
  std::uint32_t per_socket_window_ = 1;
  std::uint64_t inflight_ = 0;
  std::uint32_t connecting_ = 0;
  std::deque<std::uint32_t> connect_queue_;
  std::uint64_t loaded_ = 0;
  int epoll_fd_ = -1;
  bool stopping_ = false;
  std::int64_t start_ns_ = 0, stop_ns_ = 0, end_ns_ = 0;
  Counters c_;
  Counters at_stop_;
  LatencyHistogram latency_;
  std::string first_error_;
  std::string first_invalid_;
  std::array<std::array<std::uint8_t, kDatagramMax>, kRecvBatch> recv_buf_{};
  std::array<iovec, kRecvBatch> recv_iov_{};
  std::array<mmsghdr, kRecvBatch> recv_msgs_{};
  std::array<std::array<std::uint8_t, kScrapeRequestMax>, kSendBatch> send_buf_{};
  std::array<iovec, kSendBatch> send_iov_{};
};

}  // namespace
}  // namespace ringtracker::bench

int main(int argc, char** argv) {
  using namespace ringtracker::bench;
  Options o;
  if (const int rc = parse_options(argc, argv, o); rc != 0) return rc == 1 ? 0 : rc;
  if (o.print_hashes) {
    for (std::uint32_t t = 0; t < o.torrents; ++t) {
      const InfoHash h = o.hash_list.empty() ? info_hash_of(t, o.hash_seed) : o.hash_list[t];
      char hex[41];
      for (std::size_t i = 0; i < h.size(); ++i) std::snprintf(hex + 2 * i, 3, "%02x", h[i]);
      std::puts(hex);
    }
    return 0;
  }
  auto gen = std::make_unique<LoadGenerator>(o);
  if (!gen->setup()) return 1;
  gen->run();
  gen->report();
  return gen->clean() ? 0 : 3;
}
