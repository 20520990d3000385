#include "dht/krpc.hpp"

#include <cstring>

#include "bencode/bencode.hpp"

namespace ringtracker::dht::krpc {
namespace {

using bencode::Node;

Rejected silent(std::string reason) {
  Rejected r;
  r.reason = std::move(reason);
  return r;
}

Rejected answer(std::string_view txid, ErrorCode code, std::string reason) {
  Rejected r;
  r.answerable = true;
  r.transaction_id = std::string(txid);
  r.code = code;
  r.reason = std::move(reason);
  return r;
}

std::optional<NodeId> id_at(const Node& dict, std::string_view key) {
  auto s = dict.find_string(key);
  if (!s) return std::nullopt;
  return NodeId::from_bytes(*s);
}

/// BEP 5 flags are integers 0/1; anything else non-zero counts as set, as other nodes read them.
bool flag_at(const Node& dict, std::string_view key) {
  auto v = dict.find_integer(key);
  return v && *v != 0;
}

Method method_of(std::string_view name) {
  if (name == "ping") return Method::ping;
  if (name == "find_node") return Method::find_node;
  if (name == "get_peers") return Method::get_peers;
  if (name == "announce_peer") return Method::announce_peer;
  return Method::unknown;
}

Expected<Message, Rejected> decode_query(const Node& root, std::string_view txid) {
  auto name = root.find_string("q");
  if (!name) return Unexpected(answer(txid, ErrorCode::protocol, "query without method"));
  const Node a = root.find("a");
  if (!a.is_dict()) return Unexpected(answer(txid, ErrorCode::protocol, "query without arguments"));
  Query q;
  q.transaction_id = std::string(txid);
  q.method = method_of(*name);
  auto sender = id_at(a, "id");
  if (!sender) return Unexpected(answer(txid, ErrorCode::protocol, "id is not 20 bytes"));
  q.sender = *sender;
  q.read_only = flag_at(root, "ro");  // BEP 43: a top-level key
  const Node want = a.find("want");
  for (std::size_t i = 0; i < want.list_size(); ++i) {
    auto w = want.list_at(i).string();
    if (w == "n4") q.want_v4 = true;
    if (w == "n6") q.want_v6 = true;
  }
  switch (q.method) {
    case Method::ping:
    case Method::unknown:
      break;
    case Method::find_node: {
      auto target = id_at(a, "target");
      if (!target) return Unexpected(answer(txid, ErrorCode::protocol, "target is not 20 bytes"));
      q.target = *target;
      break;
    }
    case Method::get_peers:
    case Method::announce_peer: {
      auto ih = id_at(a, "info_hash");
      if (!ih) return Unexpected(answer(txid, ErrorCode::protocol, "info_hash is not 20 bytes"));
      q.target = *ih;
      if (q.method == Method::get_peers) {
        q.noseed = flag_at(a, "noseed");
        break;
      }
      q.implied_port = flag_at(a, "implied_port");
      q.seed = flag_at(a, "seed");
      auto port = a.find_integer("port");
      if (port && *port >= 1 && *port <= 65535) {
        q.port = static_cast<std::uint16_t>(*port);
      } else if (!q.implied_port) {
        return Unexpected(answer(txid, ErrorCode::protocol, "port is missing or out of range"));
      }
      auto token = a.find_string("token");
      if (!token || token->empty() || token->size() > kTokenBytesMax)
        return Unexpected(answer(txid, ErrorCode::protocol, "token is missing or too long"));
      q.token = std::string(*token);
      break;
    }
  }
  return Message(std::move(q));
}

/// Appends the contacts of a compact node string (BEP 5: 26-byte IPv4 entries; BEP 32: 38-byte
/// IPv6 entries). A length that is not a multiple of the entry size is malformed.
bool read_nodes(std::string_view bytes, bool v6, std::vector<Contact>& out) {
  const std::size_t entry = v6 ? kCompactNode6Bytes : kCompactNode4Bytes;
  if (bytes.size() % entry != 0) return false;
  const std::size_t n = std::min(bytes.size() / entry, kResponseNodesMax);
  for (std::size_t i = 0; i < n; ++i) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data() + i * entry);
    Contact c;
    c.id = *NodeId::from_bytes(std::span<const std::uint8_t>(p, NodeId::kBytes));
    p += NodeId::kBytes;
    c.address.ip = v6 ? IpAddress::v6(p) : IpAddress::v4(p);
    p += v6 ? 16 : 4;
    c.address.port = static_cast<std::uint16_t>((p[0] << 8) | p[1]);
    if (c.address.port != 0) out.push_back(c);  // port 0 cannot be reached
  }
  return true;
}

Expected<Message, Rejected> decode_response(const Node& root, std::string_view txid) {
  const Node r = root.find("r");
  if (!r.is_dict()) return Unexpected(silent("response without r"));
  auto sender = id_at(r, "id");
  if (!sender) return Unexpected(silent("response id is not 20 bytes"));
  Response resp;
  resp.transaction_id = std::string(txid);
  resp.sender = *sender;
  if (auto n = r.find_string("nodes"); n && !read_nodes(*n, false, resp.nodes))
    return Unexpected(silent("malformed nodes"));
  if (auto n = r.find_string("nodes6"); n && !read_nodes(*n, true, resp.nodes))
    return Unexpected(silent("malformed nodes6"));
  return Message(std::move(resp));
}

Expected<Message, Rejected> decode_error(const Node& root, std::string_view txid) {
  const Node e = root.find("e");
  Error err;
  err.transaction_id = std::string(txid);
  if (auto code = e.list_at(0).integer()) err.code = static_cast<int>(*code);
  if (auto msg = e.list_at(1).string()) err.message = std::string(*msg);
  return Message(std::move(err));
}

