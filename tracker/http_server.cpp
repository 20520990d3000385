#include "tracker/http_server.hpp"

#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <optional>
#include <string_view>

#include "common/socket_util.hpp"
#include "tracker/http_codec.hpp"
#include "tracker/http_request_reader.hpp"

namespace ringtracker::tracker {

namespace {

/// Connections open at once. Each holds a descriptor and a head buffer of
/// http_header_bytes_max; past this, new connections are closed at once, so a flood of idle
/// connections costs bounded memory (with the default 8 KiB heads: 128 MiB at most).
constexpr std::size_t kConnectionsMax = 16384;
/// Closed connection objects (with their buffers and events) kept for reuse, so that a steady
/// stream of short connections allocates nothing; a burst above this is freed again.
constexpr std::size_t kPooledConnectionsMax = 1024;
/// Answer bytes a pooled connection may keep reserved; a larger buffer (a big /stats) is freed.
constexpr std::size_t kPooledOutputBytesMax = 16 * 1024;
/// accept4 calls per listener wake-up: bounds how long accepting delays answers to others.
constexpr int kAcceptBatchMax = 64;
/// Requested accept queue; the kernel clamps it to net.core.somaxconn.
constexpr int kListenBacklog = 4096;
/// TCP_DEFER_ACCEPT: how long the kernel holds a connection that has sent nothing yet. Real
/// clients send their request at once; a silent one reaches us after about this long (at the
/// next SYN-ACK retransmission) and then gets the idle timeout, so keep it short.
constexpr int kDeferAcceptSeconds = 1;
/// When accept runs out of descriptors or memory the listeners pause this long instead of
/// waking the loop again at once for a connection they cannot take.
constexpr timeval kAcceptPause{0, 100 * 1000};
/// After an error answer the socket is shut for writing and read until the client closes, so
/// request bytes still unread do not turn the close into a reset that destroys the answer
/// (RFC 9112 section 9.6). Bounded in bytes and in idle time.
constexpr std::size_t kLingerBytesMax = 256 * 1024;
constexpr timeval kLingerTimeout{2, 0};

struct ErrorAnswer {
  int status;
  std::string_view reason;
};

ErrorAnswer error_answer(http::HeadError e) {
  switch (e) {
    case http::HeadError::method_not_allowed:
      return {405, "Method Not Allowed"};
    case http::HeadError::body_not_accepted:
      return {413, "Content Too Large"};
    case http::HeadError::too_large:
      return {431, "Request Header Fields Too Large"};
    case http::HeadError::version_not_supported:
      return {505, "HTTP Version Not Supported"};
    case http::HeadError::bad_request:
      break;
  }
  return {400, "Bad Request"};
}

void append_number(std::string& out, std::size_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  (void)ec;
  out.append(buf, end);
}

}  // namespace

class HttpServer::Core : public std::enable_shared_from_this<HttpServer::Core> {
 public:
  Core(event_base* base, const Config& cfg, RequestHandler& service, Counters& counters,
       StatsProvider stats);
  ~Core();
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  Expected<SocketAddress, std::string> listen(const SocketAddress& addr);

 private:
  enum class State : std::uint8_t {
    reading,    // waiting for (more of) a request head
    waiting,    // a request is with the handler; not reading, no timer (the handler's deadline)
    answered,   // `out` holds the answer, not yet handed to the socket
    writing,    // the socket took part of `out`; waiting for it to drain
    lingering,  // error answer sent, write side shut; discarding input until the client closes
  };

  struct Connection {
    Connection(Core* owner, std::size_t head_bytes_max)
        : core(owner), in(new char[head_bytes_max]), reader(head_bytes_max) {}
    Core* core;
    event* ev = nullptr;
    int fd = -1;
    short armed = 0;  // EV_READ or EV_WRITE while the event is added
    const timeval* armed_timeout = nullptr;
    std::uint32_t slot = 0;
    State state = State::reading;
    bool dispatching = false;  // inside the handler call: the caller sends a synchronous answer
    bool keep_alive = false;   // the connection stays open after the answer being produced
    bool head_only = false;    // HEAD: the answer's headers without its body
    bool http10 = false;
    bool linger = false;  // close through the lingering state after the answer
    bool compact = true;
    bool no_peer_id = false;
    std::optional<IpAddress> peer_ip;
    std::unique_ptr<char[]> in;
    std::size_t in_len = 0;
    http::HttpRequestReader reader;
    std::string out;
    std::size_t out_sent = 0;
    std::size_t lingered = 0;
  };

