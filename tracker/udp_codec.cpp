#include "tracker/udp_codec.hpp"

#include <algorithm>
#include <cstring>

namespace ringtracker::tracker::udp {

namespace {

// BEP 15: all integers are big-endian ("network byte order").
template <class T>
T load_be(const std::uint8_t* p) {
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>((v << 8) | p[i]);
  return v;
}

template <class T>
std::uint8_t* store_be(std::uint8_t* p, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i)
    p[i] = static_cast<std::uint8_t>(v >> (8 * (sizeof(T) - 1 - i)));
  return p + sizeof(T);
}

std::uint8_t* store_bytes(std::uint8_t* p, const std::uint8_t* src, std::size_t n) {
  std::memcpy(p, src, n);
  return p + n;
}

// BEP 15 announce request offsets. Note the order downloaded, left, uploaded (HTTP's is
// uploaded, downloaded, left).
constexpr std::size_t kOffInfoHash = 16, kOffPeerId = 36, kOffDownloaded = 56, kOffLeft = 64,
                      kOffUploaded = 72, kOffEvent = 80, kOffIp = 84, kOffKey = 88,
                      kOffNumwant = 92, kOffPort = 96;

// BEP 41 option types.
constexpr std::uint8_t kOptEnd = 0x0, kOptNop = 0x1, kOptUrlData = 0x2;
// BEP 41: one option carries at most 255 bytes (its length is one byte).
constexpr std::size_t kOptionDataMax = 255;

constexpr std::size_t kHeader = 8;  // action + transaction id, every reply
constexpr std::size_t kScrapeEntrySize = 12;
constexpr std::size_t kPeerV4Size = 6, kPeerV6Size = 18;

Unexpected<ParseError> fail(ParseErrorKind kind, std::optional<std::uint32_t> tid = std::nullopt,
                            std::optional<std::uint64_t> cid = std::nullopt) {
  return Unexpected(ParseError{kind, tid, cid});
}

// Parses the BEP 41 option list into url_data. False only when URLData exceeds kUrlDataMax.
bool parse_options(std::span<const std::uint8_t> opts, std::string& url_data) {
  std::size_t i = 0;
  while (i < opts.size()) {
    const std::uint8_t type = opts[i];
    if (type == kOptEnd) return true;
    if (type == kOptNop) {
      ++i;
      continue;
    }
    // Every other type has a length byte. BEP 41 says nothing about truncation; we end
    // parsing and keep the complete options, since rejecting would lose an otherwise valid
    // announce from a client that padded or mis-sized its tail.
    if (i + 1 >= opts.size()) return true;
    const std::size_t len = opts[i + 1];
    if (i + 2 + len > opts.size()) return true;
    if (type == kOptUrlData) {
      if (url_data.size() + len > kUrlDataMax) return false;
      url_data.append(reinterpret_cast<const char*>(opts.data() + i + 2), len);
    }
    i += 2 + len;  // unknown types are skipped by their length (BEP 41)
  }
  return true;
}

void require_out(std::span<std::uint8_t> out) { RT_ASSERT(out.size() >= kDatagramMax); }
void require_request_out(std::span<std::uint8_t> out) { RT_ASSERT(out.size() >= kRequestBytesMax); }

}  // namespace

std::string_view to_string(ParseErrorKind kind) {
  switch (kind) {
    case ParseErrorKind::too_short: return "udp_too_short";
    case ParseErrorKind::bad_protocol_id: return "udp_bad_protocol_id";
    case ParseErrorKind::unknown_action: return "udp_unknown_action";
    case ParseErrorKind::bad_scrape_length: return "udp_bad_scrape_length";
    case ParseErrorKind::too_many_hashes: return "udp_too_many_hashes";
    case ParseErrorKind::bad_option: return "udp_bad_option";
    case ParseErrorKind::bad_event: return "udp_bad_event";
  }
  return "udp_unknown_error";
}

