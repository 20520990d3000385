#define BOOST_TEST_MODULE config
#include "tracker/config.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <fstream>
#include <string>

using namespace ringtracker::tracker;
namespace bdata = boost::unit_test::data;

namespace {
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/rt_config_test_XXXXXX";
    int fd = mkstemp(name);
    BOOST_REQUIRE(fd >= 0);
    close(fd);
    path = name;
    std::ofstream(path) << text;
  }
  ~TempFile() { std::remove(path.c_str()); }
};
}  // namespace

BOOST_AUTO_TEST_CASE(shipped_config_loads_with_documented_defaults) {
  Config cfg;
  auto r = load_config_file(RT_SOURCE_DIR "/conf/ringtracker.toml", cfg);
  BOOST_REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error()));
  BOOST_TEST(cfg.interval.count() == 1800);
  BOOST_TEST(cfg.limits.numwant_max == 200u);
  BOOST_REQUIRE(cfg.http_listen.size() == 1u);
  BOOST_TEST(cfg.http_listen[0].to_string() == "127.0.0.1:6969");
  BOOST_TEST(cfg.udp_listen[0].to_string() == "127.0.0.1:6969");
  BOOST_TEST(!cfg.http_keep_alive);
  BOOST_TEST(cfg.validate().has_value());
  // Peers live 1.5 x the longest interval a client may have been given.
  BOOST_TEST(std::chrono::duration_cast<std::chrono::seconds>(cfg.limits.peer_ttl).count() ==
             (1800 + 180) * 3 / 2);
}

BOOST_AUTO_TEST_CASE(shipped_ring_node_example_loads) {
  Config cfg;
  auto r = load_config_file(RT_SOURCE_DIR "/conf/examples/ring-node.toml", cfg);
  BOOST_REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error()));
  BOOST_REQUIRE(cfg.ring_listen.has_value());
  BOOST_TEST(cfg.ring_listen->to_string() == "127.0.0.1:7970");
  BOOST_TEST(cfg.ring_join.empty());
  BOOST_TEST(cfg.secrets.size() == 1u);
  BOOST_TEST(cfg.replicas == 3u);
  BOOST_TEST(cfg.id_choices == Config::kIdChoicesDefault);
  BOOST_TEST(cfg.http_listen[0].to_string() == "127.0.0.1:6970");
  BOOST_REQUIRE(cfg.dht_listen.size() == 1u);
  BOOST_TEST(cfg.dht_listen[0].to_string() == "127.0.0.1:6971");
  BOOST_TEST(cfg.validate().has_value());
}

BOOST_AUTO_TEST_CASE(interval_is_clamped_into_bounds) {
  TempFile f("[tracker]\ninterval = 10\n[udp]\nlisten=[\"127.0.0.1:0\"]\n");
  Config cfg;
  BOOST_REQUIRE(load_config_file(f.path, cfg).has_value());
  BOOST_REQUIRE(cfg.validate().has_value());
  BOOST_TEST(cfg.interval.count() == Config::kIntervalFloor.count());
}

static const char* kBadConfigs[] = {
    "[tracker]\ninterval = \"soon\"\n",
    "[tracker]\nintervall = 1800\n",
    "[http]\nlisten = [\"localhost:80\"]\n",
    "[http]\nlisten = [\"::1:80\"]\n",
    "[http]\ntrusted_proxies = [\"10.0.0.0/40\"]\n",
    "[access]\nmode = \"maybe\"\n",
    "[tracker]\nnumwant_max = -1\n",
    "[tracker\n",
    "nonsense = 1\n",
    "[http]\nkeep_alive = 1\n",
};

BOOST_DATA_TEST_CASE(rejects_bad_config_with_message, bdata::make(kBadConfigs), text) {
  TempFile f(text);
  Config cfg;
  auto r = load_config_file(f.path, cfg);
  BOOST_TEST(!r.has_value());
  if (!r) BOOST_TEST(!r.error().empty());
}

BOOST_AUTO_TEST_CASE(validate_refuses_nothing_to_listen_on) {
  Config cfg;
  BOOST_TEST(!cfg.validate().has_value());
}

BOOST_AUTO_TEST_CASE(validate_refuses_access_mode_without_file) {
  Config cfg;
  cfg.udp_listen.push_back(*ringtracker::SocketAddress::parse("127.0.0.1:0"));
  cfg.access_mode = AccessMode::allow;
  BOOST_TEST(!cfg.validate().has_value());
}

