// The DHT front end's edge: UDP sockets and a timer on the libevent loop around a DhtNode, and
// the bridge that runs its get_peers and announce_peer against the RequestHandler, i.e. the
// same swarms HTTP and UDP announces fill (on a ring node: the owner's, wherever it is).
// KRPC parsing and DHT rules are DhtNode's; this file owns sockets and the clock reading.
#pragma once

#include <event2/event.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/expected.hpp"
#include "common/net_address.hpp"
#include "dht/dht_node.hpp"
#include "tracker/request_handler.hpp"

namespace ringtracker::tracker {

class DhtServer {
 public:
  /// Datagrams per recvmmsg and per sendmmsg call.
  static constexpr unsigned kBatch = 64;
  /// Batches read per readiness callback before yielding to other events (fairness).
  static constexpr unsigned kBatchesPerWakeup = 4;
  /// get_peers / announce_peer waiting for the swarm store (the ring); more are answered
  /// with error 202 at once, so a flood cannot grow memory without bound.
  static constexpr std::size_t kPeerQueriesInFlightMax = 4096;

  DhtServer(event_base* base, RequestHandler& handler, dht::DhtNodeConfig config);
  ~DhtServer();
  DhtServer(const DhtServer&) = delete;
  DhtServer& operator=(const DhtServer&) = delete;

  /// Binds one socket (port 0 picks a free port) with a receive buffer of at least
  /// `receive_buffer_bytes` and returns the bound address. One socket per address family (a
  /// second one of a family is an error); the first listen also starts the maintenance timer.
  Expected<SocketAddress, std::string> listen(const SocketAddress& addr, int receive_buffer_bytes);

  /// This node's DHT id (differs from the ring id: random, or BEP 42's for its IP).
  const dht::NodeId& id() const { return node_.id(); }

  /// Counters by name (the DhtNode's and this edge's), for /stats.
  std::vector<std::pair<std::string, std::uint64_t>> counters() const;

 private:
  struct Socket;
  static void on_readable(evutil_socket_t fd, short what, void* arg) noexcept;
  static void on_timer(evutil_socket_t fd, short what, void* arg) noexcept;
  void drain(Socket& s);
  void run(const dht::DhtNode::PeerQuery& q, TimePoint now);
  void flush();
  void arm_timer(TimePoint now);

  event_base* base_;
  RequestHandler& handler_;
  dht::DhtNode node_;
  std::vector<std::unique_ptr<Socket>> sockets_;
  /// Replies taken from the node, kept until their sendmmsg (reused: no allocation per flush).
  std::vector<dht::DhtNode::Transmit> outgoing_;
  event* timer_ = nullptr;
  std::size_t in_flight_ = 0;
  bool in_drain_ = false;  // replies then wait for the batch's sendmmsg
  /// Cleared on destruction; completions still held by the ring then do nothing.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  std::uint64_t datagrams_received_ = 0;
  std::uint64_t drop_oversized_ = 0;
  std::uint64_t drop_no_socket_ = 0;
  std::uint64_t send_failures_ = 0;
  std::uint64_t refused_busy_ = 0;
  std::uint64_t peer_queries_failed_ = 0;
};

}  // namespace ringtracker::tracker
