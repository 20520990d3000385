// KRPC, the mainline DHT's wire format (BEP 5, with BEP 32's IPv6 keys, BEP 33's seed flags,
// BEP 42's "ip" echo and BEP 43's read-only flag): one datagram in, a checked Query, Response or
// Error out, under hard limits; and encoders for every message this node sends. Pure: no
// sockets, no clock; what to answer is DhtNode's business.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/expected.hpp"
#include "common/net_address.hpp"
#include "dht/node_id.hpp"

namespace ringtracker::dht::krpc {

/// Mainline messages fit one Ethernet frame; anything larger is not from a DHT client.
inline constexpr std::size_t kDatagramBytesMax = 1500;
/// Transaction ids are echoed back: clients use 2 to 4 bytes; a long one is refused so that the
/// echo cannot make a reply much larger than its query.
inline constexpr std::size_t kTransactionIdBytesMax = 16;
/// Tokens this node issues are kTokenBytes; other nodes' are read up to this length.
inline constexpr std::size_t kTokenBytesMax = 64;
/// Contacts read from one response per family (k = 8 is what nodes send).
inline constexpr std::size_t kResponseNodesMax = 16;
/// Tokens in one decoded message (bencode's tokens, not DHT tokens): a query has about 20.
inline constexpr int kBencodeTokensMax = 256;
/// Nesting of a message: dict -> "a" dict -> "want" list -> string.
inline constexpr int kBencodeDepthMax = 6;
/// Bytes of a compact IPv4 / IPv6 node: id, IP, port.
inline constexpr std::size_t kCompactNode4Bytes = 26;
inline constexpr std::size_t kCompactNode6Bytes = 38;

enum class Method : std::uint8_t { ping, find_node, get_peers, announce_peer, unknown };

/// BEP 5 error codes.
enum class ErrorCode : int { generic = 201, server = 202, protocol = 203, method_unknown = 204 };

/// A node as messages carry it: id and UDP address.
struct Contact {
  NodeId id;
  SocketAddress address;
  bool operator==(const Contact&) const = default;
};

struct Query {
  std::string transaction_id;
  Method method = Method::unknown;
  NodeId sender;
  /// find_node: "target"; get_peers and announce_peer: "info_hash".
  NodeId target;
  /// announce_peer: the port the peer listens on (unless implied_port).
  std::uint16_t port = 0;
  /// announce_peer: use the datagram's source port instead of `port`.
  bool implied_port = false;
  /// announce_peer: the token a get_peers reply gave.
  std::string token;
  /// BEP 43 (top-level "ro"): the sender answers no queries; it must not enter a routing table.
  bool read_only = false;
  /// BEP 32 "want": which families of nodes to return. Neither set: the socket's family.
  bool want_v4 = false;
  bool want_v6 = false;
  /// BEP 33: announce_peer from a seed; get_peers asking for no seeds.
  bool seed = false;
  bool noseed = false;
};

struct Response {
  std::string transaction_id;
  NodeId sender;
  /// "nodes" and "nodes6" together, at most kResponseNodesMax of each family.
  std::vector<Contact> nodes;
};

struct Error {
  std::string transaction_id;
  int code = 0;
  std::string message;
};

using Message = std::variant<Query, Response, Error>;

/// A datagram this node does not accept. When `answerable`, it was a query with a usable
/// transaction id and the caller answers error `code` with `reason`; otherwise it is dropped
/// (and counted) in silence: answering garbage would make this node a reflector.
struct Rejected {
  bool answerable = false;
  std::string transaction_id;
  ErrorCode code = ErrorCode::protocol;
  std::string reason;
};

/// Decodes one datagram (at most kDatagramBytesMax bytes). Unknown keys are ignored (BEP 5
/// messages grow); a query of an unknown method decodes as Method::unknown when its "a" has a
/// valid "id", so that it can be answered with error 204.
Expected<Message, Rejected> decode(std::string_view datagram);

/// What every reply starts with: the transaction id to echo, this node's id, and the address
/// the query came from (BEP 42 echoes it as "ip" so that nodes learn their external address).
struct ReplyHead {
  std::string_view transaction_id;
  NodeId self;
  SocketAddress requester;
};

/// Each encoder appends one whole datagram to `out`.
/// ping and announce_peer replies: just the id.
void encode_id_reply(std::string& out, const ReplyHead& head);
/// find_node reply: compact nodes of each family (either may be empty).
void encode_nodes_reply(std::string& out, const ReplyHead& head,
                        const std::vector<Contact>& nodes4, const std::vector<Contact>& nodes6);
/// get_peers reply: a token, the nodes, and "values" (compact peers) when there are any.
void encode_get_peers_reply(std::string& out, const ReplyHead& head, std::string_view token,
                            const std::vector<Contact>& nodes4, const std::vector<Contact>& nodes6,
                            const std::vector<SocketAddress>& values);
void encode_error(std::string& out, std::string_view transaction_id, ErrorCode code,
                  std::string_view message);
void encode_ping_query(std::string& out, std::string_view transaction_id, const NodeId& self);
/// find_node for `target`, asking for nodes of both families.
void encode_find_node_query(std::string& out, std::string_view transaction_id, const NodeId& self,
                            const NodeId& target);

/// The version this node puts in "v" (BEP 5: two letters of client, two of version).
inline constexpr std::string_view kClientVersion{"RT\x00\x01", 4};

}  // namespace ringtracker::dht::krpc
