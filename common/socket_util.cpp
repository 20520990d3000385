#include "common/socket_util.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ringtracker {

std::optional<SocketAddress> from_sockaddr(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
    return SocketAddress{IpAddress::v4(reinterpret_cast<const std::uint8_t*>(&in.sin_addr)),
                         ntohs(in.sin_port)};
  }
  if (ss.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
    return SocketAddress{IpAddress::v6(reinterpret_cast<const std::uint8_t*>(&in6.sin6_addr)),
                         ntohs(in6.sin6_port)};
  }
  return std::nullopt;
}

socklen_t to_sockaddr(const SocketAddress& a, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof ss);
  if (a.ip.is_v6()) {
    auto& in6 = reinterpret_cast<sockaddr_in6&>(ss);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(a.port);
    std::memcpy(&in6.sin6_addr, a.ip.data(), 16);
    return sizeof(sockaddr_in6);
  }
  auto& in = reinterpret_cast<sockaddr_in&>(ss);
  in.sin_family = AF_INET;
  in.sin_port = htons(a.port);
  std::memcpy(&in.sin_addr, a.ip.data(), 4);
  return sizeof(sockaddr_in);
}

Expected<int, std::string> open_udp_socket(const SocketAddress& addr, int receive_buffer_bytes) {
  const std::string where = "udp " + addr.to_string() + ": ";
  int fd = ::socket(addr.ip.is_v6() ? AF_INET6 : AF_INET,
                    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unexpected(where + std::strerror(errno));
  // No SO_REUSEADDR: on a UDP socket it lets another process bind the same port (an explicit
  // one, or one the kernel picks for port 0) and silently take its datagrams. A port in use
  // must be an error. UDP has no TIME_WAIT to wait out after a restart.
  int one = 1;
  if (addr.ip.is_v6() && ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) {
    std::string e = where + "IPV6_V6ONLY: " + std::strerror(errno);
    ::close(fd);
    return Unexpected(e);
  }
  if (receive_buffer_bytes > 0) {
    // SO_RCVBUFFORCE passes rmem_max when privileged; otherwise take what the kernel allows.
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer_bytes,
                     sizeof receive_buffer_bytes) != 0)
      (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes,
                         sizeof receive_buffer_bytes);
  }
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(addr, ss);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    std::string e = where + "bind: " + std::strerror(errno);
    ::close(fd);
    return Unexpected(e);
  }
  return fd;
}

Expected<SocketAddress, std::string> local_address(int fd) {
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return Unexpected(std::string("getsockname: ") + std::strerror(errno));
  auto a = from_sockaddr(ss);
  if (!a) return Unexpected(std::string("getsockname: unknown address family"));
  return *a;
}

Expected<BoundUdpSocket, std::string> open_bound_udp_socket(const SocketAddress& addr,
                                                            int receive_buffer_bytes) {
  auto fd = open_udp_socket(addr, receive_buffer_bytes);
  if (!fd) return Unexpected(fd.error());
  auto bound = local_address(*fd);
  if (!bound) {
    ::close(*fd);
    return Unexpected(bound.error());
  }
  return BoundUdpSocket{*fd, *bound};
}

void point_receive(mmsghdr& m, sockaddr_storage& from, iovec& iov, void* buf, std::size_t len) {
  iov = {buf, len};
  std::memset(&m.msg_hdr, 0, sizeof(msghdr));
  m.msg_hdr.msg_name = &from;
  m.msg_hdr.msg_namelen = sizeof(sockaddr_storage);
  m.msg_hdr.msg_iov = &iov;
  m.msg_hdr.msg_iovlen = 1;
}

void point_msg(mmsghdr& m, sockaddr_storage& to, socklen_t to_len, iovec& iov) {
  std::memset(&m.msg_hdr, 0, sizeof(msghdr));
  m.msg_hdr.msg_name = &to;
  m.msg_hdr.msg_namelen = to_len;
  m.msg_hdr.msg_iov = &iov;
  m.msg_hdr.msg_iovlen = 1;
}

unsigned send_all(int fd, mmsghdr* msgs, unsigned count) {
  unsigned sent = 0;
  while (sent < count) {
    const int m = ::sendmmsg(fd, msgs + sent, count - sent, MSG_DONTWAIT);
    if (m <= 0) return count - sent;
    sent += static_cast<unsigned>(m);
  }
  return 0;
}

}  // namespace ringtracker
