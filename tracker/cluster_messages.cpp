#include "tracker/cluster_messages.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <limits>
#include <type_traits>

#include "common/buffer_pool.hpp"

namespace ringtracker::tracker {

namespace {

using Err = ClusterMessageError;
using Status = Expected<void, Err>;

enum class Kind : std::uint8_t {
  forward = 1,
  reply = 2,
  replicate = 3,
  pull_request = 4,
  transfer_done = 5,
  transfer_ack = 6,
  bundle = 7,
};

constexpr std::uint8_t kFlagV6 = 1;
constexpr std::uint8_t kFlagWantPeerIds = 2;  // forwarded announces
constexpr std::uint8_t kFlagLookupOnly = 4;   // forwarded announces
constexpr std::uint8_t kFlagPeerId = 2;       // snapshot peers
constexpr std::uint8_t kFlagSeeder = 4;

constexpr std::size_t kHeaderBytes = 2;
constexpr std::size_t kIpBytesMax = 16;
constexpr std::size_t kAddressBytesMin = 4 + 2;
constexpr std::size_t kAddressBytesMax = kIpBytesMax + 2;
constexpr std::size_t kReplyStatusBytes = 4 + 1;  // txid, status
constexpr std::size_t kAnnounceFixedBytes = 4 + 20 + 20 + 1 + 2 + 3 * 8 + 1 + 1 + 4 + 4;
constexpr std::size_t kAnnounceBytesMin = kAnnounceFixedBytes + 4;
constexpr std::size_t kAnnounceBytesMax = kAnnounceFixedBytes + kIpBytesMax;
constexpr std::size_t kScrapeBytesMin = 4 + 1 + 20;
constexpr std::size_t kAnnounceReplyCountsBytes = 5 * 4;
constexpr std::size_t kAnnounceReplyOkBytes = kReplyStatusBytes + kAnnounceReplyCountsBytes + 3 * 2;
constexpr std::size_t kReplyPeerBytesMin = 1 + kAddressBytesMin + 20;  // peers with an id
constexpr std::size_t kReplyPeerBytesMax = 1 + kAddressBytesMax + 20;
constexpr std::size_t kScrapeEntryBytes = 20 + 3 * 4;
constexpr std::size_t kReasonHeaderBytes = 2;
constexpr std::size_t kSwarmHeadBytes = 20 + 3 * 4;  // info_hash, downloaded, two counts
constexpr std::size_t kSnapshotPeerBytesMin = 1 + 4 + kAddressBytesMin;
constexpr std::size_t kGoneBytesMin = 1 + kAddressBytesMin;
constexpr std::size_t kGoneBytesMax = 1 + kAddressBytesMax;
constexpr std::size_t kPullRequestBytes = kHeaderBytes + 4 + 2 * dht::NodeId::kBytes;
constexpr std::size_t kTransferDoneBytes = kHeaderBytes + 4 + 1 + 4;
constexpr std::size_t kTransferAckBytes = kHeaderBytes + 4;

// The public bounds are what callers chunk by; they must hold for this layout.
static_assert(kEnvelopeBytesMax >= kHeaderBytes + 2 + 2);      // fw, rp: two counts
static_assert(kEnvelopeBytesMax >= kHeaderBytes + 1 + 4 + 2);  // rs: purpose, txid, count
static_assert(kSnapshotPeerBytesMax >= 1 + 4 + kAddressBytesMax + 20);
static_assert(kSwarmEntryOverheadBytes >= kSwarmHeadBytes);
static_assert(ClusterLimits::kScrapeHashesMax <= std::numeric_limits<std::uint8_t>::max());
static_assert(ClusterLimits::kReasonBytesMax <= std::numeric_limits<std::uint16_t>::max());
static_assert(ClusterLimits::kBatchItemsMax <= std::numeric_limits<std::uint16_t>::max());
static_assert(ClusterLimits::kSwarmsPerMessageMax <= std::numeric_limits<std::uint16_t>::max());

bool is_zero(const PeerId& id) {
  static constexpr PeerId kZero{};
  return std::memcmp(id.data(), kZero.data(), kZero.size()) == 0;  // a few word compares
}

// ---- encoding ------------------------------------------------------------------------------

/// Writes fixed-width fields at a pointer into room made by append_fields.
class Put {
 public:
  Put(char* p, char* end) : p_(p), end_(end) {}
  void u8(std::uint8_t v) { *p_++ = static_cast<char>(v); }
  void u16(std::uint16_t v) {
    p_[0] = static_cast<char>(v >> 8);
    p_[1] = static_cast<char>(v);
    p_ += 2;
  }
  void u32(std::uint32_t v) {
    p_[0] = static_cast<char>(v >> 24);
    p_[1] = static_cast<char>(v >> 16);
    p_[2] = static_cast<char>(v >> 8);
    p_[3] = static_cast<char>(v);
    p_ += 4;
  }
  void u64(std::uint64_t v) {
    u32(static_cast<std::uint32_t>(v >> 32));
    u32(static_cast<std::uint32_t>(v));
  }
  template <std::size_t N>
  void bytes(const std::array<std::uint8_t, N>& a) {
    std::memcpy(p_, a.data(), N);
    p_ += N;
  }
  void bytes(std::string_view s) {
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  /// IP + port; the family travels in a flags byte before.
  void ip_port(const SocketAddress& a) {
    if (a.ip.is_v6()) {  // fixed sizes: the copies become moves, not calls
      std::memcpy(p_, a.ip.data(), 16);
      p_ += 16;
    } else {
      std::memcpy(p_, a.ip.data(), 4);
      p_ += 4;
    }
    u16(a.port);
  }
  char* end() const {
    RT_ASSERT(p_ <= end_);  // a room too small for its fields is a bug here, never input's
    return p_;
  }

 private:
  char* p_;
  char* end_;
};

/// Makes room for at most `max` bytes at the end of `out`, lets `write` fill it through a Put,
/// then trims what was not used. One size change for a whole run of fields (a list of peers,
/// of announces) instead of an append, so a call and a capacity check, per field.
template <class F>
void append_fields(std::string& out, std::size_t max, F&& write) {
  const std::size_t at = out.size();
  out.resize(at + max);
  Put put(out.data() + at, out.data() + at + max);
  write(put);
  out.resize(static_cast<std::size_t>(put.end() - out.data()));
}

inline std::uint8_t family_flag(const SocketAddress& a) { return a.ip.is_v6() ? kFlagV6 : 0; }

void put_count(std::string& out, std::size_t n, std::size_t max) {
  RT_ASSERT(n <= max);
  append_fields(out, 2, [&](Put& p) { p.u16(static_cast<std::uint16_t>(n)); });
}

void put_announce(Put& p, const ForwardedAnnounce& a) {
  const auto& r = a.request;
  p.u32(a.txid);
  p.bytes(r.info_hash);
  p.bytes(r.peer_id);
  p.u8(family_flag(r.peer) | (a.want_peer_ids ? kFlagWantPeerIds : 0) |
       (r.lookup_only ? kFlagLookupOnly : 0));
  p.ip_port(r.peer);
  p.u64(r.uploaded);
  p.u64(r.downloaded);
  p.u64(r.left);
  p.u8(static_cast<std::uint8_t>(r.event));
  p.u8(static_cast<std::uint8_t>(r.families));
  p.u32(static_cast<std::uint32_t>(r.numwant));
  p.u32(r.key);
}

/// `room` is the sum of the announces' encoded_bytes_max.
void encode_announces(std::string& out, const std::vector<ForwardedAnnounce>& announces,
                      std::size_t room) {
  put_count(out, announces.size(), ClusterLimits::kBatchItemsMax);
  append_fields(out, room, [&](Put& p) {
    for (const auto& a : announces) put_announce(p, a);
  });
}

void encode_item(std::string& out, const ForwardedAnnounce& a) {
  append_fields(out, encoded_bytes_max(a), [&](Put& p) { put_announce(p, a); });
}

void encode_item(std::string& out, const ForwardedScrape& s) {
  const std::size_t n = s.info_hashes.size();
  RT_ASSERT(n >= 1 && n <= ClusterLimits::kScrapeHashesMax);
  append_fields(out, 4 + 1 + 20 * n, [&](Put& p) {
    p.u32(s.txid);
    p.u8(static_cast<std::uint8_t>(n));
    for (const auto& h : s.info_hashes) p.bytes(h);
  });
}

void encode_scrapes(std::string& out, const std::vector<ForwardedScrape>& scrapes) {
  put_count(out, scrapes.size(), ClusterLimits::kBatchItemsMax);
  for (const auto& s : scrapes) encode_item(out, s);
}

/// Writes txid and status, and the reason of a failure. True when an ok body must follow.
bool put_reply_head(std::string& out, std::uint32_t txid, ReplyStatus st, std::string_view reason) {
  const bool failure = st == ReplyStatus::failure;
  reason = failure ? reason.substr(0, ClusterLimits::kReasonBytesMax) : std::string_view();
  const std::size_t room = kReplyStatusBytes + (failure ? kReasonHeaderBytes + reason.size() : 0);
  append_fields(out, room, [&](Put& p) {
    p.u32(txid);
    p.u8(static_cast<std::uint8_t>(st));
    if (!failure) return;
    p.u16(static_cast<std::uint16_t>(reason.size()));
    p.bytes(reason);
  });
  return st == ReplyStatus::ok;
}

void encode_item(std::string& out, const AnnounceReply& a) {
  if (!put_reply_head(out, a.txid, a.status, a.failure)) return;
  const auto& res = a.response.result;
  constexpr std::size_t kCountMax = std::numeric_limits<std::uint16_t>::max();
  // Peers without an id go compact, by family (the memory store's answer is compact already:
  // a copy at both ends); the rare ones with an id follow with flags. Id-less peers in `peers`
  // are written in one pass that also counts the others.
  std::size_t n6 = res.compact6.size() / kCompactPeer6Bytes;
  std::size_t with_id = 0;
  append_fields(out, encoded_bytes_max(a) - kReplyStatusBytes, [&](Put& p) {
    p.u32(res.complete);
    p.u32(res.incomplete);
    p.u32(res.downloaded);
    p.u32(a.response.interval_s);
    p.u32(a.response.min_interval_s);
    Put n4_at = p;
    p.u16(0);
    std::size_t n4 = res.compact4.size() / kCompactPeer4Bytes;
    for (const auto& peer : res.peers) {
      if (!is_zero(peer.peer_id)) {
        ++with_id;
      } else if (peer.address.ip.is_v6()) {
        ++n6;
      } else {
        p.ip_port(peer.address);
        ++n4;
      }
    }
    RT_ASSERT(n4 <= kCountMax && n6 <= kCountMax && with_id <= kCountMax);
    n4_at.u16(static_cast<std::uint16_t>(n4));
    p.bytes(res.compact4);
    p.u16(static_cast<std::uint16_t>(n6));
    if (n6 != res.compact6.size() / kCompactPeer6Bytes) {
      for (const auto& peer : res.peers) {
        if (peer.address.ip.is_v6() && is_zero(peer.peer_id)) p.ip_port(peer.address);
      }
    }
    p.bytes(res.compact6);
    p.u16(static_cast<std::uint16_t>(with_id));
    if (with_id == 0) return;
    for (const auto& peer : res.peers) {
      if (is_zero(peer.peer_id)) continue;
      p.u8(family_flag(peer.address));
      p.ip_port(peer.address);
      p.bytes(peer.peer_id);
    }
  });
}

void encode_item(std::string& out, const ScrapeReply& s) {
  if (!put_reply_head(out, s.txid, s.status, s.failure)) return;
  RT_ASSERT(s.files.size() <= ClusterLimits::kScrapeHashesMax);
  append_fields(out, 1 + s.files.size() * kScrapeEntryBytes, [&](Put& p) {
    p.u8(static_cast<std::uint8_t>(s.files.size()));
    for (const auto& e : s.files) {
      p.bytes(e.info_hash);
      p.u32(e.complete);
      p.u32(e.downloaded);
      p.u32(e.incomplete);
    }
  });
}

void encode_item(std::string& out, const SwarmDelta& d) {
  const auto& peers = d.snapshot.peers;
  RT_ASSERT(peers.size() <= std::numeric_limits<std::uint32_t>::max());
  RT_ASSERT(d.gone.size() <= std::numeric_limits<std::uint32_t>::max());
  append_fields(out, encoded_bytes_max(d), [&](Put& p) {
    p.bytes(d.snapshot.info_hash);
    p.u32(d.snapshot.downloaded);
    p.u32(static_cast<std::uint32_t>(peers.size()));
    p.u32(static_cast<std::uint32_t>(d.gone.size()));
    for (const auto& peer : peers) {
      const bool with_id = !is_zero(peer.peer_id);
      const auto ms = std::chrono::duration_cast<Milliseconds>(peer.remaining_ttl).count();
      p.u8(family_flag(peer.address) | (with_id ? kFlagPeerId : 0) |
           (peer.seeder ? kFlagSeeder : 0));
      p.u32(static_cast<std::uint32_t>(
          std::clamp<std::int64_t>(ms, 0, std::numeric_limits<std::uint32_t>::max())));
      p.ip_port(peer.address);
      if (with_id) p.bytes(peer.peer_id);
    }
    for (const auto& a : d.gone) {
      p.u8(family_flag(a));
      p.ip_port(a);
    }
  });
}

template <class T>
void encode_list(std::string& out, const std::vector<T>& items, std::size_t max) {
  put_count(out, items.size(), max);
  for (const auto& x : items) encode_item(out, x);
}

template <class T>
std::size_t bytes_max(const std::vector<T>& items) {
  std::size_t n = 0;
  for (const auto& x : items) n += encoded_bytes_max(x);
  return n;
}

// ---- decoding ------------------------------------------------------------------------------

/// A cursor over untrusted bytes. Callers check has() once for a fixed-width run of fields and
/// then read them unchecked: one bounds check per run instead of one per field.
class Reader {
 public:
  explicit Reader(std::string_view s)
      : p_(reinterpret_cast<const std::uint8_t*>(s.data())), end_(p_ + s.size()) {}
  std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }
  bool has(std::size_t n) const { return left() >= n; }
  /// Whether `count` items of at least `item_min` bytes each can fit in what is left: a hostile
  /// count must fail here, before anything is reserved for it.
  bool fits(std::uint64_t count, std::size_t item_min) const {
    return count * item_min <= left();  // count < 2^32, item_min small: no overflow
  }

