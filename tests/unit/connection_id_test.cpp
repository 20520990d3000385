#define BOOST_TEST_MODULE connection_id
#include "tracker/connection_id.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <random>

using namespace ringtracker;
using namespace ringtracker::tracker;
namespace bdata = boost::unit_test::data;

namespace {

constexpr std::int64_t kT0 = 1'700'000'000;  // a fixed Unix second; tests never read a clock

IpAddress ip(const char* text) {
  auto a = IpAddress::parse(text);
  BOOST_REQUIRE(a);
  return *a;
}

ConnectionIds ids_with(std::vector<std::string> secrets, std::chrono::seconds window =
                                                             ConnectionIds::kWindowDefault) {
  auto ids = ConnectionIds::try_from_secrets(secrets, window);
  BOOST_REQUIRE(ids.has_value());
  return std::move(ids).value();
}

// OpenSSL's SIPHASH MAC as an independent reference (8-byte output, 2-4 rounds by default).
std::uint64_t openssl_siphash(const std::array<std::uint8_t, 16>& key,
                              const std::vector<std::uint8_t>& msg) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "SIPHASH", nullptr);
  BOOST_REQUIRE(mac != nullptr);
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  BOOST_REQUIRE(ctx != nullptr);
  unsigned size = 8;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_SIZE, &size),
                         OSSL_PARAM_construct_end()};
  std::array<std::uint8_t, 8> out{};
  std::size_t out_len = 0;
  const bool ok = EVP_MAC_init(ctx, key.data(), key.size(), params) == 1 &&
                  EVP_MAC_update(ctx, msg.data(), msg.size()) == 1 &&
                  EVP_MAC_final(ctx, out.data(), &out_len, out.size()) == 1;
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  BOOST_REQUIRE(ok);
  BOOST_REQUIRE_EQUAL(out_len, 8u);
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | out[static_cast<std::size_t>(i)];
  return v;
}

}  // namespace

