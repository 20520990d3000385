#define BOOST_TEST_MODULE ring_messages
#include "dht/ring_messages.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "dht/prng.hpp"

using namespace ringtracker;
using namespace ringtracker::dht;
namespace bdata = boost::unit_test::data;

namespace {

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

NodeRef random_node(Prng& rng) {
  NodeRef n;
  std::array<std::uint8_t, 20> id{};
  for (auto& b : id) b = static_cast<std::uint8_t>(rng.next());
  n.id = NodeId(id);
  std::uint8_t ip[16];
  for (auto& b : ip) b = static_cast<std::uint8_t>(rng.next());
  if (rng.below(2)) {
    n.address.ip = IpAddress::v4(ip);
  } else {
    ip[0] = 0x20;  // never v4-mapped
    n.address.ip = IpAddress::v6(ip);
  }
  n.address.port = static_cast<std::uint16_t>(1 + rng.below(65535));
  n.vnode = rng.below(3) == 0 ? static_cast<std::uint16_t>(1 + rng.below(65535)) : 0;
  return n;
}

RingMessage random_message(Prng& rng, MessageKind kind) {
  RingMessage m;
  m.kind = kind;
  m.txid = static_cast<std::uint32_t>(rng.next());
  m.sender = random_node(rng);
  switch (kind) {
    case MessageKind::get_state: m.rectify = rng.below(2); break;
    case MessageKind::find_step: m.key = random_node(rng).id; break;
    case MessageKind::find_reply: m.code = static_cast<FindCode>(rng.below(3)); break;
    case MessageKind::app: {
      auto len = rng.below(300);
      for (std::uint64_t i = 0; i < len; ++i) m.payload.push_back(static_cast<char>(rng.next()));
      break;
    }
    default: break;
  }
  if (kind == MessageKind::state || kind == MessageKind::find_reply || kind == MessageKind::leave) {
    if (rng.below(2)) m.predecessor = random_node(rng);
    auto count = rng.below(MessageLimits::kNodesMax + 1);
    if (kind == MessageKind::find_reply && m.code != FindCode::self_owner && count == 0) count = 1;
    for (std::uint64_t i = 0; i < count; ++i) m.nodes.push_back(random_node(rng));
  }
  return m;
}

void require_equal(const RingMessage& a, const RingMessage& b) {
  BOOST_TEST(static_cast<int>(a.kind) == static_cast<int>(b.kind));
  BOOST_TEST(a.txid == b.txid);
  BOOST_TEST((a.sender == b.sender));
  BOOST_TEST(a.rectify == b.rectify);
  BOOST_TEST(a.predecessor.has_value() == b.predecessor.has_value());
  if (a.predecessor && b.predecessor) BOOST_TEST((*a.predecessor == *b.predecessor));
  BOOST_REQUIRE(a.nodes.size() == b.nodes.size());
  for (std::size_t i = 0; i < a.nodes.size(); ++i) BOOST_TEST((a.nodes[i] == b.nodes[i]));
  BOOST_TEST((a.key == b.key));
  BOOST_TEST(static_cast<int>(a.code) == static_cast<int>(b.code));
  BOOST_TEST(a.payload == b.payload);
}

}  // namespace

BOOST_DATA_TEST_CASE(every_kind_round_trips_for_many_seeds, bdata::xrange(200), seed) {
  Prng rng(static_cast<std::uint64_t>(seed) * 7919 + 1);
  for (std::size_t k = 0; k < kMessageKindCount; ++k) {
    auto m = random_message(rng, static_cast<MessageKind>(k));
    std::string wire;
    encode_message(m, wire);
    auto back = decode_message(bytes_of(wire));
    BOOST_REQUIRE_MESSAGE(back.has_value(), "seed " << seed << " kind " << k << " error "
                                                    << (back ? "" : to_string(back.error())));
    require_equal(m, *back);
  }
}

