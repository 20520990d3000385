// DhtNode (BEP 5 front end): queries are answered with this node's id; nodes enter the table
// only after answering a ping; get_peers and announce_peer come out as PeerQuery and their
// completion is the reply a client sees (token, nodes, values of the asker's family); tokens
// are bound to the asker's IP and expire after two epochs; unanswered pings make a node bad;
// bootstrap asks the configured nodes and pings what they return.
#define BOOST_TEST_MODULE dht_node
#include "dht/dht_node.hpp"

#include <boost/test/unit_test.hpp>

#include <variant>

#include "bencode/bencode.hpp"

using namespace ringtracker;
using namespace ringtracker::dht;

namespace {

TimePoint at(std::int64_t s) {
  return TimePoint{} + std::chrono::hours(1000) + std::chrono::seconds(s);
}

SocketAddress addr(const char* text) { return *SocketAddress::parse(text); }

NodeId nid(std::uint8_t first, std::uint8_t last = 0) {
  std::array<std::uint8_t, 20> b{};
  b[0] = first;
  b[19] = last;
  return NodeId(b);
}

const NodeId kSelf = nid(0x55);
const NodeId kHash = nid(0x77, 7);

DhtNodeConfig config(std::vector<SocketAddress> bootstrap = {}) {
  DhtNodeConfig c;
  c.id = kSelf;
  c.token_secret.fill(0x42);
  c.bootstrap = std::move(bootstrap);
  return c;
}

std::vector<DhtNode::Transmit> drain(DhtNode& n) {
  std::vector<DhtNode::Transmit> out;
  while (auto t = n.poll_transmit()) out.push_back(std::move(*t));
  return out;
}

krpc::Message decoded(const DhtNode::Transmit& t) {
  auto m = krpc::decode(t.bytes);
  BOOST_REQUIRE_MESSAGE(m.has_value(), "node sent undecodable bytes");
  return *m;
}

std::string ping_from(const NodeId& sender, std::string_view txid = "p1") {
  std::string q;
  krpc::encode_ping_query(q, txid, sender);
  return q;
}

std::string get_peers_from(const NodeId& sender, std::string_view txid = "g1") {
  std::string q;
  bencode::Writer w(q);
  w.begin_dict().string("a").begin_dict().kv("id", sender.as_string_view());
  w.kv("info_hash", kHash.as_string_view()).end();
  w.kv("q", "get_peers").kv("t", txid).kv("y", "q").end();
  return q;
}

std::string announce_from(const NodeId& sender, std::string_view token, int port,
                          bool implied, bool seed = false) {
  std::string q;
  bencode::Writer w(q);
  w.begin_dict().string("a").begin_dict().kv("id", sender.as_string_view());
  if (implied) w.kv("implied_port", 1);
  w.kv("info_hash", kHash.as_string_view()).kv("port", port);
  if (seed) w.kv("seed", 1);
  w.kv("token", token).end();
  w.kv("q", "announce_peer").kv("t", "a1").kv("y", "q").end();
  return q;
}

std::string answer(std::string_view txid, const NodeId& sender,
                   const std::vector<krpc::Contact>& nodes = {}) {
  std::string r;
  krpc::encode_nodes_reply(r, krpc::ReplyHead{txid, sender, addr("127.0.0.1:1")}, nodes, {});
  return r;
}

/// Lets `peer` answer the ping the node just sent it, so that it enters the table.
void answer_ping(DhtNode& n, const std::vector<DhtNode::Transmit>& sent, const NodeId& id,
                 const SocketAddress& peer, TimePoint now) {
  for (const auto& t : sent) {
    if (t.to != peer) continue;
    auto m = decoded(t);
    if (auto* q = std::get_if<krpc::Query>(&m); q && q->method == krpc::Method::ping) {
      BOOST_TEST(!n.handle_datagram(answer(q->transaction_id, id), peer, now).has_value());
      return;
    }
  }
  BOOST_FAIL("no ping was sent to " << peer.to_string());
}

/// A node that knows `peer` (it queried, was pinged and answered).
void learn(DhtNode& n, const NodeId& id, const SocketAddress& peer, TimePoint now) {
  n.handle_datagram(ping_from(id), peer, now);
  answer_ping(n, drain(n), id, peer, now);
}

std::uint64_t counter(const DhtNode& n, std::string_view name) {
  for (auto& [k, v] : n.counters())
    if (k == name) return v;
  BOOST_FAIL("no counter " << name);
  return 0;
}

}  // namespace

