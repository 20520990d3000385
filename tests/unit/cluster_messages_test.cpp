// Cluster message codec: seeded round trips of every kind, the wire layout, size bounds, hostile
// input tables.
#define BOOST_TEST_MODULE cluster_messages
#include "tracker/cluster_messages.hpp"

#include <algorithm>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <limits>
#include <new>
#include <optional>

#include "common/buffer_pool.hpp"
#include "dht/prng.hpp"

using namespace ringtracker;
using namespace ringtracker::tracker;
namespace bdata = boost::unit_test::data;

namespace ringtracker::tracker {
std::ostream& operator<<(std::ostream& os, ClusterMessageError e) { return os << to_string(e); }
}  // namespace ringtracker::tracker

namespace {
// Largest single allocation and number of allocations since the last reset: a hostile count must
// not reserve memory that its input cannot back, and encoding must not reallocate.
std::size_t g_allocation_max = 0;
std::size_t g_allocations = 0;
// Freed through a pointer the optimiser cannot see through: with the deletes below inlined into
// new-expressions, a direct free() would be warned about as a mismatched new/delete pair.
void (*volatile g_release)(void*) = std::free;
}  // namespace

void* operator new(std::size_t n) {
  g_allocation_max = std::max(g_allocation_max, n);
  ++g_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { g_release(p); }
void operator delete(void* p, std::size_t) noexcept { g_release(p); }

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
  r.uploaded = rng.next();
  r.downloaded = rng.next();
  r.left = rng.below(2) ? 0 : rng.next();
  r.event = static_cast<AnnounceEvent>(rng.below(4));
  r.numwant = static_cast<std::int32_t>(rng.next());
  r.key = static_cast<std::uint32_t>(rng.next());
  r.families = static_cast<PeerFamilies>(1 + rng.below(3));
  r.lookup_only = rng.below(2) == 1;
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

/// Every peer of a result, in a fixed order: a decoded reply holds the id-less peers compact,
/// by family, where the encoded one had them in its list.
std::vector<std::pair<SocketAddress, PeerId>> all_peers(const AnnounceResult& r) {
  std::vector<std::pair<SocketAddress, PeerId>> out;
  for_each_peer(r, [&](const SocketAddress& a, const PeerId& id) { out.emplace_back(a, id); });
  std::sort(out.begin(), out.end());
  return out;
}

bool same(const AnnounceRequest& a, const AnnounceRequest& b) {
  return a.info_hash == b.info_hash && a.peer_id == b.peer_id && a.peer == b.peer &&
         a.uploaded == b.uploaded && a.downloaded == b.downloaded && a.left == b.left &&
         a.event == b.event && a.numwant == b.numwant && a.key == b.key &&
         a.families == b.families && a.lookup_only == b.lookup_only;
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
           p.response.min_interval_s != q.response.min_interval_s || all_peers(r) != all_peers(s)))
        return false;
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
    BOOST_REQUIRE_MESSAGE(back.has_value(), "decode failed: " << (back ? std::string_view("-")
                                                                       : to_string(back.error())));
    BOOST_TEST(same(m, *back));
  }
}

// Forwards and replies are encoded item by item as they are made: the batch sent must be byte
// for byte what the whole-batch encoder makes, also when the writer is reused after finish().
template <class Batch, class Writer>
void check_writer_matches_the_batch_encoder(std::size_t kind) {
  dht::Prng rng(5 + kind);
  Writer w;
  for (int round = 0; round < 200; ++round) {
    auto m = random_message(rng, kind);
    const auto& batch = std::get<Batch>(m);
    for (const auto& a : batch.announces) w.add(a);
    for (const auto& s : batch.scrapes) w.add(s);
    BOOST_TEST(w.items() == batch.announces.size() + batch.scrapes.size());
    const std::size_t predicted = w.bytes();
    // finish() appends: half the rounds after bytes already there.
    const std::string before = round % 2 == 0 ? "" : "xy";
    std::string bytes = before;
    w.finish(bytes);
    std::string whole;
    encode_cluster_message(m, whole);
    BOOST_TEST_INFO("kind " << kind << " round " << round);
    BOOST_TEST(bytes == before + whole);
    BOOST_TEST(bytes.size() == before.size() + predicted);
    BOOST_TEST(w.items() == 0U);
    // A new writer told the room to expect writes the same bytes, and its announces go into
    // one allocation.
    Writer hinted(w.room());
    const std::size_t allocations = g_allocations;
    for (const auto& a : batch.announces) hinted.add(a);
    if (batch.scrapes.empty()) BOOST_TEST(g_allocations - allocations <= 1U);
    for (const auto& s : batch.scrapes) hinted.add(s);
    std::string again;
    hinted.finish(again);
    BOOST_TEST(again == whole);
  }
}

