// KRPC codec: BEP 5's example queries decode to what they mean, hostile datagrams are either
// answered with a protocol error (a query with a usable transaction id) or dropped in silence,
// and every encoder's output decodes back (through the codec or the bencode reader).
#define BOOST_TEST_MODULE krpc
#include "dht/krpc.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "bencode/bencode.hpp"

using namespace ringtracker;
using namespace ringtracker::dht;
using namespace ringtracker::dht::krpc;

namespace {

const std::string kId = "abcdefghij0123456789";
const std::string kTarget = "mnopqrstuvwxyz123456";

NodeId id_of(const std::string& s) { return *NodeId::from_bytes(std::string_view(s)); }

Query query_of(std::string_view bytes) {
  auto m = decode(bytes);
  BOOST_REQUIRE_MESSAGE(m.has_value(), "refused: " << (m ? "" : m.error().reason));
  auto* q = std::get_if<Query>(&*m);
  BOOST_REQUIRE(q != nullptr);
  return *q;
}

SocketAddress addr(const char* text) { return *SocketAddress::parse(text); }

}  // namespace

BOOST_AUTO_TEST_CASE(decodes_bep5_ping) {
  const Query q = query_of("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe");
  BOOST_TEST((q.method == Method::ping));
  BOOST_TEST(q.transaction_id == "aa");
  BOOST_TEST((q.sender == id_of(kId)));
  BOOST_TEST(!q.read_only);
}

BOOST_AUTO_TEST_CASE(decodes_bep5_find_node_and_get_peers) {
  const Query f = query_of(
      "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe");
  BOOST_TEST((f.method == Method::find_node));
  BOOST_TEST((f.target == id_of(kTarget)));
  const Query g = query_of(
      "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234566:noseedi1ee"
      "1:q9:get_peers1:t2:aa1:y1:qe");
  BOOST_TEST((g.method == Method::get_peers));
  BOOST_TEST((g.target == id_of(kTarget)));
  BOOST_TEST(g.noseed);
}

BOOST_AUTO_TEST_CASE(decodes_bep5_announce_peer_with_flags) {
  const Query a = query_of(
      "d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz123456"
      "4:porti6881e4:seedi1e5:token8:aoeusnth4:wantl2:n42:n6ee"
      "1:q13:announce_peer2:roi1e1:t2:aa1:y1:qe");
  BOOST_TEST((a.method == Method::announce_peer));
  BOOST_TEST(a.port == 6881);
  BOOST_TEST(a.implied_port);
  BOOST_TEST(a.token == "aoeusnth");
  BOOST_TEST(a.seed);
  BOOST_TEST(a.read_only);
  BOOST_TEST(a.want_v4);
  BOOST_TEST(a.want_v6);
}

BOOST_AUTO_TEST_CASE(unknown_method_with_valid_id_decodes_for_an_answer) {
  const Query q = query_of("d1:ad2:id20:abcdefghij0123456789e1:q3:get1:t1:x1:y1:qe");
  BOOST_TEST((q.method == Method::unknown));
  BOOST_TEST(q.transaction_id == "x");
}

struct Hostile {
  const char* name;
  std::string bytes;
  bool answerable;
};

std::ostream& operator<<(std::ostream& os, const Hostile& h) { return os << h.name; }

const Hostile kHostile[] = {
    {"empty", "", false},
    {"not a dictionary", "li1ee", false},
    {"not bencode", "d1:ad2:id20:abc", false},
    {"trailing garbage", "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qeXX", false},
    {"no transaction id", "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:y1:qe", false},
    {"empty transaction id", "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t0:1:y1:qe", false},
    {"transaction id of 17 bytes",
     "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t17:aaaaaaaaaaaaaaaaa1:y1:qe", false},
    {"no type", "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aae", false},
    {"unknown type", "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:xe", false},
    {"query without method", "d1:ad2:id20:abcdefghij0123456789e1:t2:aa1:y1:qe", true},
    {"query without arguments", "d1:q4:ping1:t2:aa1:y1:qe", true},
    {"id of 19 bytes", "d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t2:aa1:y1:qe", true},
    {"find_node without target", "d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:aa1:y1:qe",
     true},
    {"get_peers with short info_hash",
     "d1:ad2:id20:abcdefghij01234567899:info_hash3:abce1:q9:get_peers1:t2:aa1:y1:qe", true},
    {"announce without token",
     "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti6881ee"
     "1:q13:announce_peer1:t2:aa1:y1:qe",
     true},
    {"announce with port 0",
     "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti0e"
     "5:token2:tte1:q13:announce_peer1:t2:aa1:y1:qe",
     true},
    {"announce with port 70000",
     "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti70000e"
     "5:token2:tte1:q13:announce_peer1:t2:aa1:y1:qe",
     true},
    {"announce with token of 65 bytes",
     "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti1e5:token65:" +
         std::string(65, 'k') + "e1:q13:announce_peer1:t2:aa1:y1:qe",
     true},
    {"response without r", "d1:t2:aa1:y1:re", false},
    {"response with short id", "d1:rd2:id3:abce1:t2:aa1:y1:re", false},
    {"response with nodes of 25 bytes",
     "d1:rd2:id20:abcdefghij01234567895:nodes25:" + std::string(25, 'n') + "e1:t2:aa1:y1:re",
     false},
    {"nested too deep", std::string(40, 'l') + std::string(40, 'e'), false},
    {"oversized", "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:q1:z1500:" +
                      std::string(1500, 'z') + "e",
     false},
};