BOOST_AUTO_TEST_CASE(siphash_matches_the_paper_vector) {
  std::array<std::uint8_t, 16> key{};
  for (std::size_t i = 0; i < 16; ++i) key[i] = static_cast<std::uint8_t>(i);
  std::vector<std::uint8_t> msg(15);
  for (std::size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<std::uint8_t>(i);
  // SipHash paper, appendix A: key 00..0f, message 00..0e.
  BOOST_TEST(siphash24(key, msg) == 0xa129ca6149be45e5ULL);
  BOOST_TEST(siphash24(key, {}) == 0x726fdb47dd0e0e31ULL);
}

BOOST_DATA_TEST_CASE(siphash_matches_openssl_for_every_length, bdata::xrange(64), len) {
  std::mt19937_64 rng(static_cast<std::uint64_t>(len) + 99);
  std::array<std::uint8_t, 16> key{};
  for (auto& k : key) k = static_cast<std::uint8_t>(rng());
  std::vector<std::uint8_t> msg(static_cast<std::size_t>(len));
  for (auto& m : msg) m = static_cast<std::uint8_t>(rng());
  BOOST_TEST(siphash24(key, msg) == openssl_siphash(key, msg));
}

BOOST_AUTO_TEST_CASE(id_is_valid_now_and_throughout_the_window) {
  auto ids = ids_with({"cluster secret"});
  const auto client = ip("192.0.2.7");
  const auto id = ids.issue(client, kT0);
  for (std::int64_t dt = 0; dt <= 120; ++dt) BOOST_TEST(ids.verify(id, client, kT0 + dt));
}

BOOST_AUTO_TEST_CASE(id_is_invalid_after_the_window) {
  auto ids = ids_with({"cluster secret"});
  const auto client = ip("192.0.2.7");
  const auto id = ids.issue(client, kT0);
  BOOST_TEST(!ids.verify(id, client, kT0 + 121));
  BOOST_TEST(!ids.verify(id, client, kT0 + 3600));
  // A whole 2^16-second cycle later the embedded time bits match again; the MAC must not.
  BOOST_TEST(!ids.verify(id, client, kT0 + 65536));
  BOOST_TEST(!ids.verify(id, client, kT0 + 65536 + 5));
}

BOOST_AUTO_TEST_CASE(honours_a_configured_window) {
  auto ids = ids_with({"s"}, std::chrono::seconds(10));
  const auto client = ip("2001:db8::5");
  const auto id = ids.issue(client, kT0);
  BOOST_TEST(ids.verify(id, client, kT0 + 10));
  BOOST_TEST(!ids.verify(id, client, kT0 + 11));
  auto wide = ids_with({"s"}, std::chrono::seconds(3600));
  BOOST_TEST(wide.verify(wide.issue(client, kT0), client, kT0 + 3600));
  BOOST_TEST(!wide.verify(wide.issue(client, kT0), client, kT0 + 3601));
}

BOOST_AUTO_TEST_CASE(tolerates_small_clock_skew_only) {
  auto ids = ids_with({"s"});
  const auto client = ip("192.0.2.7");
  const auto id = ids.issue(client, kT0);
  // Verifier's clock behind the issuer's.
  BOOST_TEST(ids.verify(id, client, kT0 - ConnectionIds::kClockSkewMax.count()));
  BOOST_TEST(!ids.verify(id, client, kT0 - ConnectionIds::kClockSkewMax.count() - 1));
}

BOOST_AUTO_TEST_CASE(id_is_invalid_for_another_ip) {
  auto ids = ids_with({"s"});
  const auto id = ids.issue(ip("192.0.2.7"), kT0);
  BOOST_TEST(!ids.verify(id, ip("192.0.2.8"), kT0));
  BOOST_TEST(!ids.verify(id, ip("::ffff:192.0.2.8"), kT0));
  BOOST_TEST(ids.verify(id, ip("::ffff:192.0.2.7"), kT0));  // v4-mapped is the same client
  const auto id6 = ids.issue(ip("2001:db8::1"), kT0);
  BOOST_TEST(!ids.verify(id6, ip("2001:db8::2"), kT0));
  BOOST_TEST(ids.verify(id6, ip("2001:db8::1"), kT0 + 1));
}

BOOST_AUTO_TEST_CASE(rejects_random_ids) {
  auto ids = ids_with({"s"});
  std::mt19937_64 rng(1234);
  const auto client = ip("198.51.100.1");
  int accepted = 0;
  for (int i = 0; i < 100000; ++i) accepted += ids.verify(rng(), client, kT0) ? 1 : 0;
  BOOST_TEST(accepted == 0);
}

BOOST_DATA_TEST_CASE(rejects_an_id_with_any_bit_flipped, bdata::xrange(64), bit) {
  auto ids = ids_with({"s"});
  const auto client = ip("198.51.100.1");
  const auto id = ids.issue(client, kT0);
  const auto forged = id ^ (std::uint64_t{1} << bit);
  // Check at several moments so a flipped time bit cannot land inside the window by accident.
  for (std::int64_t dt : {0, 1, 60, 120}) BOOST_TEST(!ids.verify(forged, client, kT0 + dt));
}

BOOST_AUTO_TEST_CASE(ids_differ_per_second_and_per_client) {
  auto ids = ids_with({"s"});
  BOOST_TEST(ids.issue(ip("192.0.2.1"), kT0) != ids.issue(ip("192.0.2.1"), kT0 + 1));
  BOOST_TEST(ids.issue(ip("192.0.2.1"), kT0) != ids.issue(ip("192.0.2.2"), kT0));
  BOOST_TEST(ids.issue(ip("192.0.2.1"), kT0) == ids.issue(ip("192.0.2.1"), kT0));
}

BOOST_AUTO_TEST_CASE(instances_with_the_same_secret_verify_each_other) {
  auto a = ids_with({"shared"});
  auto b = ids_with({"shared"});
  const auto client = ip("203.0.113.9");
  BOOST_TEST(a.issue(client, kT0) == b.issue(client, kT0));
  BOOST_TEST(b.verify(a.issue(client, kT0), client, kT0 + 30));
  BOOST_TEST(a.verify(b.issue(client, kT0 + 5), client, kT0 + 30));
}

BOOST_AUTO_TEST_CASE(instances_with_different_secrets_reject_each_other) {
  auto a = ids_with({"shared"});
  auto b = ids_with({"other"});
  const auto client = ip("203.0.113.9");
  BOOST_TEST(!b.verify(a.issue(client, kT0), client, kT0));
}

BOOST_AUTO_TEST_CASE(rotation_keeps_verifying_ids_of_the_old_secret_listed_second) {
  auto old_node = ids_with({"old"});
  auto rotated = ids_with({"new", "old"});
  auto new_only = ids_with({"new"});
  const auto client = ip("203.0.113.9");
  const auto old_id = old_node.issue(client, kT0);
  BOOST_TEST(rotated.verify(old_id, client, kT0 + 10));
  BOOST_TEST(!new_only.verify(old_id, client, kT0 + 10));
  // A rotated node issues with the first secret: new-only nodes accept, old-only do not.
  const auto new_id = rotated.issue(client, kT0);
  BOOST_TEST(new_only.verify(new_id, client, kT0));
  BOOST_TEST(!old_node.verify(new_id, client, kT0));
  BOOST_TEST(rotated.key_count() == 2u);
}

BOOST_AUTO_TEST_CASE(without_secret_keys_are_random_per_instance) {
  auto a = ids_with({});
  auto b = ids_with({});
  const auto client = ip("203.0.113.9");
  BOOST_TEST(a.verify(a.issue(client, kT0), client, kT0));
  BOOST_TEST(!b.verify(a.issue(client, kT0), client, kT0));
}

BOOST_AUTO_TEST_CASE(refuses_an_empty_secret) {
  auto ids = ConnectionIds::try_from_secrets({"good", ""});
  BOOST_REQUIRE(!ids.has_value());
  BOOST_TEST(!ids.error().empty());
}

BOOST_AUTO_TEST_CASE(works_across_the_16_bit_time_wrap) {
  auto ids = ids_with({"s"});
  const auto client = ip("192.0.2.7");
  const std::int64_t t = (kT0 | 0xFFFF) - 10;  // issue 10 s before the low bits wrap
  const auto id = ids.issue(client, t);
  BOOST_TEST(ids.verify(id, client, t + 11));
  BOOST_TEST(ids.verify(id, client, t + 120));
  BOOST_TEST(!ids.verify(id, client, t + 121));
}