BOOST_AUTO_TEST_CASE(batch_writers_match_the_batch_encoder) {
  check_writer_matches_the_batch_encoder<ForwardBatch, ForwardBatchWriter>(0);
  check_writer_matches_the_batch_encoder<ReplyBatch, ReplyBatchWriter>(1);
}

// A node makes a writer per batch and sends the payload on; the buffers go back to the thread's
// pool (the writer's when it is dropped, the payload's once the ring copied it). Once they have
// gone round, batches allocate nothing, and a buffer that carried one batch carries nothing of
// it into the next.
template <class Batch, class Writer>
void check_batches_reuse_pooled_buffers(std::size_t kind) {
  dht::Prng rng(17 + kind);
  std::vector<ClusterMessage> messages;
  for (int i = 0; i < 6; ++i) messages.push_back(random_message(rng, kind));
  BufferPool& pool = BufferPool::local();
  std::size_t room = 0;
  for (int pass = 0; pass < 4; ++pass) {
    const std::size_t allocations = g_allocations;
    for (const auto& m : messages) {
      const auto& batch = std::get<Batch>(m);
      std::string payload = pool.take();
      {
        Writer w(room);
        for (const auto& a : batch.announces) w.add(a);
        for (const auto& sc : batch.scrapes) w.add(sc);
        w.finish(payload);
        room = w.room();
      }
      std::string whole;
      encode_cluster_message(m, whole);
      BOOST_TEST_INFO("kind " << kind << " pass " << pass);
      BOOST_TEST(payload == whole);
      g_allocations -= 1;  // `whole`, the reference
      pool.give(std::move(payload));
    }
    BOOST_TEST_INFO("kind " << kind << " pass " << pass);
    if (pass == 3) BOOST_TEST(g_allocations == allocations);
  }
  while (pool.size() != 0) (void)pool.take();
}

BOOST_AUTO_TEST_CASE(batches_reuse_pooled_buffers) {
  check_batches_reuse_pooled_buffers<ForwardBatch, ForwardBatchWriter>(0);
  check_batches_reuse_pooled_buffers<ReplyBatch, ReplyBatchWriter>(1);
}

/// A replicate message read swarm by swarm, as a replica merges it; nullopt for a malformed one
/// (its head, a swarm, or bytes after the last).
std::optional<Replicate> read_replicate(const std::string& bytes) {
  auto r = ReplicateReader::open(bytes);
  if (!r) return std::nullopt;
  Replicate m;
  m.purpose = r->purpose();
  m.txid = r->txid();
  SwarmDelta scratch;  // reused, as the replica does: nothing may leak from one swarm to the next
  for (;;) {
    auto more = r->next(scratch);
    if (!more) return std::nullopt;
    if (!*more) return m;
    m.swarms.push_back(scratch);
  }
}

// A replica reads replication payloads swarm by swarm: the same swarms as the decoder, and
// every malformed message (each truncation, random flips) caught where the decoder catches it.
BOOST_AUTO_TEST_CASE(replicate_reader_reads_what_the_decoder_reads) {
  dht::Prng rng(17);
  for (int round = 0; round < 300; ++round) {
    auto m = random_message(rng, 2);
    std::string bytes;
    encode_cluster_message(m, bytes);
    BOOST_TEST_INFO("round " << round);
    auto read = read_replicate(bytes);
    BOOST_REQUIRE(read.has_value());
    BOOST_TEST(same(m, ClusterMessage(*read)));
    for (std::size_t cut = 0; cut < bytes.size(); cut += 1 + rng.below(7))
      BOOST_TEST(!read_replicate(bytes.substr(0, cut)).has_value());
    BOOST_TEST(!read_replicate(bytes + "x").has_value());
    for (int flip = 0; flip < 20; ++flip) {
      std::string bad = bytes;
      bad[rng.below(bad.size())] ^= static_cast<char>(1 + rng.below(255));
      const bool decoder_ok = decode_cluster_message(bad).has_value() &&
                              std::holds_alternative<Replicate>(*decode_cluster_message(bad));
      auto reader = read_replicate(bad);
      BOOST_TEST(reader.has_value() == decoder_ok);
      if (reader && decoder_ok)
        BOOST_TEST(same(ClusterMessage(*reader), *decode_cluster_message(bad)));
    }
  }
}