std::optional<InfoHash> peek_announce_info_hash(std::span<const std::uint8_t> d) {
  if (d.size() < kAnnounceMinSize ||
      load_be<std::uint32_t>(d.data() + 8) != static_cast<std::uint32_t>(Action::announce))
    return std::nullopt;
  InfoHash h;
  std::memcpy(h.data(), d.data() + kOffInfoHash, h.size());
  return h;
}

Expected<Request, ParseError> parse_request(std::span<const std::uint8_t> d) {
  // Every request starts with a 16-byte header: 64-bit id, action, transaction id.
  if (d.size() < kConnectSize) return fail(ParseErrorKind::too_short);
  const auto id = load_be<std::uint64_t>(d.data());
  const auto action = load_be<std::uint32_t>(d.data() + 8);
  const auto tid = load_be<std::uint32_t>(d.data() + 12);

  if (action == static_cast<std::uint32_t>(Action::connect)) {
    if (id != kProtocolId) return fail(ParseErrorKind::bad_protocol_id, tid);
    return ConnectRequest{tid};  // BEP 15: bytes past 16 carry nothing; ignored
  }

  if (action == static_cast<std::uint32_t>(Action::announce)) {
    if (d.size() < kAnnounceMinSize) return fail(ParseErrorKind::too_short, tid, id);
    AnnouncePacket p;
    p.connection_id = id;
    p.transaction_id = tid;
    auto& r = p.request;
    std::memcpy(r.info_hash.data(), d.data() + kOffInfoHash, r.info_hash.size());
    std::memcpy(r.peer_id.data(), d.data() + kOffPeerId, r.peer_id.size());
    r.downloaded = load_be<std::uint64_t>(d.data() + kOffDownloaded);
    r.left = load_be<std::uint64_t>(d.data() + kOffLeft);
    r.uploaded = load_be<std::uint64_t>(d.data() + kOffUploaded);
    const auto event = load_be<std::uint32_t>(d.data() + kOffEvent);
    if (event > static_cast<std::uint32_t>(AnnounceEvent::stopped))
      return fail(ParseErrorKind::bad_event, tid, id);
    r.event = static_cast<AnnounceEvent>(event);
    p.ip_field = load_be<std::uint32_t>(d.data() + kOffIp);
    r.key = load_be<std::uint32_t>(d.data() + kOffKey);
    // BEP 15: num_want is signed, -1 means "default"; the service interprets it.
    r.numwant = static_cast<std::int32_t>(load_be<std::uint32_t>(d.data() + kOffNumwant));
    r.peer.port = load_be<std::uint16_t>(d.data() + kOffPort);
    if (!parse_options(d.subspan(kAnnounceMinSize), p.url_data))
      return fail(ParseErrorKind::bad_option, tid, id);
    return p;
  }

  if (action == static_cast<std::uint32_t>(Action::scrape)) {
    if (d.size() < kScrapeMinSize) return fail(ParseErrorKind::too_short, tid, id);
    const std::size_t body = d.size() - kConnectSize;
    if (body % 20 != 0) return fail(ParseErrorKind::bad_scrape_length, tid, id);
    const std::size_t n = body / 20;
    if (n > kScrapeHashesMax) return fail(ParseErrorKind::too_many_hashes, tid, id);
    ScrapePacket p;
    p.connection_id = id;
    p.transaction_id = tid;
    p.info_hashes.resize(n);
    for (std::size_t i = 0; i < n; ++i)
      std::memcpy(p.info_hashes[i].data(), d.data() + kConnectSize + 20 * i, 20);
    return p;
  }

  return fail(ParseErrorKind::unknown_action, tid, id);
}

std::size_t write_connect(std::uint32_t transaction_id, std::uint64_t connection_id,
                          std::span<std::uint8_t> out) {
  require_out(out);
  auto* p = out.data();
  p = store_be(p, static_cast<std::uint32_t>(Action::connect));
  p = store_be(p, transaction_id);
  p = store_be(p, connection_id);
  return static_cast<std::size_t>(p - out.data());
}

