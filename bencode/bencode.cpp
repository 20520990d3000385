// Adapter over lt::bdecode. Nodes hold a non-owning bdecode_node in their own storage so that
// no other module needs libtorrent headers; copying one is a few words (no token copy).
#include "bencode/bencode.hpp"

#include <charconv>
#include <libtorrent/bdecode.hpp>
#include <new>

namespace ringtracker::bencode {

static_assert(sizeof(libtorrent::bdecode_node) <= Node::kNodeBytes &&
                  alignof(libtorrent::bdecode_node) <= Node::kNodeAlign,
              "Node's inline storage must hold a bdecode_node");

Node::Node() = default;
Node::~Node() { reset(); }
Node::Node(const libtorrent::bdecode_node& n) { assign(n); }
Node::Node(const Node& o) {
  if (o.has_) assign(*o.get());
}
Node& Node::operator=(const Node& o) {
  if (this != &o) {
    reset();
    if (o.has_) assign(*o.get());
  }
  return *this;
}

const libtorrent::bdecode_node* Node::get() const {
  return has_ ? std::launder(reinterpret_cast<const libtorrent::bdecode_node*>(storage_)) : nullptr;
}

void Node::reset() {
  if (!has_) return;
  std::launder(reinterpret_cast<libtorrent::bdecode_node*>(storage_))->~bdecode_node();
  has_ = false;
}

// A non-owning copy is a few words (no token copy); it points into the Document's tokens.
void Node::assign(const libtorrent::bdecode_node& n) {
  ::new (static_cast<void*>(storage_)) libtorrent::bdecode_node(n.non_owning());
  has_ = true;
}

Node::Type Node::type() const {
  if (!has_) return Type::none;
  switch (get()->type()) {
    case libtorrent::bdecode_node::dict_t:
      return Type::dict;
    case libtorrent::bdecode_node::list_t:
      return Type::list;
    case libtorrent::bdecode_node::string_t:
      return Type::string;
    case libtorrent::bdecode_node::int_t:
      return Type::integer;
    default:
      return Type::none;
  }
}

std::optional<std::string_view> Node::string() const {
  if (type() != Type::string) return std::nullopt;
  auto v = get()->string_value();
  return std::string_view(v.data(), v.size());
}

std::optional<std::int64_t> Node::integer() const {
  if (type() != Type::integer) return std::nullopt;
  // int_value() saturates silently on overflow; reject what does not fit instead.
  auto buf = get()->data_section();
  if (buf.size() < 3) return std::nullopt;
  std::string_view digits(buf.data() + 1, static_cast<std::size_t>(buf.size()) - 2);
  std::int64_t v = 0;
  auto [p, err] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (err != std::errc() || p != digits.data() + digits.size()) return std::nullopt;
  return v;
}

std::size_t Node::list_size() const {
  return type() == Type::list ? static_cast<std::size_t>(get()->list_size()) : 0;
}

Node Node::list_at(std::size_t i) const {
  if (i >= list_size()) return Node();
  return Node(get()->list_at(static_cast<int>(i)));
}

std::size_t Node::dict_size() const {
  return type() == Type::dict ? static_cast<std::size_t>(get()->dict_size()) : 0;
}

std::pair<std::string_view, Node> Node::dict_at(std::size_t i) const {
  if (i >= dict_size()) return {};
  auto [k, v] = get()->dict_at(static_cast<int>(i));
  return {std::string_view(k.data(), k.size()), Node(v)};
}

Node Node::find(std::string_view key) const {
  if (type() != Type::dict) return Node();
  auto v = get()->dict_find(libtorrent::string_view(key.data(), key.size()));
  if (!v) return Node();
  return Node(v);
}

std::optional<std::string_view> Node::find_string(std::string_view key) const {
  return find(key).string();
}

std::optional<std::int64_t> Node::find_integer(std::string_view key) const {
  return find(key).integer();
}

Document::Document() = default;
Document::Document(Document&&) noexcept = default;
Document& Document::operator=(Document&&) noexcept = default;
Document::~Document() = default;

Expected<Document, DecodeError> Document::decode(std::string_view bytes,
                                                 const DecodeLimits& limits) {
  if (bytes.size() > limits.bytes_max) return Unexpected(DecodeError{"message too large"});
  Document doc;
  doc.buffer_.assign(bytes.begin(), bytes.end());
  const char* data = doc.buffer_.data();
  return parse(std::move(doc), data, bytes.size(), limits);
}

Expected<Document, DecodeError> Document::decode_view(std::string_view bytes,
                                                      const DecodeLimits& limits) {
  if (bytes.size() > limits.bytes_max) return Unexpected(DecodeError{"message too large"});
  return parse(Document(), bytes.data(), bytes.size(), limits);
}

Expected<Document, DecodeError> Document::parse(Document doc, const char* data, std::size_t size,
                                                const DecodeLimits& limits) {
  if (size == 0) return Unexpected(DecodeError{"empty message"});
  doc.root_ = std::make_unique<libtorrent::bdecode_node>();
  libtorrent::error_code ec;
  int error_pos = 0;
  int r = libtorrent::bdecode(data, data + size, *doc.root_, ec, &error_pos, limits.depth_max,
                              limits.tokens_max);
  if (r != 0 || ec) return Unexpected(DecodeError{"bdecode: " + ec.message()});
  // bdecode accepts trailing bytes after the root value; a message is exactly one value.
  if (static_cast<std::size_t>(doc.root_->data_section().size()) != size)
    return Unexpected(DecodeError{"trailing bytes after value"});
  return doc;
}

Node Document::root() const { return root_ ? Node(*root_) : Node(); }

Writer& Writer::integer(std::int64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out_.push_back('i');
  out_.append(buf, p);
  out_.push_back('e');
  return *this;
}

Writer& Writer::string(std::string_view s) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, s.size());
  (void)ec;
  out_.append(buf, p);
  out_.push_back(':');
  out_.append(s);
  return *this;
}

}  // namespace ringtracker::bencode
