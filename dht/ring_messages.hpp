// The ring's wire messages as bencoded dictionaries: a pure codec (bytes <-> RingMessage) with
// hard size, depth and count limits. It checks shape only; whether a sender's id matches its
// address, and what a message means, is RingNode's business.
//
// Every message is one dictionary with sorted keys:
//   q  kind (2-byte string, see MessageKind)      t  transaction id (integer, 0 .. 2^32-1)
//   i  sender node (node string, below)           and per kind:
//   get_state:  r  1 = "and rectify me" (sent to the node the sender takes as successor)
//   state:      p  predecessor (optional node)     n  successor list (list of nodes)
//   find_step:  k  key (20 bytes)
//   find_reply: c  FindCode                        p  predecessor (optional)   n  nodes
//   leave:      p  leaver's predecessor (optional) n  leaver's successor list
//   app:        x  opaque payload (the data layer's own messages, multiplexed on one socket)
//   ping, pong, rectify, hint, leave_ack: no body.
// A node string is id(20) + IPv4(4) or IPv6(16) + port(2, big-endian) [+ vnode(2) when
// non-zero]: 26, 38, 28 or 40 bytes. Unknown keys are ignored so that fields can be added.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/expected.hpp"
#include "dht/node_id.hpp"

namespace ringtracker::dht {

enum class MessageKind : std::uint8_t {
  ping,        // request: are you alive?            -> pong
  pong,        // response to ping
  get_state,   // request: your predecessor and successor list  -> state
  state,       // response to get_state
  rectify,     // one-way: "I may be your predecessor" (Zave 2017, replaces notify)
  hint,        // one-way: "I just joined after you": stabilize now (guarded as usual)
  find_step,   // request: one step of an iterative lookup for `key`  -> find_reply
  find_reply,  // response to find_step
  leave,       // request: I am leaving gracefully; adopt my neighbours  -> leave_ack
  leave_ack,   // response to leave
  app,         // one-way: opaque payload of a higher layer
};
inline constexpr std::size_t kMessageKindCount = 11;
std::string_view to_string(MessageKind kind);

/// What a find_reply says about the key.
enum class FindCode : std::uint8_t {
  self_owner = 0,  // key in (sender.pred, sender]: the sender owns it
  successor = 1,   // key in (sender, nodes[0]]: nodes = sender's successor list
  next = 2,        // nodes = closest preceding nodes of the key the sender knows, best first
};

/// Bounds on one message. Each is a named reason, not a tuning knob.
struct MessageLimits {
  // Large enough for an app payload the size of a full IPv4 UDP datagram, no larger.
  static constexpr std::size_t kBytesMax = 65507;
  // Successor lists are at most r <= kNodesMax long; 32 x 40 bytes still fits a 1500-byte MTU.
  static constexpr std::size_t kNodesMax = 32;
  // dict -> list -> string is the deepest legitimate nesting.
  static constexpr int kDepthMax = 4;
  // 10 known keys (20 tokens) + a full node list, with slack for a few future keys.
  static constexpr int kTokensMax = 128;
};

/// A fixed-capacity list of nodes: decoding never allocates for it.
class NodeList {
 public:
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool full() const { return size_ == MessageLimits::kNodesMax; }
  void clear() { size_ = 0; }
  /// Returns false (and drops `n`) when full.
  bool push_back(const NodeRef& n) {
    if (full()) return false;
    items_[size_++] = n;
    return true;
  }
  const NodeRef& operator[](std::size_t i) const { return items_[i]; }
  const NodeRef* begin() const { return items_.data(); }
  const NodeRef* end() const { return items_.data() + size_; }

 private:
  std::array<NodeRef, MessageLimits::kNodesMax> items_{};
  std::size_t size_ = 0;
};

/// One decoded message. Fields not used by `kind` keep their defaults.
struct RingMessage {
  MessageKind kind = MessageKind::ping;
  std::uint32_t txid = 0;
  NodeRef sender;
  bool rectify = false;                 // get_state
  std::optional<NodeRef> predecessor;   // state, find_reply, leave
  NodeList nodes;                       // state, find_reply, leave
  NodeId key;                           // find_step
  FindCode code = FindCode::next;       // find_reply
  std::string payload;                  // app

  /// Resets every field (keeps the payload's capacity).
  void clear();
};

enum class MessageError : std::uint8_t {
  too_large,       // over MessageLimits::kBytesMax
  bencode,         // not one well-formed bencoded value within the depth/token limits
  not_dict,        // root is not a dictionary
  missing_field,   // a field the kind requires is absent
  bad_field,       // a field has the wrong type, length or range
  unknown_kind,    // `q` names no MessageKind
  bad_node,        // a node string of the wrong length or port 0
  too_many_nodes,  // a node list longer than kNodesMax
};
inline constexpr std::size_t kMessageErrorCount = 8;
std::string_view to_string(MessageError e);

/// Decodes untrusted `bytes` into `out` (reused, so a hot receive path does not allocate for
/// the node list). On error `out` holds unspecified but valid values. Never throws.
Expected<void, MessageError> decode_message(std::span<const std::uint8_t> bytes, RingMessage& out);
/// Convenience for tests and cold paths.
Expected<RingMessage, MessageError> decode_message(std::span<const std::uint8_t> bytes);

/// Appends the encoding of `m` to `out`. `m` must respect the limits (at most kNodesMax nodes,
/// payload such that the total stays under kBytesMax): violating them is a programmer error.
void encode_message(const RingMessage& m, std::string& out);

/// The node-string form described above, exposed for tests.
void encode_node(const NodeRef& n, std::string& out);
std::optional<NodeRef> decode_node(std::string_view s);

}  // namespace ringtracker::dht
