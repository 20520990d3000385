// UdpServer on a real loopback socket and event loop, with a handler that answers late (as a
// ring node does when the owner is another node).
#define BOOST_TEST_MODULE udp_server
#include "tracker/udp_server.hpp"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/test/unit_test.hpp>
#include <ctime>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/socket_util.hpp"
#include "tracker/connection_id.hpp"
#include "tracker/counters.hpp"
#include "tracker/udp_codec.hpp"

using namespace ringtracker;
using namespace ringtracker::tracker;

namespace {

/// Keeps every announce's completion to answer later; records the prefetch hints.
class LateHandler final : public RequestHandler {
 public:
  std::vector<AnnounceDone> pending;
  std::vector<InfoHash> hinted;
  void announce(const AnnounceRequest&, TimePoint, AnnounceDone done) override {
    pending.push_back(std::move(done));
  }
  void scrape(const ScrapeRequest&, TimePoint, ScrapeDone done) override {
    done(Unexpected(std::string("no scrapes here")));
  }
  void prefetch(std::span<const InfoHash> hashes) override {
    hinted.insert(hinted.end(), hashes.begin(), hashes.end());
  }
};

struct Fixture {
  std::unique_ptr<event_base, void (*)(event_base*)> base{event_base_new(), event_base_free};
  ConnectionIds ids = ConnectionIds::from_secrets({"a test secret"});
  Counters counters;
  LateHandler handler;
  UdpServer server{base.get(), handler, ids, counters};
  SocketAddress at;
  int client = ::socket(AF_INET, SOCK_DGRAM, 0);

  Fixture() {
    std::uint8_t lo[4] = {127, 0, 0, 1};
    auto bound = server.listen(SocketAddress{IpAddress::v4(lo), 0}, 1 << 20);
    BOOST_REQUIRE(bound.has_value());
    at = *bound;
    BOOST_REQUIRE(client >= 0);
    timeval tv{0, 200'000};  // a receive that finds nothing returns, so a test cannot hang
    ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Fixture() { ::close(client); }

  void send_announce(std::uint8_t n) {
    udp::AnnouncePacket p;
    std::uint8_t lo[4] = {127, 0, 0, 1};
    p.connection_id = ids.issue(IpAddress::v4(lo), static_cast<std::int64_t>(std::time(nullptr)));
    p.transaction_id = n;
    p.request.info_hash.fill(n);
    p.request.peer_id.fill(n);
    p.request.peer.port = 6881;
    std::array<std::uint8_t, udp::kRequestBytesMax> buf{};
    const std::size_t len = udp::write_announce_request(p, buf);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(at.port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::sendto(client, buf.data(), len, 0, reinterpret_cast<sockaddr*>(&to),
                           sizeof to) == static_cast<ssize_t>(len));
  }

  /// Runs loop passes until the handler holds `n` announces (or gives up).
  void read_until(std::size_t n) {
    for (int i = 0; i < 100 && handler.pending.size() < n; ++i) {
      event_base_loop(base.get(), EVLOOP_ONCE | EVLOOP_NONBLOCK);
      if (handler.pending.size() < n) ::usleep(1000);
    }
    BOOST_REQUIRE_EQUAL(handler.pending.size(), n);
  }

  /// Transaction ids of the answers waiting at the client now (without running the loop).
  std::vector<std::uint32_t> answers_waiting() {
    std::vector<std::uint32_t> tids;
    std::array<std::uint8_t, 2048> buf{};
    for (;;) {
      const ssize_t r = ::recv(client, buf.data(), buf.size(), MSG_DONTWAIT);
      if (r < 8) return tids;
      tids.push_back((std::uint32_t{buf[4]} << 24) | (std::uint32_t{buf[5]} << 16) |
                     (std::uint32_t{buf[6]} << 8) | buf[7]);
    }
  }
};

}  // namespace

// A second tracker started on a port in use must fail to start, not share the port and take
// part of the first one's datagrams; nor may the kernel hand a port in use to a socket bound to
// port 0 (three daemons of a benchmark once got one node's port).
BOOST_FIXTURE_TEST_CASE(a_port_in_use_is_an_error_never_shared, Fixture) {
  Counters other_counters;
  LateHandler other_handler;
  UdpServer other{base.get(), other_handler, ids, other_counters};
  auto same = other.listen(at, 1 << 16);
  BOOST_REQUIRE(!same.has_value());
  BOOST_TEST(same.error().find("in use") != std::string::npos, same.error());
  std::uint8_t lo[4] = {127, 0, 0, 1};
  std::vector<int> fds;
  std::set<std::uint16_t> ports{at.port};
  bool unique = true;
  for (int i = 0; i < 900 && unique; ++i) {
    auto bound = open_bound_udp_socket(SocketAddress{IpAddress::v4(lo), 0}, 0);
    BOOST_REQUIRE(bound.has_value());
    fds.push_back(bound->fd);
    unique = ports.insert(bound->address.port).second;
    BOOST_TEST(unique, "port " << bound->address.port << " handed out twice");
  }
  for (const int fd : fds) ::close(fd);
}

BOOST_FIXTURE_TEST_CASE(batch_of_announces_is_hinted_to_the_handler_before_it_answers, Fixture) {
  for (std::uint8_t n = 1; n <= 3; ++n) send_announce(n);
  // Loopback delivers at sendto: all three wait in the socket, one recvmmsg batch.
  read_until(3);
  BOOST_REQUIRE_EQUAL(handler.hinted.size(), 3U);
  for (std::uint8_t n = 1; n <= 3; ++n) BOOST_TEST(handler.hinted[n - 1U][0] == n);
}

BOOST_FIXTURE_TEST_CASE(late_answers_leave_when_flushed_without_waiting_for_the_loop, Fixture) {
  send_announce(7);
  send_announce(8);
  read_until(2);
  for (auto& done : handler.pending) done(AnnounceResponse{});
  BOOST_TEST(answers_waiting().empty());  // queued for the end of the loop pass
  server.flush_answers();
  BOOST_TEST((answers_waiting() == std::vector<std::uint32_t>{7, 8}));
  // The loop's own flush later finds nothing more to send.
  event_base_loop(base.get(), EVLOOP_ONCE | EVLOOP_NONBLOCK);
  BOOST_TEST(answers_waiting().empty());
}