/// A forward or reply batch read item by item, as an owner answers forwards and the asking
/// node answers its clients; nullopt for a malformed one (its head, an item, or bytes after
/// the last).
template <class Batch, class Reader, class Announce, class Scrape>
std::optional<Batch> read_batch(std::string_view bytes, Announce& a, Scrape& s) {
  auto r = Reader::open(bytes);
  if (!r) return std::nullopt;
  Batch m;
  for (;;) {
    auto more = r->next(a);
    if (!more) return std::nullopt;
    if (!*more) break;
    m.announces.push_back(a);
  }
  for (;;) {
    auto more = r->next(s);
    if (!more) return std::nullopt;
    if (!*more) return m;
    m.scrapes.push_back(s);
  }
}

template <class Batch, class Reader, class Announce, class Scrape>
std::optional<Batch> read_batch(std::string_view bytes) {
  Announce a;
  Scrape s;
  return read_batch<Batch, Reader>(bytes, a, s);
}

// Owners read forward batches, and the asking node reply batches, item by item into the same
// objects: the same items as the decoder (nothing left over from the item before), every
// malformed batch caught where the decoder catches it.
template <class Batch, class Reader, class Announce, class Scrape>
void check_reader_reads_what_the_decoder_reads(std::size_t kind) {
  dht::Prng rng(23 + kind);
  Announce a;
  Scrape s;
  for (int round = 0; round < 300; ++round) {
    auto m = random_message(rng, kind);
    std::string bytes;
    encode_cluster_message(m, bytes);
    BOOST_TEST_INFO("kind " << kind << " round " << round);
    auto read = read_batch<Batch, Reader>(bytes, a, s);
    BOOST_REQUIRE(read.has_value());
    BOOST_TEST(same(m, ClusterMessage(*read)));
    auto read_fresh = [](std::string_view b) {
      return read_batch<Batch, Reader, Announce, Scrape>(b);
    };
    for (std::size_t cut = 0; cut < bytes.size(); cut += 1 + rng.below(7))
      BOOST_TEST(!read_fresh(std::string_view(bytes).substr(0, cut)).has_value());
    BOOST_TEST(!read_fresh(bytes + "x").has_value());
    for (int flip = 0; flip < 20; ++flip) {
      std::string bad = bytes;
      bad[rng.below(bad.size())] ^= static_cast<char>(1 + rng.below(255));
      auto decoded = decode_cluster_message(bad);
      const bool decoder_ok = decoded.has_value() && std::holds_alternative<Batch>(*decoded);
      auto reader = read_fresh(bad);
      BOOST_TEST(reader.has_value() == decoder_ok);
      if (reader && decoder_ok) BOOST_TEST(same(ClusterMessage(*reader), *decoded));
    }
  }
}

BOOST_AUTO_TEST_CASE(batch_readers_read_what_the_decoder_reads) {
  check_reader_reads_what_the_decoder_reads<ForwardBatch, ForwardBatchReader, ForwardedAnnounce,
                                            ForwardedScrape>(0);
  check_reader_reads_what_the_decoder_reads<ReplyBatch, ReplyBatchReader, AnnounceReply,
                                            ScrapeReply>(1);
}

// Once its objects have grown, reading a reply batch allocates nothing.
BOOST_AUTO_TEST_CASE(reply_reader_allocates_nothing_once_grown) {
  // Announce replies without peer ids (what the stores answer), read twice: the second time
  // into objects already grown to size.
  ReplyBatch batch;
  for (std::uint32_t i = 0; i < 40; ++i) {
    AnnounceReply r;
    r.txid = i;
    r.response.result.complete = i;
    r.response.result.compact4.assign(6 * (10 + i % 20), static_cast<char>(i));
    r.response.result.compact6.assign(18 * (i % 3), static_cast<char>(i + 1));
    batch.announces.push_back(r);
  }
  std::string bytes;
  encode_cluster_message(ClusterMessage(batch), bytes);
  AnnounceReply ar;
  for (int pass = 0; pass < 2; ++pass) {
    auto r = ReplyBatchReader::open(bytes);
    BOOST_REQUIRE(r.has_value());
    std::size_t items = 0;
    g_allocations = 0;
    for (;;) {
      auto more = r->next(ar);
      BOOST_REQUIRE(more.has_value());
      if (!*more) break;
      BOOST_TEST(ar.response.result.compact4 == batch.announces[items].response.result.compact4);
      ++items;
    }
    const std::size_t allocations = g_allocations;
    BOOST_TEST(items == batch.announces.size());
    if (pass == 1) BOOST_TEST(allocations == 0U);
  }
}

