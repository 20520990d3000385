// Bencode for untrusted bytes: decoding through libtorrent-rasterbar's bdecode with hard limits
// (the only place in the project that includes <libtorrent/...>), and a streaming writer that
// appends to a std::string without per-key allocations (announce replies are a hot path).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/expected.hpp"

namespace libtorrent {
struct bdecode_node;
}

namespace ringtracker::bencode {

/// Limits applied to every decode of bytes from outside.
struct DecodeLimits {
  static constexpr std::size_t kBytesMaxDefault = 64 * 1024;  // larger than any UDP datagram
  static constexpr int kDepthMaxDefault = 16;                 // ring messages nest 3 deep
  static constexpr int kTokensMaxDefault = 8192;              // ~ items in a big peer list
  std::size_t bytes_max = kBytesMaxDefault;
  int depth_max = kDepthMaxDefault;
  int tokens_max = kTokensMaxDefault;
};

struct DecodeError {
  std::string message;
};

/// A read-only view of one value inside a Document. Valid while the Document lives.
/// Accessors never throw: a wrong type yields an empty Node / nullopt.
class Node {
 public:
  enum class Type : std::uint8_t { none, dict, list, string, integer };
  /// Storage for the libtorrent node inside the Node (no allocation per lookup; bencode.cpp
  /// checks that it fits), so that other modules need no libtorrent header.
  static constexpr std::size_t kNodeBytes = 64;
  static constexpr std::size_t kNodeAlign = 8;

  Node();
  ~Node();
  /// Copy only: a Node is kNodeBytes of views into a document, so a move would be the same copy.
  Node(const Node&);
  Node& operator=(const Node&);

  Type type() const;
  bool is_dict() const { return type() == Type::dict; }
  bool is_list() const { return type() == Type::list; }
  bool is_string() const { return type() == Type::string; }
  bool is_integer() const { return type() == Type::integer; }
  explicit operator bool() const { return type() != Type::none; }

  std::optional<std::string_view> string() const;
  std::optional<std::int64_t> integer() const;

  std::size_t list_size() const;
  Node list_at(std::size_t i) const;  // sequential access is amortised O(1)

  std::size_t dict_size() const;
  std::pair<std::string_view, Node> dict_at(std::size_t i) const;
  Node find(std::string_view key) const;
  std::optional<std::string_view> find_string(std::string_view key) const;
  std::optional<std::int64_t> find_integer(std::string_view key) const;

 private:
  friend class Document;
  explicit Node(const libtorrent::bdecode_node& n);
  const libtorrent::bdecode_node* get() const;
  void reset();
  void assign(const libtorrent::bdecode_node& n);

  alignas(kNodeAlign) unsigned char storage_[kNodeBytes];
  bool has_ = false;
};

/// Owns a copy of the decoded bytes and the token table that Nodes point into.
class Document {
 public:
  Document(Document&&) noexcept;
  Document& operator=(Document&&) noexcept;
  ~Document();

  /// Decodes `bytes` within `limits`. Never throws; trailing garbage is an error.
  static Expected<Document, DecodeError> decode(std::string_view bytes,
                                                const DecodeLimits& limits = {});
  /// As decode(), without the copy: `bytes` must outlive the Document and its Nodes (a
  /// caller that copies out what it needs before the buffer changes saves a copy per message).
  static Expected<Document, DecodeError> decode_view(std::string_view bytes,
                                                     const DecodeLimits& limits = {});
  Node root() const;

 private:
  Document();
  /// Parses [data, data + size), which this Document owns or borrows.
  static Expected<Document, DecodeError> parse(Document doc, const char* data, std::size_t size,
                                               const DecodeLimits& limits);
  std::vector<char> buffer_;  // vector, not string: SSO would move the bytes on move
  std::unique_ptr<libtorrent::bdecode_node> root_;
};

/// Appends bencoded values to `out`. The caller writes dictionary keys in sorted order
/// (BEP 3); the writer does not reorder.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  Writer& integer(std::int64_t v);
  Writer& string(std::string_view s);
  Writer& begin_dict() {
    out_.push_back('d');
    return *this;
  }
  Writer& begin_list() {
    out_.push_back('l');
    return *this;
  }
  Writer& end() {
    out_.push_back('e');
    return *this;
  }
  /// key + integer value in one call.
  Writer& kv(std::string_view key, std::int64_t v) { return string(key).integer(v); }
  /// key + string value in one call.
  Writer& kv(std::string_view key, std::string_view v) { return string(key).string(v); }

 private:
  std::string& out_;
};

}  // namespace ringtracker::bencode
