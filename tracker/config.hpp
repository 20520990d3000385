// The daemon's configuration: defaults as named constants, loading from a TOML file (toml++),
// and validation. Command-line flags are applied on top by main. No I/O beyond reading the file.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "common/expected.hpp"
#include "common/net_address.hpp"
#include "dht/dht_node.hpp"
#include "tracker/access_list.hpp"
#include "tracker/swarm_store.hpp"

namespace ringtracker::tracker {

struct Config {
  // Announce timing. BEP 3 leaves it to the tracker; 30 min is the public-tracker norm.
  static constexpr std::chrono::seconds kIntervalDefault{1800};
  static constexpr std::chrono::seconds kIntervalJitterDefault{180};
  static constexpr std::chrono::seconds kMinIntervalDefault{900};
  // Bounds that keep clients neither hammering nor vanishing (DESIGN section 6).
  static constexpr std::chrono::seconds kIntervalFloor{300};
  static constexpr std::chrono::seconds kIntervalCeiling{3 * 3600};
  static constexpr std::size_t kHttpHeaderBytesMaxDefault = 8 * 1024;
  static constexpr std::size_t kHttpBodyBytesMaxDefault = 0;  // GET only
  static constexpr std::chrono::seconds kHttpTimeoutDefault{10};
  static constexpr int kUdpReceiveBufferBytesDefault = 8 * 1024 * 1024;
  static constexpr std::chrono::seconds kConnectionIdWindowDefault{120};
  static constexpr std::size_t kSweepSwarmsPerTickDefault = 2000;
  static constexpr std::chrono::milliseconds kSweepTickDefault{100};

  std::chrono::seconds interval = kIntervalDefault;
  std::chrono::seconds interval_jitter = kIntervalJitterDefault;
  std::chrono::seconds min_interval = kMinIntervalDefault;
  SwarmLimits limits;

  std::vector<SocketAddress> http_listen;
  bool http_keep_alive = false;
  std::size_t http_header_bytes_max = kHttpHeaderBytesMaxDefault;
  std::chrono::seconds http_timeout = kHttpTimeoutDefault;
  std::vector<IpNetwork> trusted_proxies;

  std::vector<SocketAddress> udp_listen;
  int udp_receive_buffer_bytes = kUdpReceiveBufferBytesDefault;
  std::chrono::seconds connection_id_window = kConnectionIdWindowDefault;

  /// Shared cluster secrets: the first issues, all verify (rotation with overlap).
  std::vector<std::string> secrets;

  std::optional<SocketAddress> ring_listen;
  std::vector<SocketAddress> ring_join;
  std::size_t ring_successors = 8;
  /// Candidate ring positions a joining node probes (dht::RingConfig::id_choices): 16 keeps
  /// the largest share of the key space near 2x the mean on rings of a thousand nodes, where
  /// one fixed id per node gives about 7x.
  static constexpr std::size_t kIdChoicesDefault = 16;
  static constexpr std::size_t kIdChoicesMax = 256;
  std::size_t id_choices = kIdChoicesDefault;
  std::size_t replicas = 3;
  /// Ring maintenance period (stabilize, one finger refresh), jittered by +-10%.
  static constexpr std::chrono::milliseconds kStabilizePeriodDefault{5000};
  std::chrono::milliseconds stabilize_period = kStabilizePeriodDefault;
  /// How often a node asks a seed to look up its own id (heals split rings after partitions).
  static constexpr std::chrono::milliseconds kSeedCheckPeriodDefault{60000};
  std::chrono::milliseconds seed_check_period = kSeedCheckPeriodDefault;

  /// The data layer's timings (ClusterConfig takes its defaults from these).
  static constexpr std::chrono::milliseconds kRequestDeadlineDefault{1500};
  static constexpr std::chrono::milliseconds kAttemptTimeoutMinDefault{200};
  static constexpr std::chrono::milliseconds kAttemptTimeoutMaxDefault{400};
  static constexpr std::chrono::milliseconds kRetryBackoffDefault{100};
  static constexpr std::chrono::milliseconds kReplicatePeriodDefault{100};
  static constexpr std::chrono::seconds kSyncPeriodDefault{30};
  static constexpr std::chrono::microseconds kBatchLingerDefault{0};
  std::chrono::milliseconds request_deadline = kRequestDeadlineDefault;
  std::chrono::milliseconds attempt_timeout_min = kAttemptTimeoutMinDefault;
  std::chrono::milliseconds attempt_timeout_max = kAttemptTimeoutMaxDefault;
  std::chrono::milliseconds retry_backoff = kRetryBackoffDefault;
  std::chrono::milliseconds replicate_period = kReplicatePeriodDefault;
  std::chrono::seconds sync_period = kSyncPeriodDefault;
  std::chrono::microseconds batch_linger = kBatchLingerDefault;
  /// After a pass that sent ring datagrams, yield the CPU once (RingTransport::
  /// set_yield_after_send): nodes sharing a core take turns whole passes. Alone on a core it
  /// costs a system call a pass; yields that hand the core to another busy program for long
  /// pause it (YieldGovernor).
  static constexpr bool kYieldAfterSendDefault = true;
  bool yield_after_send = kYieldAfterSendDefault;

  /// DHT (BEP 5) endpoints, one per address family; empty = no DHT. DHT-only clients that
  /// use a node as their DHT bootstrap find the peers of the tracker's swarms there.
  std::vector<SocketAddress> dht_listen;
  /// DHT nodes asked for their neighbours at start (other ringtracker nodes, typically).
  std::vector<SocketAddress> dht_bootstrap;
  /// The address other DHT nodes see this one at, when it listens on 0.0.0.0 or behind NAT:
  /// the DHT node id is derived from it (BEP 42). Unset: the first listen address is used if
  /// it is a public one, else the id is random.
  std::optional<IpAddress> dht_external_ip;
  /// Datagrams accepted per source IP and second on the DHT port (0 = no limit).
  std::uint32_t dht_queries_per_ip_per_second =
      dht::DhtNodeConfig::kQueriesPerIpPerSecondDefault;

  AccessMode access_mode = AccessMode::off;
  std::string access_file;

  std::size_t sweep_swarms_per_tick = kSweepSwarmsPerTickDefault;
  std::chrono::milliseconds sweep_tick = kSweepTickDefault;

  std::string log_level = "info";

  /// Checks cross-field rules and clamps the interval into [floor, ceiling].
  Expected<void, std::string> validate();
};

/// Reads and merges a TOML file into `cfg` (keys absent from the file keep their values).
/// Unknown keys are errors, so that typos do not pass silently.
Expected<void, std::string> load_config_file(const std::string& path, Config& cfg);

}  // namespace ringtracker::tracker