  // A connection's identity for late answers: slot index and the slot's generation, which
  // changes whenever the connection in the slot closes.
  struct Slot {
    Connection* conn = nullptr;
    std::uint32_t generation = 0;
  };
  using Handle = std::uint64_t;

  struct Listener {
    int fd = -1;
    event* ev = nullptr;
  };

  static void on_accept_event(evutil_socket_t fd, short what, void* arg) noexcept;
  static void on_connection_event(evutil_socket_t fd, short what, void* arg) noexcept;
  static void on_accept_resume(evutil_socket_t fd, short what, void* arg) noexcept;

  void accept_from(int listen_fd);
  void pause_accepting();
  Connection* acquire(int fd, const sockaddr_storage& from);
  void close_connection(Connection* c);
  void destroy(Connection* c);
  Handle handle_of(const Connection* c) const {
    return (static_cast<Handle>(c->slot) << 32) | slots_[c->slot].generation;
  }
  Connection* lookup(Handle h) const {
    auto slot = static_cast<std::size_t>(h >> 32);
    if (slot >= slots_.size() || slots_[slot].generation != static_cast<std::uint32_t>(h))
      return nullptr;
    return slots_[slot].conn;
  }
  bool arm(Connection* c, short what, const timeval* timeout);
  void disarm(Connection* c);

  void on_readable(Connection* c);
  void process(Connection* c);
  void handle_request(Connection* c, const http::RequestHead& head, std::size_t consumed);
  void consume(Connection* c, std::size_t n);
  void reject(Connection* c, http::HeadError e);
  void answer(Connection* c, int status, std::string_view reason, std::string_view body,
              std::string_view content_type);
  void answer_failure(Connection* c, std::string_view reason);
  bool send_answer(Connection* c);
  void after_answer(Connection* c);
  void linger(Connection* c);
  void on_announce_done(Handle h, const Expected<AnnounceResponse, std::string>& r);
  void on_scrape_done(Handle h, Expected<ScrapeResponse, std::string> r);
  std::string_view date();

  event_base* base_;
  RequestHandler& service_;
  Counters& counters_;
  StatsProvider stats_;
  bool keep_alive_;
  std::size_t head_bytes_max_;
  std::vector<IpNetwork> trusted_proxies_;
  timeval idle_storage_{};
  timeval linger_storage_ = kLingerTimeout;
  const timeval* idle_timeout_ = nullptr;
  const timeval* linger_timeout_ = nullptr;

  std::vector<Listener> listeners_;
  event* accept_resume_ = nullptr;
  bool accept_paused_ = false;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::vector<Connection*> pool_;
  std::size_t open_ = 0;

