// Cluster message codec: seeded round trips of every kind, size bounds, hostile input tables.
#define BOOST_TEST_MODULE cluster_messages
#include "tracker/cluster_messages.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "dht/prng.hpp"

using namespace ringtracker;
using namespace ringtracker::tracker;
namespace bdata = boost::unit_test::data;

namespace ringtracker::tracker {
std::ostream& operator<<(std::ostream& os, ClusterMessageError e) { return os << to_string(e); }
}  // namespace ringtracker::tracker

namespace {

template <std::size_t N>
std::array<std::uint8_t, N> random_bytes(dht::Prng& rng) {
  std::array<std::uint8_t, N> a{};
  for (auto& b : a) b = static_cast<std::uint8_t>(rng.next());
  return a;
}

SocketAddress random_address(dht::Prng& rng) {
  SocketAddress a;
  auto ip = random_bytes<16>(rng);
  if (rng.below(2)) {
    a.ip = IpAddress::v4(ip.data());
  } else {
    ip[0] = 0x20;  // never v4-mapped
    a.ip = IpAddress::v6(ip.data());
  }
  a.port = static_cast<std::uint16_t>(rng.next());
  return a;
}

PeerId maybe_peer_id(dht::Prng& rng) { return rng.below(2) ? random_bytes<20>(rng) : PeerId{}; }

ForwardedAnnounce random_announce(dht::Prng& rng) {
  ForwardedAnnounce a;
  a.txid = static_cast<std::uint32_t>(rng.next());
  auto& r = a.request;
  r.info_hash = random_bytes<20>(rng);
  r.peer_id = random_bytes<20>(rng);
  r.peer = random_address(rng);
  r.uploaded = rng.next() >> 1;
  r.downloaded = rng.next() >> 1;
  r.left = rng.below(2) ? 0 : rng.next() >> 1;
  r.event = static_cast<AnnounceEvent>(rng.below(4));
  r.numwant = static_cast<std::int32_t>(rng.next());
  r.key = static_cast<std::uint32_t>(rng.next());
  r.families = static_cast<PeerFamilies>(1 + rng.below(3));
  a.want_peer_ids = rng.below(2) == 1;
  return a;
}

std::string random_reason(dht::Prng& rng) {
  std::string s;
  auto n = rng.below(100);
  for (std::uint64_t i = 0; i < n; ++i) s.push_back(static_cast<char>(rng.next()));
  return s;
}

ClusterMessage random_message(dht::Prng& rng, std::size_t kind) {
  switch (kind) {
    case 0: {
      ForwardBatch b;
      for (auto n = rng.below(20); n > 0; --n) b.announces.push_back(random_announce(rng));
      for (auto n = rng.below(5); n > 0; --n) {
        ForwardedScrape s;
        s.txid = static_cast<std::uint32_t>(rng.next());
        for (auto k = 1 + rng.below(ClusterLimits::kScrapeHashesMax); k > 0; --k)
          s.info_hashes.push_back(random_bytes<20>(rng));
        b.scrapes.push_back(std::move(s));
      }
      return b;
    }
    case 1: {
      ReplyBatch b;
      for (auto n = rng.below(10); n > 0; --n) {
        AnnounceReply a;
        a.txid = static_cast<std::uint32_t>(rng.next());
        a.status = static_cast<ReplyStatus>(rng.below(3));
        if (a.status == ReplyStatus::ok) {
          auto& res = a.response.result;
          res.complete = static_cast<std::uint32_t>(rng.next());
          res.incomplete = static_cast<std::uint32_t>(rng.next());
          res.downloaded = static_cast<std::uint32_t>(rng.next());
          a.response.interval_s = static_cast<std::uint32_t>(rng.next());
          a.response.min_interval_s = static_cast<std::uint32_t>(rng.next());
          for (auto k = rng.below(60); k > 0; --k)
            res.peers.push_back(PeerInfo{random_address(rng), maybe_peer_id(rng)});
        } else if (a.status == ReplyStatus::failure) {
          a.failure = random_reason(rng);
        }
        b.announces.push_back(std::move(a));
      }
      for (auto n = rng.below(5); n > 0; --n) {
        ScrapeReply s;
        s.txid = static_cast<std::uint32_t>(rng.next());
        s.status = static_cast<ReplyStatus>(rng.below(3));
        if (s.status == ReplyStatus::ok) {
          for (auto k = rng.below(ClusterLimits::kScrapeHashesMax + 1); k > 0; --k)
            s.files.push_back(ScrapeEntry{
                random_bytes<20>(rng), static_cast<std::uint32_t>(rng.next()),
                static_cast<std::uint32_t>(rng.next()), static_cast<std::uint32_t>(rng.next())});
        } else if (s.status == ReplyStatus::failure) {
          s.failure = random_reason(rng);
        }
        b.scrapes.push_back(std::move(s));
      }
      return b;
    }
    case 2: {
      Replicate m;
      m.purpose = static_cast<TransferPurpose>(rng.below(kTransferPurposeCount));
      m.txid = static_cast<std::uint32_t>(rng.next());
      for (auto n = rng.below(30); n > 0; --n) {
        SwarmDelta d;
        d.snapshot.info_hash = random_bytes<20>(rng);
        d.snapshot.downloaded = static_cast<std::uint32_t>(rng.next());
        for (auto k = rng.below(40); k > 0; --k) {
          SnapshotPeer p;
          p.address = random_address(rng);
          p.peer_id = maybe_peer_id(rng);
          p.seeder = rng.below(2) == 1;
          p.remaining_ttl = Milliseconds(rng.below(std::uint64_t{1} << 32));
          d.snapshot.peers.push_back(p);
        }
        for (auto k = rng.below(5); k > 0; --k) d.gone.push_back(random_address(rng));
        m.swarms.push_back(std::move(d));
      }
      return m;
    }
    case 3:
      return PullRequest{static_cast<std::uint32_t>(rng.next()), dht::NodeId(random_bytes<20>(rng)),
                         dht::NodeId(random_bytes<20>(rng))};
    case 4:
      return TransferDone{static_cast<std::uint32_t>(rng.next()),
                          static_cast<TransferPurpose>(rng.below(kTransferPurposeCount)),
                          static_cast<std::uint32_t>(rng.next())};
    default:
      return TransferAck{static_cast<std::uint32_t>(rng.next())};
  }
}

bool same(const AnnounceRequest& a, const AnnounceRequest& b) {
  return a.info_hash == b.info_hash && a.peer_id == b.peer_id && a.peer == b.peer &&
         a.uploaded == b.uploaded && a.downloaded == b.downloaded && a.left == b.left &&
         a.event == b.event && a.numwant == b.numwant && a.key == b.key && a.families == b.families;
}

bool same(const ClusterMessage& x, const ClusterMessage& y) {
  if (x.index() != y.index()) return false;
  if (auto* a = std::get_if<ForwardBatch>(&x)) {
    const auto& b = std::get<ForwardBatch>(y);
    if (a->announces.size() != b.announces.size() || a->scrapes.size() != b.scrapes.size())
      return false;
    for (std::size_t i = 0; i < a->announces.size(); ++i) {
      if (a->announces[i].txid != b.announces[i].txid ||
          a->announces[i].want_peer_ids != b.announces[i].want_peer_ids ||
          !same(a->announces[i].request, b.announces[i].request))
        return false;
    }
    for (std::size_t i = 0; i < a->scrapes.size(); ++i) {
      if (a->scrapes[i].txid != b.scrapes[i].txid ||
          a->scrapes[i].info_hashes != b.scrapes[i].info_hashes)
        return false;
    }
    return true;
  }
  if (auto* a = std::get_if<ReplyBatch>(&x)) {
    const auto& b = std::get<ReplyBatch>(y);
    if (a->announces.size() != b.announces.size() || a->scrapes.size() != b.scrapes.size())
      return false;
    for (std::size_t i = 0; i < a->announces.size(); ++i) {
      const auto& p = a->announces[i];
      const auto& q = b.announces[i];
      if (p.txid != q.txid || p.status != q.status || p.failure != q.failure) return false;
      const auto& r = p.response.result;
      const auto& s = q.response.result;
      if (p.status == ReplyStatus::ok &&
          (r.complete != s.complete || r.incomplete != s.incomplete ||
           r.downloaded != s.downloaded || p.response.interval_s != q.response.interval_s ||
           p.response.min_interval_s != q.response.min_interval_s ||
           r.peers.size() != s.peers.size()))
        return false;
      for (std::size_t k = 0; k < r.peers.size(); ++k) {
        if (r.peers[k].address != s.peers[k].address || r.peers[k].peer_id != s.peers[k].peer_id)
          return false;
      }
    }
    for (std::size_t i = 0; i < a->scrapes.size(); ++i) {
      const auto& p = a->scrapes[i];
      const auto& q = b.scrapes[i];
      if (p.txid != q.txid || p.status != q.status || p.failure != q.failure ||
          p.files.size() != q.files.size())
        return false;
      for (std::size_t k = 0; k < p.files.size(); ++k) {
        if (p.files[k].info_hash != q.files[k].info_hash ||
            p.files[k].complete != q.files[k].complete ||
            p.files[k].downloaded != q.files[k].downloaded ||
            p.files[k].incomplete != q.files[k].incomplete)
          return false;
      }
    }
    return true;
  }
  if (auto* a = std::get_if<Replicate>(&x)) {
    const auto& b = std::get<Replicate>(y);
    if (a->purpose != b.purpose || a->txid != b.txid || a->swarms.size() != b.swarms.size())
      return false;
    for (std::size_t i = 0; i < a->swarms.size(); ++i) {
      const auto& p = a->swarms[i];
      const auto& q = b.swarms[i];
      if (p.snapshot.info_hash != q.snapshot.info_hash ||
          p.snapshot.downloaded != q.snapshot.downloaded || p.gone != q.gone ||
          p.snapshot.peers.size() != q.snapshot.peers.size())
        return false;
      for (std::size_t k = 0; k < p.snapshot.peers.size(); ++k) {
        const auto& u = p.snapshot.peers[k];
        const auto& v = q.snapshot.peers[k];
        if (u.address != v.address || u.peer_id != v.peer_id || u.seeder != v.seeder ||
            u.remaining_ttl != v.remaining_ttl)
          return false;
      }
    }
    return true;
  }
  if (auto* a = std::get_if<PullRequest>(&x)) {
    const auto& b = std::get<PullRequest>(y);
    return a->txid == b.txid && a->from == b.from && a->to == b.to;
  }
  if (auto* a = std::get_if<TransferDone>(&x)) {
    const auto& b = std::get<TransferDone>(y);
    return a->txid == b.txid && a->purpose == b.purpose && a->swarms == b.swarms;
  }
  return std::get<TransferAck>(x).txid == std::get<TransferAck>(y).txid;
}

std::size_t items_bytes_max(const ClusterMessage& m) {
  std::size_t n = kEnvelopeBytesMax;
  if (auto* b = std::get_if<ForwardBatch>(&m)) {
    for (const auto& a : b->announces) n += encoded_bytes_max(a);
    for (const auto& s : b->scrapes) n += encoded_bytes_max(s);
  } else if (auto* r = std::get_if<ReplyBatch>(&m)) {
    for (const auto& a : r->announces) n += encoded_bytes_max(a);
    for (const auto& s : r->scrapes) n += encoded_bytes_max(s);
  } else if (auto* p = std::get_if<Replicate>(&m)) {
    for (const auto& s : p->swarms) n += encoded_bytes_max(s);
  } else {
    n += 100;
  }
  return n;
}

ClusterMessageError decode_error(std::string_view bytes) {
  auto r = decode_cluster_message(bytes);
  BOOST_REQUIRE(!r);
  return r.error();
}

}  // namespace