BOOST_AUTO_TEST_CASE(ping_is_answered_and_the_unknown_sender_pinged_back) {
  DhtNode n(config(), at(0));
  const auto client = addr("127.0.0.1:7000");
  BOOST_TEST(!n.handle_datagram(ping_from(nid(0x80)), client, at(0)).has_value());
  auto sent = drain(n);
  BOOST_REQUIRE(sent.size() == 2U);
  auto reply = decoded(sent[0]);
  BOOST_REQUIRE(std::holds_alternative<krpc::Response>(reply));
  BOOST_TEST((std::get<krpc::Response>(reply).sender == kSelf));
  BOOST_TEST(std::get<krpc::Response>(reply).transaction_id == "p1");
  auto ping = decoded(sent[1]);
  BOOST_REQUIRE(std::holds_alternative<krpc::Query>(ping));
  BOOST_TEST((std::get<krpc::Query>(ping).method == krpc::Method::ping));
  // Not in the table before it answers.
  BOOST_TEST(n.nodes(false) == 0U);
  answer_ping(n, sent, nid(0x80), client, at(1));
  BOOST_TEST(n.nodes(false) == 1U);
  // A second query from it needs no ping.
  n.handle_datagram(ping_from(nid(0x80), "p2"), client, at(2));
  BOOST_TEST(drain(n).size() == 1U);
}

BOOST_AUTO_TEST_CASE(read_only_sender_is_answered_but_never_pinged) {
  DhtNode n(config(), at(0));
  std::string q;
  bencode::Writer w(q);
  w.begin_dict().string("a").begin_dict().kv("id", nid(0x80).as_string_view()).end();
  w.kv("q", "ping").kv("ro", 1).kv("t", "r1").kv("y", "q").end();
  n.handle_datagram(q, addr("127.0.0.1:7000"), at(0));
  BOOST_TEST(drain(n).size() == 1U);
}

BOOST_AUTO_TEST_CASE(answer_from_another_address_or_id_is_dropped) {
  DhtNode n(config(), at(0));
  const auto client = addr("127.0.0.1:7000");
  n.handle_datagram(ping_from(nid(0x80)), client, at(0));
  auto sent = drain(n);
  const auto ping = std::get<krpc::Query>(decoded(sent.at(1)));
  n.handle_datagram(answer(ping.transaction_id, nid(0x80)), addr("127.0.0.1:7001"), at(1));
  n.handle_datagram(answer(ping.transaction_id, nid(0x81)), client, at(1));
  n.handle_datagram(answer("zz", nid(0x80)), client, at(1));
  BOOST_TEST(n.nodes(false) == 0U);
  BOOST_TEST(counter(n, "drop_unexpected_response") == 3U);
}

BOOST_AUTO_TEST_CASE(find_node_returns_closest_nodes_but_not_the_asker) {
  DhtNode n(config(), at(0));
  for (std::uint8_t i = 1; i <= 12; ++i) {
    learn(n, nid(static_cast<std::uint8_t>(i * 16)),
          SocketAddress{addr("127.0.0.1:1").ip, static_cast<std::uint16_t>(7000 + i)}, at(0));
  }
  BOOST_TEST(n.nodes(false) == 12U);
  const auto asker = addr("127.0.0.1:7001");  // the node with id 0x10
  std::string q;
  krpc::encode_find_node_query(q, "f1", nid(0x10), nid(0x20));
  n.handle_datagram(q, asker, at(1));
  auto sent = drain(n);
  BOOST_REQUIRE(sent.size() == 1U);
  const auto r = std::get<krpc::Response>(decoded(sent[0]));
  BOOST_TEST(r.nodes.size() == DhtNode::kNodesPerReply);
  BOOST_TEST((r.nodes[0].id == nid(0x20)));
  for (const auto& c : r.nodes) BOOST_TEST((c.address != asker));
  for (std::size_t i = 1; i < r.nodes.size(); ++i)
    BOOST_TEST(xor_closer(r.nodes[i - 1].id, r.nodes[i].id, nid(0x20)));
}

BOOST_AUTO_TEST_CASE(get_peers_is_handed_out_and_completed_with_token_and_values) {
  DhtNode n(config(), at(0));
  const auto client = addr("127.0.0.1:7000");
  auto pq = n.handle_datagram(get_peers_from(nid(0x80)), client, at(0));
  BOOST_REQUIRE(pq.has_value());
  BOOST_TEST(!pq->announce);
  BOOST_TEST((pq->info_hash == kHash));
  BOOST_TEST((pq->peer == client));
  drain(n);  // the ping back
  std::vector<SocketAddress> peers{addr("127.0.0.2:1"), addr("[::1]:2"), client};
  for (int i = 0; i < 40; ++i)
    peers.push_back(SocketAddress{addr("127.0.0.3:1").ip, static_cast<std::uint16_t>(100 + i)});
  n.complete_get_peers(*pq, peers);
  auto sent = drain(n);
  BOOST_REQUIRE(sent.size() == 1U);
  BOOST_TEST((sent[0].to == client));
  auto doc = bencode::Document::decode(sent[0].bytes);
  BOOST_REQUIRE(doc.has_value());
  const auto r = doc->root().find("r");
  BOOST_TEST(r.find_string("token").value_or("") == n.token_for_test(client.ip, at(0)));
  const auto values = r.find("values");
  BOOST_TEST(values.list_size() == DhtNode::kValuesMax);
  for (std::size_t i = 0; i < values.list_size(); ++i) {
    const auto v = values.list_at(i).string().value_or("");
    BOOST_TEST(v.size() == 6U);                                      // IPv4 only
    BOOST_TEST(v != std::string("\x7f\x00\x00\x01\x1b\x58", 6));  // never the asker
  }
}

