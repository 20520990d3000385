// Named event counters of one daemon (requests, answers, drops by reason). Single-threaded:
// the event loop owns them; /stats and /metrics read them. Adding a counter = one enum entry
// plus its name in counters.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace ringtracker::tracker {

enum class Counter : std::uint16_t {
  http_requests,
  http_announces,
  http_scrapes,
  http_failures,
  http_not_found,
  http_rejected_oversized,
  udp_packets_received,
  udp_connects,
  udp_announces,
  udp_scrapes,
  udp_errors_sent,
  udp_drop_bad_connection_id,
  udp_drop_too_short,
  udp_drop_bad_protocol_id,
  udp_drop_unknown_action,
  udp_drop_bad_scrape_length,
  udp_drop_too_many_hashes,
  udp_drop_bad_option,
  udp_drop_bad_event,
  udp_drop_unverified_error,
  udp_drop_oversized,
  udp_send_failures,
  announces_refused_access,
  announces_refused_full,
  announces_stopped,
  sweep_passes,
  access_list_reloads,
  access_list_reload_failures,
  count_  // keep last
};

std::string_view counter_name(Counter c);

class Counters {
 public:
  void inc(Counter c, std::uint64_t n = 1) { v_[static_cast<std::size_t>(c)] += n; }
  std::uint64_t get(Counter c) const { return v_[static_cast<std::size_t>(c)]; }
  static constexpr std::size_t size() { return static_cast<std::size_t>(Counter::count_); }

 private:
  std::array<std::uint64_t, static_cast<std::size_t>(Counter::count_)> v_{};
};

}  // namespace ringtracker::tracker