BOOST_AUTO_TEST_CASE(encoding_allocates_once) {
  dht::Prng rng(11);
  for (int round = 0; round < 50; ++round) {
    for (std::size_t kind = 0; kind < 6; ++kind) {
      auto m = random_message(rng, kind);
      std::string bytes;
      g_allocations = 0;
      encode_cluster_message(m, bytes);
      BOOST_TEST_INFO("round " << round << " kind " << kind);
      BOOST_TEST(g_allocations <= 1U);
    }
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

BOOST_AUTO_TEST_CASE(full_size_announce_counters_round_trip) {
  constexpr std::uint64_t kTop = std::numeric_limits<std::uint64_t>::max();
  constexpr std::uint64_t kHalf = std::uint64_t{1} << 63;
  ForwardBatch b;
  for (std::uint64_t v : {kTop, kHalf, kHalf + 1}) {
    ForwardedAnnounce a;
    a.txid = std::numeric_limits<std::uint32_t>::max();
    a.request.uploaded = v;
    a.request.downloaded = v - 1;
    a.request.left = v;
    a.request.numwant = std::numeric_limits<std::int32_t>::min();
    a.request.key = std::numeric_limits<std::uint32_t>::max();
    b.announces.push_back(a);
  }
  std::string bytes;
  encode_cluster_message(b, bytes);
  auto back = decode_cluster_message(bytes);
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST(same(b, *back));
}

BOOST_AUTO_TEST_CASE(long_failure_reasons_are_cut_to_the_limit) {
  ReplyBatch b;
  AnnounceReply a;
  a.status = ReplyStatus::failure;
  a.failure.assign(ClusterLimits::kReasonBytesMax + 100, 'x');
  b.announces.push_back(a);
  std::string bytes;
  encode_cluster_message(b, bytes);
  BOOST_TEST(bytes.size() <= items_bytes_max(b));
  auto back = decode_cluster_message(bytes);
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST(std::get<ReplyBatch>(*back).announces.at(0).failure ==
             a.failure.substr(0, ClusterLimits::kReasonBytesMax));
}

namespace {

enum : std::uint8_t { kFw = 1, kRp = 2, kRs = 3, kPr = 4, kDn = 5, kAk = 6 };
constexpr std::uint8_t kV6 = 1;
constexpr std::uint8_t kWantPeerIds = 2;
constexpr std::uint8_t kPeerId = 2;
constexpr std::uint8_t kSeeder = 4;

/// Forges messages field by field, big-endian like the codec, so that each hostile case reads as
/// the message it is. The item helpers write valid items unless told otherwise.
class Wire {
 public:
  Wire& u8(std::uint64_t v) { return put(v, 1); }
  Wire& u16(std::uint64_t v) { return put(v, 2); }
  Wire& u32(std::uint64_t v) { return put(v, 4); }
  Wire& u64(std::uint64_t v) { return put(v, 8); }
  /// `n` bytes of `b`: hashes, peer ids, IPs, reasons.
  Wire& fill(std::size_t n, std::uint8_t b = 0xab) {
    s_.append(n, static_cast<char>(b));
    return *this;
  }

  /// txid 7, info_hash 0x11.., peer_id 0x22.., IP 10.10.10.10 (or 16 x 10), port 6881,
  /// uploaded 1, downloaded 2, left 3, numwant -1, key 99.
  Wire& announce(std::uint8_t flags = 0, std::uint8_t event = 2, std::uint8_t families = 3) {
    u32(7).fill(20, 0x11).fill(20, 0x22).u8(flags).fill((flags & kV6) ? 16 : 4, 10).u16(6881);
    return u64(1).u64(2).u64(3).u8(event).u8(families).u32(0xffffffff).u32(99);
  }
  Wire& scrape(std::size_t hashes) { return u32(8).u8(hashes).fill(20 * hashes, 0x33); }
  /// An ok announce reply's head: txid 9 and its counters, before the compact peers.
  Wire& announce_ok() { return u32(9).u8(0).u32(1).u32(2).u32(3).u32(1800).u32(900); }
  /// A reply's compact peers of one family: u16 count, then 10.10.10.10 (or 16 x 10):6881 each.
  Wire& compact(std::size_t n, bool v6 = false) {
    u16(n);
    for (std::size_t i = 0; i < n; ++i) fill(v6 ? 16 : 4, 10).u16(6881);
    return *this;
  }
  /// A reply peer with an id (0x44..).
  Wire& id_peer(std::uint8_t flags) {
    return u8(flags).fill((flags & kV6) ? 16 : 4, 10).u16(6881).fill(20, 0x44);
  }
  /// A swarm's head, before its peers and gone addresses.
  Wire& swarm(std::uint64_t peers, std::uint64_t gone) {
    return fill(20, 0x55).u32(5).u32(peers).u32(gone);
  }
  Wire& snapshot_peer(std::uint8_t flags) {
    u8(flags).u32(60'000).fill((flags & kV6) ? 16 : 4, 10).u16(6881);
    return (flags & kPeerId) ? fill(20, 0x44) : *this;
  }
  Wire& gone(std::uint8_t flags) { return u8(flags).fill((flags & kV6) ? 16 : 4, 10).u16(6881); }

  std::string str() const { return s_; }

 private:
  Wire& put(std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) s_.push_back(static_cast<char>(v >> (8 * i)));
    return *this;
  }
  std::string s_;
};

Wire message(std::uint8_t kind) {
  Wire w;
  w.u8(kClusterFormatVersion).u8(kind);
  return w;
}

std::string encoded(const ClusterMessage& m) {
  std::string out;
  encode_cluster_message(m, out);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(rejects_payload_over_limit) {
  std::string big = message(kAk).u32(1).str();
  big.resize(ClusterLimits::kPayloadBytesMax, 'x');
  BOOST_TEST(decode_error(big) == ClusterMessageError::trailing);
  big.push_back('x');
  BOOST_TEST(decode_error(big) == ClusterMessageError::too_large);
}

// The forged messages below differ from these in one field each: these must be valid, and they
// pin the documented layout.
BOOST_AUTO_TEST_CASE(encoder_writes_the_documented_layout) {
  ForwardBatch fw;
  auto& a = fw.announces.emplace_back();
  a.txid = 7;
  a.request.info_hash.fill(0x11);
  a.request.peer_id.fill(0x22);
  std::array<std::uint8_t, 16> ip;
  ip.fill(10);
  a.request.peer = SocketAddress{IpAddress::v6(ip.data()), 6881};
  a.want_peer_ids = true;
  a.request.uploaded = 1;
  a.request.downloaded = 2;
  a.request.left = 3;
  a.request.event = AnnounceEvent::started;
  a.request.families = PeerFamilies::both;
  a.request.numwant = -1;
  a.request.key = 99;
  fw.scrapes.push_back(ForwardedScrape{8, {InfoHash{}, InfoHash{}}});
  fw.scrapes[0].info_hashes[0].fill(0x33);
  fw.scrapes[0].info_hashes[1].fill(0x33);
  const auto fw_bytes = message(kFw).u16(1).announce(kV6 | kWantPeerIds).u16(1).scrape(2).str();
  BOOST_TEST(encoded(fw) == fw_bytes);
  BOOST_TEST(decode_cluster_message(fw_bytes).has_value());

  ReplyBatch rp;
  auto& ok = rp.announces.emplace_back();
  ok.txid = 9;
  ok.response.result.complete = 1;
  ok.response.result.incomplete = 2;
  ok.response.result.downloaded = 3;
  ok.response.result.peers.push_back(PeerInfo{SocketAddress{IpAddress::v4(ip.data()), 6881}, {}});
  ok.response.result.peers.push_back(PeerInfo{SocketAddress{IpAddress::v6(ip.data()), 6881}, {}});
  ok.response.result.peers.back().peer_id.fill(0x44);
  rp.announces.push_back(AnnounceReply{10, ReplyStatus::not_owner, {}, {}});
  rp.scrapes.push_back(ScrapeReply{11, ReplyStatus::failure, {}, "no"});
  const auto rp_bytes = message(kRp)
                            .u16(2)
                            .announce_ok()
                            .compact(1)
                            .compact(0, true)
                            .u16(1)
                            .id_peer(kV6)
                            .u32(10)
                            .u8(2)
                            .u16(1)
                            .u32(11)
                            .u8(1)
                            .u16(2)
                            .u8('n')
                            .u8('o')
                            .str();
  BOOST_TEST(encoded(rp) == rp_bytes);
  BOOST_TEST(decode_cluster_message(rp_bytes).has_value());

  Replicate rs;
  rs.purpose = TransferPurpose::handoff;
  rs.txid = 12;
  auto& d = rs.swarms.emplace_back();
  d.snapshot.info_hash.fill(0x55);
  d.snapshot.downloaded = 5;
  auto& p = d.snapshot.peers.emplace_back();
  p.address = SocketAddress{IpAddress::v4(ip.data()), 6881};
  p.peer_id.fill(0x44);
  p.seeder = true;
  p.remaining_ttl = Milliseconds(60'000);
  d.gone.push_back(SocketAddress{IpAddress::v6(ip.data()), 6881});
  const auto rs_bytes = message(kRs)
                            .u8(3)
                            .u32(12)
                            .u16(1)
                            .swarm(1, 1)
                            .snapshot_peer(kPeerId | kSeeder)
                            .gone(kV6)
                            .str();
  BOOST_TEST(encoded(rs) == rs_bytes);
  BOOST_TEST(decode_cluster_message(rs_bytes).has_value());

  InfoHash from;
  InfoHash to;
  from.fill(0x66);
  to.fill(0x77);
  BOOST_TEST(encoded(PullRequest{13, dht::NodeId(from), dht::NodeId(to)}) ==
             message(kPr).u32(13).fill(20, 0x66).fill(20, 0x77).str());
  BOOST_TEST(encoded(TransferDone{14, TransferPurpose::pull, 15}) ==
             message(kDn).u32(14).u8(2).u32(15).str());
  BOOST_TEST(encoded(TransferAck{16}) == message(kAk).u32(16).str());
}

namespace {

struct Hostile {
  const char* name;
  std::string bytes;
  ClusterMessageError error;
};
std::ostream& operator<<(std::ostream& os, const Hostile& h) { return os << h.name; }

std::vector<Hostile> hostile_cases() {
  using E = ClusterMessageError;
  constexpr auto kItems = ClusterLimits::kBatchItemsMax;
  constexpr auto kHashes = ClusterLimits::kScrapeHashesMax;
  constexpr auto kReason = ClusterLimits::kReasonBytesMax;
  constexpr auto kSwarms = ClusterLimits::kSwarmsPerMessageMax;
  return {
      // Header.
      {"empty", "", E::truncated},
      {"version without kind", Wire().u8(kClusterFormatVersion).str(), E::truncated},
      {"version 0", Wire().u8(0).u8(kAk).u32(1).str(), E::bad_version},
      {"version 2", Wire().u8(kClusterFormatVersion + 1).u8(kAk).u32(1).str(), E::bad_version},
      {"kind 0", message(0).u32(1).str(), E::unknown_kind},
      {"kind 7", message(7).u32(1).str(), E::unknown_kind},
      // fw
      {"fw without counts", message(kFw).str(), E::truncated},
      {"fw without scrape count", message(kFw).u16(0).str(), E::truncated},
      {"fw announces over the limit", message(kFw).u16(kItems + 1).str(), E::too_many},
      {"fw announces that cannot fit", message(kFw).u16(kItems).announce().u16(0).str(),
       E::truncated},
      {"fw announce unknown flag", message(kFw).u16(1).announce(8).u16(0).str(), E::bad_field},
      {"fw announce event 4", message(kFw).u16(1).announce(0, 4).u16(0).str(), E::bad_field},
      {"fw announce families 0", message(kFw).u16(1).announce(0, 0, 0).u16(0).str(), E::bad_field},
      {"fw announce families 4", message(kFw).u16(1).announce(0, 0, 4).u16(0).str(), E::bad_field},
      // txid, the two ids, flags, a 4-byte IP, port, the 36 bytes of counters, the scrape count.
      {"fw announce IPv6 flag, IPv4 address",
       message(kFw).u16(1).u32(7).fill(40).u8(kV6).fill(4).u16(1).fill(36).u16(0).str(),
       E::truncated},
      {"fw scrape of no hash", message(kFw).u16(0).u16(1).u32(1).u8(0).fill(20).str(),
       E::bad_field},
      {"fw scrape over the limit", message(kFw).u16(0).u16(1).scrape(kHashes + 1).str(),
       E::too_many},
      {"fw scrape cut in a hash", message(kFw).u16(0).u16(1).u32(1).u8(2).fill(39).str(),
       E::truncated},
      {"fw scrapes over the limit", message(kFw).u16(0).u16(kItems + 1).str(), E::too_many},
      {"fw trailing byte", message(kFw).u16(1).announce().u16(1).scrape(1).u8(0).str(),
       E::trailing},
      // rp
      {"rp without counts", message(kRp).str(), E::truncated},
      {"rp announce replies over the limit", message(kRp).u16(kItems + 1).str(), E::too_many},
      {"rp announce status 3", message(kRp).u16(1).u32(1).u8(3).u16(0).str(), E::bad_field},
      {"rp reason over the limit",
       message(kRp).u16(1).u32(1).u8(1).u16(kReason + 1).fill(kReason + 1).u16(0).str(),
       E::bad_field},
      {"rp reason longer than the rest", message(kRp).u16(1).u32(1).u8(1).u16(10).fill(5).str(),
       E::truncated},
      {"rp ok without peer count", message(kRp).u16(1).announce_ok().str(), E::truncated},
      {"rp ok without IPv6 count", message(kRp).u16(1).announce_ok().compact(1).str(),
       E::truncated},
      {"rp compact IPv4 peers cut",
       message(kRp).u16(1).announce_ok().u16(3).fill(12).compact(0, true).u16(0).u16(0).str(),
       E::truncated},
      {"rp 65535 compact IPv6 peers in a few bytes",
       message(kRp).u16(1).announce_ok().compact(0).u16(0xffff).fill(36).u16(0).u16(0).str(),
       E::truncated},
      {"rp peer unknown flag",
       message(kRp).u16(1).announce_ok().compact(0).compact(0, true).u16(1).id_peer(2).u16(0).str(),
       E::bad_field},
      {"rp peer id cut",
       message(kRp)
           .u16(1)
           .announce_ok()
           .compact(0)
           .compact(0, true)
           .u16(1)
           .u8(0)
           .fill(6)
           .fill(10)
           .str(),
       E::truncated},
      {"rp 65535 peers in a few bytes",
       message(kRp)
           .u16(1)
           .announce_ok()
           .compact(0)
           .compact(0, true)
           .u16(0xffff)
           .id_peer(0)
           .u16(0)
           .str(),
       E::truncated},
      {"rp scrape status 3", message(kRp).u16(0).u16(1).u32(1).u8(3).str(), E::bad_field},
      {"rp scrape files over the limit",
       message(kRp).u16(0).u16(1).u32(1).u8(0).u8(kHashes + 1).fill(32 * (kHashes + 1)).str(),
       E::too_many},
      {"rp scrape files cut", message(kRp).u16(0).u16(1).u32(1).u8(0).u8(2).fill(40).str(),
       E::truncated},
      {"rp scrape failure without reason", message(kRp).u16(0).u16(1).u32(1).u8(1).str(),
       E::truncated},
      {"rp trailing byte", message(kRp).u16(0).u16(1).u32(1).u8(2).u8(0).str(), E::trailing},
      // rs
      {"rs purpose 4", message(kRs).u8(kTransferPurposeCount).u32(1).u16(0).str(), E::bad_field},
      {"rs without swarm count", message(kRs).u8(0).u32(1).str(), E::truncated},
      {"rs swarms over the limit", message(kRs).u8(0).u32(1).u16(kSwarms + 1).str(), E::too_many},
      {"rs swarms that cannot fit", message(kRs).u8(0).u32(1).u16(kSwarms).swarm(0, 0).str(),
       E::truncated},
      {"rs 2^32-1 peers in a few bytes",
       message(kRs).u8(0).u32(1).u16(1).swarm(0xffffffff, 0).snapshot_peer(0).str(), E::truncated},
      {"rs 2^32-1 gone in a few bytes",
       message(kRs).u8(0).u32(1).u16(1).swarm(0, 0xffffffff).gone(0).str(), E::truncated},
      {"rs peer unknown flag", message(kRs).u8(0).u32(1).u16(1).swarm(1, 0).snapshot_peer(8).str(),
       E::bad_field},
      {"rs peer IPv6 flag, IPv4 address",
       message(kRs).u8(0).u32(1).u16(1).swarm(1, 0).u8(kV6).u32(1).fill(4).u16(1).str(),
       E::truncated},
      {"rs gone with seeder flag", message(kRs).u8(0).u32(1).u16(1).swarm(0, 1).gone(kSeeder).str(),
       E::bad_field},
      {"rs gone with peer id flag",
       message(kRs).u8(0).u32(1).u16(1).swarm(0, 1).gone(kPeerId).str(), E::bad_field},
      {"rs trailing byte", message(kRs).u8(0).u32(1).u16(1).swarm(0, 1).gone(0).u8(0).str(),
       E::trailing},
      // pr
      {"pr to id of 19 bytes", message(kPr).u32(1).fill(20).fill(19).str(), E::truncated},
      {"pr trailing byte", message(kPr).u32(1).fill(40).u8(0).str(), E::trailing},
      // dn
      {"dn purpose 4", message(kDn).u32(1).u8(kTransferPurposeCount).u32(0).str(), E::bad_field},
      {"dn without swarms", message(kDn).u32(1).u8(0).str(), E::truncated},
      {"dn trailing byte", message(kDn).u32(1).u8(0).u32(0).u8(0).str(), E::trailing},
      // ak
      {"ak txid of 3 bytes", message(kAk).fill(3).str(), E::truncated},
      {"ak trailing byte", message(kAk).u32(1).u8(0).str(), E::trailing},
  };
}

}  // namespace

BOOST_DATA_TEST_CASE(hostile_input_is_an_error_not_a_crash, bdata::make(hostile_cases()), h) {
  g_allocation_max = 0;
  const auto r = decode_cluster_message(h.bytes);
  const std::size_t allocated = g_allocation_max;
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error() == h.error);
  // A decoded item takes under 20x its smallest encoding (a 5-byte reply becomes a reply struct);
  // a count trusted before its bytes were seen would reserve far more.
  BOOST_TEST(allocated <= 32 * h.bytes.size() + 256);
}

// ---- bundles: several messages for one node in one datagram ----------------------------------

BOOST_AUTO_TEST_CASE(bundle_carries_its_messages_in_order_and_each_decodes) {
  dht::Prng rng(41);
  for (int round = 0; round < 200; ++round) {
    std::string bundle;
    std::vector<std::string> sent;
    // Small messages of every kind until the next would not fit.
    for (;;) {
      std::string m;
      encode_cluster_message(random_message(rng, rng.below(6)), m);
      if (kBundleHeadBytes + bundle.size() + kBundleEntryOverheadBytes + m.size() > kBundleBytesMax)
        break;
      append_to_bundle(bundle, m);
      sent.push_back(std::move(m));
    }
    if (sent.empty()) continue;
    BOOST_REQUIRE(is_bundle(bundle));
    BOOST_TEST(bundle.size() <= kBundleBytesMax);
    // A bundle is not one message: the message decoder refuses it rather than misreading it.
    BOOST_TEST(!decode_cluster_message(bundle).has_value());
    std::vector<std::string_view> parts;
    BOOST_REQUIRE(split_bundle(bundle, parts).has_value());
    BOOST_REQUIRE_EQUAL(parts.size(), sent.size());
    for (std::size_t i = 0; i < parts.size(); ++i) {
      BOOST_TEST((parts[i] == sent[i]));
      BOOST_TEST(!is_bundle(parts[i]));
      BOOST_TEST(decode_cluster_message(parts[i]).has_value());
    }
  }
}

BOOST_AUTO_TEST_CASE(malformed_bundles_are_errors) {
  std::string ack;
  encode_cluster_message(TransferAck{5}, ack);
  std::string good;
  append_to_bundle(good, ack);
  append_to_bundle(good, ack);
  std::vector<std::string_view> parts;
  BOOST_REQUIRE(split_bundle(good, parts).has_value());
  BOOST_TEST(parts.size() == 2U);
  const std::string head = good.substr(0, kBundleHeadBytes);
  auto error_of = [&](const std::string& bytes) {
    auto r = split_bundle(bytes, parts);
    BOOST_REQUIRE(!r.has_value());
    return r.error();
  };
  using E = ClusterMessageError;
  BOOST_TEST(error_of(head) == E::truncated);                             // no message at all
  BOOST_TEST(error_of(head + std::string("\0", 1)) == E::truncated);      // half a length
  BOOST_TEST(error_of(head + std::string("\0\0", 2)) == E::bad_field);    // empty entry
  BOOST_TEST(error_of(good.substr(0, good.size() - 1)) == E::truncated);  // cut last message
  BOOST_TEST(error_of(ack) == E::bad_field);                              // not a bundle
  std::string nested = head;
  nested += static_cast<char>(good.size() >> 8);
  nested += static_cast<char>(good.size() & 0xff);
  nested += good;
  BOOST_TEST(error_of(nested) == E::bad_field);  // a bundle inside a bundle
  std::string big = head;
  while (big.size() <= kBundleBytesMax) big += std::string("\0\x06", 2) + ack;
  BOOST_TEST(error_of(big) == E::too_large);
  // A truncation is an error, or (cut between two entries) the messages before the cut; every
  // byte flip is an error or a bundle whose parts the message decoder then judges.
  for (std::size_t n = 0; n < good.size(); ++n) {
    const std::string cut = good.substr(0, n);
    if (!split_bundle(cut, parts)) continue;
    BOOST_TEST(n == kBundleHeadBytes + kBundleEntryOverheadBytes + ack.size(), n);
    BOOST_TEST((parts.size() == 1U && parts[0] == ack));
  }
  dht::Prng rng(43);
  for (int i = 0; i < 2000; ++i) {
    std::string b = good;
    b[rng.below(b.size())] ^= static_cast<char>(1 + rng.below(255));
    if (split_bundle(b, parts)) {
      for (auto p : parts) (void)decode_cluster_message(p);
    }
  }
}