BOOST_AUTO_TEST_CASE(announce_needs_the_token_given_to_its_ip) {
  DhtNode n(config(), at(0));
  const auto client = addr("127.0.0.1:7000");
  const std::string token = n.token_for_test(client.ip, at(0));
  auto ok = n.handle_datagram(announce_from(nid(0x80), token, 6881, false, true), client, at(60));
  BOOST_REQUIRE(ok.has_value());
  BOOST_TEST(ok->announce);
  BOOST_TEST((ok->peer == addr("127.0.0.1:6881")));
  BOOST_TEST(ok->seed);
  drain(n);
  n.complete_announce(*ok);
  auto sent = drain(n);
  BOOST_REQUIRE(sent.size() == 1U);
  BOOST_TEST((std::get<krpc::Response>(decoded(sent[0])).sender == kSelf));

  // implied_port: the datagram's source port is stored.
  auto implied = n.handle_datagram(announce_from(nid(0x80), token, 1, true), client, at(61));
  BOOST_REQUIRE(implied.has_value());
  BOOST_TEST((implied->peer == client));

  // Another IP with the same token, or a made-up token: error 203.
  for (const auto& [from, t] : {std::pair{addr("127.0.0.2:7000"), token},
                                std::pair{client, std::string("12345678")}}) {
    drain(n);
    BOOST_TEST(!n.handle_datagram(announce_from(nid(0x80), t, 6881, false), from, at(62))
                    .has_value());
    auto replies = drain(n);
    BOOST_REQUIRE(!replies.empty());
    BOOST_TEST((replies[0].to == from));
    const auto e = std::get<krpc::Error>(decoded(replies[0]));
    BOOST_TEST(e.code == 203);
    BOOST_TEST(e.message == "bad token");
  }
  BOOST_TEST(counter(n, "bad_tokens") == 2U);
}

BOOST_AUTO_TEST_CASE(token_lives_between_five_and_ten_minutes) {
  DhtNode n(config(), at(0));
  const auto client = addr("127.0.0.1:7000");
  const std::string token = n.token_for_test(client.ip, at(0));
  BOOST_TEST(n.handle_datagram(announce_from(nid(0x80), token, 1, false), client, at(599))
                 .has_value());
  BOOST_TEST(!n.handle_datagram(announce_from(nid(0x80), token, 1, false), client, at(600))
                  .has_value());
  // Issued late in an epoch, it still lives the whole next one.
  const std::string late = n.token_for_test(client.ip, at(299));
  BOOST_TEST(n.handle_datagram(announce_from(nid(0x80), late, 1, false), client, at(301))
                 .has_value());
  BOOST_TEST(n.handle_datagram(announce_from(nid(0x80), late, 1, false), client, at(599))
                 .has_value());
}

BOOST_AUTO_TEST_CASE(unknown_method_and_bad_query_get_errors_garbage_is_dropped) {
  DhtNode n(config(), at(0));
  const auto client = addr("127.0.0.1:7000");
  std::string unknown;
  bencode::Writer w(unknown);
  w.begin_dict().string("a").begin_dict().kv("id", nid(0x80).as_string_view()).end();
  w.kv("q", "put").kv("t", "u1").kv("y", "q").end();
  n.handle_datagram(unknown, client, at(0));
  auto sent = drain(n);
  BOOST_REQUIRE(!sent.empty());
  BOOST_TEST(std::get<krpc::Error>(decoded(sent[0])).code == 204);

  n.handle_datagram("d1:ad2:id3:abce1:q4:ping1:t2:b11:y1:qe", client, at(0));
  sent = drain(n);
  BOOST_REQUIRE(sent.size() == 1U);
  BOOST_TEST(std::get<krpc::Error>(decoded(sent[0])).code == 203);

  n.handle_datagram("GET / HTTP/1.1\r\n\r\n", client, at(0));
  n.handle_datagram("d1:t2:aa1:y1:xe", client, at(0));
  BOOST_TEST(drain(n).empty());
  BOOST_TEST(counter(n, "drop_malformed") == 2U);
  BOOST_TEST(counter(n, "errors_sent") == 2U);
}

