// RingTransport on loopback: queued datagrams leave only at flush() (or when the queue is full),
// in the order queued; one the socket refuses is counted and the others still go; a wakeup reads
// more datagrams than one recvmmsg holds; with secrets, a signed datagram arrives as its body and
// one signed under another secret is dropped and counted; flush() yields the CPU once when
// asked to and it sent something.
#define BOOST_TEST_MODULE ring_transport
#include "dht/ring_transport.hpp"

#include <event2/event.h>

#include <boost/test/unit_test.hpp>
#include <memory>
#include <string>
#include <vector>

using namespace ringtracker;
using namespace ringtracker::dht;

namespace {

struct Base {
  Base() : base(event_base_new()) { BOOST_REQUIRE(base); }
  ~Base() { event_base_free(base); }
  /// Runs the loop until nothing is ready (non-blocking passes, a few to let loopback deliver).
  void settle() const {
    for (int i = 0; i < 20; ++i) event_base_loop(base, EVLOOP_NONBLOCK);
  }
  event_base* base;
};

struct Endpoint {
  explicit Endpoint(event_base* base)
      : transport(
            base,
            RingTransport::Hooks{
                [this](TimePoint, const SocketAddress& from, std::span<const std::uint8_t> bytes) {
                  received.emplace_back(reinterpret_cast<const char*>(bytes.data()), bytes.size());
                  senders.push_back(from);
                },
                [](TimePoint) {}}) {
    auto bound = transport.open(*SocketAddress::parse("127.0.0.1:0"));
    BOOST_REQUIRE(bound);
    address = *bound;
  }
  RingTransport transport;
  SocketAddress address;
  std::vector<std::string> received;
  std::vector<SocketAddress> senders;
};

std::span<const std::uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

BOOST_AUTO_TEST_CASE(queued_datagrams_leave_at_flush_in_order) {
  Base b;
  Endpoint a(b.base), c(b.base);
  a.transport.queue(c.address, bytes_of("one"));
  a.transport.queue(c.address, bytes_of("two"));
  a.transport.queue(c.address, bytes_of("three"));
  b.settle();
  BOOST_TEST(c.received.empty());  // nothing leaves before the flush
  a.transport.flush();
  b.settle();
  BOOST_TEST(c.received == (std::vector<std::string>{"one", "two", "three"}),
             boost::test_tools::per_element());
  BOOST_REQUIRE_EQUAL(c.senders.size(), 3u);
  BOOST_TEST((c.senders[0] == a.address));
  BOOST_TEST(a.transport.send_failures() == 0u);
  a.transport.flush();  // an empty flush sends nothing
  b.settle();
  BOOST_TEST(c.received.size() == 3u);
}

BOOST_AUTO_TEST_CASE(a_full_queue_leaves_without_waiting_and_one_wakeup_reads_it_all) {
  Base b;
  Endpoint a(b.base), c(b.base);
  const unsigned total = RingTransport::kSendBatch + 5;  // also > kReceiveBatch per recvmmsg
  static_assert(RingTransport::kSendBatch + 5 > RingTransport::kReceiveBatch);
  for (unsigned i = 0; i < total; ++i) a.transport.queue(c.address, bytes_of(std::to_string(i)));
  b.settle();
  BOOST_TEST(c.received.size() == RingTransport::kSendBatch);  // the full queue went by itself
  a.transport.flush();
  b.settle();
  BOOST_REQUIRE_EQUAL(c.received.size(), total);
  for (unsigned i = 0; i < total; ++i) BOOST_TEST(c.received[i] == std::to_string(i));
}

BOOST_AUTO_TEST_CASE(a_refused_datagram_is_counted_and_the_others_still_go) {
  Base b;
  Endpoint a(b.base), c(b.base);
  a.transport.queue(c.address, bytes_of("before"));
  // An IPv6 destination from an IPv4 socket: the kernel refuses that one message.
  a.transport.queue(*SocketAddress::parse("[::1]:9"), bytes_of("nowhere"));
  a.transport.queue(c.address, bytes_of("after"));
  a.transport.flush();
  b.settle();
  BOOST_TEST(c.received == (std::vector<std::string>{"before", "after"}),
             boost::test_tools::per_element());
  BOOST_TEST(a.transport.send_failures() == 1u);
}

BOOST_AUTO_TEST_CASE(signed_datagrams_arrive_as_their_body_and_foreign_ones_are_dropped) {
  Base b;
  Endpoint a(b.base), c(b.base), stranger(b.base);
  BOOST_REQUIRE(a.transport.set_secrets({"cluster secret"}));
  BOOST_REQUIRE(c.transport.set_secrets({"cluster secret"}));
  BOOST_REQUIRE(stranger.transport.set_secrets({"another secret"}));
  a.transport.queue(c.address, bytes_of("hello ring"));
  stranger.transport.queue(c.address, bytes_of("let me in"));
  a.transport.flush();
  stranger.transport.flush();
  b.settle();
  BOOST_TEST(c.received == (std::vector<std::string>{"hello ring"}),
             boost::test_tools::per_element());
  BOOST_TEST(c.transport.unauthenticated_drops() == 1u);
}

BOOST_AUTO_TEST_CASE(destruction_sends_what_is_queued) {
  Base b;
  Endpoint c(b.base);
  {
    Endpoint a(b.base);
    a.transport.queue(c.address, bytes_of("last words"));
  }
  b.settle();
  BOOST_TEST(c.received == (std::vector<std::string>{"last words"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(flush_yields_once_after_sending_when_asked_and_never_for_nothing) {
  Base b;
  Endpoint a(b.base), c(b.base);
  a.transport.queue(c.address, bytes_of("off"));
  a.transport.flush();
  BOOST_TEST(a.transport.yields() == 0u);  // off by default
  a.transport.set_yield_after_send(true);
  a.transport.queue(c.address, bytes_of("one"));
  a.transport.queue(c.address, bytes_of("two"));
  a.transport.flush();
  BOOST_TEST(a.transport.yields() == 1u);  // once per flush, not per datagram
  a.transport.flush();
  BOOST_TEST(a.transport.yields() == 1u);  // nothing sent: no yield
  a.transport.queue(*SocketAddress::parse("[::1]:9"), bytes_of("refused"));
  a.transport.flush();
  BOOST_TEST(a.transport.yields() == 1u);  // the kernel took nothing: no yield
  BOOST_TEST(a.transport.send_failures() == 1u);
  // A full queue leaves inside queue(), mid-pass: only the flush that ends the pass yields.
  for (unsigned i = 0; i < RingTransport::kSendBatch + 1; ++i)
    a.transport.queue(c.address, bytes_of(std::to_string(i)));
  BOOST_TEST(a.transport.yields() == 1u);
  a.transport.flush();
  BOOST_TEST(a.transport.yields() == 2u);
  b.settle();
  BOOST_TEST(c.received.size() == 3u + RingTransport::kSendBatch + 1);
}
