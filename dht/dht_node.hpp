// The mainline DHT node (BEP 5) that lets DHT-only clients use the tracker as a trackerless
// backbone: it answers ping, find_node, get_peers and announce_peer, keeps one routing table
// per address family, issues and checks tokens, and pings the nodes it learns. Sans-IO: bytes
// and `now` in, datagrams out (poll_transmit); peers are not stored here: a get_peers or
// announce_peer comes out as a PeerQuery that the caller runs against the swarm store (the
// ring, on a ring node) and finishes with complete_* or fail.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "common/net_address.hpp"
#include "dht/krpc.hpp"
#include "dht/node_id.hpp"
#include "dht/prng.hpp"
#include "dht/routing_table.hpp"

namespace ringtracker::dht {

struct DhtNodeConfig {
  /// This node's id in the DHT.
  NodeId id;
  /// Secret behind the tokens (random per process; nobody else checks them).
  std::array<std::uint8_t, 20> token_secret{};
  /// Nodes asked for their neighbours at start and whenever a table is empty.
  std::vector<SocketAddress> bootstrap;
  std::size_t bucket_size = RoutingTable::kBucketSizeDefault;
  /// Datagrams accepted per source IP and second (0 = no limit). A reply can be ten times its
  /// query, so without a limit a spoofed source makes this node a reflector; one client
  /// starting many torrents stays far below the default.
  static constexpr std::uint32_t kQueriesPerIpPerSecondDefault = 500;
  std::uint32_t queries_per_ip_per_second = kQueriesPerIpPerSecondDefault;
  /// Seeds transaction ids and bucket refresh targets (not secret).
  std::uint64_t seed = 1;
};

class DhtNode {
 public:
  /// Tokens are a MAC of the asker's IP under a secret of the current epoch; BEP 5 accepts
  /// tokens up to 10 minutes old, so the current and the previous epoch verify.
  static constexpr Duration kTokenEpoch = std::chrono::minutes(5);
  static constexpr std::size_t kTokenBytes = 8;
  /// Our own queries (pings of new and questionable nodes, bootstrap find_node).
  static constexpr Duration kQueryTimeout = std::chrono::seconds(5);
  /// Our queries in flight; a node that cannot be pinged now is simply not added (counted).
  static constexpr std::size_t kPendingQueriesMax = 256;
  /// Datagrams waiting for poll_transmit (the edge drains after every call, so only a burst
  /// of completions can fill it; beyond this they are dropped and counted).
  static constexpr std::size_t kTransmitQueueMax = 4096;
  /// How often a questionable contact is pinged and an empty table re-bootstraps.
  static constexpr Duration kMaintenancePeriod = std::chrono::seconds(5);
  static constexpr Duration kBootstrapRetry = std::chrono::seconds(30);
  /// BEP 5: buckets are refreshed every 15 minutes (a find_node towards a random id near ours,
  /// which keeps the neighbourhood known).
  static constexpr Duration kRefreshPeriod = std::chrono::minutes(15);
  /// Nodes in a find_node or get_peers reply (K).
  static constexpr std::size_t kNodesPerReply = 8;
  /// Peers in one get_peers reply: with 8 nodes of each family an IPv6 reply stays under
  /// 1280 bytes (the IPv6 minimum MTU), so it is never fragmented.
  static constexpr std::size_t kValuesMax = 32;

  struct Transmit {
    SocketAddress to;
    std::string bytes;
  };

  /// A get_peers (announce == false) or an announce_peer with a valid token, to be run against
  /// the swarm store. `peer` is the address to store (announce) or the asker (get_peers, never
  /// returned to itself).
  struct PeerQuery {
    bool announce = false;
    std::string transaction_id;
    SocketAddress from;
    NodeId info_hash;
    SocketAddress peer;
    bool seed = false;    // announce: BEP 33 "seed"
    bool noseed = false;  // get_peers: BEP 33 "noseed"
    bool want_v4 = false;
    bool want_v6 = false;
    /// get_peers: the token handed out with the answer (made when the query came).
    std::string token;
  };

  /// Sources tracked by the per-IP limit: a fixed table (no growth under a flood), indexed by
  /// a keyed hash of the IP so that nobody can aim collisions; a collision only resets the
  /// other source's count.
  static constexpr std::size_t kLimiterSlots = 4096;

  DhtNode(DhtNodeConfig config, TimePoint now);