  std::time_t date_second_ = -1;
  char date_[40] = {};
  std::size_t date_len_ = 0;
};

HttpServer::Core::Core(event_base* base, const Config& cfg, RequestHandler& service,
                       Counters& counters, StatsProvider stats)
    : base_(base),
      service_(service),
      counters_(counters),
      stats_(std::move(stats)),
      keep_alive_(cfg.http_keep_alive),
      head_bytes_max_(cfg.http_header_bytes_max),
      trusted_proxies_(cfg.trusted_proxies) {
  RT_ASSERT(base_ != nullptr);
  RT_ASSERT(head_bytes_max_ > 0);
  idle_storage_.tv_sec = static_cast<time_t>(std::max<std::int64_t>(1, cfg.http_timeout.count()));
  // Every connection shares one of two timeouts: libevent keeps such timers in a queue
  // instead of its heap, so arming one costs O(1).
  idle_timeout_ = event_base_init_common_timeout(base_, &idle_storage_);
  if (!idle_timeout_) idle_timeout_ = &idle_storage_;
  linger_timeout_ = event_base_init_common_timeout(base_, &linger_storage_);
  if (!linger_timeout_) linger_timeout_ = &linger_storage_;
  accept_resume_ = evtimer_new(base_, &Core::on_accept_resume, this);
  RT_ASSERT(accept_resume_ != nullptr);
}

HttpServer::Core::~Core() {
  for (auto& l : listeners_) {
    event_free(l.ev);
    ::close(l.fd);
  }
  event_free(accept_resume_);
  for (auto& s : slots_) {
    if (!s.conn) continue;
    if (s.conn->fd >= 0) ::close(s.conn->fd);
    destroy(s.conn);
  }
  for (auto* c : pool_) destroy(c);
}

Expected<SocketAddress, std::string> HttpServer::Core::listen(const SocketAddress& addr) {
  auto fail = [&](const char* what) {
    return Unexpected("http " + addr.to_string() + ": " + what + ": " + std::strerror(errno));
  };
  sockaddr_storage ss{};
  socklen_t len = to_sockaddr(addr, ss);
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail("socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ss.ss_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0 ||
      ::listen(fd, kListenBacklog) != 0) {
    auto e = fail("cannot bind");
    ::close(fd);
    return e;
  }
  // Best effort, both inherited by accepted sockets on Linux: a connection is handed over only
  // once its request has arrived (or after the timeout), and answers are not held back by
  // Nagle's algorithm on persistent connections.
  ::setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &kDeferAcceptSeconds, sizeof kDeferAcceptSeconds);
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto bound = local_address(fd);
  if (!bound) {
    ::close(fd);
    return Unexpected("http " + addr.to_string() + ": " + bound.error());
  }
  event* ev = event_new(base_, fd, EV_READ | EV_PERSIST, &Core::on_accept_event, this);
  if (!ev || event_add(ev, nullptr) != 0) {
    if (ev) event_free(ev);
    ::close(fd);
    return Unexpected("http " + addr.to_string() + ": cannot watch the listener");
  }
  listeners_.push_back({fd, ev});
  return *bound;
}

void HttpServer::Core::on_accept_event(evutil_socket_t fd, short, void* arg) noexcept {
  static_cast<Core*>(arg)->accept_from(fd);
}

void HttpServer::Core::on_accept_resume(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<Core*>(arg);
  self->accept_paused_ = false;
  for (auto& l : self->listeners_) event_add(l.ev, nullptr);
}

void HttpServer::Core::pause_accepting() {
  if (accept_paused_) return;
  accept_paused_ = true;
  for (auto& l : listeners_) event_del(l.ev);
  evtimer_add(accept_resume_, &kAcceptPause);
}

void HttpServer::Core::accept_from(int listen_fd) {
  for (int i = 0; i < kAcceptBatchMax; ++i) {
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&from), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        pause_accepting();
      return;
    }
    if (open_ >= kConnectionsMax) {
      ::close(fd);
      continue;
    }
    Connection* c = acquire(fd, from);
    if (!c) {
      ::close(fd);
      pause_accepting();
      return;
    }
    // With TCP_DEFER_ACCEPT the request is usually queued already: read it now and the whole
    // exchange needs no epoll registration.
    Handle h = handle_of(c);
    try {
      on_readable(c);
    } catch (...) {
      // Only allocation can throw; give up on this connection, keep serving others.
      if (Connection* still = lookup(h)) close_connection(still);
    }
  }
}

HttpServer::Core::Connection* HttpServer::Core::acquire(int fd, const sockaddr_storage& from) {
  Connection* c = nullptr;
  bool from_pool = !pool_.empty();
  try {
    if (from_pool) {
      c = pool_.back();
      pool_.pop_back();
    } else {
      c = new Connection(this, head_bytes_max_);
      c->ev = event_new(base_, -1, 0, &Core::on_connection_event, c);
      if (!c->ev) {
        delete c;
        return nullptr;
      }
    }
    if (free_slots_.empty()) {
      RT_ASSERT(slots_.size() < UINT32_MAX);
      // Room for every slot to be free at once, so closing never allocates.
      free_slots_.reserve(slots_.size() + 1);
      slots_.emplace_back();
      free_slots_.push_back(static_cast<std::uint32_t>(slots_.size() - 1));
    }
  } catch (const std::bad_alloc&) {
    if (from_pool) {
      pool_.push_back(c);  // cannot throw: the element just came out of it
    } else if (c) {
      destroy(c);
    }
    return nullptr;
  }
  c->slot = free_slots_.back();
  free_slots_.pop_back();
  slots_[c->slot].conn = c;
  c->fd = fd;
  c->state = State::reading;
  auto addr = from_sockaddr(from);
  c->peer_ip = addr ? std::optional<IpAddress>(addr->ip) : std::nullopt;
  ++open_;
  return c;
}

