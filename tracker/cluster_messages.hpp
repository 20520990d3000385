// The data layer's messages between ring nodes (carried as the opaque payload of the ring's `app`
// message): forwarded announces and scrapes with their replies, replication batches of swarm
// snapshots, range pulls and handoffs. A pure binary codec with hard limits (every announce
// crosses it twice, so it must be cheap); what a message means, and whom it goes to, is
// ClusterNode's business.
//
// Fixed-width big-endian fields and no tags, so that a message is read in one pass with a bounds
// check per run of fields; a format change bumps the version byte instead of adding optional
// fields. A message is u8 version (2), u8 kind, then:
//   1 fw  forward batch  u16 n, n x announce; u16 m, m x scrape
//         announce: u32 txid, info_hash 20, peer_id 20, u8 flags (bit0 IPv6, bit1 want peer ids,
//                   bit2 lookup only),
//                   IP 4|16, u16 port, u64 uploaded, u64 downloaded, u64 left, u8 event (0..3),
//                   u8 families (1..3), i32 numwant, u32 key
//         scrape:   u32 txid, u8 n (1..74), n x info_hash 20
//   2 rp  reply batch    u16 n, n x announce reply; u16 m, m x scrape reply
//         each starts u32 txid, u8 status (0 ok, 1 failure, 2 not owner); failure: u16 length +
//         reason; not owner: nothing; ok announce: u32 complete, incomplete, downloaded,
//         interval_s, min_interval_s, u16 n4, n4 x compact IPv4 peer (IP 4 + port 2), u16 n6,
//         n6 x compact IPv6 peer (IP 16 + port 2), u16 n, n x reply peer (the peers with an
//         id); ok scrape: u8 n (0..74), n x (info_hash 20, u32 complete, u32 downloaded,
//         u32 incomplete)
//   3 rs  replicate      u8 purpose, u32 txid, u16 n, n x swarm
//         swarm: info_hash 20, u32 downloaded, u32 peers, u32 gone, the snapshot peers, then the
//                gone addresses (u8 flags (bit0 IPv6) + IP + port)
//   4 pr  pull request   u32 txid, from id 20, to id 20 (the range (from, to])
//   5 dn  transfer done  u32 txid, u8 purpose, u32 swarms sent
//   6 ak  transfer ack   u32 txid
// Reply peer: u8 flags (bit0 IPv6) + IP + port + peer id 20.
// Snapshot peer: u8 flags (bit0 IPv6, bit1 has peer id, bit2 seeder) + u32 TTL in ms + IP + port
// + [peer id 20]. Unknown flag bits and bytes after the last field are errors, not extensions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/expected.hpp"
#include "dht/node_id.hpp"
#include "tracker/announce.hpp"
#include "tracker/swarm_store.hpp"