std::size_t write_announce(std::uint32_t transaction_id, const AnnounceResponse& r, bool ipv6,
                           std::span<std::uint8_t> out) {
  require_out(out);
  auto* p = out.data();
  p = store_be(p, static_cast<std::uint32_t>(Action::announce));
  p = store_be(p, transaction_id);
  p = store_be(p, r.interval_s);
  p = store_be(p, r.result.incomplete);  // BEP 15: leechers before seeders
  p = store_be(p, r.result.complete);
  const std::size_t max = ipv6 ? kPeersV6Max : kPeersV4Max;
  std::size_t n = 0;
  for (const auto& peer : r.result.peers) {
    if (n == max) break;
    if (peer.address.ip.is_v6() != ipv6) continue;
    p = store_bytes(p, peer.address.ip.data(), peer.address.ip.size());
    p = store_be(p, peer.address.port);
    ++n;
  }
  // Compact peers (the store's answer, or a ring owner's bytes) are already in BEP 15's form.
  const std::string& compact = ipv6 ? r.result.compact6 : r.result.compact4;
  const std::size_t each = ipv6 ? kCompactPeer6Bytes : kCompactPeer4Bytes;
  const std::size_t more = std::min(compact.size() / each, max - n);
  p = store_bytes(p, reinterpret_cast<const std::uint8_t*>(compact.data()), more * each);
  return static_cast<std::size_t>(p - out.data());
}

std::size_t write_scrape(std::uint32_t transaction_id, const ScrapeResponse& r,
                         std::span<std::uint8_t> out) {
  require_out(out);
  auto* p = out.data();
  p = store_be(p, static_cast<std::uint32_t>(Action::scrape));
  p = store_be(p, transaction_id);
  const std::size_t n = std::min(r.files.size(), kScrapeHashesMax);
  for (std::size_t i = 0; i < n; ++i) {
    // BEP 15: seeders, completed, leechers.
    p = store_be(p, r.files[i].complete);
    p = store_be(p, r.files[i].downloaded);
    p = store_be(p, r.files[i].incomplete);
  }
  return static_cast<std::size_t>(p - out.data());
}

std::size_t write_error(std::uint32_t transaction_id, std::string_view message,
                        std::span<std::uint8_t> out) {
  require_out(out);
  auto* p = out.data();
  p = store_be(p, static_cast<std::uint32_t>(Action::error));
  p = store_be(p, transaction_id);
  std::size_t n = std::min(message.size(), kReplyBytesMax - kHeader);
  // Cut before a UTF-8 continuation byte so a truncated message stays valid text.
  if (n < message.size()) {
    while (n > 0 && (static_cast<std::uint8_t>(message[n]) & 0xC0) == 0x80) --n;
  }
  // BEP 15: the message is the rest of the datagram, without a terminating NUL.
  p = store_bytes(p, reinterpret_cast<const std::uint8_t*>(message.data()), n);
  return static_cast<std::size_t>(p - out.data());
}

std::size_t write_connect_request(std::uint32_t transaction_id, std::span<std::uint8_t> out) {
  require_request_out(out);
  auto* p = out.data();
  p = store_be(p, kProtocolId);
  p = store_be(p, static_cast<std::uint32_t>(Action::connect));
  p = store_be(p, transaction_id);
  return static_cast<std::size_t>(p - out.data());
}

std::size_t write_announce_request(const AnnouncePacket& a, std::span<std::uint8_t> out) {
  require_request_out(out);
  RT_ASSERT(a.url_data.size() <= kUrlDataMax);
  const auto& r = a.request;
  auto* p = out.data();
  p = store_be(p, a.connection_id);
  p = store_be(p, static_cast<std::uint32_t>(Action::announce));
  p = store_be(p, a.transaction_id);
  p = store_bytes(p, r.info_hash.data(), r.info_hash.size());
  p = store_bytes(p, r.peer_id.data(), r.peer_id.size());
  p = store_be(p, r.downloaded);
  p = store_be(p, r.left);
  p = store_be(p, r.uploaded);
  p = store_be(p, static_cast<std::uint32_t>(r.event));
  p = store_be(p, a.ip_field);
  p = store_be(p, r.key);
  p = store_be(p, static_cast<std::uint32_t>(r.numwant));
  p = store_be(p, r.peer.port);
  // BEP 41: URLData split into options of at most 255 bytes, then EndOfOptions.
  for (std::size_t off = 0; off < a.url_data.size(); off += kOptionDataMax) {
    const std::size_t len = std::min(kOptionDataMax, a.url_data.size() - off);
    *p++ = kOptUrlData;
    *p++ = static_cast<std::uint8_t>(len);
    p = store_bytes(p, reinterpret_cast<const std::uint8_t*>(a.url_data.data() + off), len);
  }
  if (!a.url_data.empty()) *p++ = kOptEnd;
  return static_cast<std::size_t>(p - out.data());
}

