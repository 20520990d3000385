#include "tracker/counters.hpp"

namespace ringtracker::tracker {

std::string_view counter_name(Counter c) {
  static constexpr std::string_view kNames[] = {
      "http_requests",
      "http_announces",
      "http_scrapes",
      "http_failures",
      "http_not_found",
      "http_rejected_oversized",
      "udp_packets_received",
      "udp_connects",
      "udp_announces",
      "udp_scrapes",
      "udp_errors_sent",
      "udp_drop_bad_connection_id",
      "udp_drop_too_short",
      "udp_drop_bad_protocol_id",
      "udp_drop_unknown_action",
      "udp_drop_bad_scrape_length",
      "udp_drop_too_many_hashes",
      "udp_drop_bad_option",
      "udp_drop_bad_event",
      "udp_drop_unverified_error",
      "udp_drop_oversized",
      "udp_send_failures",
      "announces_refused_access",
      "announces_refused_full",
      "announces_stopped",
      "sweep_passes",
      "access_list_reloads",
      "access_list_reload_failures",
  };
  static_assert(std::size(kNames) == Counters::size(), "every counter needs a name");
  return kNames[static_cast<std::size_t>(c)];
}

}  // namespace ringtracker::tracker
