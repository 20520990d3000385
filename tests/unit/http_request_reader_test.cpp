#define BOOST_TEST_MODULE http_request_reader
// GCC 12 at -O2 reports a false -Wrestrict inside Boost.Test's data-case name builder.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include "tracker/http_request_reader.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <ostream>
#include <random>
#include <string>
#include <vector>

using namespace ringtracker::tracker::http;
namespace bdata = boost::unit_test::data;
using Status = HttpRequestReader::Status;

// Found by argument-dependent lookup so BOOST_TEST can print these enums in failure messages.
namespace ringtracker::tracker::http {
inline std::ostream& boost_test_print_type(std::ostream& os, HeadError e) {
  return os << "HeadError(" << static_cast<int>(e) << ")";
}
inline std::ostream& boost_test_print_type(std::ostream& os, Method m) {
  return os << "Method(" << static_cast<int>(m) << ")";
}
inline std::ostream& boost_test_print_type(std::ostream& os, HttpRequestReader::Status s) {
  return os << "Status(" << static_cast<int>(s) << ")";
}
}  // namespace ringtracker::tracker::http

namespace {

constexpr std::size_t kMax = 256;

HttpRequestReader::Result read_all(std::string_view bytes, std::size_t max = kMax) {
  HttpRequestReader r(max);
  return r.read(bytes);
}

// Feeds `bytes` in pieces of `step` bytes, as the socket might deliver them.
HttpRequestReader::Result read_split(std::string_view bytes, std::size_t step,
                                     std::size_t max = kMax) {
  HttpRequestReader r(max);
  HttpRequestReader::Result last;
  for (std::size_t n = step;; n += step) {
    if (n > bytes.size()) n = bytes.size();
    last = r.read(bytes.substr(0, n));
    if (last.status != Status::incomplete || n == bytes.size()) return last;
  }
}

struct BadCase {
  const char* name;
  std::string bytes;
  HeadError error;
};
std::ostream& operator<<(std::ostream& os, const BadCase& c) { return os << c.name; }

const std::vector<BadCase> kBad = {
    {"no_version", "GET /announce\r\n\r\n", HeadError::bad_request},
    {"empty_method", " / HTTP/1.1\r\n\r\n", HeadError::bad_request},
    {"two_spaces", "GET  / HTTP/1.1\r\n\r\n", HeadError::bad_request},
    {"space_in_target", "GET /a b HTTP/1.1\r\n\r\n", HeadError::bad_request},
    {"trailing_space", "GET / HTTP/1.1 \r\n\r\n", HeadError::bad_request},
    {"lowercase_version", "GET / http/1.1\r\n\r\n", HeadError::bad_request},
    {"version_letters", "GET / HTTP/1.x\r\n\r\n", HeadError::bad_request},
    {"version_long", "GET / HTTP/1.10\r\n\r\n", HeadError::bad_request},
    {"http2", "GET / HTTP/2.0\r\n\r\n", HeadError::version_not_supported},
    {"post", "POST /announce HTTP/1.1\r\n\r\n", HeadError::method_not_allowed},
    {"lowercase_get", "get / HTTP/1.1\r\n\r\n", HeadError::method_not_allowed},
    {"method_with_slash", "G/T / HTTP/1.1\r\n\r\n", HeadError::bad_request},
    {"target_not_slash", "GET announce HTTP/1.1\r\n\r\n", HeadError::bad_request},
    {"target_star", "GET * HTTP/1.1\r\n\r\n", HeadError::bad_request},
    {"target_high_byte", "GET /\xff HTTP/1.1\r\n\r\n", HeadError::bad_request},
    {"absolute_no_authority", "GET http:///x HTTP/1.1\r\n\r\n", HeadError::bad_request},
    {"absolute_other_scheme", "GET ftp://h/x HTTP/1.1\r\n\r\n", HeadError::bad_request},
    {"nul_in_target", std::string("GET /a\0b HTTP/1.1\r\n\r\n", 21), HeadError::bad_request},
    {"bare_cr_in_line", "GET / HTTP/1.1\rX: y\r\n\r\n", HeadError::bad_request},
    {"header_no_colon", "GET / HTTP/1.1\r\nHost\r\n\r\n", HeadError::bad_request},
    {"header_space_before_colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", HeadError::bad_request},
    {"header_empty_name", "GET / HTTP/1.1\r\n: x\r\n\r\n", HeadError::bad_request},
    {"header_folding", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", HeadError::bad_request},
    {"control_in_value", "GET / HTTP/1.1\r\nA: \x01\r\n\r\n", HeadError::bad_request},
    {"content_length_body", "GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
     HeadError::body_not_accepted},
    {"content_length_junk", "GET / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n", HeadError::bad_request},
    {"content_length_empty", "GET / HTTP/1.1\r\nContent-Length:\r\n\r\n", HeadError::bad_request},
    {"chunked", "GET / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n",
     HeadError::body_not_accepted},
    {"forwarded_for_lines_over_limit",
     [] {
       std::string s = "GET / HTTP/1.1\r\n";
       for (std::size_t i = 0; i <= kForwardedForLinesMax; ++i) s += "X-Forwarded-For: 1.2.3.4\r\n";
       return s + "\r\n";
     }(),
     HeadError::too_large},
};

}  // namespace

BOOST_AUTO_TEST_CASE(parses_minimal_get_with_crlf) {
  auto r = read_all("GET /announce?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
  BOOST_TEST(r.status == Status::complete);
  BOOST_TEST(r.consumed == 39u);
  BOOST_TEST(r.head.target == "/announce?x=1");
  BOOST_TEST(r.head.method == Method::get);
  BOOST_TEST(r.head.version_minor == 1);
  BOOST_TEST(r.head.wants_keep_alive());
}

BOOST_AUTO_TEST_CASE(accepts_bare_lf_line_ends) {
  auto r = read_all("HEAD /stats HTTP/1.0\nConnection: keep-alive\n\n");
  BOOST_TEST(r.status == Status::complete);
  BOOST_TEST(r.head.method == Method::head);
  BOOST_TEST(r.head.version_minor == 0);
  BOOST_TEST(r.head.connection_keep_alive);
  BOOST_TEST(r.head.wants_keep_alive());
}

BOOST_AUTO_TEST_CASE(http10_without_keep_alive_token_closes) {
  auto r = read_all("GET / HTTP/1.0\r\n\r\n");
  BOOST_TEST(r.status == Status::complete);
  BOOST_TEST(!r.head.wants_keep_alive());
}

BOOST_AUTO_TEST_CASE(connection_close_token_in_a_list_closes_http11) {
  auto r = read_all("GET / HTTP/1.1\r\nconnection:  Upgrade ,CLOSE \r\n\r\n");
  BOOST_TEST(r.status == Status::complete);
  BOOST_TEST(r.head.connection_close);
  BOOST_TEST(!r.head.wants_keep_alive());
}

BOOST_AUTO_TEST_CASE(skips_empty_lines_before_the_request_line) {
  auto r = read_all("\r\n\n\r\nGET / HTTP/1.1\r\n\r\n");
  BOOST_TEST(r.status == Status::complete);
  BOOST_TEST(r.consumed == 23u);
  BOOST_TEST(r.head.target == "/");
}

BOOST_AUTO_TEST_CASE(collects_forwarded_for_lines_in_order_with_trimmed_values) {
  auto r = read_all(
      "GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2 \r\nA: b\r\n"
      "x-forwarded-for:\t3.3.3.3\r\nX-Forwarded-For:\r\n\r\n");
  BOOST_TEST(r.status == Status::complete);
  BOOST_TEST(r.head.forwarded_for_count == 2u);
  BOOST_TEST(r.head.forwarded_for[0] == "1.1.1.1, 2.2.2.2");
  BOOST_TEST(r.head.forwarded_for[1] == "3.3.3.3");
}

BOOST_AUTO_TEST_CASE(reduces_absolute_form_to_path_and_query) {
  auto r = read_all("GET http://tracker.example:6969/announce?a=b HTTP/1.1\r\n\r\n");
  BOOST_TEST(r.status == Status::complete);
  BOOST_TEST(r.head.target == "/announce?a=b");
  auto bare = read_all("GET HTTP://host HTTP/1.1\r\n\r\n");
  BOOST_TEST(bare.status == Status::complete);
  BOOST_TEST(bare.head.target == "/");
}

BOOST_AUTO_TEST_CASE(content_length_zero_is_no_body) {
  auto r = read_all("GET / HTTP/1.1\r\nContent-Length: 000\r\n\r\n");
  BOOST_TEST(r.status == Status::complete);
}

BOOST_AUTO_TEST_CASE(waits_for_the_empty_line) {
  for (std::string_view partial :
       {"", "G", "GET / HTTP/1.1", "GET / HTTP/1.1\r", "GET / HTTP/1.1\r\n",
        "GET / HTTP/1.1\r\nA: b\r\n\r", "\r\n", "\r"}) {
    BOOST_TEST_CONTEXT(partial) { BOOST_TEST(read_all(partial).status == Status::incomplete); }
  }
}

BOOST_DATA_TEST_CASE(same_result_for_every_split_of_the_input,
                     bdata::make({1, 2, 3, 5, 7, 13, 64, 1000}), step) {
  std::string req =
      "\r\nGET /scrape?info_hash=%00%01 HTTP/1.1\r\nHost: h\nX-Forwarded-For: 9.9.9.9\r\n\r\n";
  auto whole = read_all(req);
  auto split = read_split(req, static_cast<std::size_t>(step));
  BOOST_TEST(whole.status == Status::complete);
  BOOST_TEST(split.status == Status::complete);
  BOOST_TEST(split.consumed == whole.consumed);
  BOOST_TEST(split.head.target == "/scrape?info_hash=%00%01");
  BOOST_TEST(split.head.forwarded_for_count == 1u);
}

BOOST_DATA_TEST_CASE(refuses_malformed_heads, bdata::make(kBad), c) {
  auto whole = read_all(c.bytes);
  BOOST_TEST(whole.status == Status::error);
  BOOST_TEST(whole.error == c.error);
  auto split = read_split(c.bytes, 1);
  BOOST_TEST(split.status == Status::error);
  BOOST_TEST(split.error == c.error);
}

BOOST_AUTO_TEST_CASE(pipelined_heads_are_read_one_at_a_time) {
  std::string buf = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n";
  HttpRequestReader r(kMax);
  auto first = r.read(buf);
  BOOST_TEST(first.status == Status::complete);
  BOOST_TEST(first.head.target == "/a");
  buf.erase(0, first.consumed);
  r.reset();
  auto second = r.read(buf);
  BOOST_TEST(second.status == Status::complete);
  BOOST_TEST(second.head.target == "/b");
  buf.erase(0, second.consumed);
  r.reset();
  BOOST_TEST(r.read(buf).status == Status::incomplete);
  buf += "\r\n";
  auto third = r.read(buf);
  BOOST_TEST(third.status == Status::complete);
  BOOST_TEST(third.head.target == "/c");
}

BOOST_AUTO_TEST_CASE(refuses_binary_junk_before_the_head_is_complete) {
  // A TLS ClientHello starts with 0x16 0x03: refused at once, not after the idle timeout.
  auto r = read_all(std::string("\x16\x03\x01\x02\x00", 5));
  BOOST_TEST(r.status == Status::error);
  BOOST_TEST(r.error == HeadError::bad_request);
}

BOOST_AUTO_TEST_CASE(head_that_exactly_fills_the_bound_is_accepted) {
  std::string head = "GET /" + std::string(kMax - 18, 'a') + " HTTP/1.1\r\n\r\n";
  BOOST_REQUIRE(head.size() == kMax);
  BOOST_TEST(read_all(head).status == Status::complete);
}

BOOST_AUTO_TEST_CASE(oversized_request_line_is_too_large) {
  std::string line = "GET /" + std::string(kMax, 'a');
  auto r = read_all(line);
  BOOST_TEST(r.status == Status::error);
  BOOST_TEST(r.error == HeadError::too_large);
  auto split = read_split(line, 17);
  BOOST_TEST(split.status == Status::error);
  BOOST_TEST(split.error == HeadError::too_large);
}

BOOST_AUTO_TEST_CASE(head_one_byte_over_the_bound_is_too_large) {
  std::string head = "GET /" + std::string(kMax - 17, 'a') + " HTTP/1.1\r\n\r\n";
  BOOST_REQUIRE(head.size() == kMax + 1);
  // The caller's buffer holds kMax bytes: that is all the reader can ever see.
  auto r = read_all(std::string_view(head).substr(0, kMax));
  BOOST_TEST(r.status == Status::error);
  BOOST_TEST(r.error == HeadError::too_large);
}

BOOST_AUTO_TEST_CASE(endless_empty_lines_are_too_large) {
  std::string blank;
  while (blank.size() < kMax) blank += "\r\n";
  auto r = read_all(blank);
  BOOST_TEST(r.status == Status::error);
  BOOST_TEST(r.error == HeadError::too_large);
}

BOOST_AUTO_TEST_CASE(keeps_answering_error_after_an_error) {
  HttpRequestReader r(kMax);
  BOOST_TEST(r.read("GET / HTTP/9.9\r\n\r\n").status == Status::error);
  auto again = r.read("GET / HTTP/9.9\r\n\r\nmore");
  BOOST_TEST(again.status == Status::error);
  BOOST_TEST(again.error == HeadError::version_not_supported);
}

BOOST_AUTO_TEST_CASE(random_bytes_never_crash_and_stay_within_the_bound) {
  std::mt19937 rng(20240601);
  const std::string alphabet = "GET /HTP1.\r\n :aXx-\t\x01\x7f\xff";
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % (kMax + 8), '\0');
    for (auto& ch : s) ch = alphabet[rng() % alphabet.size()];
    std::string_view seen = std::string_view(s).substr(0, std::min(s.size(), kMax));
    auto r = read_split(seen, 1 + rng() % 9);
    if (r.status == Status::complete) {
      BOOST_TEST_REQUIRE(r.consumed <= seen.size());
      BOOST_TEST_REQUIRE(!r.head.target.empty());
      BOOST_TEST_REQUIRE(r.head.target.front() == '/');
    }
  }
}