std::size_t write_scrape_request(const ScrapePacket& s, std::span<std::uint8_t> out) {
  require_request_out(out);
  RT_ASSERT(!s.info_hashes.empty() && s.info_hashes.size() <= kScrapeHashesMax);
  auto* p = out.data();
  p = store_be(p, s.connection_id);
  p = store_be(p, static_cast<std::uint32_t>(Action::scrape));
  p = store_be(p, s.transaction_id);
  for (const auto& h : s.info_hashes) p = store_bytes(p, h.data(), h.size());
  return static_cast<std::size_t>(p - out.data());
}

Expected<Reply, ParseErrorKind> parse_reply(std::span<const std::uint8_t> d, bool ipv6) {
  if (d.size() < kHeader) return Unexpected(ParseErrorKind::too_short);
  const auto action = load_be<std::uint32_t>(d.data());
  const auto tid = load_be<std::uint32_t>(d.data() + 4);
  switch (action) {
    case static_cast<std::uint32_t>(Action::connect): {
      if (d.size() < kConnectSize) return Unexpected(ParseErrorKind::too_short);
      return ConnectReply{tid, load_be<std::uint64_t>(d.data() + 8)};
    }
    case static_cast<std::uint32_t>(Action::announce): {
      if (d.size() < kAnnounceReplyHeader) return Unexpected(ParseErrorKind::too_short);
      const std::size_t stride = ipv6 ? kPeerV6Size : kPeerV4Size;
      const std::size_t body = d.size() - kAnnounceReplyHeader;
      if (body % stride != 0) return Unexpected(ParseErrorKind::bad_scrape_length);
      AnnounceReply a;
      a.transaction_id = tid;
      a.interval_s = load_be<std::uint32_t>(d.data() + 8);
      a.leechers = load_be<std::uint32_t>(d.data() + 12);
      a.seeders = load_be<std::uint32_t>(d.data() + 16);
      a.peers.reserve(body / stride);
      for (std::size_t off = kAnnounceReplyHeader; off < d.size(); off += stride) {
        SocketAddress s;
        s.ip = ipv6 ? IpAddress::v6(d.data() + off) : IpAddress::v4(d.data() + off);
        s.port = load_be<std::uint16_t>(d.data() + off + stride - 2);
        a.peers.push_back(s);
      }
      return a;
    }
    case static_cast<std::uint32_t>(Action::scrape): {
      const std::size_t body = d.size() - kHeader;
      if (body % kScrapeEntrySize != 0) return Unexpected(ParseErrorKind::bad_scrape_length);
      ScrapeReply s;
      s.transaction_id = tid;
      s.files.resize(body / kScrapeEntrySize);
      for (std::size_t i = 0; i < s.files.size(); ++i) {
        const auto* q = d.data() + kHeader + kScrapeEntrySize * i;
        s.files[i].complete = load_be<std::uint32_t>(q);
        s.files[i].downloaded = load_be<std::uint32_t>(q + 4);
        s.files[i].incomplete = load_be<std::uint32_t>(q + 8);
      }
      return s;
    }
    case static_cast<std::uint32_t>(Action::error):
      return ErrorReply{tid, std::string(reinterpret_cast<const char*>(d.data() + kHeader),
                                         d.size() - kHeader)};
    default:
      return Unexpected(ParseErrorKind::unknown_action);
  }
}

}  // namespace ringtracker::tracker::udp
