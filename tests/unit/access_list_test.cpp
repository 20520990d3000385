#define BOOST_TEST_MODULE access_list
#include "tracker/access_list.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

using namespace ringtracker::tracker;
namespace bdata = boost::unit_test::data;

namespace {
InfoHash hash_of(unsigned char fill) {
  InfoHash h;
  h.fill(fill);
  return h;
}
const char* kListText =
    "# comment line\n"
    "0101010101010101010101010101010101010101\n"
    "  ABABABABABABABABABABABABABABABABABABABAB  # upper case, trailing comment\r\n"
    "\n";
}  // namespace

BOOST_AUTO_TEST_CASE(allow_mode_permits_only_listed_hashes) {
  auto l = AccessList::parse(AccessMode::allow, kListText);
  BOOST_REQUIRE(l.has_value());
  BOOST_TEST(l->size() == 2u);
  BOOST_TEST(l->permits(hash_of(0x01)));
  BOOST_TEST(l->permits(hash_of(0xab)));
  BOOST_TEST(!l->permits(hash_of(0x02)));
}

BOOST_AUTO_TEST_CASE(deny_mode_refuses_only_listed_hashes) {
  auto l = AccessList::parse(AccessMode::deny, kListText);
  BOOST_REQUIRE(l.has_value());
  BOOST_TEST(!l->permits(hash_of(0x01)));
  BOOST_TEST(l->permits(hash_of(0x02)));
}

BOOST_AUTO_TEST_CASE(off_mode_permits_everything) {
  AccessList l;
  BOOST_TEST(l.permits(hash_of(0x77)));
}

static const char* kBad[] = {
    "01010101010101010101010101010101010101\n",      // 38 digits
    "010101010101010101010101010101010101010101\n",  // 42 digits
    "0101010101010101010101010101010101010g01\n",    // not hex
};
BOOST_DATA_TEST_CASE(rejects_malformed_lines, bdata::make(kBad), text) {
  auto l = AccessList::parse(AccessMode::allow, text);
  BOOST_TEST(!l.has_value());
  if (!l) BOOST_TEST(l.error().find("line 1") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(load_reports_missing_file) {
  auto l = AccessList::load(AccessMode::allow, "/nonexistent/ringtracker/list");
  BOOST_TEST(!l.has_value());
}