namespace ringtracker::tracker {

/// The first byte of every message: the messages of another format version are malformed here.
/// 2: announce replies carry peers without an id in compact form, by family.
/// 3: bundles (several messages for one node in one payload).
inline constexpr std::uint8_t kClusterFormatVersion = 3;

/// Bounds of one cluster message. Each is a reason, not a tuning knob.
struct ClusterLimits {
  /// The ring's app message is at most 65507 bytes (one IPv4 UDP datagram); its envelope (kind,
  /// txid, sender node string, key names) takes under 128 bytes, so payloads stop well short.
  static constexpr std::size_t kPayloadBytesMax = 65'000;
  /// Replication chunks aim for this size. 8 KiB is 6 IP fragments on a 1500-byte MTU instead of
  /// 45 for a 64 KiB datagram: losing one fragment loses the datagram, so the cost of a loss is
  /// bounded, a default 208 KiB socket buffer holds ~25 chunks instead of 3, and a joining node
  /// still takes ~150 swarms (or ~550 peers) per datagram.
  static constexpr std::size_t kReplicateChunkBytes = 8 * 1024;
  /// Forward batches and replies are cut at this size (a reply with 200 peers and ids is ~6 KiB;
  /// a batch may carry several).
  static constexpr std::size_t kBatchBytesTarget = 32 * 1024;
  /// BEP 15: a UDP scrape carries at most 74 info-hashes; HTTP scrapes are split to match.
  static constexpr std::size_t kScrapeHashesMax = 74;
  /// Items per batch: bounds the work of one datagram (~760 minimal announces fill
  /// kPayloadBytesMax, but a batch is cut at kBatchBytesTarget long before).
  static constexpr std::size_t kBatchItemsMax = 512;
  /// Swarm entries per replicate message (a swarm entry is at least 32 bytes).
  static constexpr std::size_t kSwarmsPerMessageMax = 2048;
  /// Failure reasons are short human sentences.
  static constexpr std::size_t kReasonBytesMax = 512;
};

struct ForwardedAnnounce {
  std::uint32_t txid = 0;
  AnnounceRequest request;
  bool want_peer_ids = false;
};

struct ForwardedScrape {
  std::uint32_t txid = 0;
  std::vector<InfoHash> info_hashes;  // 1 .. kScrapeHashesMax
};

/// Requests from one node to the owner of their info-hashes.
struct ForwardBatch {
  std::vector<ForwardedAnnounce> announces;
  std::vector<ForwardedScrape> scrapes;
};

enum class ReplyStatus : std::uint8_t {
  ok,
  failure,    // `failure` is the reason the client is shown
  not_owner,  // the key is not in the answering node's (predecessor, self]
};

struct AnnounceReply {
  std::uint32_t txid = 0;
  ReplyStatus status = ReplyStatus::ok;
  /// Ok only. Decoded, the peers without an id are in result.compact4 / compact6 (copied from
  /// the message as they are), those with one in result.peers.
  AnnounceResponse response;
  std::string failure;  // failure only
};

struct ScrapeReply {
  std::uint32_t txid = 0;
  ReplyStatus status = ReplyStatus::ok;
  std::vector<ScrapeEntry> files;  // ok only, in request order
  std::string failure;
};

struct ReplyBatch {
  std::vector<AnnounceReply> announces;
  std::vector<ScrapeReply> scrapes;
};

/// Why swarms travel; the receiver stores them the same way (owned store when it owns the key,
/// else replica store) but the purpose drives counters and the pull/handoff bookkeeping.
enum class TransferPurpose : std::uint8_t {
  delta = 0,    // owner -> replicas, the announces of the last replication tick
  sync = 1,     // owner -> replicas, periodic full re-push (repairs misses)
  pull = 2,     // answer to a PullRequest (join)
  handoff = 3,  // graceful leave, or a range given to a new predecessor
};
inline constexpr std::size_t kTransferPurposeCount = 4;

/// One swarm's changes: peers to upsert (with relative TTLs) and addresses that left.
struct SwarmDelta {
  SwarmSnapshot snapshot;
  std::vector<SocketAddress> gone;
};

struct Replicate {
  TransferPurpose purpose = TransferPurpose::delta;
  std::uint32_t txid = 0;  // the PullRequest's txid for pull, the handoff's for handoff
  std::vector<SwarmDelta> swarms;
};

/// "Send me the swarms with keys in (from, to]" (a joining node to its successor).
struct PullRequest {
  std::uint32_t txid = 0;
  dht::NodeId from;
  dht::NodeId to;
};

/// Ends a pull answer or a handoff: every chunk of `txid` was sent before this one.
struct TransferDone {
  std::uint32_t txid = 0;
  TransferPurpose purpose = TransferPurpose::pull;
  std::uint32_t swarms = 0;
};

/// The receiver of a handoff's TransferDone confirms it (the leaver may then go).
struct TransferAck {
  std::uint32_t txid = 0;
};

using ClusterMessage =
    std::variant<ForwardBatch, ReplyBatch, Replicate, PullRequest, TransferDone, TransferAck>;

enum class ClusterMessageError : std::uint8_t {
  too_large,     // over kPayloadBytesMax
  truncated,     // the bytes end inside a field, or a count's items cannot fit in what is left
  bad_version,   // the first byte is not kClusterFormatVersion
  unknown_kind,  // the kind byte names no message
  bad_field,     // unknown flag bits, an enum out of range, a bad length, a scrape of no hash
  too_many,      // a count over its limit
  trailing,      // bytes after the message's last field
};
inline constexpr std::size_t kClusterMessageErrorCount = 7;
std::string_view to_string(ClusterMessageError e);

/// Decodes untrusted bytes. Never throws; every malformed input is an error.
Expected<ClusterMessage, ClusterMessageError> decode_cluster_message(std::string_view bytes);

/// Appends the encoding of `m` to `out`. Lists must respect ClusterLimits (programmer error
/// otherwise); the caller keeps the total under kPayloadBytesMax with the size helpers below.
void encode_cluster_message(const ClusterMessage& m, std::string& out);
/// The same for a Replicate held by itself (no copy of its swarms into a ClusterMessage).
void encode_cluster_message(const Replicate& m, std::string& out);

/// Several cluster messages for one node in one payload (one datagram instead of several):
/// head, then each message as a 16-bit length and its bytes. Only small messages travel
/// together (kBundleBytesMax: the replication chunks' size, for the same fragment-loss bound).
inline constexpr std::size_t kBundleBytesMax = ClusterLimits::kReplicateChunkBytes;
inline constexpr std::size_t kBundleHeadBytes = 2;
inline constexpr std::size_t kBundleEntryOverheadBytes = 2;
/// Appends `message` (an encoded cluster message, never a bundle) to `bundle`, writing the
/// head first when `bundle` is empty. The caller keeps the total under kBundleBytesMax.
void append_to_bundle(std::string& bundle, std::string_view message);
bool is_bundle(std::string_view bytes);
/// The messages of a bundle, in order; an error for a malformed bundle (a bundle inside, an
/// empty or cut entry, too many bytes). `out` is cleared first.
Expected<void, ClusterMessageError> split_bundle(std::string_view bytes,
                                                 std::vector<std::string_view>& out);

/// Reads a replicate message swarm by swarm, so that a replica merges each as it is read
/// instead of decoding a list of them all first. Checks what decode_cluster_message checks;
/// the swarms before a malformed one have been read by then.
class ReplicateReader {
 public:
  /// nullopt when `bytes` is not a replicate message with a well-formed head (then
  /// decode_cluster_message tells what it is, or why it is malformed).
  static std::optional<ReplicateReader> open(std::string_view bytes);
  TransferPurpose purpose() const { return purpose_; }
  std::uint32_t txid() const { return txid_; }
  /// Reads the next swarm into `out` (its lists are cleared, their capacity kept): true, or
  /// false after the last one; an error for a malformed swarm or bytes after the last.
  Expected<bool, ClusterMessageError> next(SwarmDelta& out);

