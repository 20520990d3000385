// Small POSIX socket helpers shared by the UDP front end and the ring transport: opening a
// non-blocking UDP socket, converting between sockaddr and SocketAddress. No event loop here.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>

#include "common/expected.hpp"
#include "common/net_address.hpp"

namespace ringtracker {

/// Opens, configures (non-blocking, close-on-exec, SO_REUSEADDR, IPV6_V6ONLY for v6, receive
/// buffer of at least `receive_buffer_bytes` when > 0) and binds a UDP socket.
Expected<int, std::string> open_udp_socket(const SocketAddress& addr, int receive_buffer_bytes);

/// The address a socket is bound to (reads back the port chosen for port 0).
Expected<SocketAddress, std::string> local_address(int fd);

std::optional<SocketAddress> from_sockaddr(const sockaddr_storage& ss);
/// Fills `ss` and returns the length to pass to sendto/bind.
socklen_t to_sockaddr(const SocketAddress& a, sockaddr_storage& ss);

}  // namespace ringtracker
