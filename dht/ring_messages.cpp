// Ring message codec over bencode::Document / bencode::Writer.
#include "dht/ring_messages.hpp"

#include <cstring>

#include "bencode/bencode.hpp"
#include "common/assert.hpp"

namespace ringtracker::dht {
namespace {

constexpr std::array<std::string_view, kMessageKindCount> kKindWire = {
    "pi", "po", "gs", "st", "re", "hi", "fs", "fr", "lv", "la", "ap"};
constexpr std::array<std::string_view, kMessageKindCount> kKindNames = {
    "ping", "pong",      "get_state", "state",     "rectify", "hint",
    "find_step", "find_reply", "leave", "leave_ack", "app"};

constexpr std::size_t kNodeV4 = NodeId::kBytes + 4 + 2;
constexpr std::size_t kNodeV6 = NodeId::kBytes + 16 + 2;
constexpr std::size_t kNodeStringMax = kNodeV6 + 2;

std::optional<MessageKind> kind_from_wire(std::string_view s) {
  for (std::size_t i = 0; i < kKindWire.size(); ++i)
    if (kKindWire[i] == s) return static_cast<MessageKind>(i);
  return std::nullopt;
}

std::size_t write_node(const NodeRef& n, char* buf) {
  std::size_t len = 0;
  std::memcpy(buf, n.id.bytes().data(), NodeId::kBytes);
  len += NodeId::kBytes;
  std::memcpy(buf + len, n.address.ip.data(), n.address.ip.size());
  len += n.address.ip.size();
  buf[len++] = static_cast<char>(n.address.port >> 8);
  buf[len++] = static_cast<char>(n.address.port & 0xff);
  if (n.vnode != 0) {
    buf[len++] = static_cast<char>(n.vnode >> 8);
    buf[len++] = static_cast<char>(n.vnode & 0xff);
  }
  return len;
}

void write_node_value(bencode::Writer& w, const NodeRef& n) {
  char buf[kNodeStringMax];
  w.string(std::string_view(buf, write_node(n, buf)));
}

void write_nodes(bencode::Writer& w, const NodeList& nodes) {
  w.string("n").begin_list();
  for (const auto& n : nodes) write_node_value(w, n);
  w.end();
}

bool has_nodes(MessageKind k) {
  return k == MessageKind::state || k == MessageKind::find_reply || k == MessageKind::leave;
}
bool has_pred(MessageKind k) { return has_nodes(k); }

// Reads node list `n` into out.nodes.
Expected<void, MessageError> read_nodes(const bencode::Node& root, RingMessage& out) {
  auto list = root.find("n");
  if (!list) return Unexpected(MessageError::missing_field);
  if (!list.is_list()) return Unexpected(MessageError::bad_field);
  std::size_t count = list.list_size();
  if (count > MessageLimits::kNodesMax) return Unexpected(MessageError::too_many_nodes);
  for (std::size_t i = 0; i < count; ++i) {
    auto s = list.list_at(i).string();
    if (!s) return Unexpected(MessageError::bad_node);
    auto node = decode_node(*s);
    if (!node) return Unexpected(MessageError::bad_node);
    out.nodes.push_back(*node);
  }
  return {};
}

}  // namespace

std::string_view to_string(MessageKind kind) { return kKindNames[static_cast<std::size_t>(kind)]; }

std::string_view to_string(MessageError e) {
  static constexpr std::array<std::string_view, kMessageErrorCount> kNames = {
      "too_large",    "bencode",     "not_dict", "missing_field",
      "bad_field",    "unknown_kind", "bad_node", "too_many_nodes"};
  return kNames[static_cast<std::size_t>(e)];
}

void RingMessage::clear() {
  kind = MessageKind::ping;
  txid = 0;
  sender = NodeRef{};
  rectify = false;
  predecessor.reset();
  nodes.clear();
  key = NodeId{};
  code = FindCode::next;
  payload.clear();
}

void encode_node(const NodeRef& n, std::string& out) {
  char buf[kNodeStringMax];
  out.append(buf, write_node(n, buf));
}

std::optional<NodeRef> decode_node(std::string_view s) {
  std::size_t ip_len = 0;
  bool vnode = false;
  switch (s.size()) {
    case kNodeV4: ip_len = 4; break;
    case kNodeV6: ip_len = 16; break;
    case kNodeV4 + 2: ip_len = 4; vnode = true; break;
    case kNodeV6 + 2: ip_len = 16; vnode = true; break;
    default: return std::nullopt;
  }
  const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
  NodeRef n;
  n.id = *NodeId::from_bytes(std::span<const std::uint8_t>(p, NodeId::kBytes));
  p += NodeId::kBytes;
  n.address.ip = ip_len == 4 ? IpAddress::v4(p) : IpAddress::v6(p);
  // An IPv4-mapped IPv6 address would be normalised to a different text, hence a different
  // id: refuse it here rather than at id verification.
  if (ip_len == 16 && n.address.ip.is_v4()) return std::nullopt;
  p += ip_len;
  n.address.port = static_cast<std::uint16_t>(p[0] << 8 | p[1]);
  if (n.address.port == 0) return std::nullopt;
  p += 2;
  if (vnode) {
    n.vnode = static_cast<std::uint16_t>(p[0] << 8 | p[1]);
    if (n.vnode == 0) return std::nullopt;  // 0 is written as "absent"; two encodings is one too many
  }
  return n;
}

void encode_message(const RingMessage& m, std::string& out) {
  RT_ASSERT(m.nodes.size() <= MessageLimits::kNodesMax);
  bencode::Writer w(out);
  w.begin_dict();  // keys in sorted order (BEP 3)
  if (m.kind == MessageKind::find_reply) w.kv("c", static_cast<std::int64_t>(m.code));
  w.string("i");
  write_node_value(w, m.sender);
  if (m.kind == MessageKind::find_step) w.kv("k", m.key.as_string_view());
  if (has_nodes(m.kind)) write_nodes(w, m.nodes);
  if (has_pred(m.kind) && m.predecessor) {
    w.string("p");
    write_node_value(w, *m.predecessor);
  }
  w.kv("q", kKindWire[static_cast<std::size_t>(m.kind)]);
  if (m.kind == MessageKind::get_state && m.rectify) w.kv("r", 1);
  w.kv("t", static_cast<std::int64_t>(m.txid));
  if (m.kind == MessageKind::app) w.kv("x", m.payload);
  w.end();
  RT_ASSERT(out.size() <= MessageLimits::kBytesMax);
}

Expected<void, MessageError> decode_message(std::span<const std::uint8_t> bytes, RingMessage& out) {
  out.clear();
  if (bytes.size() > MessageLimits::kBytesMax) return Unexpected(MessageError::too_large);
  // Cheapest check first: every message is a dictionary.
  if (bytes.empty() || bytes[0] != 'd') return Unexpected(MessageError::not_dict);
  bencode::DecodeLimits limits;
  limits.bytes_max = MessageLimits::kBytesMax;
  limits.depth_max = MessageLimits::kDepthMax;
  limits.tokens_max = MessageLimits::kTokensMax;
  // Borrowed: everything is copied into `out` before this function returns.
  auto doc = bencode::Document::decode_view(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), limits);
  if (!doc) return Unexpected(MessageError::bencode);
  auto root = doc->root();
  if (!root.is_dict()) return Unexpected(MessageError::not_dict);

