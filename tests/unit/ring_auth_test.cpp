// RingAuth: datagrams signed under the first secret verify under any configured secret; any
// change to body, nonce or tag, a foreign key, or a truncated datagram is refused; nonces
// never repeat within one signer; tags are AES-256-GMAC's, byte for byte (the wire format).
#define BOOST_TEST_MODULE ring_auth
#include "dht/ring_auth.hpp"

#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include <boost/test/unit_test.hpp>
#include <random>
#include <set>

using namespace ringtracker::dht;

namespace {

std::span<const std::uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

/// body || nonce || tag, as the transport sends it.
std::string signed_datagram(RingAuth& auth, const std::string& body) {
  std::string out = body;
  BOOST_REQUIRE(auth.sign(bytes_of(body), out));
  BOOST_REQUIRE_EQUAL(out.size(), body.size() + RingAuth::kOverheadBytes);
  return out;
}

std::string body_of(std::span<const std::uint8_t> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

/// The tag OpenSSL's generic GMAC gives `body` under `nonce` with the ring key of `secret`
/// (HMAC-SHA256 of the key label under the secret): the wire format, computed independently.
std::string reference_gmac(const std::string& secret, const std::uint8_t* nonce,
                           const std::string& body) {
  static const std::string kLabel = "ringtracker ring message key v2";
  unsigned char key[32];
  unsigned int key_len = 0;
  BOOST_REQUIRE(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                     reinterpret_cast<const unsigned char*>(kLabel.data()), kLabel.size(), key,
                     &key_len) != nullptr);
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "GMAC", nullptr);
  BOOST_REQUIRE(mac != nullptr);
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  char cipher[] = "AES-256-GCM";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_IV, const_cast<std::uint8_t*>(nonce),
                                        RingAuth::kNonceBytes),
      OSSL_PARAM_construct_end()};
  unsigned char out[RingAuth::kTagBytes];
  std::size_t out_len = 0;
  const bool ok = ctx && EVP_MAC_init(ctx, key, key_len, params) == 1 &&
                  EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(body.data()),
                                 body.size()) == 1 &&
                  EVP_MAC_final(ctx, out, &out_len, sizeof out) == 1;
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  BOOST_REQUIRE(ok);
  BOOST_REQUIRE_EQUAL(out_len, sizeof out);
  return std::string(reinterpret_cast<const char*>(out), out_len);
}

}  // namespace

BOOST_AUTO_TEST_CASE(tags_are_aes_256_gmac_of_the_body_under_the_trailer_nonce) {
  const std::string secret = "cluster secret one";
  auto auth = RingAuth::make({secret});
  BOOST_REQUIRE(auth.has_value());
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    // Every length up to a few blocks, then larger bodies with ragged ends.
    const std::size_t n = round < 70 ? static_cast<std::size_t>(round) : rng() % 9000;
    std::string body(n, '\0');
    for (auto& c : body) c = static_cast<char>(rng());
    const std::string d = signed_datagram(*auth, body);
    const auto* nonce = reinterpret_cast<const std::uint8_t*>(d.data()) + n;
    const std::string tag = d.substr(n + RingAuth::kNonceBytes);
    BOOST_TEST((tag == reference_gmac(secret, nonce, body)), "body of " << n << " bytes");
  }
}

BOOST_AUTO_TEST_CASE(no_secrets_means_no_authenticator) {
  BOOST_TEST(!RingAuth::make({}).has_value());
}

BOOST_AUTO_TEST_CASE(signed_datagram_verifies_and_yields_its_body) {
  auto auth = RingAuth::make({"cluster secret one"});
  BOOST_REQUIRE(auth.has_value());
  for (std::size_t n : {1U, 15U, 16U, 17U, 500U, 9000U}) {
    std::string body(n, '\0');
    for (std::size_t i = 0; i < n; ++i) body[i] = static_cast<char>(i * 31 + 7);
    const std::string d = signed_datagram(*auth, body);
    auto got = auth->verify(bytes_of(d));
    BOOST_REQUIRE(got.has_value());
    BOOST_TEST(body_of(*got) == body);
  }
}

BOOST_AUTO_TEST_CASE(any_flipped_bit_is_refused) {
  auto auth = RingAuth::make({"cluster secret one"});
  BOOST_REQUIRE(auth.has_value());
  const std::string d = signed_datagram(*auth, "find_step for some key, 40 bytes long..");
  // Every byte of body, nonce and tag is covered.
  for (std::size_t i = 0; i < d.size(); ++i) {
    std::string bad = d;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    BOOST_TEST_INFO("byte " << i);
    BOOST_TEST(!auth->verify(bytes_of(bad)).has_value());
  }
}

BOOST_AUTO_TEST_CASE(truncated_or_bare_datagrams_are_refused) {
  auto auth = RingAuth::make({"cluster secret one"});
  BOOST_REQUIRE(auth.has_value());
  const std::string d = signed_datagram(*auth, "payload");
  for (std::size_t cut = 0; cut < d.size(); ++cut)
    BOOST_TEST(!auth->verify(bytes_of(d.substr(0, cut))).has_value());
  BOOST_TEST(!auth->verify(bytes_of(std::string("payload"))).has_value());  // no trailer at all
}

BOOST_AUTO_TEST_CASE(another_clusters_key_is_refused) {
  auto ours = RingAuth::make({"cluster secret one"});
  auto theirs = RingAuth::make({"some other cluster"});
  BOOST_REQUIRE(ours.has_value());
  BOOST_REQUIRE(theirs.has_value());
  const std::string d = signed_datagram(*theirs, "forged state");
  BOOST_TEST(!ours->verify(bytes_of(d)).has_value());
}

BOOST_AUTO_TEST_CASE(rotation_accepts_old_and_new_secret_and_signs_with_the_first) {
  auto old_node = RingAuth::make({"old secret"});
  auto rotating = RingAuth::make({"new secret", "old secret"});
  auto new_node = RingAuth::make({"new secret"});
  BOOST_REQUIRE(old_node && rotating && new_node);
  // A node mid-rotation reads both generations...
  BOOST_TEST(rotating->verify(bytes_of(signed_datagram(*old_node, "from old"))).has_value());
  BOOST_TEST(rotating->verify(bytes_of(signed_datagram(*new_node, "from new"))).has_value());
  // ...and signs with the first secret only.
  const std::string d = signed_datagram(*rotating, "from rotating");
  BOOST_TEST(new_node->verify(bytes_of(d)).has_value());
  BOOST_TEST(!old_node->verify(bytes_of(d)).has_value());
}

BOOST_AUTO_TEST_CASE(nonces_do_not_repeat_within_a_signer_or_across_signers) {
  auto a = RingAuth::make({"cluster secret one"});
  auto b = RingAuth::make({"cluster secret one"});
  BOOST_REQUIRE(a && b);
  std::set<std::string> nonces;
  constexpr int kEach = 5000;
  for (int i = 0; i < kEach; ++i) {
    for (auto* auth : {&*a, &*b}) {
      const std::string d = signed_datagram(*auth, "same body");
      nonces.insert(d.substr(d.size() - RingAuth::kOverheadBytes, RingAuth::kNonceBytes));
    }
  }
  BOOST_TEST(nonces.size() == 2U * kEach);
}