BOOST_AUTO_TEST_CASE(decoding_into_a_reused_message_forgets_old_fields) {
  Prng rng(5);
  auto big = random_message(rng, MessageKind::state);
  big.nodes.clear();
  for (int i = 0; i < 5; ++i) big.nodes.push_back(random_node(rng));
  std::string w1, w2;
  encode_message(big, w1);
  auto small = random_message(rng, MessageKind::ping);
  encode_message(small, w2);
  RingMessage m;
  BOOST_REQUIRE(decode_message(bytes_of(w1), m));
  BOOST_TEST(m.nodes.size() == 5u);
  BOOST_REQUIRE(decode_message(bytes_of(w2), m));
  BOOST_TEST(m.nodes.size() == 0u);
  BOOST_TEST(!m.predecessor);
}

BOOST_AUTO_TEST_CASE(node_string_lengths_match_the_documented_layout) {
  Prng rng(1);
  NodeRef n = random_node(rng);
  n.address = *SocketAddress::parse("10.1.2.3:6881");
  n.vnode = 0;
  std::string s;
  encode_node(n, s);
  BOOST_TEST(s.size() == 26u);
  n.vnode = 7;
  s.clear();
  encode_node(n, s);
  BOOST_TEST(s.size() == 28u);
  auto back = decode_node(s);
  BOOST_REQUIRE(back);
  BOOST_TEST((*back == n));
}

