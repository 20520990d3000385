#define BOOST_TEST_MODULE stats
#include "tracker/stats.hpp"

#include <boost/test/unit_test.hpp>

using namespace ringtracker::tracker;

BOOST_AUTO_TEST_CASE(lone_node_json_has_null_predecessor_and_counts) {
  Counters c;
  c.inc(Counter::udp_drop_bad_connection_id, 3);
  StatsSnapshot s;
  s.node = NodeRef{"ab", ""};
  s.swarms = StoreStats{2, 5, 1, 4};
  s.replica_torrents = 3;
  s.replica_peers = 7;
  s.replica_seeders = 6;
  s.counters = &c;
  auto j = render_stats_json(s);
  BOOST_TEST(j.find("\"node\":{\"id\":\"ab\"}") != std::string::npos);
  BOOST_TEST(j.find("\"predecessor\":null") != std::string::npos);
  BOOST_TEST(j.find("\"successors\":[]") != std::string::npos);
  BOOST_TEST(j.find("\"torrents\":2,\"peers\":5,\"seeders\":1,\"leechers\":4") != std::string::npos);
  BOOST_TEST(j.find("\"replica_torrents\":3,\"replica_peers\":7,\"replica_seeders\":6") !=
             std::string::npos);
  BOOST_TEST(j.find("\"udp_drop_bad_connection_id\":3") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(ring_node_json_lists_neighbours_in_order) {
  StatsSnapshot s;
  s.node = NodeRef{"aa", "127.0.0.1:7000"};
  RingStatus r;
  r.predecessor = NodeRef{"99", "127.0.0.1:7001"};
  r.successors = {NodeRef{"bb", "127.0.0.1:7002"}, NodeRef{"cc", "127.0.0.1:7003"}};
  r.fingers = 7;
  r.key_space_ppm = 333'333;
  s.ring = r;
  s.extra_counters = {{"ring_pings", 9}};
  auto j = render_stats_json(s);
  BOOST_TEST(j.find("\"key_space_ppm\":333333") != std::string::npos);
  BOOST_TEST(render_metrics(s).find("ringtracker_ring_key_space_ppm 333333\n") != std::string::npos);
  BOOST_TEST(j.find("\"node\":{\"id\":\"aa\",\"ring\":\"127.0.0.1:7000\"}") != std::string::npos);
  BOOST_TEST(j.find("\"predecessor\":{\"id\":\"99\",\"ring\":\"127.0.0.1:7001\"}") != std::string::npos);
  BOOST_TEST(j.find("\"successors\":[{\"id\":\"bb\",\"ring\":\"127.0.0.1:7002\"},{\"id\":\"cc\"") !=
             std::string::npos);
  BOOST_TEST(j.find("\"fingers\":7") != std::string::npos);
  BOOST_TEST(j.find("\"ring_pings\":9") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(metrics_are_prometheus_text) {
  Counters c;
  c.inc(Counter::http_announces, 4);
  StatsSnapshot s;
  s.swarms = StoreStats{1, 2, 1, 1};
  s.counters = &c;
  auto m = render_metrics(s);
  BOOST_TEST(m.find("# TYPE ringtracker_peers gauge\nringtracker_peers 2\n") != std::string::npos);
  BOOST_TEST(m.find("ringtracker_events_total{event=\"http_announces\"} 4\n") != std::string::npos);
}
