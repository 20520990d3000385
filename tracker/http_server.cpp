#include "tracker/http_server.hpp"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <sys/socket.h>

#include <cstring>

#include "common/socket_util.hpp"
#include "tracker/http_codec.hpp"

namespace ringtracker::tracker {

HttpServer::HttpServer(event_base* base, const Config& cfg, RequestHandler& service,
                       Counters& counters, StatsProvider stats)
    : http_(evhttp_new(base)),
      service_(service),
      counters_(counters),
      stats_(std::move(stats)),
      keep_alive_(cfg.http_keep_alive),
      trusted_proxies_(cfg.trusted_proxies) {
  RT_ASSERT(http_ != nullptr);
  // The request line and headers share this bound; trackers only ever see GETs, so no body.
  evhttp_set_max_headers_size(http_, static_cast<ev_ssize_t>(cfg.http_header_bytes_max));
  evhttp_set_max_body_size(http_, static_cast<ev_ssize_t>(Config::kHttpBodyBytesMaxDefault));
  evhttp_set_timeout(http_, static_cast<int>(cfg.http_timeout.count()));
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
  evhttp_set_gencb(http_, &HttpServer::on_request, this);
}

HttpServer::~HttpServer() {
  if (http_) evhttp_free(http_);
}

Expected<SocketAddress, std::string> HttpServer::listen(const SocketAddress& addr) {
  auto* handle = evhttp_bind_socket_with_handle(http_, addr.ip.to_string().c_str(), addr.port);
  if (!handle) return Unexpected("http " + addr.to_string() + ": cannot bind");
  auto bound = local_address(evhttp_bound_socket_get_fd(handle));
  if (!bound) return Unexpected("http " + addr.to_string() + ": " + bound.error());
  return *bound;
}

void HttpServer::on_request(evhttp_request* req, void* arg) noexcept {
  auto* self = static_cast<HttpServer*>(arg);
  try {
    self->handle(req);
  } catch (...) {
    // Keep the reply contract even on an unexpected failure (allocation).
    evhttp_send_error(req, HTTP_INTERNAL, nullptr);
  }
}

void HttpServer::reply(evhttp_request* req, int code, std::string_view reason,
                       std::string_view body, const char* content_type) {
  auto* headers = evhttp_request_get_output_headers(req);
  evhttp_add_header(headers, "Content-Type", content_type);
  // Public trackers close after each answer: a client announces once per interval, and idle
  // keep-alive connections would only hold file descriptors.
  if (!keep_alive_) evhttp_add_header(headers, "Connection", "close");
  evbuffer* buf = evhttp_request_get_output_buffer(req);
  evbuffer_add(buf, body.data(), body.size());
  std::string reason_text(reason);
  evhttp_send_reply(req, code, reason_text.c_str(), nullptr);
}

void HttpServer::handle(evhttp_request* req) {
  counters_.inc(Counter::http_requests);
  const char* uri_c = evhttp_request_get_uri(req);
  std::string_view uri = uri_c ? uri_c : "";
  auto q = uri.find('?');
  std::string_view path = uri.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : uri.substr(q + 1);
  if (auto hash = query.find('#'); hash != std::string_view::npos) query = query.substr(0, hash);

  if (path == "/announce") {
    evhttp_connection* conn = evhttp_request_get_connection(req);
    const sockaddr* sa = conn ? evhttp_connection_get_addr(conn) : nullptr;
    sockaddr_storage ss{};
    if (sa) std::memcpy(&ss, sa, sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
    auto from = sa ? from_sockaddr(ss) : std::nullopt;
    if (!from) {
      counters_.inc(Counter::http_failures);
      reply(req, 200, "OK", http::encode_failure("cannot determine client address"), "text/plain");
      return;
    }
    handle_announce(req, query, from->ip);
  } else if (path == "/scrape") {
    handle_scrape(req, query);
  } else if (path == "/stats") {
    reply(req, 200, "OK", render_stats_json(stats_()), "application/json");
  } else if (path == "/metrics") {
    reply(req, 200, "OK", render_metrics(stats_()), "text/plain; version=0.0.4");
  } else {
    counters_.inc(Counter::http_not_found);
    reply(req, 404, "Not Found", "not found\n", "text/plain");
  }
}

void HttpServer::handle_announce(evhttp_request* req, std::string_view query,
                                 const IpAddress& socket_ip) {
  counters_.inc(Counter::http_announces);
  auto parsed = http::parse_announce(query);
  if (!parsed) {
    counters_.inc(Counter::http_failures);
    reply(req, 200, "OK", http::encode_failure(parsed.error()), "text/plain");
    return;
  }
  // Several X-Forwarded-For headers mean one list in order (RFC 7230 section 3.2.2).
  std::string xff;
  if (!trusted_proxies_.empty()) {
    evkeyvalq* headers = evhttp_request_get_input_headers(req);
    for (evkeyval* h = headers->tqh_first; h; h = h->next.tqe_next) {
      if (evutil_ascii_strcasecmp(h->key, "X-Forwarded-For") != 0) continue;
      if (!xff.empty()) xff += ',';
      xff += h->value;
    }
  }
  parsed->request.peer.ip =
      http::client_address(socket_ip, xff, parsed->ip_param, trusted_proxies_);
  parsed->request.families = PeerFamilies::both;
  // libevent keeps a request whose connection died until it is answered, so replying from a
  // late completion is safe; the handler guarantees the completion comes before its deadline.
  service_.announce(parsed->request, Clock::now(),
                    [this, req, compact = parsed->compact, no_peer_id = parsed->no_peer_id](
                        Expected<AnnounceResponse, std::string> r) {
                      if (!r) {
                        counters_.inc(Counter::http_failures);
                        reply(req, 200, "OK", http::encode_failure(r.error()), "text/plain");
                        return;
                      }
                      reply(req, 200, "OK", http::encode_announce(*r, compact, no_peer_id),
                            "text/plain");
                    });
}

void HttpServer::handle_scrape(evhttp_request* req, std::string_view query) {
  counters_.inc(Counter::http_scrapes);
  auto parsed = http::parse_scrape(query);
  if (!parsed) {
    counters_.inc(Counter::http_failures);
    reply(req, 200, "OK", http::encode_failure(parsed.error()), "text/plain");
    return;
  }
  service_.scrape(*parsed, Clock::now(), [this, req](Expected<ScrapeResponse, std::string> r) {
    if (!r) {
      counters_.inc(Counter::http_failures);
      reply(req, 200, "OK", http::encode_failure(r.error()), "text/plain");
      return;
    }
    reply(req, 200, "OK", http::encode_scrape(*r), "text/plain");
  });
}

}  // namespace ringtracker::tracker
