// The data layer's messages between ring nodes (carried as the opaque payload of the ring's `app`
// message): forwarded announces and scrapes with their replies, replication batches of swarm
// snapshots, range pulls and handoffs. A pure bencoded codec with hard limits; what a message
// means, and whom it goes to, is ClusterNode's business.
//
// Every message is one dictionary with sorted keys and `y` naming its kind:
//   fw  forward batch   a: list of announces   s: list of scrapes
//       announce: a peer address (packed) d downloaded e event f families h info_hash k key
//                 l left n numwant p peer_id t txid u uploaded w want_peer_ids (0/1)
//       scrape:   h packed info-hashes (20 bytes each, 1..74)  t txid
//   rp  reply batch     a: list of announce replies   s: list of scrape replies
//       ok announce: c complete d downloaded i incomplete m min interval p packed peers t v
//       interval ok scrape:   r packed entries (hash 20, complete, downloaded, incomplete as 4-byte
//       BE) t failure:     f reason t          not owner: o 1 t
//   rs  replicate       k purpose  t txid (pull answers)  w: list of swarms
//       swarm: d downloaded  g packed gone addresses  h info_hash  p packed snapshot peers
//   pr  pull request    a from id  b to id (the range (a, b])  t txid
//   dn  transfer done   k purpose  n swarms sent  t txid
//   ak  transfer ack    t txid
// Packed address: flags(1; bit0 = IPv6) + IP(4|16) + port(2 BE).
// Packed reply peer: flags(1; bit0 = IPv6, bit1 = has peer id) + IP + port + [peer id 20].
// Packed snapshot peer: flags(1; bit0 = IPv6, bit1 = has peer id, bit2 = seeder) + TTL in ms
// (4 BE) + IP + port + [peer id 20]. Unknown keys are ignored so that fields can be added.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/expected.hpp"
#include "dht/node_id.hpp"
#include "tracker/announce.hpp"
#include "tracker/swarm_store.hpp"

namespace ringtracker::tracker {

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
  /// Items per batch: ~250 minimal announces fill kPayloadBytesMax.
  static constexpr std::size_t kBatchItemsMax = 512;
  /// Swarm entries per replicate message (a swarm entry is at least ~40 bytes).
  static constexpr std::size_t kSwarmsPerMessageMax = 2048;
  /// Failure reasons are short human sentences.
  static constexpr std::size_t kReasonBytesMax = 512;
  /// dict -> list -> dict -> value is the deepest legitimate nesting.
  static constexpr int kDepthMax = 4;
  /// A full 65 KB payload of minimal items stays under this; more is hostile.
  static constexpr int kTokensMax = 16'384;
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
  AnnounceResponse response;  // ok only; a peer id is sent only when it is not all zero
  std::string failure;        // failure only
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
  too_large,      // over kPayloadBytesMax
  bencode,        // not one well-formed bencoded value within depth/token limits
  not_dict,       // root (or a list item) is not a dictionary
  unknown_kind,   // `y` names no kind
  missing_field,  // a required key is absent
  bad_field,      // wrong type, length or range
  too_many,       // a list longer than its limit
};
inline constexpr std::size_t kClusterMessageErrorCount = 7;
std::string_view to_string(ClusterMessageError e);

/// Decodes untrusted bytes. Never throws; every malformed input is an error.
Expected<ClusterMessage, ClusterMessageError> decode_cluster_message(std::string_view bytes);

/// Appends the encoding of `m` to `out`. Lists must respect ClusterLimits (programmer error
/// otherwise); the caller keeps the total under kPayloadBytesMax with the size helpers below.
void encode_cluster_message(const ClusterMessage& m, std::string& out);

/// Upper bounds of the encoded size of one item inside a message, for chunking.
std::size_t encoded_bytes_max(const ForwardedAnnounce& a);
std::size_t encoded_bytes_max(const ForwardedScrape& s);
std::size_t encoded_bytes_max(const AnnounceReply& r);
std::size_t encoded_bytes_max(const ScrapeReply& r);
std::size_t encoded_bytes_max(const SwarmDelta& d);
/// Bytes of a message's envelope (kind, lists, purpose, txid), bounded.
inline constexpr std::size_t kEnvelopeBytesMax = 64;
/// Encoded bytes of one snapshot peer (bounded) and fixed per-swarm overhead.
inline constexpr std::size_t kSnapshotPeerBytesMax = 1 + 4 + 16 + 2 + 20;
inline constexpr std::size_t kSwarmEntryOverheadBytes = 80;

}  // namespace ringtracker::tracker