BOOST_DATA_TEST_CASE(every_kind_round_trips_for_many_seeds, bdata::xrange(300), seed) {
  dht::Prng rng(static_cast<std::uint64_t>(seed) * 104729 + 3);
  for (std::size_t kind = 0; kind < 6; ++kind) {
    auto m = random_message(rng, kind);
    std::string bytes;
    encode_cluster_message(m, bytes);
    BOOST_TEST_INFO("seed " << seed << " kind " << kind);
    BOOST_TEST(bytes.size() <= items_bytes_max(m));
    auto back = decode_cluster_message(bytes);
    BOOST_REQUIRE_MESSAGE(
        back.has_value(),
        "decode failed: " << to_string(back ? ClusterMessageError::bencode : back.error()));
    BOOST_TEST(same(m, *back));
  }
}

BOOST_AUTO_TEST_CASE(every_truncation_of_a_valid_message_is_an_error) {
  dht::Prng rng(42);
  for (std::size_t kind = 0; kind < 6; ++kind) {
    auto m = random_message(rng, kind);
    std::string bytes;
    encode_cluster_message(m, bytes);
    for (std::size_t cut = 0; cut < bytes.size(); ++cut)
      BOOST_TEST(!decode_cluster_message(std::string_view(bytes).substr(0, cut)).has_value());
  }
}