namespace {
// A well-formed ping's sender: 20 id bytes + 127.0.0.1 + port 6969.
std::string sender_string() {
  std::string s(20, 'A');
  s += std::string("\x7f\x00\x00\x01\x1b\x39", 6);
  return s;
}
std::string with_sender(std::string_view before, std::string_view after) {
  return std::string(before) + "1:i26:" + sender_string() + std::string(after);
}

struct HostileCase {
  const char* name;
  std::string bytes;
  MessageError expected;
};
std::ostream& operator<<(std::ostream& os, const HostileCase& c) { return os << c.name; }

std::vector<HostileCase> hostile_cases() {
  std::vector<HostileCase> v;
  v.push_back({"empty", "", MessageError::not_dict});
  v.push_back({"list_root", "le", MessageError::not_dict});
  v.push_back({"integer_root", "i1e", MessageError::not_dict});
  v.push_back({"truncated_dict", "d1:q2:pi", MessageError::bencode});
  v.push_back({"trailing_garbage", with_sender("d", "1:q2:pi1:ti1ee") + "x", MessageError::bencode});
  v.push_back({"too_deep", "d1:xlllllleeeeeee", MessageError::bencode});
  v.push_back({"missing_kind", with_sender("d", "1:ti1ee"), MessageError::missing_field});
  v.push_back({"kind_not_string", with_sender("d", "1:qi1e1:ti1ee"), MessageError::bad_field});
  v.push_back({"unknown_kind", with_sender("d", "1:q2:zz1:ti1ee"), MessageError::unknown_kind});
  v.push_back({"missing_txid", with_sender("d", "1:q2:pie"), MessageError::missing_field});
  v.push_back({"negative_txid", with_sender("d", "1:q2:pi1:ti-1ee"), MessageError::bad_field});
  v.push_back({"txid_over_32_bits", with_sender("d", "1:q2:pi1:ti4294967296ee"),
               MessageError::bad_field});
  v.push_back({"txid_overflowing_int64", with_sender("d", "1:q2:pi1:ti99999999999999999999ee"),
               MessageError::bad_field});
  v.push_back({"missing_sender", "d1:q2:pi1:ti1ee", MessageError::missing_field});
  v.push_back({"sender_19_bytes", "d1:i19:" + std::string(19, 'x') + "1:q2:pi1:ti1ee",
               MessageError::bad_node});
  v.push_back({"sender_port_zero",
               "d1:i26:" + std::string(20, 'A') + std::string("\x7f\x00\x00\x01\x00\x00", 6) +
                   "1:q2:pi1:ti1ee",
               MessageError::bad_node});
  v.push_back({"sender_v4_mapped_v6",
               "d1:i38:" + std::string(20, 'A') +
                   std::string("\0\0\0\0\0\0\0\0\0\0\xff\xff\x7f\0\0\x01\x1b\x39", 18) +
                   "1:q2:pi1:ti1ee",
               MessageError::bad_node});
  v.push_back({"sender_explicit_vnode_zero",
               "d1:i28:" + sender_string() + std::string("\0\0", 2) + "1:q2:pi1:ti1ee",
               MessageError::bad_node});
  v.push_back({"find_step_without_key", with_sender("d", "1:q2:fs1:ti1ee"),
               MessageError::missing_field});
  v.push_back({"find_step_key_19_bytes",
               with_sender("d", "1:k19:" + std::string(19, 'k') + "1:q2:fs1:ti1ee"),
               MessageError::bad_field});
  v.push_back({"state_without_nodes", with_sender("d", "1:q2:st1:ti1ee"),
               MessageError::missing_field});
  v.push_back({"state_nodes_not_list", with_sender("d", "1:ni1e1:q2:st1:ti1ee"),
               MessageError::bad_field});
  v.push_back({"state_node_not_string", with_sender("d", "1:nli1ee1:q2:st1:ti1ee"),
               MessageError::bad_node});
  std::string many = "1:nl";
  for (std::size_t i = 0; i < MessageLimits::kNodesMax + 1; ++i) many += "26:" + sender_string();
  many += "e1:q2:st1:ti1ee";
  v.push_back({"state_33_nodes", with_sender("d", many), MessageError::too_many_nodes});
  v.push_back({"state_pred_bad", with_sender("d", "1:nle1:p3:abc1:q2:st1:ti1ee"),
               MessageError::bad_node});
  v.push_back({"garbage_first_byte", with_sender("c", ""), MessageError::not_dict});
  v.push_back({"find_reply_code_3", "d1:ci3e" + with_sender("", "1:nle1:q2:fr1:ti1ee"),
               MessageError::bad_field});
  v.push_back({"find_reply_next_without_nodes", "d1:ci2e" + with_sender("", "1:nle1:q2:fr1:ti1ee"),
               MessageError::bad_field});
  v.push_back({"get_state_rectify_2", with_sender("d", "1:q2:gs1:ri2e1:ti1ee"),
               MessageError::bad_field});
  v.push_back({"app_without_payload", with_sender("d", "1:q2:ap1:ti1ee"),
               MessageError::missing_field});
  v.push_back({"app_payload_integer", with_sender("d", "1:q2:ap1:ti1e1:xi5ee"),
               MessageError::bad_field});
  v.push_back({"string_length_beyond_end", "d1:q99999:pie", MessageError::bencode});
  v.push_back({"oversize", std::string(MessageLimits::kBytesMax + 1, 'd'), MessageError::too_large});
  std::string tokens = "d1:xl";
  for (int i = 0; i < 200; ++i) tokens += "i1e";
  tokens += "ee";
  v.push_back({"too_many_tokens", tokens, MessageError::bencode});
  return v;
}
}  // namespace

BOOST_DATA_TEST_CASE(rejects_hostile_input_with_the_right_error, bdata::make(hostile_cases()), c) {
  auto r = decode_message(bytes_of(c.bytes));
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(to_string(r.error()) == to_string(c.expected));
}

BOOST_AUTO_TEST_CASE(ignores_unknown_keys_for_forward_compatibility) {
  auto wire = with_sender("d", "1:q2:pi1:ti7e1:zi1ee");
  auto r = decode_message(bytes_of(wire));
  BOOST_REQUIRE(r);
  BOOST_TEST(r->txid == 7u);
}

BOOST_AUTO_TEST_CASE(random_bytes_and_mutations_never_crash) {
  Prng rng(99);
  std::string base;
  encode_message(random_message(rng, MessageKind::state), base);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string b = base;
    auto flips = 1 + rng.below(4);
    for (std::uint64_t f = 0; f < flips; ++f) b[rng.below(b.size())] = static_cast<char>(rng.next());
    if (rng.below(4) == 0) b.resize(rng.below(b.size() + 1));
    if (decode_message(bytes_of(b))) ++accepted;
  }
  BOOST_TEST(accepted < 20000);  // mutations are mostly caught; none may crash
}