BOOST_AUTO_TEST_CASE(cluster_timings_are_read_and_checked) {
  {
    TempFile f(
        "[udp]\nlisten=[\"127.0.0.1:0\"]\n[cluster]\nrequest_deadline_ms = 3000\n"
        "attempt_timeout_min_ms = 50\nattempt_timeout_max_ms = 800\nretry_backoff_ms = 20\n"
        "replicate_period_ms = 250\nsync_period_s = 10\nbatch_linger_us = 300\n");
    Config cfg;
    auto r = load_config_file(f.path, cfg);
    BOOST_REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error()));
    BOOST_TEST(cfg.request_deadline.count() == 3000);
    BOOST_TEST(cfg.attempt_timeout_min.count() == 50);
    BOOST_TEST(cfg.attempt_timeout_max.count() == 800);
    BOOST_TEST(cfg.retry_backoff.count() == 20);
    BOOST_TEST(cfg.replicate_period.count() == 250);
    BOOST_TEST(cfg.sync_period.count() == 10);
    BOOST_TEST(cfg.batch_linger.count() == 300);
    BOOST_TEST(cfg.yield_after_send);  // on unless turned off
    BOOST_TEST(cfg.validate().has_value());
  }
  {
    TempFile f("[udp]\nlisten=[\"127.0.0.1:0\"]\n[cluster]\nyield_after_send = false\n");
    Config cfg;
    auto r = load_config_file(f.path, cfg);
    BOOST_REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error()));
    BOOST_TEST(!cfg.yield_after_send);
  }
  {
    TempFile f("[udp]\nlisten=[\"127.0.0.1:0\"]\n[cluster]\nyield_after_send = 1\n");
    Config cfg;
    auto r = load_config_file(f.path, cfg);
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().find("cluster.yield_after_send") != std::string::npos);
  }
  {
    // A sync period past the replica grace would let replicas be dropped between two syncs.
    TempFile f("[udp]\nlisten=[\"127.0.0.1:0\"]\n[cluster]\nsync_period_s = 600\n");
    Config cfg;
    auto r = load_config_file(f.path, cfg);
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().find("cluster.sync_period_s") != std::string::npos);
  }
  {
    TempFile f(
        "[udp]\nlisten=[\"127.0.0.1:0\"]\n[cluster]\nattempt_timeout_min_ms = 500\n"
        "attempt_timeout_max_ms = 300\n");
    Config cfg;
    BOOST_REQUIRE(load_config_file(f.path, cfg).has_value());
    auto v = cfg.validate();
    BOOST_REQUIRE(!v.has_value());
    BOOST_TEST(v.error().find("attempt_timeout_min_ms") != std::string::npos);
  }
  {
    TempFile f("[udp]\nlisten=[\"127.0.0.1:0\"]\n[cluster]\nrequest_deadline_ms = 400\n");
    Config cfg;
    BOOST_REQUIRE(load_config_file(f.path, cfg).has_value());
    BOOST_TEST(!cfg.validate().has_value());  // no room for a second attempt
  }
}

BOOST_AUTO_TEST_CASE(id_choices_is_read_and_bounded) {
  {
    TempFile f("[udp]\nlisten=[\"127.0.0.1:0\"]\n[cluster]\nid_choices = 1\n");
    Config cfg;
    BOOST_REQUIRE(load_config_file(f.path, cfg).has_value());
    BOOST_TEST(cfg.id_choices == 1u);
  }
  for (const char* bad : {"0", "257", "\"8\""}) {
    TempFile f(std::string("[udp]\nlisten=[\"127.0.0.1:0\"]\n[cluster]\nid_choices = ") + bad +
               "\n");
    Config cfg;
    auto r = load_config_file(f.path, cfg);
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().find("cluster.id_choices") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(dht_is_off_by_default_and_its_addresses_are_read_and_checked) {
  {
    Config cfg;
    BOOST_REQUIRE(load_config_file(RT_SOURCE_DIR "/conf/ringtracker.toml", cfg).has_value());
    BOOST_TEST(cfg.dht_listen.empty());
    BOOST_TEST(cfg.dht_bootstrap.empty());
  }
  {
    TempFile f(
        "[udp]\nlisten=[\"127.0.0.1:0\"]\n[dht]\nlisten = [\"127.0.0.1:6881\", \"[::1]:6881\"]\n"
        "bootstrap = [\"10.0.0.2:6881\"]\n");
    Config cfg;
    auto r = load_config_file(f.path, cfg);
    BOOST_REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error()));
    BOOST_REQUIRE(cfg.dht_listen.size() == 2u);
    BOOST_TEST(cfg.dht_listen[1].to_string() == "[::1]:6881");
    BOOST_REQUIRE(cfg.dht_bootstrap.size() == 1u);
    BOOST_TEST(cfg.dht_bootstrap[0].to_string() == "10.0.0.2:6881");
  }
  {
    TempFile f("[udp]\nlisten=[\"127.0.0.1:0\"]\n[dht]\nexternal_ip = \"203.0.113.7\"\n");
    Config cfg;
    BOOST_REQUIRE(load_config_file(f.path, cfg).has_value());
    BOOST_REQUIRE(cfg.dht_external_ip.has_value());
    BOOST_TEST(cfg.dht_external_ip->to_string() == "203.0.113.7");
  }
  for (const char* bad : {"listen = [\"6881\"]", "bootstrap = \"10.0.0.2:6881\"", "port = 6881",
                          "external_ip = \"203.0.113\""}) {
    TempFile f(std::string("[udp]\nlisten=[\"127.0.0.1:0\"]\n[dht]\n") + bad + "\n");
    Config cfg;
    auto r = load_config_file(f.path, cfg);
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().find("dht.") != std::string::npos);
  }
}