void HttpServer::Core::destroy(Connection* c) {
  if (c->ev) event_free(c->ev);
  delete c;
}

void HttpServer::Core::close_connection(Connection* c) {
  disarm(c);
  ::close(c->fd);
  c->fd = -1;
  Slot& s = slots_[c->slot];
  s.conn = nullptr;
  ++s.generation;                  // late answers for this connection now find nothing
  free_slots_.push_back(c->slot);  // never allocates: capacity covers every slot
  --open_;
  c->in_len = 0;
  c->reader.reset();
  c->out.clear();
  c->out_sent = 0;
  c->lingered = 0;
  c->linger = false;
  c->dispatching = false;
  if (c->out.capacity() > kPooledOutputBytesMax) std::string().swap(c->out);
  if (pool_.size() < kPooledConnectionsMax) {
    try {
      pool_.push_back(c);
      return;
    } catch (const std::bad_alloc&) {
    }
  }
  destroy(c);
}

bool HttpServer::Core::arm(Connection* c, short what, const timeval* timeout) {
  if (c->armed == what && c->armed_timeout == timeout) return true;
  if (c->armed) event_del(c->ev);
  c->armed = 0;
  event_assign(c->ev, base_, c->fd, static_cast<short>(what | EV_PERSIST),
               &Core::on_connection_event, c);
  if (event_add(c->ev, timeout) != 0) {
    close_connection(c);
    return false;
  }
  c->armed = what;
  c->armed_timeout = timeout;
  return true;
}

void HttpServer::Core::disarm(Connection* c) {
  if (!c->armed) return;
  event_del(c->ev);
  c->armed = 0;
  c->armed_timeout = nullptr;
}

void HttpServer::Core::on_connection_event(evutil_socket_t, short what, void* arg) noexcept {
  auto* c = static_cast<Connection*>(arg);
  Core* self = c->core;
  Handle h = self->handle_of(c);
  try {
    if (what & EV_TIMEOUT) {
      self->close_connection(c);
      return;
    }
    switch (c->state) {
      case State::reading:
        self->on_readable(c);
        break;
      case State::writing:
        self->after_answer(c);
        break;
      case State::lingering:
        self->linger(c);
        break;
      case State::waiting:
      case State::answered:
        break;  // not armed in these states
    }
  } catch (...) {
    // Only allocation can throw here; give up on this connection, keep serving others.
    if (Connection* still = self->lookup(h)) self->close_connection(still);
  }
}

void HttpServer::Core::on_readable(Connection* c) {
  RT_ASSERT(c->in_len < head_bytes_max_);
  ssize_t n = ::recv(c->fd, c->in.get() + c->in_len, head_bytes_max_ - c->in_len, 0);
  if (n > 0) {
    c->in_len += static_cast<std::size_t>(n);
    process(c);
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    arm(c, EV_READ, idle_timeout_);
    return;
  }
  // End of stream (a partial head is dropped) or a socket error.
  close_connection(c);
}

void HttpServer::Core::process(Connection* c) {
  for (;;) {
    auto r = c->reader.read({c->in.get(), c->in_len});
    if (r.status == http::HttpRequestReader::Status::incomplete) {
      arm(c, EV_READ, idle_timeout_);
      return;
    }
    if (r.status == http::HttpRequestReader::Status::error) {
      reject(c, r.error);
      return;
    }
    Handle h = handle_of(c);
    c->dispatching = true;
    handle_request(c, r.head, r.consumed);
    c = lookup(h);
    if (!c) return;
    c->dispatching = false;
    if (c->state == State::waiting) {
      disarm(c);  // the answer comes later; the handler's deadline bounds the wait
      return;
    }
    if (!send_answer(c)) return;
    if (c->in_len == 0) {
      arm(c, EV_READ, idle_timeout_);
      return;
    }
  }
}

