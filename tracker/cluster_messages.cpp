#include "tracker/cluster_messages.hpp"

#include <algorithm>
#include <limits>

#include "bencode/bencode.hpp"

namespace ringtracker::tracker {

namespace {

using bencode::Node;
using Err = ClusterMessageError;

constexpr std::uint8_t kFlagV6 = 1;
constexpr std::uint8_t kFlagPeerId = 2;
constexpr std::uint8_t kFlagSeeder = 4;

bool is_zero(const PeerId& id) {
  return std::all_of(id.begin(), id.end(), [](std::uint8_t b) { return b == 0; });
}

void put_u32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void put_address(std::string& out, std::uint8_t flags, const SocketAddress& a) {
  if (a.ip.is_v6()) flags |= kFlagV6;
  out.push_back(static_cast<char>(flags));
  out.append(reinterpret_cast<const char*>(a.ip.data()), a.ip.size());
  out.push_back(static_cast<char>(a.port >> 8));
  out.push_back(static_cast<char>(a.port));
}

/// A cursor over a packed string; every read checks the remaining length.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  bool empty() const { return pos_ == s_.size(); }
  bool u8(std::uint8_t& v) {
    if (s_.size() - pos_ < 1) return false;
    v = static_cast<std::uint8_t>(s_[pos_++]);
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (s_.size() - pos_ < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<std::uint8_t>(s_[pos_++]);
    return true;
  }
  bool bytes(std::uint8_t* dst, std::size_t n) {
    if (s_.size() - pos_ < n) return false;
    std::copy_n(s_.data() + pos_, n, reinterpret_cast<char*>(dst));
    pos_ += n;
    return true;
  }
  /// IP + port of the family in `flags`.
  bool address(std::uint8_t flags, SocketAddress& a) {
    std::uint8_t ip[16];
    std::uint8_t port[2];
    const bool v6 = (flags & kFlagV6) != 0;
    if (!bytes(ip, v6 ? 16 : 4) || !bytes(port, 2)) return false;
    a.ip = v6 ? IpAddress::v6(ip) : IpAddress::v4(ip);
    a.port = static_cast<std::uint16_t>((port[0] << 8) | port[1]);
    return true;
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

// ---- decoding helpers ---------------------------------------------------------------------

template <class T>
Expected<T, Err> integer_field(const Node& d, std::string_view key, std::int64_t lo,
                               std::int64_t hi) {
  auto n = d.find(key);
  if (!n) return Unexpected(Err::missing_field);
  auto v = n.integer();
  if (!v || *v < lo || *v > hi) return Unexpected(Err::bad_field);
  return static_cast<T>(*v);
}

Expected<std::uint32_t, Err> u32_field(const Node& d, std::string_view key) {
  return integer_field<std::uint32_t>(d, key, 0, std::numeric_limits<std::uint32_t>::max());
}

Expected<std::string_view, Err> string_field(const Node& d, std::string_view key) {
  auto n = d.find(key);
  if (!n) return Unexpected(Err::missing_field);
  auto v = n.string();
  if (!v) return Unexpected(Err::bad_field);
  return *v;
}

Expected<std::array<std::uint8_t, 20>, Err> hash_field(const Node& d, std::string_view key) {
  auto s = string_field(d, key);
  if (!s) return Unexpected(s.error());
  if (s->size() != 20) return Unexpected(Err::bad_field);
  std::array<std::uint8_t, 20> h{};
  std::copy_n(s->data(), 20, reinterpret_cast<char*>(h.data()));
  return h;
}

/// Optional list: absent means empty. Items must be dictionaries.
Expected<Node, Err> list_field(const Node& d, std::string_view key, std::size_t max) {
  auto n = d.find(key);
  if (!n) return Node();
  if (!n.is_list()) return Unexpected(Err::bad_field);
  if (n.list_size() > max) return Unexpected(Err::too_many);
  return n;
}

Expected<std::string, Err> reason_of(const Node& d) {
  auto f = string_field(d, "f");
  if (!f) return Unexpected(f.error());
  if (f->size() > ClusterLimits::kReasonBytesMax) return Unexpected(Err::bad_field);
  return std::string(*f);
}

/// Status of a reply item: `o` wins over `f`; neither means ok.
Expected<ReplyStatus, Err> status_of(const Node& d) {
  if (d.find("o")) {
    auto o = integer_field<int>(d, "o", 1, 1);
    if (!o) return Unexpected(o.error());
    return ReplyStatus::not_owner;
  }
  if (d.find("f")) return ReplyStatus::failure;
  return ReplyStatus::ok;
}

Expected<ForwardedAnnounce, Err> decode_announce(const Node& d) {
  if (!d.is_dict()) return Unexpected(Err::not_dict);
  ForwardedAnnounce a;
  auto& r = a.request;
  auto txid = u32_field(d, "t");
  if (!txid) return Unexpected(txid.error());
  a.txid = *txid;
  auto h = hash_field(d, "h");
  if (!h) return Unexpected(h.error());
  r.info_hash = *h;
  auto p = hash_field(d, "p");
  if (!p) return Unexpected(p.error());
  r.peer_id = *p;
  auto addr = string_field(d, "a");
  if (!addr) return Unexpected(addr.error());
  Reader rd(*addr);
  std::uint8_t flags = 0;
  if (!rd.u8(flags) || (flags & ~kFlagV6) != 0 || !rd.address(flags, r.peer) || !rd.empty())
    return Unexpected(Err::bad_field);
  constexpr auto kU64Max = std::numeric_limits<std::int64_t>::max();
  auto up = integer_field<std::uint64_t>(d, "u", 0, kU64Max);
  auto down = integer_field<std::uint64_t>(d, "d", 0, kU64Max);
  auto left = integer_field<std::uint64_t>(d, "l", 0, kU64Max);
  auto ev = integer_field<std::uint8_t>(d, "e", 0, 3);
  auto nw = integer_field<std::int32_t>(d, "n", std::numeric_limits<std::int32_t>::min(),
                                        std::numeric_limits<std::int32_t>::max());
  auto key = u32_field(d, "k");
  auto fam = integer_field<std::uint8_t>(d, "f", 1, 3);
  auto want = integer_field<std::uint8_t>(d, "w", 0, 1);
  for (const Err* e :
       {up ? nullptr : &up.error(), down ? nullptr : &down.error(), left ? nullptr : &left.error(),
        ev ? nullptr : &ev.error(), nw ? nullptr : &nw.error(), key ? nullptr : &key.error(),
        fam ? nullptr : &fam.error(), want ? nullptr : &want.error()}) {
    if (e) return Unexpected(*e);
  }
  r.uploaded = *up;
  r.downloaded = *down;
  r.left = *left;
  r.event = static_cast<AnnounceEvent>(*ev);
  r.numwant = *nw;
  r.key = *key;
  r.families = static_cast<PeerFamilies>(*fam);
  a.want_peer_ids = *want == 1;
  return a;
}

Expected<ForwardedScrape, Err> decode_scrape(const Node& d) {
  if (!d.is_dict()) return Unexpected(Err::not_dict);
  ForwardedScrape s;
  auto txid = u32_field(d, "t");
  if (!txid) return Unexpected(txid.error());
  s.txid = *txid;
  auto h = string_field(d, "h");
  if (!h) return Unexpected(h.error());
  if (h->empty() || h->size() % 20 != 0) return Unexpected(Err::bad_field);
  if (h->size() / 20 > ClusterLimits::kScrapeHashesMax) return Unexpected(Err::too_many);
  s.info_hashes.resize(h->size() / 20);
  for (std::size_t i = 0; i < s.info_hashes.size(); ++i)
    std::copy_n(h->data() + 20 * i, 20, reinterpret_cast<char*>(s.info_hashes[i].data()));
  return s;
}

Expected<AnnounceReply, Err> decode_announce_reply(const Node& d) {
  if (!d.is_dict()) return Unexpected(Err::not_dict);
  AnnounceReply a;
  auto txid = u32_field(d, "t");
  if (!txid) return Unexpected(txid.error());
  a.txid = *txid;
  auto st = status_of(d);
  if (!st) return Unexpected(st.error());
  a.status = *st;
  if (a.status == ReplyStatus::not_owner) return a;
  if (a.status == ReplyStatus::failure) {
    auto f = reason_of(d);
    if (!f) return Unexpected(f.error());
    a.failure = std::move(*f);
    return a;
  }
  auto c = u32_field(d, "c");
  auto i = u32_field(d, "i");
  auto dl = u32_field(d, "d");
  auto v = u32_field(d, "v");
  auto m = u32_field(d, "m");
  for (const Err* e :
       {c ? nullptr : &c.error(), i ? nullptr : &i.error(), dl ? nullptr : &dl.error(),
        v ? nullptr : &v.error(), m ? nullptr : &m.error()}) {
    if (e) return Unexpected(*e);
  }
  a.response.result.complete = *c;
  a.response.result.incomplete = *i;
  a.response.result.downloaded = *dl;
  a.response.interval_s = *v;
  a.response.min_interval_s = *m;
  auto p = string_field(d, "p");
  if (!p) return Unexpected(p.error());
  Reader rd(*p);
  while (!rd.empty()) {
    std::uint8_t flags = 0;
    PeerInfo peer;
    if (!rd.u8(flags) || (flags & ~(kFlagV6 | kFlagPeerId)) != 0 ||
        !rd.address(flags, peer.address))
      return Unexpected(Err::bad_field);
    if ((flags & kFlagPeerId) != 0 && !rd.bytes(peer.peer_id.data(), 20))
      return Unexpected(Err::bad_field);
    a.response.result.peers.push_back(peer);
  }
  return a;
}

Expected<ScrapeReply, Err> decode_scrape_reply(const Node& d) {
  if (!d.is_dict()) return Unexpected(Err::not_dict);
  ScrapeReply s;
  auto txid = u32_field(d, "t");
  if (!txid) return Unexpected(txid.error());
  s.txid = *txid;
  auto st = status_of(d);
  if (!st) return Unexpected(st.error());
  s.status = *st;
  if (s.status == ReplyStatus::not_owner) return s;
  if (s.status == ReplyStatus::failure) {
    auto f = reason_of(d);
    if (!f) return Unexpected(f.error());
    s.failure = std::move(*f);
    return s;
  }
  auto r = string_field(d, "r");
  if (!r) return Unexpected(r.error());
  constexpr std::size_t kEntry = 20 + 12;
  if (r->size() % kEntry != 0) return Unexpected(Err::bad_field);
  if (r->size() / kEntry > ClusterLimits::kScrapeHashesMax) return Unexpected(Err::too_many);
  Reader rd(*r);
  while (!rd.empty()) {
    ScrapeEntry e;
    rd.bytes(e.info_hash.data(), 20);
    rd.u32(e.complete);
    rd.u32(e.downloaded);
    rd.u32(e.incomplete);
    s.files.push_back(e);
  }
  return s;
}

Expected<SwarmDelta, Err> decode_swarm(const Node& d) {
  if (!d.is_dict()) return Unexpected(Err::not_dict);
  SwarmDelta s;
  auto h = hash_field(d, "h");
  if (!h) return Unexpected(h.error());
  s.snapshot.info_hash = *h;
  auto dl = u32_field(d, "d");
  if (!dl) return Unexpected(dl.error());
  s.snapshot.downloaded = *dl;
  if (auto p = d.find("p")) {
    auto ps = p.string();
    if (!ps) return Unexpected(Err::bad_field);
    Reader rd(*ps);
    while (!rd.empty()) {
      std::uint8_t flags = 0;
      std::uint32_t ttl_ms = 0;
      SnapshotPeer peer;
      if (!rd.u8(flags) || (flags & ~(kFlagV6 | kFlagPeerId | kFlagSeeder)) != 0 ||
          !rd.u32(ttl_ms) || !rd.address(flags, peer.address))
        return Unexpected(Err::bad_field);
      if ((flags & kFlagPeerId) != 0 && !rd.bytes(peer.peer_id.data(), 20))
        return Unexpected(Err::bad_field);
      peer.seeder = (flags & kFlagSeeder) != 0;
      peer.remaining_ttl = Milliseconds(ttl_ms);
      s.snapshot.peers.push_back(peer);
    }
  }
  if (auto g = d.find("g")) {
    auto gs = g.string();
    if (!gs) return Unexpected(Err::bad_field);
    Reader rd(*gs);
    while (!rd.empty()) {
      std::uint8_t flags = 0;
      SocketAddress a;
      if (!rd.u8(flags) || (flags & ~kFlagV6) != 0 || !rd.address(flags, a))
        return Unexpected(Err::bad_field);
      s.gone.push_back(a);
    }
  }
  return s;
}

template <class T, class F>
Expected<void, Err> decode_list(const Node& root, std::string_view key, std::size_t max,
                                std::vector<T>& out, F&& decode_item) {
  auto l = list_field(root, key, max);
  if (!l) return Unexpected(l.error());
  if (!*l) return {};
  out.reserve(l->list_size());
  for (std::size_t i = 0; i < l->list_size(); ++i) {
    auto item = decode_item(l->list_at(i));
    if (!item) return Unexpected(item.error());
    out.push_back(std::move(*item));
  }
  return {};
}

Expected<TransferPurpose, Err> purpose_of(const Node& d) {
  auto k = integer_field<std::uint8_t>(d, "k", 0, kTransferPurposeCount - 1);
  if (!k) return Unexpected(k.error());
  return static_cast<TransferPurpose>(*k);
}

// ---- encoding ------------------------------------------------------------------------------

void encode_announce(bencode::Writer& w, const ForwardedAnnounce& a) {
  const auto& r = a.request;
  std::string addr;
  put_address(addr, 0, r.peer);
  auto str = [](const auto& arr) {
    return std::string_view(reinterpret_cast<const char*>(arr.data()), arr.size());
  };
  w.begin_dict()
      .kv("a", addr)
      .kv("d", static_cast<std::int64_t>(
                   std::min<std::uint64_t>(r.downloaded, std::numeric_limits<std::int64_t>::max())))
      .kv("e", static_cast<std::int64_t>(r.event))
      .kv("f", static_cast<std::int64_t>(r.families))
      .kv("h", str(r.info_hash))
      .kv("k", r.key)
      .kv("l", static_cast<std::int64_t>(
                   std::min<std::uint64_t>(r.left, std::numeric_limits<std::int64_t>::max())))
      .kv("n", r.numwant)
      .kv("p", str(r.peer_id))
      .kv("t", a.txid)
      .kv("u", static_cast<std::int64_t>(
                   std::min<std::uint64_t>(r.uploaded, std::numeric_limits<std::int64_t>::max())))
      .kv("w", a.want_peer_ids ? 1 : 0)
      .end();
}

void encode_scrape(bencode::Writer& w, const ForwardedScrape& s) {
  RT_ASSERT(!s.info_hashes.empty() && s.info_hashes.size() <= ClusterLimits::kScrapeHashesMax);
  std::string h;
  h.reserve(20 * s.info_hashes.size());
  for (const auto& x : s.info_hashes) h.append(reinterpret_cast<const char*>(x.data()), 20);
  w.begin_dict().kv("h", h).kv("t", s.txid).end();
}

void encode_failure_or_not_owner(bencode::Writer& w, std::uint32_t txid, ReplyStatus st,
                                 std::string_view reason) {
  if (st == ReplyStatus::not_owner) {
    w.begin_dict().kv("o", 1).kv("t", txid).end();
  } else {
    w.begin_dict().kv("f", reason.substr(0, ClusterLimits::kReasonBytesMax)).kv("t", txid).end();
  }
}

void encode_announce_reply(bencode::Writer& w, const AnnounceReply& a) {
  if (a.status != ReplyStatus::ok) {
    encode_failure_or_not_owner(w, a.txid, a.status, a.failure);
    return;
  }
  const auto& res = a.response.result;
  std::string peers;
  peers.reserve(res.peers.size() * 7);
  for (const auto& p : res.peers) {
    const bool with_id = !is_zero(p.peer_id);
    put_address(peers, with_id ? kFlagPeerId : 0, p.address);
    if (with_id) peers.append(reinterpret_cast<const char*>(p.peer_id.data()), 20);
  }
  w.begin_dict()
      .kv("c", res.complete)
      .kv("d", res.downloaded)
      .kv("i", res.incomplete)
      .kv("m", a.response.min_interval_s)
      .kv("p", peers)
      .kv("t", a.txid)
      .kv("v", a.response.interval_s)
      .end();
}

void encode_scrape_reply(bencode::Writer& w, const ScrapeReply& s) {
  if (s.status != ReplyStatus::ok) {
    encode_failure_or_not_owner(w, s.txid, s.status, s.failure);
    return;
  }
  RT_ASSERT(s.files.size() <= ClusterLimits::kScrapeHashesMax);
  std::string r;
  r.reserve(32 * s.files.size());
  for (const auto& e : s.files) {
    r.append(reinterpret_cast<const char*>(e.info_hash.data()), 20);
    put_u32(r, e.complete);
    put_u32(r, e.downloaded);
    put_u32(r, e.incomplete);
  }
  w.begin_dict().kv("r", r).kv("t", s.txid).end();
}

void encode_swarm(bencode::Writer& w, const SwarmDelta& d) {
  std::string peers;
  peers.reserve(d.snapshot.peers.size() * 11);
  for (const auto& p : d.snapshot.peers) {
    const bool with_id = !is_zero(p.peer_id);
    std::uint8_t flags = (with_id ? kFlagPeerId : 0) | (p.seeder ? kFlagSeeder : 0);
    if (p.address.ip.is_v6()) flags |= kFlagV6;
    peers.push_back(static_cast<char>(flags));
    auto ms = std::chrono::duration_cast<Milliseconds>(p.remaining_ttl).count();
    put_u32(peers, static_cast<std::uint32_t>(
                       std::clamp<std::int64_t>(ms, 0, std::numeric_limits<std::uint32_t>::max())));
    peers.append(reinterpret_cast<const char*>(p.address.ip.data()), p.address.ip.size());
    peers.push_back(static_cast<char>(p.address.port >> 8));
    peers.push_back(static_cast<char>(p.address.port));
    if (with_id) peers.append(reinterpret_cast<const char*>(p.peer_id.data()), 20);
  }
  std::string gone;
  for (const auto& a : d.gone) put_address(gone, 0, a);
  w.begin_dict().kv("d", d.snapshot.downloaded);
  if (!gone.empty()) w.kv("g", gone);
  w.kv("h", std::string_view(reinterpret_cast<const char*>(d.snapshot.info_hash.data()), 20));
  if (!peers.empty()) w.kv("p", peers);
  w.end();
}

}  // namespace

std::string_view to_string(ClusterMessageError e) {
  switch (e) {
    case Err::too_large:
      return "too_large";
    case Err::bencode:
      return "bencode";
    case Err::not_dict:
      return "not_dict";
    case Err::unknown_kind:
      return "unknown_kind";
    case Err::missing_field:
      return "missing_field";
    case Err::bad_field:
      return "bad_field";
    case Err::too_many:
      return "too_many";
  }
  return "unknown";
}

Expected<ClusterMessage, ClusterMessageError> decode_cluster_message(std::string_view bytes) {
  if (bytes.size() > ClusterLimits::kPayloadBytesMax) return Unexpected(Err::too_large);
  bencode::DecodeLimits limits;
  limits.bytes_max = ClusterLimits::kPayloadBytesMax;
  limits.depth_max = ClusterLimits::kDepthMax;
  limits.tokens_max = ClusterLimits::kTokensMax;
  auto doc = bencode::Document::decode(bytes, limits);
  if (!doc) return Unexpected(Err::bencode);
  const Node root = doc->root();
  if (!root.is_dict()) return Unexpected(Err::not_dict);
  auto kind = string_field(root, "y");
  if (!kind) return Unexpected(kind.error());

  if (*kind == "fw") {
    ForwardBatch b;
    if (auto r =
            decode_list(root, "a", ClusterLimits::kBatchItemsMax, b.announces, decode_announce);
        !r)
      return Unexpected(r.error());
    if (auto r = decode_list(root, "s", ClusterLimits::kBatchItemsMax, b.scrapes, decode_scrape);
        !r)
      return Unexpected(r.error());
    return ClusterMessage(std::move(b));
  }
  if (*kind == "rp") {
    ReplyBatch b;
    if (auto r = decode_list(root, "a", ClusterLimits::kBatchItemsMax, b.announces,
                             decode_announce_reply);
        !r)
      return Unexpected(r.error());
    if (auto r =
            decode_list(root, "s", ClusterLimits::kBatchItemsMax, b.scrapes, decode_scrape_reply);
        !r)
      return Unexpected(r.error());
    return ClusterMessage(std::move(b));
  }
  if (*kind == "rs") {
    Replicate m;
    auto p = purpose_of(root);
    if (!p) return Unexpected(p.error());
    m.purpose = *p;
    auto t = u32_field(root, "t");
    if (!t) return Unexpected(t.error());
    m.txid = *t;
    if (auto r =
            decode_list(root, "w", ClusterLimits::kSwarmsPerMessageMax, m.swarms, decode_swarm);
        !r)
      return Unexpected(r.error());
    return ClusterMessage(std::move(m));
  }
  if (*kind == "pr") {
    PullRequest m;
    auto t = u32_field(root, "t");
    if (!t) return Unexpected(t.error());
    m.txid = *t;
    auto a = hash_field(root, "a");
    if (!a) return Unexpected(a.error());
    auto b = hash_field(root, "b");
    if (!b) return Unexpected(b.error());
    m.from = dht::NodeId(*a);
    m.to = dht::NodeId(*b);
    return ClusterMessage(m);
  }
  if (*kind == "dn") {
    TransferDone m;
    auto t = u32_field(root, "t");
    if (!t) return Unexpected(t.error());
    m.txid = *t;
    auto p = purpose_of(root);
    if (!p) return Unexpected(p.error());
    m.purpose = *p;
    auto n = u32_field(root, "n");
    if (!n) return Unexpected(n.error());
    m.swarms = *n;
    return ClusterMessage(m);
  }
  if (*kind == "ak") {
    auto t = u32_field(root, "t");
    if (!t) return Unexpected(t.error());
    return ClusterMessage(TransferAck{*t});
  }
  return Unexpected(Err::unknown_kind);
}

void encode_cluster_message(const ClusterMessage& m, std::string& out) {
  bencode::Writer w(out);
  std::visit(
      [&](const auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        w.begin_dict();
        if constexpr (std::is_same_v<T, ForwardBatch>) {
          RT_ASSERT(msg.announces.size() <= ClusterLimits::kBatchItemsMax);
          RT_ASSERT(msg.scrapes.size() <= ClusterLimits::kBatchItemsMax);
          w.string("a").begin_list();
          for (const auto& a : msg.announces) encode_announce(w, a);
          w.end().string("s").begin_list();
          for (const auto& s : msg.scrapes) encode_scrape(w, s);
          w.end().kv("y", "fw");
        } else if constexpr (std::is_same_v<T, ReplyBatch>) {
          RT_ASSERT(msg.announces.size() <= ClusterLimits::kBatchItemsMax);
          RT_ASSERT(msg.scrapes.size() <= ClusterLimits::kBatchItemsMax);
          w.string("a").begin_list();
          for (const auto& a : msg.announces) encode_announce_reply(w, a);
          w.end().string("s").begin_list();
          for (const auto& s : msg.scrapes) encode_scrape_reply(w, s);
          w.end().kv("y", "rp");
        } else if constexpr (std::is_same_v<T, Replicate>) {
          RT_ASSERT(msg.swarms.size() <= ClusterLimits::kSwarmsPerMessageMax);
          w.kv("k", static_cast<std::int64_t>(msg.purpose)).kv("t", msg.txid);
          w.string("w").begin_list();
          for (const auto& s : msg.swarms) encode_swarm(w, s);
          w.end().kv("y", "rs");
        } else if constexpr (std::is_same_v<T, PullRequest>) {
          w.kv("a", msg.from.as_string_view()).kv("b", msg.to.as_string_view()).kv("t", msg.txid);
          w.kv("y", "pr");
        } else if constexpr (std::is_same_v<T, TransferDone>) {
          w.kv("k", static_cast<std::int64_t>(msg.purpose)).kv("n", msg.swarms).kv("t", msg.txid);
          w.kv("y", "dn");
        } else {
          static_assert(std::is_same_v<T, TransferAck>);
          w.kv("t", msg.txid).kv("y", "ak");
        }
        w.end();
      },
      m);
}

// Bounds: integers take at most 22 bytes with their key ("1:x" + "i-9223372036854775808e"),
// strings their length plus a 6-byte prefix and the key.
std::size_t encoded_bytes_max(const ForwardedAnnounce&) { return 2 + 12 * 25 + 2 * 26 + 25; }

std::size_t encoded_bytes_max(const ForwardedScrape& s) {
  return 2 + 25 + 3 + 6 + 20 * s.info_hashes.size();
}

std::size_t encoded_bytes_max(const AnnounceReply& r) {
  if (r.status != ReplyStatus::ok) return 2 + 25 + 3 + 6 + r.failure.size();
  return 2 + 6 * 25 + 3 + 6 + r.response.result.peers.size() * (1 + 16 + 2 + 20);
}

std::size_t encoded_bytes_max(const ScrapeReply& r) {
  if (r.status != ReplyStatus::ok) return 2 + 25 + 3 + 6 + r.failure.size();
  return 2 + 25 + 3 + 6 + 32 * r.files.size();
}

std::size_t encoded_bytes_max(const SwarmDelta& d) {
  return kSwarmEntryOverheadBytes + d.snapshot.peers.size() * kSnapshotPeerBytesMax +
         d.gone.size() * (1 + 16 + 2);
}

}  // namespace ringtracker::tracker