BOOST_AUTO_TEST_CASE(random_byte_flips_never_crash) {
  dht::Prng rng(7);
  std::size_t decoded = 0;
  for (int round = 0; round < 2000; ++round) {
    auto m = random_message(rng, rng.below(6));
    std::string bytes;
    encode_cluster_message(m, bytes);
    for (int k = 0; k < 3 && !bytes.empty(); ++k)
      bytes[rng.below(bytes.size())] = static_cast<char>(rng.next());
    if (decode_cluster_message(bytes)) ++decoded;
  }
  BOOST_TEST(decoded < 2000U);  // some flips must be caught
}

BOOST_AUTO_TEST_CASE(rejects_payload_over_limit) {
  std::string big = "d1:y2:ak1:ti1e";
  big.resize(ClusterLimits::kPayloadBytesMax + 1, 'x');
  BOOST_TEST(decode_error(big) == ClusterMessageError::too_large);
}

BOOST_AUTO_TEST_CASE(refuses_too_many_scrape_hashes) {
  std::string hashes(20 * (ClusterLimits::kScrapeHashesMax + 1), 'h');
  std::string msg = "d1:ald1:h" + std::to_string(hashes.size()) + ":" + hashes + "1:ti1eee1:y2:fwe";
  BOOST_TEST(decode_error(msg) == ClusterMessageError::bad_field);
  // (list key "a" holds announces; a scrape dict there misses announce fields -> bad/missing)
  std::string as_scrape =
      "d1:sld1:h" + std::to_string(hashes.size()) + ":" + hashes + "1:ti1eee1:y2:fwe";
  BOOST_TEST(decode_error(as_scrape) == ClusterMessageError::too_many);
}