BOOST_DATA_TEST_CASE(hostile_datagrams_are_refused, boost::unit_test::data::make(kHostile), h) {
  auto m = decode(h.bytes);
  BOOST_TEST(!m.has_value());
  if (m.has_value()) return;
  BOOST_TEST(m.error().answerable == h.answerable);
  BOOST_TEST(!m.error().reason.empty());
  if (h.answerable) {
    BOOST_TEST(m.error().transaction_id == "aa");
    BOOST_TEST((m.error().code == ErrorCode::protocol));
  }
}

BOOST_AUTO_TEST_CASE(error_encoding_matches_bep5_example_plus_version) {
  std::string out;
  encode_error(out, "aa", ErrorCode::generic, "A Generic Error Ocurred");
  BOOST_TEST(out == std::string("d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:v4:RT\x00\x01"
                                "1:y1:ee",
                                60));
  auto m = decode(out);
  BOOST_REQUIRE(m.has_value());
  const auto& e = std::get<Error>(*m);
  BOOST_TEST(e.code == 201);
  BOOST_TEST(e.message == "A Generic Error Ocurred");
}

BOOST_AUTO_TEST_CASE(find_node_query_and_nodes_reply_round_trip) {
  std::string q;
  encode_find_node_query(q, "zz", id_of(kId), id_of(kTarget));
  const Query fq = query_of(q);
  BOOST_TEST((fq.method == Method::find_node));
  BOOST_TEST((fq.target == id_of(kTarget)));
  BOOST_TEST(fq.want_v4);
  BOOST_TEST(fq.want_v6);

  const std::vector<Contact> n4{{id_of(kTarget), addr("10.1.2.3:6881")},
                                {id_of(kId), addr("127.0.0.1:1")}};
  const std::vector<Contact> n6{{id_of(kTarget), addr("[2001:db8::7]:51413")}};
  std::string r;
  encode_nodes_reply(r, ReplyHead{"zz", id_of(kId), addr("192.0.2.9:4000")}, n4, n6);
  auto m = decode(r);
  BOOST_REQUIRE(m.has_value());
  const auto& resp = std::get<Response>(*m);
  BOOST_TEST(resp.transaction_id == "zz");
  BOOST_TEST((resp.sender == id_of(kId)));
  BOOST_REQUIRE(resp.nodes.size() == 3U);
  BOOST_TEST((resp.nodes[0] == n4[0]));
  BOOST_TEST((resp.nodes[1] == n4[1]));
  BOOST_TEST((resp.nodes[2] == n6[0]));
  // BEP 42: the requester's address, compact.
  auto doc = bencode::Document::decode(r);
  BOOST_REQUIRE(doc.has_value());
  BOOST_TEST(doc->root().find_string("ip").value_or("") == std::string("\xc0\x00\x02\x09\x0f\xa0", 6));
}

BOOST_AUTO_TEST_CASE(get_peers_reply_carries_token_and_compact_values) {
  std::string r;
  encode_get_peers_reply(r, ReplyHead{"t1", id_of(kId), addr("127.0.0.1:7000")}, "TOKEN123", {},
                         {}, {addr("127.0.0.2:6881"), addr("[::1]:80")});
  auto doc = bencode::Document::decode(r);
  BOOST_REQUIRE(doc.has_value());
  const auto reply = doc->root().find("r");
  BOOST_TEST(reply.find_string("token").value_or("") == "TOKEN123");
  BOOST_TEST(reply.find_string("id").value_or("") == kId);
  BOOST_TEST(reply.find_string("nodes").value_or("x").empty());  // present, empty
  BOOST_TEST(!reply.find("nodes6"));
  const auto values = reply.find("values");
  BOOST_REQUIRE(values.list_size() == 2U);
  BOOST_TEST(values.list_at(0).string().value_or("") == std::string("\x7f\x00\x00\x02\x1a\xe1", 6));
  BOOST_TEST(values.list_at(1).string().value_or("").size() == 18U);
  BOOST_TEST(doc->root().find_string("y").value_or("") == "r");
  BOOST_TEST(doc->root().find_string("t").value_or("") == "t1");

  std::string empty;
  encode_get_peers_reply(empty, ReplyHead{"t1", id_of(kId), addr("127.0.0.1:7000")}, "TOKEN123",
                         {{id_of(kTarget), addr("10.0.0.1:1")}}, {}, {});
  auto d2 = bencode::Document::decode(empty);
  BOOST_REQUIRE(d2.has_value());
  BOOST_TEST(!d2->root().find("r").find("values"));
  BOOST_TEST(d2->root().find("r").find_string("nodes").value_or("").size() == kCompactNode4Bytes);
}

BOOST_AUTO_TEST_CASE(ping_query_and_reply_round_trip) {
  std::string q;
  encode_ping_query(q, "pp", id_of(kTarget));
  const Query pq = query_of(q);
  BOOST_TEST((pq.method == Method::ping));
  BOOST_TEST((pq.sender == id_of(kTarget)));
  std::string r;
  encode_id_reply(r, ReplyHead{"pp", id_of(kId), addr("[::1]:6881")});
  auto m = decode(r);
  BOOST_REQUIRE(m.has_value());
  BOOST_TEST((std::get<Response>(*m).sender == id_of(kId)));
  BOOST_TEST(std::get<Response>(*m).nodes.empty());
}
