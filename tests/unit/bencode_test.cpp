#define BOOST_TEST_MODULE bencode
#include "bencode/bencode.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <new>
#include <string>

using namespace ringtracker::bencode;
namespace bdata = boost::unit_test::data;

// Allocations counted through a replaced global operator new (reading a message must not
// allocate per lookup: ring and DHT datagrams are read on the hot path).
namespace {
std::size_t g_allocations = 0;
// Freed through a pointer the optimiser cannot see through: with the deletes below inlined into
// new-expressions, a direct free() would be warned about as a mismatched new/delete pair.
void (*volatile g_release)(void*) = std::free;
}  // namespace

void* operator new(std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { g_release(p); }
void operator delete(void* p, std::size_t) noexcept { g_release(p); }

BOOST_AUTO_TEST_CASE(decodes_nested_dict_and_reads_fields) {
  auto doc = Document::decode("d1:ai42e1:bl3:xyzi-7ee1:c0:e");
  BOOST_REQUIRE(doc);
  auto root = doc->root();
  BOOST_TEST(root.is_dict());
  BOOST_TEST(*root.find_integer("a") == 42);
  BOOST_TEST(root.find("b").list_size() == 2u);
  BOOST_TEST(*root.find("b").list_at(0).string() == "xyz");
  BOOST_TEST(*root.find("b").list_at(1).integer() == -7);
  BOOST_TEST(*root.find_string("c") == "");
  BOOST_TEST(!root.find("zz"));
  BOOST_TEST(!root.find_integer("b"));
}

BOOST_AUTO_TEST_CASE(document_survives_move_with_short_buffer) {
  auto doc = Document::decode("3:abc");
  BOOST_REQUIRE(doc);
  Document moved = std::move(*doc);
  BOOST_TEST(*moved.root().string() == "abc");
}

static const char* kHostile[] = {
    "",
    "d",
    "l",
    "i12",
    "5:abc",
    "d1:ai1e",
    "de1",
    "i1ei2e",
    "ie",
    "3:",
    "llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllleeeeeeeeee",
    "i99999999999999999999999999e",
    "x",
    "-1:a",
    "d3:abci1e",
};

BOOST_DATA_TEST_CASE(rejects_hostile_input_without_crash, bdata::make(kHostile), text) {
  auto doc = Document::decode(text);
  if (doc) {
    // Anything accepted must still be a single well-formed value readable without faults.
    (void)doc->root().type();
  }
  BOOST_TEST(!doc);
}

// libtorrent's decoder is lenient about non-canonical integers and key order; these decode,
// and must read back sensibly rather than crash.
BOOST_AUTO_TEST_CASE(accepts_non_canonical_forms_leniently) {
  BOOST_TEST(*Document::decode("i-0e")->root().integer() == 0);
  BOOST_TEST(*Document::decode("i01e")->root().integer() == 1);
  BOOST_TEST(Document::decode("d1:b0:1:a0:e")->root().dict_size() == 2u);
}

BOOST_AUTO_TEST_CASE(rejects_message_over_byte_limit) {
  DecodeLimits limits;
  limits.bytes_max = 10;
  BOOST_TEST(!Document::decode("11:hello world", limits));
  BOOST_TEST(Document::decode("5:hello", limits).has_value());
}

BOOST_AUTO_TEST_CASE(writer_round_trips_through_decoder) {
  std::string out;
  Writer w(out);
  w.begin_dict()
      .kv("a", -5)
      .kv("b", std::string_view("\0x", 2))
      .string("c")
      .begin_list()
      .integer(1)
      .end()
      .end();
  BOOST_TEST(out == std::string("d1:ai-5e1:b2:\0x1:cli1eee", 24));
  auto doc = Document::decode(out);
  BOOST_REQUIRE(doc);
  BOOST_TEST(doc->root().find_string("b")->size() == 2u);
}

BOOST_AUTO_TEST_CASE(decode_view_reads_the_callers_bytes_like_decode) {
  const std::string bytes = "d1:ai42e1:x5:helloe";
  auto copied = Document::decode(bytes);
  auto viewed = Document::decode_view(bytes);
  BOOST_REQUIRE(copied.has_value());
  BOOST_REQUIRE(viewed.has_value());
  BOOST_TEST(*viewed->root().find("a").integer() == 42);
  BOOST_TEST(*viewed->root().find("x").string() == "hello");
  // Borrowed: the string it returns points into the caller's buffer, not a copy.
  const void* in_caller = bytes.data() + bytes.find("hello");
  BOOST_TEST(static_cast<const void*>(viewed->root().find("x").string()->data()) == in_caller);
  BOOST_TEST(static_cast<const void*>(copied->root().find("x").string()->data()) != in_caller);
  // The same limits and errors.
  BOOST_TEST(!Document::decode_view("").has_value());
  BOOST_TEST(!Document::decode_view("i1eX").has_value());
  DecodeLimits tight;
  tight.bytes_max = 4;
  BOOST_TEST(!Document::decode_view(bytes, tight).has_value());
}

BOOST_AUTO_TEST_CASE(reading_a_decoded_document_allocates_nothing) {
  const std::string bytes = "d1:ad2:idi7e1:t2:xye1:bli1ei2ei3ee1:c3:xyze";
  auto doc = Document::decode_view(bytes);
  BOOST_REQUIRE(doc);
  const std::size_t before = g_allocations;
  std::int64_t sum = 0;
  std::size_t chars = 0;
  for (int round = 0; round < 10; ++round) {
    const Node root = doc->root();
    const Node inner = root.find("a");
    sum += inner.find_integer("id").value_or(0);
    chars += inner.find_string("t").value_or("").size();
    const Node list = root.find("b");
    for (std::size_t i = 0; i < list.list_size(); ++i) sum += list.list_at(i).integer().value_or(0);
    Node copy = list;
    copy = root.find("c");
    chars += copy.string().value_or("").size();
    const auto [key, value] = root.dict_at(0);
    chars += key.size() + (value.is_dict() ? 1 : 0);
  }
  BOOST_TEST(g_allocations == before);
  BOOST_TEST(sum == 10 * (7 + 1 + 2 + 3));
  BOOST_TEST(chars == 10u * (2 + 3 + 1 + 1));
}
