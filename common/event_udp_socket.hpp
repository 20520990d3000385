// A bound UDP socket that a libevent loop reads: the descriptor and its persistent read event,
// made together and freed together. The BEP 15 server, the DHT server and the ring transport
// each hold one per address they listen on. Header-only: only the libevent edges include it.
#pragma once

#include <event2/event.h>
#include <unistd.h>

#include <string>
#include <string_view>

#include "common/expected.hpp"
#include "common/net_address.hpp"
#include "common/socket_util.hpp"

namespace ringtracker {

class EventUdpSocket {
 public:
  EventUdpSocket() = default;
  ~EventUdpSocket() {
    if (ev_) event_free(ev_);
    if (fd_ >= 0) ::close(fd_);
  }
  EventUdpSocket(const EventUdpSocket&) = delete;
  EventUdpSocket& operator=(const EventUdpSocket&) = delete;

  /// Binds `addr` (open_bound_udp_socket) and has `base` call on_readable(fd, EV_READ, arg)
  /// whenever the socket is readable. The bound address, or why not: open_bound_udp_socket's
  /// message, or "<what> <addr>: cannot register with the event loop". Once only.
  Expected<SocketAddress, std::string> open(event_base* base, const SocketAddress& addr,
                                            int receive_buffer_bytes,
                                            event_callback_fn on_readable, void* arg,
                                            std::string_view what) {
    auto bound = open_bound_udp_socket(addr, receive_buffer_bytes);
    if (!bound) return Unexpected(bound.error());
    fd_ = bound->fd;
    ev_ = event_new(base, fd_, EV_READ | EV_PERSIST, on_readable, arg);
    if (!ev_ || event_add(ev_, nullptr) != 0) {
      return Unexpected(std::string(what) + " " + addr.to_string() +
                        ": cannot register with the event loop");
    }
    return bound->address;
  }

  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  event* ev_ = nullptr;
};

}  // namespace ringtracker