BOOST_AUTO_TEST_CASE(unanswered_pings_make_a_node_bad) {
  DhtNode n(config(), at(0));
  const auto peer = addr("127.0.0.1:7000");
  learn(n, nid(0x80), peer, at(0));
  auto near = [&] {
    std::string q;
    krpc::encode_find_node_query(q, "f1", nid(0x81), nid(0x80));
    n.handle_datagram(q, addr("127.0.0.9:9"), at(0));
    auto sent = drain(n);
    return std::get<krpc::Response>(decoded(sent.at(0))).nodes.size();
  };
  BOOST_TEST(near() == 1U);
  // Quiet for 15 minutes: questionable, so maintenance pings it; twice unanswered: bad.
  std::int64_t t = 15 * 60 + 1;
  int pings = 0;
  for (int round = 0; round < 4; ++round, t += 6) {
    n.handle_timeout(at(t));
    for (const auto& s : drain(n)) {
      if (s.to == peer) ++pings;
    }
  }
  BOOST_TEST(pings == 2);
  BOOST_TEST(counter(n, "query_timeouts") >= 2U);
  BOOST_TEST(near() == 0U);
}

BOOST_AUTO_TEST_CASE(bootstrap_asks_for_neighbours_and_pings_them) {
  const auto boot = addr("127.0.0.1:6881");
  DhtNode n(config({boot}), at(0));
  n.handle_timeout(at(0));
  auto sent = drain(n);
  BOOST_REQUIRE(sent.size() == 1U);
  BOOST_TEST((sent[0].to == boot));
  const auto q = std::get<krpc::Query>(decoded(sent[0]));
  BOOST_TEST((q.method == krpc::Method::find_node));
  BOOST_TEST((q.target == kSelf));
  const std::vector<krpc::Contact> theirs{{nid(0x10), addr("127.0.0.1:7001")},
                                          {nid(0x20), addr("127.0.0.1:7002")}};
  n.handle_datagram(answer(q.transaction_id, nid(0x99), theirs), boot, at(1));
  BOOST_TEST(n.nodes(false) == 1U);  // the bootstrap node itself
  sent = drain(n);
  BOOST_REQUIRE(sent.size() == 2U);
  answer_ping(n, sent, nid(0x10), addr("127.0.0.1:7001"), at(2));
  BOOST_TEST(n.nodes(false) == 2U);
  // Still fewer than k nodes: the bootstrap is asked again, but not before the retry period.
  n.handle_timeout(at(10));
  for (const auto& s : drain(n)) BOOST_TEST((s.to != boot));
  n.handle_timeout(at(31));
  bool asked = false;
  for (const auto& s : drain(n)) asked = asked || s.to == boot;
  BOOST_TEST(asked);
}

BOOST_AUTO_TEST_CASE(each_source_ip_gets_its_datagrams_per_second_and_no_more) {
  DhtNodeConfig c = config();
  c.queries_per_ip_per_second = 10;
  DhtNode n(c, at(0));
  const auto flood = addr("127.0.0.1:7000");
  const auto other = addr("127.0.0.2:7000");
  auto replies_to = [&](const SocketAddress& to) {
    std::size_t k = 0;
    for (const auto& t : drain(n)) {
      if (t.to == to && std::holds_alternative<krpc::Response>(decoded(t))) ++k;
    }
    return k;
  };
  for (int i = 0; i < 25; ++i) n.handle_datagram(ping_from(nid(0x80)), flood, at(1));
  BOOST_TEST(replies_to(flood) == 10U);
  BOOST_TEST(counter(n, "drop_rate_limited") == 15U);
  // Another source is not affected; the flooding one gets a new budget the next second.
  n.handle_datagram(ping_from(nid(0x81)), other, at(1));
  BOOST_TEST(replies_to(other) == 1U);
  for (int i = 0; i < 12; ++i) n.handle_datagram(ping_from(nid(0x80)), flood, at(2));
  BOOST_TEST(replies_to(flood) == 10U);
  BOOST_TEST(counter(n, "drop_rate_limited") == 17U);
}

BOOST_AUTO_TEST_CASE(limit_zero_means_no_limit) {
  DhtNodeConfig c = config();
  c.queries_per_ip_per_second = 0;
  DhtNode n(c, at(0));
  for (int i = 0; i < 2000; ++i) n.handle_datagram(ping_from(nid(0x80)), addr("127.0.0.1:1"), at(1));
  BOOST_TEST(counter(n, "drop_rate_limited") == 0U);
  BOOST_TEST(counter(n, "queries_ping") == 2000U);
}