void HttpServer::Core::consume(Connection* c, std::size_t n) {
  RT_ASSERT(n <= c->in_len);
  c->in_len -= n;
  if (c->in_len > 0) std::memmove(c->in.get(), c->in.get() + n, c->in_len);
  c->reader.reset();
}

void HttpServer::Core::handle_request(Connection* c, const http::RequestHead& head,
                                      std::size_t consumed) {
  counters_.inc(Counter::http_requests);
  c->keep_alive = keep_alive_ && head.wants_keep_alive();
  c->head_only = head.method == http::Method::head;
  c->http10 = head.version_minor == 0;
  std::string_view target = head.target;
  auto q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  if (auto hash = query.find('#'); hash != std::string_view::npos) query = query.substr(0, hash);

  // The head's views point into the input buffer: everything needed from them is copied out
  // before consume() moves pipelined bytes over them.
  if (path == "/announce") {
    counters_.inc(Counter::http_announces);
    auto parsed = http::parse_announce(query);
    if (parsed && c->peer_ip) {
      std::string xff;
      if (!trusted_proxies_.empty()) {
        // Several X-Forwarded-For headers mean one list in order (RFC 9110 section 5.3).
        for (std::size_t i = 0; i < head.forwarded_for_count; ++i) {
          if (!xff.empty()) xff += ',';
          xff += head.forwarded_for[i];
        }
      }
      parsed->request.peer.ip =
          http::client_address(*c->peer_ip, xff, parsed->ip_param, trusted_proxies_);
      parsed->request.families = PeerFamilies::both;
      c->compact = parsed->compact;
      c->no_peer_id = parsed->no_peer_id;
    }
    consume(c, consumed);
    if (!parsed) {
      counters_.inc(Counter::http_failures);
      answer_failure(c, parsed.error());
      return;
    }
    if (!c->peer_ip) {
      counters_.inc(Counter::http_failures);
      answer_failure(c, "cannot determine client address");
      return;
    }
    c->state = State::waiting;
    service_.announce(
        parsed->request, Clock::now(),
        [weak = weak_from_this(), h = handle_of(c)](Expected<AnnounceResponse, std::string>&& r) {
          if (auto self = weak.lock()) self->on_announce_done(h, r);
        });
    return;
  }
  if (path == "/scrape") {
    counters_.inc(Counter::http_scrapes);
    auto parsed = http::parse_scrape(query);
    consume(c, consumed);
    if (!parsed) {
      counters_.inc(Counter::http_failures);
      answer_failure(c, parsed.error());
      return;
    }
    c->state = State::waiting;
    service_.scrape(
        *parsed, Clock::now(),
        [weak = weak_from_this(), h = handle_of(c)](Expected<ScrapeResponse, std::string> r) {
          if (auto self = weak.lock()) self->on_scrape_done(h, std::move(r));
        });
    return;
  }
  bool stats = path == "/stats";
  bool metrics = path == "/metrics";
  consume(c, consumed);
  if (stats) {
    answer(c, 200, "OK", render_stats_json(stats_()), "application/json");
  } else if (metrics) {
    answer(c, 200, "OK", render_metrics(stats_()), "text/plain; version=0.0.4");
  } else {
    counters_.inc(Counter::http_not_found);
    answer(c, 404, "Not Found", "not found\n", "text/plain");
  }
}

void HttpServer::Core::on_announce_done(Handle h,
                                        const Expected<AnnounceResponse, std::string>& r) {
  Connection* c = lookup(h);
  if (!c || c->state != State::waiting) return;  // the client left (or the server closed it)
  try {
    if (!r) {
      counters_.inc(Counter::http_failures);
      answer_failure(c, r.error());
    } else {
      answer(c, 200, "OK", http::encode_announce(*r, c->compact, c->no_peer_id), "text/plain");
    }
    if (!c->dispatching) after_answer(c);
  } catch (...) {
    // Allocation failed while answering: this connection is given up, the handler unharmed.
    if (Connection* still = lookup(h)) close_connection(still);
  }
}

