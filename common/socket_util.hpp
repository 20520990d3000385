// Small POSIX socket helpers shared by the UDP front ends (BEP 15, DHT) and the ring transport:
// opening a non-blocking UDP socket, converting between sockaddr and SocketAddress, pointing and
// sending sendmmsg batches. No event loop here.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <optional>
#include <string>

#include "common/expected.hpp"
#include "common/net_address.hpp"

namespace ringtracker {

/// Opens, configures (non-blocking, close-on-exec, IPV6_V6ONLY for v6, receive buffer of at
/// least `receive_buffer_bytes` when > 0) and binds a UDP socket. A port another socket holds is
/// an error ("Address already in use"), never shared.
Expected<int, std::string> open_udp_socket(const SocketAddress& addr, int receive_buffer_bytes);

/// The address a socket is bound to (reads back the port chosen for port 0).
Expected<SocketAddress, std::string> local_address(int fd);

/// A UDP socket opened by open_udp_socket and the address it got (port 0 resolved).
struct BoundUdpSocket {
  int fd = -1;
  SocketAddress address;
};
/// open_udp_socket + local_address; the socket is closed again when the second step fails.
Expected<BoundUdpSocket, std::string> open_bound_udp_socket(const SocketAddress& addr,
                                                            int receive_buffer_bytes);

std::optional<SocketAddress> from_sockaddr(const sockaddr_storage& ss);
/// Fills `ss` and returns the length to pass to sendto/bind.
socklen_t to_sockaddr(const SocketAddress& a, sockaddr_storage& ss);

/// Points `m` at one receive slot for recvmmsg: `len` bytes at `buf` (through `iov`), the
/// sender into `from`.
void point_receive(mmsghdr& m, sockaddr_storage& from, iovec& iov, void* buf, std::size_t len);
/// Points `m` at one datagram: destination `to` (of length `to_len`) and the bytes of `iov`.
void point_msg(mmsghdr& m, sockaddr_storage& to, socklen_t to_len, iovec& iov);
/// sendmmsg of `count` messages until all are out or the socket refuses (a full send buffer):
/// returns how many were NOT sent (the caller counts them as dropped).
unsigned send_all(int fd, mmsghdr* msgs, unsigned count);

}  // namespace ringtracker