  std::uint8_t u8() { return *p_++; }
  std::uint16_t u16() {
    const auto v = static_cast<std::uint16_t>((p_[0] << 8) | p_[1]);
    p_ += 2;
    return v;
  }
  std::uint32_t u32() {
    const std::uint32_t v = (std::uint32_t{p_[0]} << 24) | (std::uint32_t{p_[1]} << 16) |
                            (std::uint32_t{p_[2]} << 8) | std::uint32_t{p_[3]};
    p_ += 4;
    return v;
  }
  std::uint64_t u64() {
    const std::uint64_t hi = u32();
    return (hi << 32) | u32();
  }
  template <std::size_t N>
  void bytes(std::array<std::uint8_t, N>& a) {
    std::memcpy(a.data(), p_, N);
    p_ += N;
  }
  std::string_view string(std::size_t n) {
    std::string_view s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  /// IP of the family in `flags` and port.
  void ip_port(std::uint8_t flags, SocketAddress& a) {
    if ((flags & kFlagV6) != 0) {
      a.ip = IpAddress::v6(p_);
      p_ += 16;
    } else {
      a.ip = IpAddress::v4(p_);
      p_ += 4;
    }
    a.port = u16();
  }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

constexpr std::size_t ip_bytes(std::uint8_t flags) { return (flags & kFlagV6) != 0 ? 16 : 4; }

Status fail(Err e) { return Unexpected(e); }

Expected<TransferPurpose, Err> purpose_of(std::uint8_t v) {
  if (v >= kTransferPurposeCount) return Unexpected(Err::bad_field);
  return static_cast<TransferPurpose>(v);
}

Status decode_item(Reader& r, ForwardedAnnounce& a) {
  if (!r.has(4 + 20 + 20 + 1)) return fail(Err::truncated);
  auto& q = a.request;
  a.txid = r.u32();
  r.bytes(q.info_hash);
  r.bytes(q.peer_id);
  const std::uint8_t flags = r.u8();
  if ((flags & ~(kFlagV6 | kFlagWantPeerIds | kFlagLookupOnly)) != 0) return fail(Err::bad_field);
  if (!r.has(ip_bytes(flags) + kAnnounceFixedBytes - (4 + 20 + 20 + 1)))
    return fail(Err::truncated);
  a.want_peer_ids = (flags & kFlagWantPeerIds) != 0;
  q.lookup_only = (flags & kFlagLookupOnly) != 0;
  r.ip_port(flags, q.peer);
  q.uploaded = r.u64();
  q.downloaded = r.u64();
  q.left = r.u64();
  const std::uint8_t event = r.u8();
  const std::uint8_t families = r.u8();
  if (event > 3 || families < 1 || families > 3) return fail(Err::bad_field);
  q.event = static_cast<AnnounceEvent>(event);
  q.families = static_cast<PeerFamilies>(families);
  q.numwant = static_cast<std::int32_t>(r.u32());
  q.key = r.u32();
  return {};
}

Status decode_item(Reader& r, ForwardedScrape& s) {
  if (!r.has(4 + 1)) return fail(Err::truncated);
  s.txid = r.u32();
  const std::size_t n = r.u8();
  if (n == 0) return fail(Err::bad_field);
  if (n > ClusterLimits::kScrapeHashesMax) return fail(Err::too_many);
  if (!r.has(20 * n)) return fail(Err::truncated);
  s.info_hashes.resize(n);
  for (auto& h : s.info_hashes) r.bytes(h);
  return {};
}

/// Reads txid and status, and the reason of a failure. `ok` tells whether an ok body follows.
Status decode_reply_head(Reader& r, std::uint32_t& txid, ReplyStatus& st, std::string& reason,
                         bool& ok) {
  if (!r.has(kReplyStatusBytes)) return fail(Err::truncated);
  txid = r.u32();
  const std::uint8_t s = r.u8();
  if (s > static_cast<std::uint8_t>(ReplyStatus::not_owner)) return fail(Err::bad_field);
  st = static_cast<ReplyStatus>(s);
  ok = st == ReplyStatus::ok;
  if (st != ReplyStatus::failure) return {};
  if (!r.has(kReasonHeaderBytes)) return fail(Err::truncated);
  const std::size_t n = r.u16();
  if (n > ClusterLimits::kReasonBytesMax) return fail(Err::bad_field);
  if (!r.has(n)) return fail(Err::truncated);
  reason.assign(r.string(n));
  return {};
}

/// A u16 count of compact peers of `each` bytes, copied as they are into `out`.
Status decode_compact(Reader& r, std::size_t each, std::string& out) {
  if (!r.has(2)) return fail(Err::truncated);
  const std::size_t n = r.u16();
  if (!r.has(n * each)) return fail(Err::truncated);
  out.assign(r.string(n * each));
  return {};
}

Status decode_item(Reader& r, AnnounceReply& a) {
  bool ok = false;
  if (auto s = decode_reply_head(r, a.txid, a.status, a.failure, ok); !s || !ok) return s;
  if (!r.has(kAnnounceReplyCountsBytes)) return fail(Err::truncated);
  auto& res = a.response.result;
  res.complete = r.u32();
  res.incomplete = r.u32();
  res.downloaded = r.u32();
  a.response.interval_s = r.u32();
  a.response.min_interval_s = r.u32();
  if (auto s = decode_compact(r, kCompactPeer4Bytes, res.compact4); !s) return s;
  if (auto s = decode_compact(r, kCompactPeer6Bytes, res.compact6); !s) return s;
  if (!r.has(2)) return fail(Err::truncated);
  const std::size_t n = r.u16();
  if (!r.fits(n, kReplyPeerBytesMin)) return fail(Err::truncated);
  res.peers.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (!r.has(1)) return fail(Err::truncated);
    const std::uint8_t flags = r.u8();
    if ((flags & ~kFlagV6) != 0) return fail(Err::bad_field);
    if (!r.has(ip_bytes(flags) + 2 + 20)) return fail(Err::truncated);
    auto& p = res.peers.emplace_back();
    r.ip_port(flags, p.address);
    r.bytes(p.peer_id);
  }
  return {};
}

Status decode_item(Reader& r, ScrapeReply& s) {
  bool ok = false;
  if (auto h = decode_reply_head(r, s.txid, s.status, s.failure, ok); !h || !ok) return h;
  if (!r.has(1)) return fail(Err::truncated);
  const std::size_t n = r.u8();
  if (n > ClusterLimits::kScrapeHashesMax) return fail(Err::too_many);
  if (!r.has(n * kScrapeEntryBytes)) return fail(Err::truncated);
  s.files.resize(n);
  for (auto& e : s.files) {
    r.bytes(e.info_hash);
    e.complete = r.u32();
    e.downloaded = r.u32();
    e.incomplete = r.u32();
  }
  return {};
}

Status decode_item(Reader& r, SwarmDelta& d) {
  if (!r.has(kSwarmHeadBytes)) return fail(Err::truncated);
  auto& snap = d.snapshot;
  r.bytes(snap.info_hash);
  snap.downloaded = r.u32();
  const std::uint32_t peers = r.u32();
  const std::uint32_t gone = r.u32();
  if (std::uint64_t{peers} * kSnapshotPeerBytesMin + std::uint64_t{gone} * kGoneBytesMin > r.left())
    return fail(Err::truncated);
  snap.peers.reserve(peers);
  for (std::uint32_t i = 0; i < peers; ++i) {
    if (!r.has(1 + 4)) return fail(Err::truncated);
    const std::uint8_t flags = r.u8();
    if ((flags & ~(kFlagV6 | kFlagPeerId | kFlagSeeder)) != 0) return fail(Err::bad_field);
    const std::uint32_t ttl_ms = r.u32();
    const bool with_id = (flags & kFlagPeerId) != 0;
    if (!r.has(ip_bytes(flags) + 2 + (with_id ? 20 : 0))) return fail(Err::truncated);
    auto& p = snap.peers.emplace_back();
    r.ip_port(flags, p.address);
    if (with_id) r.bytes(p.peer_id);
    p.seeder = (flags & kFlagSeeder) != 0;
    p.remaining_ttl = Milliseconds(ttl_ms);
  }
  d.gone.reserve(gone);
  for (std::uint32_t i = 0; i < gone; ++i) {
    if (!r.has(1)) return fail(Err::truncated);
    const std::uint8_t flags = r.u8();
    if ((flags & ~kFlagV6) != 0) return fail(Err::bad_field);
    if (!r.has(ip_bytes(flags) + 2)) return fail(Err::truncated);
    r.ip_port(flags, d.gone.emplace_back());
  }
  return {};
}

/// A u16 count, then its items.
template <class T>
Status decode_list(Reader& r, std::size_t max, std::size_t item_min, std::vector<T>& out) {
  if (!r.has(2)) return fail(Err::truncated);
  const std::size_t n = r.u16();
  if (n > max) return fail(Err::too_many);
  if (!r.fits(n, item_min)) return fail(Err::truncated);
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (auto s = decode_item(r, out.emplace_back()); !s) return s;
  }
  return {};
}

Status decode_body(Reader& r, ForwardBatch& b) {
  if (auto s = decode_list(r, ClusterLimits::kBatchItemsMax, kAnnounceBytesMin, b.announces); !s)
    return s;
  return decode_list(r, ClusterLimits::kBatchItemsMax, kScrapeBytesMin, b.scrapes);
}

Status decode_body(Reader& r, ReplyBatch& b) {
  if (auto s = decode_list(r, ClusterLimits::kBatchItemsMax, kReplyStatusBytes, b.announces); !s)
    return s;
  return decode_list(r, ClusterLimits::kBatchItemsMax, kReplyStatusBytes, b.scrapes);
}

Status decode_body(Reader& r, Replicate& m) {
  if (!r.has(1 + 4)) return fail(Err::truncated);
  auto p = purpose_of(r.u8());
  if (!p) return fail(p.error());
  m.purpose = *p;
  m.txid = r.u32();
  return decode_list(r, ClusterLimits::kSwarmsPerMessageMax, kSwarmHeadBytes, m.swarms);
}

Status decode_body(Reader& r, PullRequest& m) {
  if (!r.has(kPullRequestBytes - kHeaderBytes)) return fail(Err::truncated);
  m.txid = r.u32();
  std::array<std::uint8_t, dht::NodeId::kBytes> id;
  r.bytes(id);
  m.from = dht::NodeId(id);
  r.bytes(id);
  m.to = dht::NodeId(id);
  return {};
}

Status decode_body(Reader& r, TransferDone& m) {
  if (!r.has(kTransferDoneBytes - kHeaderBytes)) return fail(Err::truncated);
  m.txid = r.u32();
  auto p = purpose_of(r.u8());
  if (!p) return fail(p.error());
  m.purpose = *p;
  m.swarms = r.u32();
  return {};
}

Status decode_body(Reader& r, TransferAck& m) {
  if (!r.has(kTransferAckBytes - kHeaderBytes)) return fail(Err::truncated);
  m.txid = r.u32();
  return {};
}

/// Decodes straight into the variant's alternative: no copy of the lists afterwards.
template <class T>
Expected<ClusterMessage, Err> decode_as(Reader& r) {
  ClusterMessage m(std::in_place_type<T>);
  if (auto s = decode_body(r, std::get<T>(m)); !s) return Unexpected(s.error());
  if (r.left() != 0) return Unexpected(Err::trailing);
  return m;
}

}  // namespace

std::string_view to_string(ClusterMessageError e) {
  switch (e) {
    case Err::too_large:
      return "too_large";
    case Err::truncated:
      return "truncated";
    case Err::bad_version:
      return "bad_version";
    case Err::unknown_kind:
      return "unknown_kind";
    case Err::bad_field:
      return "bad_field";
    case Err::too_many:
      return "too_many";
    case Err::trailing:
      return "trailing";
  }
  return "unknown";
}

Expected<ClusterMessage, ClusterMessageError> decode_cluster_message(std::string_view bytes) {
  if (bytes.size() > ClusterLimits::kPayloadBytesMax) return Unexpected(Err::too_large);
  Reader r(bytes);
  if (!r.has(1)) return Unexpected(Err::truncated);
  if (r.u8() != kClusterFormatVersion) return Unexpected(Err::bad_version);
  if (!r.has(1)) return Unexpected(Err::truncated);
  switch (static_cast<Kind>(r.u8())) {
    case Kind::forward:
      return decode_as<ForwardBatch>(r);
    case Kind::reply:
      return decode_as<ReplyBatch>(r);
    case Kind::replicate:
      return decode_as<Replicate>(r);
    case Kind::pull_request:
      return decode_as<PullRequest>(r);
    case Kind::transfer_done:
      return decode_as<TransferDone>(r);
    case Kind::transfer_ack:
      return decode_as<TransferAck>(r);
    case Kind::bundle:
      break;  // not one message: split_bundle()
  }
  return Unexpected(Err::unknown_kind);
}

void append_to_bundle(std::string& bundle, std::string_view message) {
  RT_ASSERT(!message.empty() && !is_bundle(message));
  if (bundle.empty()) {
    bundle.push_back(static_cast<char>(kClusterFormatVersion));
    bundle.push_back(static_cast<char>(Kind::bundle));
  }
  RT_ASSERT(bundle.size() + kBundleEntryOverheadBytes + message.size() <= kBundleBytesMax);
  bundle.push_back(static_cast<char>(message.size() >> 8));
  bundle.push_back(static_cast<char>(message.size() & 0xff));
  bundle.append(message);
}

bool is_bundle(std::string_view bytes) {
  return bytes.size() >= kBundleHeadBytes &&
         static_cast<std::uint8_t>(bytes[0]) == kClusterFormatVersion &&
         static_cast<std::uint8_t>(bytes[1]) == static_cast<std::uint8_t>(Kind::bundle);
}

Expected<void, ClusterMessageError> split_bundle(std::string_view bytes,
                                                 std::vector<std::string_view>& out) {
  out.clear();
  if (bytes.size() > kBundleBytesMax) return Unexpected(Err::too_large);
  if (!is_bundle(bytes)) return Unexpected(Err::bad_field);
  Reader r(bytes.substr(kBundleHeadBytes));
  while (r.left() > 0) {
    if (!r.has(kBundleEntryOverheadBytes)) return Unexpected(Err::truncated);
    const std::size_t n = r.u16();
    if (n == 0) return Unexpected(Err::bad_field);
    if (!r.has(n)) return Unexpected(Err::truncated);
    const std::string_view m = r.string(n);
    if (is_bundle(m)) return Unexpected(Err::bad_field);
    out.push_back(m);
  }
  if (out.empty()) return Unexpected(Err::truncated);
  return {};
}

namespace {

template <class T>
void encode_message(const T& msg, std::string& out) {
  // One allocation: the room of the head (which covers the counts too) and the items'
  // bounds, which are what the caller chunked by, so near the real size. No room asked
  // for below goes past this.
  static_assert(kPullRequestBytes >= kEnvelopeBytesMax);
  std::size_t bound = kPullRequestBytes;
  std::size_t announces_bytes = 0;
  if constexpr (std::is_same_v<T, ForwardBatch> || std::is_same_v<T, ReplyBatch>) {
    announces_bytes = bytes_max(msg.announces);
    bound += announces_bytes + bytes_max(msg.scrapes);
  } else if constexpr (std::is_same_v<T, Replicate>) {
    bound += bytes_max(msg.swarms);
  }
  out.reserve(out.size() + bound);
  // The kinds' heads, of which a pull request is the longest.
  append_fields(out, kPullRequestBytes, [&](Put& p) {
    p.u8(kClusterFormatVersion);
    if constexpr (std::is_same_v<T, ForwardBatch>) {
      p.u8(static_cast<std::uint8_t>(Kind::forward));
    } else if constexpr (std::is_same_v<T, ReplyBatch>) {
      p.u8(static_cast<std::uint8_t>(Kind::reply));
    } else if constexpr (std::is_same_v<T, Replicate>) {
      p.u8(static_cast<std::uint8_t>(Kind::replicate));
      p.u8(static_cast<std::uint8_t>(msg.purpose));
      p.u32(msg.txid);
    } else if constexpr (std::is_same_v<T, PullRequest>) {
      p.u8(static_cast<std::uint8_t>(Kind::pull_request));
      p.u32(msg.txid);
      p.bytes(msg.from.bytes());
      p.bytes(msg.to.bytes());
    } else if constexpr (std::is_same_v<T, TransferDone>) {
      p.u8(static_cast<std::uint8_t>(Kind::transfer_done));
      p.u32(msg.txid);
      p.u8(static_cast<std::uint8_t>(msg.purpose));
      p.u32(msg.swarms);
    } else {
      static_assert(std::is_same_v<T, TransferAck>);
      p.u8(static_cast<std::uint8_t>(Kind::transfer_ack));
      p.u32(msg.txid);
    }
  });
  if constexpr (std::is_same_v<T, ForwardBatch>) {
    encode_announces(out, msg.announces, announces_bytes);
    encode_scrapes(out, msg.scrapes);
  } else if constexpr (std::is_same_v<T, ReplyBatch>) {
    encode_list(out, msg.announces, ClusterLimits::kBatchItemsMax);
    encode_list(out, msg.scrapes, ClusterLimits::kBatchItemsMax);
  } else if constexpr (std::is_same_v<T, Replicate>) {
    encode_list(out, msg.swarms, ClusterLimits::kSwarmsPerMessageMax);
  }
}

}  // namespace

void encode_cluster_message(const ClusterMessage& m, std::string& out) {
  std::visit([&](const auto& msg) { encode_message(msg, out); }, m);
}

void encode_cluster_message(const Replicate& m, std::string& out) { encode_message(m, out); }

std::optional<ReplicateReader> ReplicateReader::open(std::string_view bytes) {
  if (bytes.size() > ClusterLimits::kPayloadBytesMax) return std::nullopt;
  Reader r(bytes);
  if (!r.has(kHeaderBytes + 1 + 4 + 2)) return std::nullopt;
  if (r.u8() != kClusterFormatVersion || r.u8() != static_cast<std::uint8_t>(Kind::replicate))
    return std::nullopt;
  auto p = purpose_of(r.u8());
  if (!p) return std::nullopt;
  ReplicateReader out;
  out.purpose_ = *p;
  out.txid_ = r.u32();
  out.left_ = r.u16();
  if (out.left_ > ClusterLimits::kSwarmsPerMessageMax || !r.fits(out.left_, kSwarmHeadBytes))
    return std::nullopt;
  out.rest_ = bytes.substr(bytes.size() - r.left());
  return out;
}

Expected<bool, ClusterMessageError> ReplicateReader::next(SwarmDelta& out) {
  if (left_ == 0) {
    if (!rest_.empty()) return Unexpected(Err::trailing);
    return false;
  }
  out.snapshot.peers.clear();
  out.gone.clear();
  out.snapshot.downloaded = 0;
  Reader r(rest_);
  if (auto s = decode_item(r, out); !s) {
    left_ = 0;
    rest_ = {};
    return Unexpected(s.error());
  }
  rest_ = rest_.substr(rest_.size() - r.left());
  --left_;
  return true;
}

namespace {

/// A default reply whose strings and lists keep their capacity: an item read into it shows
/// nothing of the one before.
void reset_keeping_buffers(AnnounceReply& r) {
  AnnounceResult& res = r.response.result;
  std::string c4 = std::move(res.compact4);
  std::string c6 = std::move(res.compact6);
  std::vector<PeerInfo> peers = std::move(res.peers);
  std::string failure = std::move(r.failure);
  r = AnnounceReply{};
  c4.clear();
  c6.clear();
  peers.clear();
  failure.clear();
  r.response.result.compact4 = std::move(c4);
  r.response.result.compact6 = std::move(c6);
  r.response.result.peers = std::move(peers);
  r.failure = std::move(failure);
}

void reset_keeping_buffers(ScrapeReply& r) {
  std::vector<ScrapeEntry> files = std::move(r.files);
  std::string failure = std::move(r.failure);
  r = ScrapeReply{};
  files.clear();
  failure.clear();
  r.files = std::move(files);
  r.failure = std::move(failure);
}

void reset_keeping_buffers(ForwardedAnnounce& a) { a = ForwardedAnnounce{}; }

void reset_keeping_buffers(ForwardedScrape& s) {
  s.txid = 0;
  s.info_hashes.clear();
}

/// What tells the two batch kinds apart.
template <class Announce>
struct BatchTraits;
template <>
struct BatchTraits<ForwardedAnnounce> {
  static constexpr Kind kKind = Kind::forward;
  static constexpr std::size_t kAnnounceMin = kAnnounceBytesMin;
  static constexpr std::size_t kScrapeMin = kScrapeBytesMin;
};
template <>
struct BatchTraits<AnnounceReply> {
  static constexpr Kind kKind = Kind::reply;
  static constexpr std::size_t kAnnounceMin = kReplyStatusBytes;
  static constexpr std::size_t kScrapeMin = kReplyStatusBytes;
};

}  // namespace

template <class Announce, class Scrape>
std::optional<BatchReader<Announce, Scrape>> BatchReader<Announce, Scrape>::open(
    std::string_view bytes) {
  using Traits = BatchTraits<Announce>;
  if (bytes.size() > ClusterLimits::kPayloadBytesMax) return std::nullopt;
  Reader r(bytes);
  if (!r.has(kHeaderBytes + 2)) return std::nullopt;
  if (r.u8() != kClusterFormatVersion || r.u8() != static_cast<std::uint8_t>(Traits::kKind))
    return std::nullopt;
  BatchReader out;
  out.left_ = r.u16();
  if (out.left_ > ClusterLimits::kBatchItemsMax || !r.fits(out.left_, Traits::kAnnounceMin))
    return std::nullopt;
  out.rest_ = bytes.substr(bytes.size() - r.left());
  return out;
}

template <class Announce, class Scrape>
Expected<bool, ClusterMessageError> BatchReader<Announce, Scrape>::fail(ClusterMessageError e) {
  left_ = 0;
  in_scrapes_ = true;
  rest_ = {};
  return Unexpected(e);
}

template <class Announce, class Scrape>
Expected<bool, ClusterMessageError> BatchReader<Announce, Scrape>::next(Announce& out) {
  if (in_scrapes_) return false;
  Reader r(rest_);
  if (left_ == 0) {
    // The announces are done: the scrapes' count follows.
    if (!r.has(2)) return fail(Err::truncated);
    left_ = r.u16();
    if (left_ > ClusterLimits::kBatchItemsMax) return fail(Err::too_many);
    if (!r.fits(left_, BatchTraits<Announce>::kScrapeMin)) return fail(Err::truncated);
    in_scrapes_ = true;
    rest_ = rest_.substr(rest_.size() - r.left());
    return false;
  }
  return read(out);
}

template <class Announce, class Scrape>
Expected<bool, ClusterMessageError> BatchReader<Announce, Scrape>::next(Scrape& out) {
  RT_ASSERT(in_scrapes_);
  if (left_ == 0) {
    if (!rest_.empty()) return fail(Err::trailing);
    return false;
  }
  return read(out);
}

template <class Announce, class Scrape>
template <class Item>
Expected<bool, ClusterMessageError> BatchReader<Announce, Scrape>::read(Item& out) {
  Reader r(rest_);
  reset_keeping_buffers(out);
  if (auto s = decode_item(r, out); !s) return fail(s.error());
  rest_ = rest_.substr(rest_.size() - r.left());
  --left_;
  return true;
}

template <class Announce, class Scrape>
BatchWriter<Announce, Scrape>::~BatchWriter() {
  BufferPool& pool = BufferPool::local();
  pool.give(std::move(message_));
  pool.give(std::move(scrapes_));
}

// The announces are written after the message's head and their count (patched by finish()),
// so that the usual message, announces only, leaves without being copied again.
template <class Announce, class Scrape>
void BatchWriter<Announce, Scrape>::start() {
  if (!message_.empty()) return;
  // A buffer a finished message left in the pool, and room for one like the last at once,
  // instead of growing through a dozen copies.
  BufferPool::local().refill(message_);
  message_.reserve(last_bytes_);
  append_fields(message_, kHeaderBytes + 2, [&](Put& p) {
    p.u8(kClusterFormatVersion);
    p.u8(static_cast<std::uint8_t>(BatchTraits<Announce>::kKind));
    p.u16(0);
  });
}

template <class Announce, class Scrape>
void BatchWriter<Announce, Scrape>::add(const Announce& a) {
  RT_ASSERT(items() < ClusterLimits::kBatchItemsMax);
  start();
  peak_ = std::max(peak_, message_.size() + encoded_bytes_max(a));
  encode_item(message_, a);
  ++announces_count_;
}

template <class Announce, class Scrape>
void BatchWriter<Announce, Scrape>::add(const Scrape& s) {
  RT_ASSERT(items() < ClusterLimits::kBatchItemsMax);
  BufferPool::local().refill(scrapes_);
  encode_item(scrapes_, s);
  ++scrapes_count_;
}

template <class Announce, class Scrape>
std::size_t BatchWriter<Announce, Scrape>::bytes() const {
  return std::max(message_.size(), kHeaderBytes + 2) + 2 + scrapes_.size();
}

template <class Announce, class Scrape>
void BatchWriter<Announce, Scrape>::finish(std::string& out) {
  start();
  RT_ASSERT(announces_count_ <= ClusterLimits::kBatchItemsMax);
  Put(message_.data() + kHeaderBytes, message_.data() + kHeaderBytes + 2)
      .u16(static_cast<std::uint16_t>(announces_count_));
  put_count(message_, scrapes_count_, ClusterLimits::kBatchItemsMax);
  message_ += scrapes_;
  last_bytes_ = std::max(peak_, message_.size());
  peak_ = 0;
  if (out.empty()) {
    out.swap(message_);
  } else {
    out += message_;
  }
  message_.clear();
  scrapes_.clear();
  announces_count_ = 0;
  scrapes_count_ = 0;
}

template class BatchReader<ForwardedAnnounce, ForwardedScrape>;
template class BatchReader<AnnounceReply, ScrapeReply>;
template class BatchWriter<ForwardedAnnounce, ForwardedScrape>;
template class BatchWriter<AnnounceReply, ScrapeReply>;

std::size_t encoded_bytes_max(const ForwardedAnnounce& a) {
  return kAnnounceFixedBytes + a.request.peer.ip.size();
}

std::size_t encoded_bytes_max(const ForwardedScrape& s) {
  return 4 + 1 + 20 * s.info_hashes.size();
}

namespace {
/// A reply's bytes: its head, then the ok body (`ok_body` bytes) or the capped reason.
std::size_t reply_bytes_max(ReplyStatus st, const std::string& failure, std::size_t ok_body) {
  switch (st) {
    case ReplyStatus::ok:
      return kReplyStatusBytes + ok_body;
    case ReplyStatus::failure:
      return kReplyStatusBytes + kReasonHeaderBytes +
             std::min(failure.size(), ClusterLimits::kReasonBytesMax);
    case ReplyStatus::not_owner:
      break;
  }
  return kReplyStatusBytes;
}
}  // namespace

std::size_t encoded_bytes_max(const AnnounceReply& r) {
  const auto& res = r.response.result;
  return reply_bytes_max(r.status, r.failure,
                         kAnnounceReplyOkBytes - kReplyStatusBytes +
                             res.peers.size() * kReplyPeerBytesMax + res.compact4.size() +
                             res.compact6.size());
}

std::size_t encoded_bytes_max(const ScrapeReply& r) {
  return reply_bytes_max(r.status, r.failure, 1 + kScrapeEntryBytes * r.files.size());
}

std::size_t encoded_bytes_max(const SwarmDelta& d) {
  return kSwarmEntryOverheadBytes + d.snapshot.peers.size() * kSnapshotPeerBytesMax +
         d.gone.size() * kGoneBytesMax;
}

}  // namespace ringtracker::tracker
