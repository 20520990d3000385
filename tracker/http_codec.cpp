// HTTP tracker query parsing and reply encoding. Parsing walks the raw query once with a keyword
// switch and decodes values into fixed buffers: no allocation on the success path except the
// scrape hash list.
#include "tracker/http_codec.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <limits>
#include <vector>

#include "bencode/bencode.hpp"

namespace ringtracker::tracker::http {
namespace {

enum class Key : std::uint8_t {
  unknown,
  info_hash,
  peer_id,
  port,
  uploaded,
  downloaded,
  left,
  event,
  numwant,
  compact,
  no_peer_id,
  key,
  ip,
  ipv4,
  ipv6,
  count_,
};

constexpr std::array<std::string_view, static_cast<std::size_t>(Key::count_)> kKeyNames = {
    "?",       "info_hash", "peer_id", "port",       "uploaded", "downloaded", "left", "event",
    "numwant", "compact",   "no_peer_id", "key", "ip",         "ipv4",     "ipv6"};

std::string_view key_name(Key k) { return kKeyNames[static_cast<std::size_t>(k)]; }

Key classify(std::string_view k) {
  // Switch on length first so most keys cost one comparison.
  switch (k.size()) {
    case 2:
      if (k == "ip") return Key::ip;
      break;
    case 3:
      if (k == "key") return Key::key;
      break;
    case 4:
      if (k == "port") return Key::port;
      if (k == "left") return Key::left;
      if (k == "ipv4") return Key::ipv4;
      if (k == "ipv6") return Key::ipv6;
      break;
    case 5:
      if (k == "event") return Key::event;
      break;
    case 7:
      if (k == "peer_id") return Key::peer_id;
      if (k == "numwant") return Key::numwant;
      if (k == "compact") return Key::compact;
      break;
    case 8:
      if (k == "uploaded") return Key::uploaded;
      break;
    case 9:
      if (k == "info_hash") return Key::info_hash;
      break;
    case 10:
      if (k == "downloaded") return Key::downloaded;
      if (k == "no_peer_id") return Key::no_peer_id;
      break;
    default:
      break;
  }
  return Key::unknown;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

enum class DecodeStatus : std::uint8_t { ok, bad_encoding, too_long };

struct Decoded {
  DecodeStatus status = DecodeStatus::ok;
  std::size_t size = 0;
};

// RFC 3986 percent-decoding only: '+' is a literal byte here, not a space (that rule belongs to
// HTML forms), and %00 is an ordinary byte of a binary hash.
Decoded percent_decode(std::string_view in, std::uint8_t* out, std::size_t cap) {
  Decoded d;
  for (std::size_t i = 0; i < in.size(); ++i) {
    std::uint8_t byte = static_cast<std::uint8_t>(in[i]);
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return {DecodeStatus::bad_encoding, d.size};  // "%4" at the end
      int hi = hex_value(in[i + 1]);
      int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return {DecodeStatus::bad_encoding, d.size};
      byte = static_cast<std::uint8_t>(hi * 16 + lo);
      i += 2;
    }
    if (d.size == cap) return {DecodeStatus::too_long, d.size};
    out[d.size++] = byte;
  }
  return d;
}

std::string_view as_text(const std::uint8_t* p, std::size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Saturating: the store clamps to its own cap, so any value above INT32_MAX means "as many as
// allowed" and any negative value means "the default".
std::optional<std::int32_t> parse_numwant(std::string_view s) {
  bool negative = !s.empty() && s.front() == '-';
  if (negative) s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  std::int64_t v = 0;
  constexpr std::int64_t kMax = std::numeric_limits<std::int32_t>::max();
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = std::min<std::int64_t>(v * 10 + (c - '0'), kMax);
  }
  if (negative && v > 0) return -1;
  return static_cast<std::int32_t>(v);
}

// Clients send the key as 8 hex digits (the common case), some as decimal, a few as free text;
// any form is folded to 32 bits so it can still tell the same client apart after an IP change.
std::uint32_t parse_key(std::string_view s) {
  if (s.empty()) return 0;
  if (s.size() <= 8 && std::all_of(s.begin(), s.end(), [](char c) { return hex_value(c) >= 0; })) {
    std::uint32_t v = 0;
    for (char c : s) v = v * 16 + static_cast<std::uint32_t>(hex_value(c));
    return v;
  }
  std::uint32_t dec = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), dec);
  if (ec == std::errc() && p == s.data() + s.size()) return dec;
  std::uint32_t h = 2166136261u;  // FNV-1a 32
  for (char c : s) {
    h ^= static_cast<std::uint8_t>(c);
    h *= 16777619u;
  }
  return h;
}