  /// One datagram from `from`. Replies and pings are queued for poll_transmit; a get_peers or
  /// a valid announce_peer is returned instead of answered.
  std::optional<PeerQuery> handle_datagram(std::string_view bytes, const SocketAddress& from,
                                           TimePoint now);
  /// Answers a get_peers with `peers` (at most kValuesMax are sent), a token and the nodes.
  void complete_get_peers(const PeerQuery& q, const std::vector<SocketAddress>& peers);
  /// Answers an announce_peer that was stored.
  void complete_announce(const PeerQuery& q);
  /// Answers a PeerQuery with an error (the store refused it, or the ring timed out).
  void fail(const PeerQuery& q, krpc::ErrorCode code, std::string_view reason);

  /// Times out our queries, pings a questionable contact, bootstraps and refreshes.
  void handle_timeout(TimePoint now);
  TimePoint poll_timeout() const { return next_maintenance_; }
  std::optional<Transmit> poll_transmit();

  std::size_t nodes(bool v6) const { return table(v6).size(); }
  const RoutingTable& table(bool v6) const { return v6 ? table6_ : table4_; }
  const NodeId& id() const { return config_.id; }
  /// Event counters by name, for /stats.
  std::vector<std::pair<std::string_view, std::uint64_t>> counters() const;

  /// The token this node gives `ip` at `now` (exposed for tests).
  std::string token_for_test(const IpAddress& ip, TimePoint now) const { return token(ip, now, 0); }

 private:
  enum class Sent : std::uint8_t { ping, find_node };
  struct Pending {
    SocketAddress to;
    NodeId expected;  // the id we think answers (zero for a bootstrap node)
    Sent kind;
    TimePoint deadline;
  };

  bool within_rate(const IpAddress& ip, TimePoint now);
  std::string token(const IpAddress& ip, TimePoint now, int epochs_back) const;
  bool token_valid(std::string_view t, const IpAddress& ip, TimePoint now) const;
  RoutingTable& table(bool v6) { return v6 ? table6_ : table4_; }
  krpc::ReplyHead head(std::string_view txid, const SocketAddress& to) const;
  void nodes_for(const NodeId& target, const SocketAddress& asker, bool want_v4, bool want_v6,
                 std::vector<krpc::Contact>& nodes4, std::vector<krpc::Contact>& nodes6) const;
  std::optional<PeerQuery> answer_query(const krpc::Query& q, const SocketAddress& from,
                                        TimePoint now);
  /// Learns the sender of a query: an unknown node its bucket could take is pinged.
  void on_query(const krpc::Query& q, const SocketAddress& from, TimePoint now);
  void on_response(const krpc::Response& r, const SocketAddress& from, TimePoint now);
  void send_query(const SocketAddress& to, const NodeId& expected, Sent kind,
                  const NodeId& target, TimePoint now);
  void queue(const SocketAddress& to, std::string bytes);
  void error(const SocketAddress& to, std::string_view txid, krpc::ErrorCode code,
             std::string_view reason);

  DhtNodeConfig config_;
  Prng rng_;
  TimePoint epoch_origin_;
  RoutingTable table4_;
  RoutingTable table6_;
  struct LimiterSlot {
    IpAddress ip;
    std::int64_t second = -1;
    std::uint32_t count = 0;
  };
  std::vector<LimiterSlot> limiter_;
  std::uint64_t limiter_key_;
  std::unordered_map<std::uint16_t, Pending> pending_;
  std::uint16_t next_txid_ = 0;
  std::deque<Transmit> out_;
  TimePoint next_maintenance_;
  TimePoint next_bootstrap_;
  TimePoint next_refresh_;

  struct Counts {
    std::uint64_t queries_ping = 0;
    std::uint64_t queries_find_node = 0;
    std::uint64_t queries_get_peers = 0;
    std::uint64_t queries_announce_peer = 0;
    std::uint64_t queries_unknown = 0;
    std::uint64_t errors_sent = 0;
    std::uint64_t bad_tokens = 0;
    std::uint64_t drop_malformed = 0;
    std::uint64_t drop_rate_limited = 0;
    std::uint64_t drop_unexpected_response = 0;
    std::uint64_t drop_transmit_full = 0;
    std::uint64_t queries_sent = 0;
    std::uint64_t answers_received = 0;
    std::uint64_t errors_received = 0;
    std::uint64_t query_timeouts = 0;
    std::uint64_t pings_skipped_pending_full = 0;
  } counts_;
};

}  // namespace ringtracker::dht