  auto q = root.find("q");
  if (!q) return Unexpected(MessageError::missing_field);
  auto qs = q.string();
  if (!qs) return Unexpected(MessageError::bad_field);
  auto kind = kind_from_wire(*qs);
  if (!kind) return Unexpected(MessageError::unknown_kind);
  out.kind = *kind;

  auto t = root.find("t");
  if (!t) return Unexpected(MessageError::missing_field);
  auto tv = t.integer();
  if (!tv || *tv < 0 || *tv > 0xffffffffLL) return Unexpected(MessageError::bad_field);
  out.txid = static_cast<std::uint32_t>(*tv);

  auto i = root.find("i");
  if (!i) return Unexpected(MessageError::missing_field);
  auto is = i.string();
  if (!is) return Unexpected(MessageError::bad_field);
  auto sender = decode_node(*is);
  if (!sender) return Unexpected(MessageError::bad_node);
  out.sender = *sender;

  switch (out.kind) {
    case MessageKind::get_state: {
      auto r = root.find("r");
      if (r) {
        auto rv = r.integer();
        if (!rv || (*rv != 0 && *rv != 1)) return Unexpected(MessageError::bad_field);
        out.rectify = *rv == 1;
      }
      break;
    }
    case MessageKind::find_step: {
      auto k = root.find("k");
      if (!k) return Unexpected(MessageError::missing_field);
      auto ks = k.string();
      if (!ks) return Unexpected(MessageError::bad_field);
      auto key = NodeId::from_bytes(*ks);
      if (!key) return Unexpected(MessageError::bad_field);
      out.key = *key;
      break;
    }
    case MessageKind::find_reply: {
      auto c = root.find("c");
      if (!c) return Unexpected(MessageError::missing_field);
      auto cv = c.integer();
      if (!cv || *cv < 0 || *cv > 2) return Unexpected(MessageError::bad_field);
      out.code = static_cast<FindCode>(*cv);
      break;
    }
    case MessageKind::app: {
      auto x = root.find("x");
      if (!x) return Unexpected(MessageError::missing_field);
      auto xs = x.string();
      if (!xs) return Unexpected(MessageError::bad_field);
      out.payload.assign(xs->data(), xs->size());
      break;
    }
    default:
      break;
  }
  if (has_nodes(out.kind)) {
    auto r = read_nodes(root, out);
    if (!r) return r;
  }
  if (has_pred(out.kind)) {
    auto p = root.find("p");
    if (p) {
      auto ps = p.string();
      if (!ps) return Unexpected(MessageError::bad_field);
      auto pred = decode_node(*ps);
      if (!pred) return Unexpected(MessageError::bad_node);
      out.predecessor = *pred;
    }
  }
  // A find_reply that names a successor or a next hop without any node is meaningless.
  if (out.kind == MessageKind::find_reply && out.code != FindCode::self_owner && out.nodes.empty())
    return Unexpected(MessageError::bad_field);
  return {};
}

Expected<RingMessage, MessageError> decode_message(std::span<const std::uint8_t> bytes) {
  RingMessage m;
  auto r = decode_message(bytes, m);
  if (!r) return Unexpected(r.error());
  return m;
}

}  // namespace ringtracker::dht