 private:
  ReplicateReader() = default;
  std::string_view rest_;
  std::size_t left_ = 0;
  TransferPurpose purpose_ = TransferPurpose::delta;
  std::uint32_t txid_ = 0;
};

/// Reads a forward or reply batch item by item into the caller's objects (their strings and
/// lists keep their capacity), so that handling a batch allocates nothing per item: every
/// announce first, then every scrape. Checks what decode_cluster_message checks; the items
/// before a malformed one have been read by then.
template <class Announce, class Scrape>
class BatchReader {
 public:
  /// nullopt when `bytes` is not a batch of this kind with a well-formed head.
  static std::optional<BatchReader> open(std::string_view bytes);
  /// The next announce: true, or false after the last one.
  Expected<bool, ClusterMessageError> next(Announce& out);
  /// The next scrape, once next(Announce&) said false: true, or false after the last one; an
  /// error for bytes after it.
  Expected<bool, ClusterMessageError> next(Scrape& out);

 private:
  BatchReader() = default;
  /// Reads the item at rest_ into `out`.
  template <class Item>
  Expected<bool, ClusterMessageError> read(Item& out);
  Expected<bool, ClusterMessageError> fail(ClusterMessageError e);
  std::string_view rest_;
  std::size_t left_ = 0;
  bool in_scrapes_ = false;
};
using ForwardBatchReader = BatchReader<ForwardedAnnounce, ForwardedScrape>;
using ReplyBatchReader = BatchReader<AnnounceReply, ScrapeReply>;

/// A forward or reply batch built item by item: each item is encoded when added (an owner's
/// answer and its peer list can be freed at once instead of waiting in a batch), the message
/// assembled by finish(). The bytes are those of encode_cluster_message(ForwardBatch or
/// ReplyBatch) with the same items.
template <class Announce, class Scrape>
class BatchWriter {
 public:
  BatchWriter() = default;
  /// A writer that expects a message needing about `room` bytes (another writer's room()):
  /// that much is taken at the first item, instead of growing there through copies.
  explicit BatchWriter(std::size_t room) : last_bytes_(room) {}
  BatchWriter(BatchWriter&&) noexcept = default;
  BatchWriter& operator=(BatchWriter&&) noexcept = default;
  /// Its buffers go back to the thread's BufferPool (a writer lives for one batch or a few).
  ~BatchWriter();
  void add(const Announce& a);
  void add(const Scrape& s);
  std::size_t items() const { return announces_count_ + scrapes_count_; }
  /// The message's size if finished now.
  std::size_t bytes() const;
  /// Appends the message to `out` and starts an empty batch.
  void finish(std::string& out);
  /// Bytes the last finished message needed while it was written (its size, plus the bound
  /// an item is encoded within before it is cut to its size).
  std::size_t room() const { return last_bytes_; }

 private:
  void start();
  std::string message_;  // head, announce count, announces
  std::string scrapes_;
  std::size_t last_bytes_ = 0;  // room() of the last message finished
  std::size_t peak_ = 0;        // the same for the message being written
  std::size_t announces_count_ = 0;
  std::size_t scrapes_count_ = 0;
};
using ForwardBatchWriter = BatchWriter<ForwardedAnnounce, ForwardedScrape>;
using ReplyBatchWriter = BatchWriter<AnnounceReply, ScrapeReply>;

/// Upper bounds of the encoded size of one item inside a message, for chunking.
std::size_t encoded_bytes_max(const ForwardedAnnounce& a);
std::size_t encoded_bytes_max(const ForwardedScrape& s);
std::size_t encoded_bytes_max(const AnnounceReply& r);
std::size_t encoded_bytes_max(const ScrapeReply& r);
std::size_t encoded_bytes_max(const SwarmDelta& d);
/// Bytes of a batch message's envelope (version, kind, counts, purpose, txid), bounded.
inline constexpr std::size_t kEnvelopeBytesMax = 16;
/// Encoded bytes of one snapshot peer (bounded) and fixed per-swarm overhead.
inline constexpr std::size_t kSnapshotPeerBytesMax = 1 + 4 + 16 + 2 + 20;
inline constexpr std::size_t kSwarmEntryOverheadBytes = 20 + 4 + 4 + 4;

}  // namespace ringtracker::tracker