// ---- encoding ------------------------------------------------------------------------------

void put_compact_address(std::string& out, const SocketAddress& a) {
  out.append(reinterpret_cast<const char*>(a.ip.data()), a.ip.size());
  out.push_back(static_cast<char>(a.port >> 8));
  out.push_back(static_cast<char>(a.port & 0xff));
}

std::string compact_nodes(const std::vector<Contact>& nodes) {
  std::string s;
  s.reserve(nodes.size() * kCompactNode6Bytes);
  for (const auto& c : nodes) {
    s.append(c.id.as_string_view());
    put_compact_address(s, c.address);
  }
  return s;
}

/// Top-level keys in BEP 3 order: "ip", "r", "t", "v", "y". `body` writes the "r" dict's keys.
/// Bytes of a reply around its body: keys, id, transaction id, version, compact address.
constexpr std::size_t kReplyFrameBytes = 96;

template <class Body>
void reply(std::string& out, const ReplyHead& head, std::size_t body_bytes, Body&& body) {
  out.reserve(out.size() + kReplyFrameBytes + body_bytes);
  bencode::Writer w(out);
  std::string ip;
  put_compact_address(ip, head.requester);
  w.begin_dict().kv("ip", ip).string("r").begin_dict().kv("id", head.self.as_string_view());
  body(w);
  w.end().kv("t", head.transaction_id).kv("v", kClientVersion).kv("y", "r").end();
}

void query(std::string& out, std::string_view txid, std::string_view method,
           const NodeId& self, const NodeId* target) {
  bencode::Writer w(out);
  w.begin_dict().string("a").begin_dict().kv("id", self.as_string_view());
  if (target != nullptr) {
    w.kv("target", target->as_string_view());
    w.string("want").begin_list().string("n4").string("n6").end();
  }
  w.end().kv("q", method).kv("t", txid).kv("v", kClientVersion).kv("y", "q").end();
}

/// BEP 5 replies to find_node with "nodes": an empty string when there are none (and no IPv6
/// ones either) rather than no key, which strict readers refuse.
void put_nodes(bencode::Writer& w, const std::vector<Contact>& nodes4,
               const std::vector<Contact>& nodes6) {
  if (!nodes4.empty() || nodes6.empty()) w.kv("nodes", compact_nodes(nodes4));
  if (!nodes6.empty()) w.kv("nodes6", compact_nodes(nodes6));
}

/// Bytes "nodes" and "nodes6" take at most.
std::size_t nodes_bytes(const std::vector<Contact>& nodes4, const std::vector<Contact>& nodes6) {
  return 16 + nodes4.size() * kCompactNode4Bytes + nodes6.size() * kCompactNode6Bytes;
}

}  // namespace

Expected<Message, Rejected> decode(std::string_view datagram) {
  if (datagram.size() > kDatagramBytesMax) return Unexpected(silent("datagram too large"));
  if (datagram.empty() || datagram.front() != 'd') return Unexpected(silent("not a dictionary"));
  bencode::DecodeLimits limits;
  limits.bytes_max = kDatagramBytesMax;
  limits.depth_max = kBencodeDepthMax;
  limits.tokens_max = kBencodeTokensMax;
  auto doc = bencode::Document::decode_view(datagram, limits);
  if (!doc) return Unexpected(silent("not bencode: " + doc.error().message));
  const Node root = doc->root();
  auto txid = root.find_string("t");
  if (!txid || txid->empty() || txid->size() > kTransactionIdBytesMax)
    return Unexpected(silent("transaction id missing or too long"));
  auto type = root.find_string("y");
  if (type == "q") return decode_query(root, *txid);
  if (type == "r") return decode_response(root, *txid);
  if (type == "e") return decode_error(root, *txid);
  return Unexpected(silent("unknown message type"));
}

void encode_id_reply(std::string& out, const ReplyHead& head) {
  reply(out, head, 0, [](bencode::Writer&) {});
}

void encode_nodes_reply(std::string& out, const ReplyHead& head,
                        const std::vector<Contact>& nodes4, const std::vector<Contact>& nodes6) {
  reply(out, head, nodes_bytes(nodes4, nodes6),
        [&](bencode::Writer& w) { put_nodes(w, nodes4, nodes6); });
}

void encode_get_peers_reply(std::string& out, const ReplyHead& head, std::string_view token,
                            const std::vector<Contact>& nodes4, const std::vector<Contact>& nodes6,
                            const std::vector<SocketAddress>& values) {
  // Each value is "6:" or "18:" and the compact peer.
  reply(out, head, nodes_bytes(nodes4, nodes6) + 32 + values.size() * 21,
        [&](bencode::Writer& w) {
    put_nodes(w, nodes4, nodes6);
    w.kv("token", token);
    if (values.empty()) return;
    w.string("values").begin_list();
    std::string peer;
    for (const auto& v : values) {
      peer.clear();
      put_compact_address(peer, v);
      w.string(peer);
    }
    w.end();
  });
}

void encode_error(std::string& out, std::string_view transaction_id, ErrorCode code,
                  std::string_view message) {
  bencode::Writer w(out);
  w.begin_dict().string("e").begin_list().integer(static_cast<int>(code)).string(message).end();
  w.kv("t", transaction_id).kv("v", kClientVersion).kv("y", "e").end();
}

void encode_ping_query(std::string& out, std::string_view transaction_id, const NodeId& self) {
  query(out, transaction_id, "ping", self, nullptr);
}

void encode_find_node_query(std::string& out, std::string_view transaction_id, const NodeId& self,
                            const NodeId& target) {
  query(out, transaction_id, "find_node", self, &target);
}

}  // namespace ringtracker::dht::krpc