void HttpServer::Core::on_scrape_done(Handle h, Expected<ScrapeResponse, std::string> r) {
  Connection* c = lookup(h);
  if (!c || c->state != State::waiting) return;  // the client left (or the server closed it)
  try {
    if (!r) {
      counters_.inc(Counter::http_failures);
      answer_failure(c, r.error());
    } else {
      answer(c, 200, "OK", http::encode_scrape(*r), "text/plain");
    }
    if (!c->dispatching) after_answer(c);
  } catch (...) {
    // Allocation failed while answering: this connection is given up, the handler unharmed.
    if (Connection* still = lookup(h)) close_connection(still);
  }
}

void HttpServer::Core::answer_failure(Connection* c, std::string_view reason) {
  // BEP 3: a failure is a 200 with a bencoded body, so clients show the reason.
  answer(c, 200, "OK", http::encode_failure(reason), "text/plain");
}

std::string_view HttpServer::Core::date() {
  std::time_t now = std::time(nullptr);
  if (now != date_second_) {
    date_second_ = now;
    std::tm tm{};
    gmtime_r(&now, &tm);
    date_len_ = std::strftime(date_, sizeof date_, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  }
  return {date_, date_len_};
}

void HttpServer::Core::answer(Connection* c, int status, std::string_view reason,
                              std::string_view body, std::string_view content_type) {
  std::string& o = c->out;
  o.clear();
  c->out_sent = 0;
  o.append("HTTP/1.1 ");
  append_number(o, static_cast<std::size_t>(status));
  o.push_back(' ');
  o.append(reason);
  o.append("\r\nDate: ");
  o.append(date());
  o.append("\r\nContent-Type: ");
  o.append(content_type);
  o.append("\r\nContent-Length: ");
  append_number(o, body.size());
  if (!c->keep_alive) {
    // Public trackers close after each answer: a client announces once per interval, and
    // idle keep-alive connections would only hold descriptors.
    o.append("\r\nConnection: close");
  } else if (c->http10) {
    o.append("\r\nConnection: keep-alive");
  }
  o.append("\r\n\r\n");
  if (!c->head_only) o.append(body);
  c->state = State::answered;
}

void HttpServer::Core::reject(Connection* c, http::HeadError e) {
  if (e == http::HeadError::too_large) counters_.inc(Counter::http_rejected_oversized);
  auto [status, reason] = error_answer(e);
  c->keep_alive = false;
  c->head_only = false;
  c->http10 = false;
  c->linger = true;
  std::string body(reason);
  body.push_back('\n');
  answer(c, status, reason, body, "text/plain");
  send_answer(c);
}

bool HttpServer::Core::send_answer(Connection* c) {
  while (c->out_sent < c->out.size()) {
    ssize_t n = ::send(c->fd, c->out.data() + c->out_sent, c->out.size() - c->out_sent,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c->out_sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      c->state = State::writing;
      arm(c, EV_WRITE, idle_timeout_);
      return false;
    }
    close_connection(c);
    return false;
  }
  c->out.clear();
  c->out_sent = 0;
  if (c->linger) {
    ::shutdown(c->fd, SHUT_WR);
    c->state = State::lingering;
    c->in_len = 0;
    arm(c, EV_READ, linger_timeout_);
    return false;
  }
  if (!c->keep_alive) {
    close_connection(c);
    return false;
  }
  c->state = State::reading;
  return true;
}

void HttpServer::Core::after_answer(Connection* c) {
  if (!send_answer(c)) return;
  // Pipelined requests may wait in the buffer already.
  if (c->in_len > 0) {
    process(c);
  } else {
    arm(c, EV_READ, idle_timeout_);
  }
}

void HttpServer::Core::linger(Connection* c) {
  for (;;) {
    ssize_t n = ::recv(c->fd, c->in.get(), head_bytes_max_, 0);
    if (n > 0) {
      c->lingered += static_cast<std::size_t>(n);
      if (c->lingered > kLingerBytesMax) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    break;  // the client closed, or the socket failed
  }
  close_connection(c);
}

HttpServer::HttpServer(event_base* base, const Config& cfg, RequestHandler& service,
                       Counters& counters, StatsProvider stats)
    : core_(std::make_shared<Core>(base, cfg, service, counters, std::move(stats))) {}

HttpServer::~HttpServer() = default;

Expected<SocketAddress, std::string> HttpServer::listen(const SocketAddress& addr) {
  return core_->listen(addr);
}

}  // namespace ringtracker::tracker
