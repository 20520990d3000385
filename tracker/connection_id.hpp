// Stateless BEP 15 connection ids: a keyed MAC over (issue second, client IP) that any node holding
// the same cluster secret can verify, so no per-client state is kept anywhere. It neither reads a
// clock nor counts failures; the UDP server passes Unix time in and counts the drops.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/expected.hpp"
#include "common/net_address.hpp"

namespace ringtracker::tracker {

/// SipHash-2-4 (Aumasson & Bernstein 2012) of `data` under a 128-bit key, as the 64-bit integer
/// the paper defines (its little-endian byte string is the reference output). Exposed so the
/// test can check it against the paper's vector and against OpenSSL's SIPHASH.
std::uint64_t siphash24(const std::array<std::uint8_t, 16>& key, std::span<const std::uint8_t> data);

/// Issues and verifies connection ids.
///
/// Purpose: BEP 15 makes a client prove it receives packets at its source address before the
/// tracker answers an announce or scrape (anti-spoofing, anti-amplification). Instead of a table
/// of issued ids, the id itself carries the proof.
///
/// Layout of the 64-bit id (as an integer; the codec writes it big-endian on the wire):
///   bits 63..48  issue time, Unix seconds mod 2^16 (tells verify which second to recompute)
///   bits 47..0   low 48 bits of SipHash-2-4(key, be64(issue second) || client IP bytes)
/// The client IP is 4 bytes for IPv4 (v4-mapped IPv6 is normalised to IPv4) and 16 for IPv6.
/// Forging an id takes 2^48 guesses per (IP, second) on average; each wrong guess is a dropped,
/// counted packet.
///
/// Keys: one 128-bit key per configured secret, HMAC-SHA256(secret, kKeyLabel) truncated, so every
/// node configured with the same secret issues and verifies the same ids. With no secret a random
/// key (RAND_bytes) is drawn: ids then only verify on this process.
///
/// Why SipHash rather than HMAC-SHA256 per packet: issue/verify run for every datagram; SipHash is
/// a PRF designed as a MAC for short inputs, allocation-free here, and an order of magnitude faster
/// than an OpenSSL 3 HMAC (which must duplicate a provider context per call). The id keeps only 48
/// MAC bits, so HMAC's larger output would buy nothing. OpenSSL still derives the keys.
///
/// Calling rule: `issue` for a connect from `client`; `verify` before acting on an announce or
/// scrape from `client`, dropping the packet on false. Both take `unix_now_s` (wall-clock Unix
/// seconds, not a steady clock) so that ids cross machines. An id is valid from its issue second
/// until `window` seconds later, and up to kClockSkewMax seconds "early" on a node whose clock
/// is behind the issuer's. Thread-safe: both are const and touch no shared mutable state.
class ConnectionIds {
 public:
  static constexpr std::chrono::seconds kWindowDefault{120};
  /// Tolerated clock difference between the issuing and the verifying node (NTP keeps real
  /// clusters far inside this; more would only widen the replay window).
  static constexpr std::chrono::seconds kClockSkewMax{5};
  /// Largest window the 16 embedded time bits can express unambiguously.
  static constexpr std::chrono::seconds kWindowMax{(1 << 16) - 1 - 5};
  /// Domain-separation label for key derivation; changing it invalidates every id in flight.
  static constexpr std::string_view kKeyLabel = "ringtracker udp connection id v1";

  using Key = std::array<std::uint8_t, 16>;

  /// Keys from `secrets` (first issues, all verify), or one random key when `secrets` is empty.
  /// `window` must be in [1 s, kWindowMax] (config validates; violating it is a programmer
  /// error). Fails only when OpenSSL fails (key derivation or the random generator).
  static Expected<ConnectionIds, std::string> try_from_secrets(
      const std::vector<std::string>& secrets, std::chrono::seconds window = kWindowDefault);
  /// As try_from_secrets, but an OpenSSL failure prints one line and aborts (startup only).
  static ConnectionIds from_secrets(const std::vector<std::string>& secrets,
                                    std::chrono::seconds window = kWindowDefault);

  /// The id for `client` issued at `unix_now_s`, under the first key.
  std::uint64_t issue(const IpAddress& client, std::int64_t unix_now_s) const;
  /// True iff `id` was issued for `client` under any key, at most `window` before `unix_now_s`
  /// (and at most kClockSkewMax after it).
  bool verify(std::uint64_t id, const IpAddress& client, std::int64_t unix_now_s) const;

  std::chrono::seconds window() const { return window_; }
  std::size_t key_count() const { return keys_.size(); }

 private:
  ConnectionIds(std::vector<Key> keys, std::chrono::seconds window)
      : keys_(std::move(keys)), window_(window) {}
  static std::uint64_t mac48(const Key& key, const IpAddress& client, std::int64_t issued_s);

  std::vector<Key> keys_;
  std::chrono::seconds window_;
};

}  // namespace ringtracker::tracker