// BEP 7: ipv4=/ipv6= may carry a bare address or an endpoint.
std::optional<IpAddress> parse_address_text(std::string_view s) {
  if (auto ip = IpAddress::parse(s)) return ip;
  if (auto sa = SocketAddress::parse(s)) return sa->ip;
  return std::nullopt;
}

std::string bad_encoding(Key k) { return std::string(key_name(k)) + " has bad percent-encoding"; }
std::string repeated(Key k) { return std::string(key_name(k)) + " is given more than once"; }

template <class F>
void for_each_pair(std::string_view q, F&& f) {
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string_view k = pair.substr(0, eq);
    std::string_view v = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    if (!f(k, v)) return;
  }
}

void append_string_header(std::string& out, std::size_t len) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, len);
  (void)ec;
  out.append(buf, p);
  out.push_back(':');
}

void append_be16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

bool is_trusted(const IpAddress& a, std::span<const IpNetwork> nets) {
  return std::any_of(nets.begin(), nets.end(), [&](const IpNetwork& n) { return n.contains(a); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Expected<ParsedAnnounce, std::string> parse_announce(std::string_view raw_query) {
  if (raw_query.size() > kQueryBytesMax)
    return Unexpected(std::string("query is too long (max ") + std::to_string(kQueryBytesMax) +
                      " bytes)");
  ParsedAnnounce out;
  AnnounceRequest& req = out.request;
  std::uint32_t seen = 0;
  std::optional<IpAddress> ip, ipv4, ipv6;
  std::optional<std::string> error;

  for_each_pair(raw_query, [&](std::string_view k, std::string_view v) {
    Key key = classify(k);
    if (key == Key::unknown) return true;
    std::uint32_t bit = 1u << static_cast<unsigned>(key);
    // One value per key: a repeat would let a proxy and this tracker read different requests.
    if (seen & bit) {
      error = repeated(key);
      return false;
    }
    seen |= bit;

    if (key == Key::info_hash || key == Key::peer_id) {
      std::uint8_t* dst = key == Key::info_hash ? req.info_hash.data() : req.peer_id.data();
      Decoded d = percent_decode(v, dst, 20);
      if (d.status == DecodeStatus::bad_encoding) {
        error = bad_encoding(key);
      } else if (d.status == DecodeStatus::too_long || d.size != 20) {
        error = std::string(key_name(key)) + " must be 20 bytes";
      }
      return !error;
    }

    std::uint8_t buf[kSmallValueBytesMax];
    Decoded d = percent_decode(v, buf, sizeof buf);
    if (d.status == DecodeStatus::bad_encoding) {
      error = bad_encoding(key);
      return false;
    }
    bool too_long = d.status == DecodeStatus::too_long;
    std::string_view text = as_text(buf, d.size);

    switch (key) {
      case Key::port: {
        auto p = too_long ? std::nullopt : parse_u64(text);
        if (!p || *p < 1 || *p > 65535) error = "port must be an integer in 1..65535";
        else req.peer.port = static_cast<std::uint16_t>(*p);
        break;
      }
      case Key::uploaded:
      case Key::downloaded:
      case Key::left: {
        auto n = too_long ? std::nullopt : parse_u64(text);
        if (!n) {
          error = std::string(key_name(key)) + " must be a non-negative decimal integer";
        } else if (key == Key::uploaded) {
          req.uploaded = *n;
        } else if (key == Key::downloaded) {
          req.downloaded = *n;
        } else {
          req.left = *n;
        }
        break;
      }
      case Key::event:
        if (text == "started") req.event = AnnounceEvent::started;
        else if (text == "completed") req.event = AnnounceEvent::completed;
        else if (text == "stopped") req.event = AnnounceEvent::stopped;
        // BEP 21 clients send "paused"; the store has no such state, so it is a plain update.
        else if (text.empty() || text == "paused") req.event = AnnounceEvent::none;
        else error = "event must be started, completed, stopped, paused or empty";
        break;
      case Key::numwant: {
        auto n = too_long ? std::nullopt : parse_numwant(text);
        if (!n) error = "numwant must be an integer";
        else req.numwant = *n;
        break;
      }
      case Key::compact:
        out.compact = text != "0";
        break;
      case Key::no_peer_id:
        out.no_peer_id = text != "0";
        break;
      case Key::key:
        if (too_long) error = "key is too long";
        else req.key = parse_key(text);
        break;
      case Key::ip:
      case Key::ipv4:
      case Key::ipv6: {
        // A host name or junk is not an error: the value is advisory and trusted only from proxies.
        auto a = too_long ? std::nullopt : parse_address_text(text);
        (key == Key::ip ? ip : key == Key::ipv4 ? ipv4 : ipv6) = a;
        break;
      }
      default:
        break;
    }
    return !error;
  });

  if (error) return Unexpected(std::move(*error));
  for (Key k : {Key::info_hash, Key::peer_id, Key::port, Key::left}) {
    if (!(seen & (1u << static_cast<unsigned>(k))))
      return Unexpected(std::string(key_name(k)) + " is missing");
  }
  out.ip_param = ip ? ip : ipv4 ? ipv4 : ipv6;
  return out;
}

Expected<ScrapeRequest, std::string> parse_scrape(std::string_view raw_query) {
  if (raw_query.size() > kQueryBytesMax)
    return Unexpected(std::string("query is too long (max ") + std::to_string(kQueryBytesMax) +
                      " bytes)");
  ScrapeRequest out;
  std::optional<std::string> error;
  for_each_pair(raw_query, [&](std::string_view k, std::string_view v) {
    if (k != "info_hash") return true;
    if (out.info_hashes.size() == kScrapeHashesMax) {
      error = "too many info_hash values in one scrape (max " +
              std::to_string(kScrapeHashesMax) + ")";
      return false;
    }
    InfoHash h{};
    Decoded d = percent_decode(v, h.data(), h.size());
    if (d.status == DecodeStatus::bad_encoding) error = bad_encoding(Key::info_hash);
    else if (d.status == DecodeStatus::too_long || d.size != 20) error = "info_hash must be 20 bytes";
    else out.info_hashes.push_back(h);
    return !error;
  });
  if (error) return Unexpected(std::move(*error));
  if (out.info_hashes.empty()) return Unexpected(std::string("scrape of all torrents is not supported"));
  return out;
}

std::string encode_announce(const AnnounceResponse& r, bool compact, bool no_peer_id) {
  const AnnounceResult& res = r.result;
  std::string out;
  out.reserve(128 + peer_count(res) * (compact ? 18 : 72));
  bencode::Writer w(out);
  // BEP 3: keys in sorted byte order.
  w.begin_dict()
      .kv("complete", res.complete)
      .kv("downloaded", res.downloaded)
      .kv("incomplete", res.incomplete)
      .kv("interval", r.interval_s)
      .kv("min interval", r.min_interval_s);
  if (compact) {
    std::size_t v4 = 0, v6 = 0;
    for (const PeerInfo& p : res.peers) (p.address.ip.is_v6() ? v6 : v4)++;
    // BEP 23: 4-byte address + 2-byte port, network order. BEP 7: 16 + 2 in peers6. Compact
    // peers (the store's answer, or a ring owner's bytes) are copied as they are.
    w.string("peers");
    append_string_header(out, v4 * kCompactPeer4Bytes + res.compact4.size());
    for (const PeerInfo& p : res.peers) {
      if (p.address.ip.is_v6()) continue;
      out.append(reinterpret_cast<const char*>(p.address.ip.data()), 4);
      append_be16(out, p.address.port);
    }
    out += res.compact4;
    w.string("peers6");
    append_string_header(out, v6 * kCompactPeer6Bytes + res.compact6.size());
    for (const PeerInfo& p : res.peers) {
      if (!p.address.ip.is_v6()) continue;
      out.append(reinterpret_cast<const char*>(p.address.ip.data()), 16);
      append_be16(out, p.address.port);
    }
    out += res.compact6;
  } else {
    w.string("peers").begin_list();
    for_each_peer(res, [&](const SocketAddress& a, const PeerId& id) {
      w.begin_dict().kv("ip", a.ip.to_string());
      // The store keeps no peer ids (memory: 20 bytes would more than triple a peer record);
      // an all-zero id means "unknown" and is left out, as if no_peer_id had been asked for.
      if (!no_peer_id && id != PeerId{}) w.kv("peer id", as_text(id.data(), id.size()));
      w.kv("port", a.port).end();
    });
    w.end();
  }
  w.end();
  return out;
}

std::string encode_scrape(const ScrapeResponse& r) {
  std::vector<const ScrapeEntry*> sorted;
  sorted.reserve(r.files.size());
  for (const ScrapeEntry& e : r.files) sorted.push_back(&e);
  auto by_hash = [](const ScrapeEntry* a, const ScrapeEntry* b) {
    return a->info_hash < b->info_hash;
  };
  auto same_hash = [](const ScrapeEntry* a, const ScrapeEntry* b) {
    return a->info_hash == b->info_hash;
  };
  // Stable, so a repeated hash keeps its first entry; bencoded dict keys must be unique.
  std::stable_sort(sorted.begin(), sorted.end(), by_hash);
  sorted.erase(std::unique(sorted.begin(), sorted.end(), same_hash), sorted.end());

  std::string out;
  out.reserve(16 + sorted.size() * 80);
  bencode::Writer w(out);
  w.begin_dict().string("files").begin_dict();
  for (const ScrapeEntry* e : sorted) {
    w.string(as_text(e->info_hash.data(), e->info_hash.size()))
        .begin_dict()
        .kv("complete", e->complete)
        .kv("downloaded", e->downloaded)
        .kv("incomplete", e->incomplete)
        .end();
  }
  w.end().end();
  return out;
}

std::string encode_failure(std::string_view reason) {
  std::string out;
  out.reserve(24 + reason.size());
  bencode::Writer(out).begin_dict().kv("failure reason", reason).end();
  return out;
}

IpAddress client_address(const IpAddress& socket_ip, std::string_view x_forwarded_for,
                         const std::optional<IpAddress>& ip_param,
                         std::span<const IpNetwork> trusted_proxies) {
  if (!is_trusted(socket_ip, trusted_proxies)) return socket_ip;
  // Each trusted hop appended the address it saw, so only entries to the right of the first
  // untrusted one (from the right) are vouched for; anything further left is client-written.
  std::string_view rest = trim(x_forwarded_for);
  std::optional<IpAddress> leftmost;
  bool broken = false;
  while (!rest.empty()) {
    auto comma = rest.rfind(',');
    std::string_view entry = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
    auto a = parse_address_text(trim(entry));
    if (!a) {
      broken = true;
      break;
    }
    if (!is_trusted(*a, trusted_proxies)) return *a;
    leftmost = a;
  }
  if (leftmost && !broken) return *leftmost;
  if (ip_param) return *ip_param;
  return socket_ip;
}

}  // namespace ringtracker::tracker::http