namespace {
struct Hostile {
  const char* name;
  std::string_view bytes;
  ClusterMessageError error;
};
std::ostream& operator<<(std::ostream& os, const Hostile& h) { return os << h.name; }

using namespace std::string_view_literals;
const Hostile kHostile[] = {
    {"empty", ""sv, ClusterMessageError::bencode},
    {"not bencode", "hello"sv, ClusterMessageError::bencode},
    {"trailing garbage", "d1:ti1e1:y2:akeX"sv, ClusterMessageError::bencode},
    {"list root", "l1:ye"sv, ClusterMessageError::not_dict},
    {"integer root", "i5e"sv, ClusterMessageError::not_dict},
    {"no kind", "d1:ti1ee"sv, ClusterMessageError::missing_field},
    {"kind integer", "d1:yi3ee"sv, ClusterMessageError::bad_field},
    {"unknown kind", "d1:ti1e1:y2:zze"sv, ClusterMessageError::unknown_kind},
    {"ack without txid", "d1:y2:ake"sv, ClusterMessageError::missing_field},
    {"ack negative txid", "d1:ti-1e1:y2:ake"sv, ClusterMessageError::bad_field},
    {"ack txid over 32 bits", "d1:ti4294967296e1:y2:ake"sv, ClusterMessageError::bad_field},
    {"txid as string", "d1:t1:x1:y2:ake"sv, ClusterMessageError::bad_field},
    {"done purpose out of range", "d1:ki9e1:ni0e1:ti1e1:y2:dne"sv, ClusterMessageError::bad_field},
    {"pull id of 19 bytes", "d1:a19:aaaaaaaaaaaaaaaaaaa1:b20:bbbbbbbbbbbbbbbbbbbb1:ti1e1:y2:pre"sv,
     ClusterMessageError::bad_field},
    {"pull without to", "d1:a20:aaaaaaaaaaaaaaaaaaaa1:ti1e1:y2:pre"sv,
     ClusterMessageError::missing_field},
    {"forward list is a dict", "d1:ade1:y2:fwe"sv, ClusterMessageError::bad_field},
    {"forward item not a dict", "d1:ali1ee1:y2:fwe"sv, ClusterMessageError::not_dict},
    {"announce missing fields", "d1:ald1:ti1eee1:y2:fwe"sv, ClusterMessageError::missing_field},
    {"scrape of 19 bytes", "d1:sld1:h19:hhhhhhhhhhhhhhhhhhh1:ti1eee1:y2:fwe"sv,
     ClusterMessageError::bad_field},
    {"scrape of no hash", "d1:sld1:h0:1:ti1eee1:y2:fwe"sv, ClusterMessageError::bad_field},
    {"reply not_owner 2", "d1:ald1:oi2e1:ti1eee1:y2:rpe"sv, ClusterMessageError::bad_field},
    {"reply ok without peers", "d1:ald1:ci1e1:di1e1:ii1e1:mi1e1:ti1e1:vi1eee1:y2:rpe"sv,
     ClusterMessageError::missing_field},
    {"reply peer truncated",
     "d1:ald1:ci1e1:di1e1:ii1e1:mi1e1:p3:\x00\x01\x02"
     "1:ti1e1:vi1eee1:y2:rpe"sv,
     ClusterMessageError::bad_field},
    {"reply peer unknown flag",
     "d1:ald1:ci1e1:di1e1:ii1e1:mi1e1:p7:\x08\x01\x02\x03\x04\x00\x01"
     "1:ti1e1:vi1eee1:y2:rpe"sv,
     ClusterMessageError::bad_field},
    {"scrape reply of 31 bytes", "d1:sld1:r31:rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr1:ti1eee1:y2:rpe"sv,
     ClusterMessageError::bad_field},
    {"replicate without purpose", "d1:ti1e1:wle1:y2:rse"sv, ClusterMessageError::missing_field},
    {"replicate swarm without hash", "d1:ki0e1:ti1e1:wld1:di0eee1:y2:rse"sv,
     ClusterMessageError::missing_field},
    {"replicate peer truncated ttl",
     "d1:ki0e1:ti1e1:wld1:di0e1:h20:hhhhhhhhhhhhhhhhhhhh1:p3:\x00\x00\x00"
     "ee1:y2:rse"sv,
     ClusterMessageError::bad_field},
    {"replicate gone with seeder flag",
     "d1:ki0e1:ti1e1:wld1:di0e1:g7:\x04\x01\x02\x03\x04\x00\x01"
     "1:h20:hhhhhhhhhhhhhhhhhhhhee1:y2:rse"sv,
     ClusterMessageError::bad_field},
    {"replicate downloaded negative",
     "d1:ki0e1:ti1e1:wld1:di-1e1:h20:hhhhhhhhhhhhhhhhhhhhee1:y2:rse"sv,
     ClusterMessageError::bad_field},
    {"too deep", "d1:ald1:ald1:aleeeeee1:y2:fwe"sv, ClusterMessageError::bencode},
};
}  // namespace

BOOST_DATA_TEST_CASE(hostile_input_is_an_error_not_a_crash, bdata::make(kHostile), h) {
  // The literals hold NUL bytes: `sv` keeps their full length.
  BOOST_TEST(decode_error(h.bytes) == h.error);
}
