// The info-hash access list: off, allow-only-listed or deny-listed, loaded from a text file of
// 40-hex-digit hashes (one per line, '#' comments). Pure parsing; the daemon reloads on SIGHUP.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_set>

#include "common/expected.hpp"
#include "tracker/announce.hpp"

namespace ringtracker::tracker {

enum class AccessMode : std::uint8_t { off, allow, deny };

class AccessList {
 public:
  /// Upper bound on listed hashes (a typo'd huge file must not eat the machine).
  static constexpr std::size_t kEntriesMax = 10'000'000;

  AccessList() = default;
  AccessList(AccessMode mode, std::unordered_set<std::string> hashes)
      : mode_(mode), hashes_(std::move(hashes)) {}

  /// Parses the file text. Errors name the first bad line.
  static Expected<AccessList, std::string> parse(AccessMode mode, std::string_view text);
  static Expected<AccessList, std::string> load(AccessMode mode, const std::string& path);

  bool permits(const InfoHash& h) const;
  AccessMode mode() const { return mode_; }
  std::size_t size() const { return hashes_.size(); }

 private:
  AccessMode mode_ = AccessMode::off;
  std::unordered_set<std::string> hashes_;  // raw 20-byte strings
};

Expected<AccessMode, std::string> parse_access_mode(std::string_view text);

}  // namespace ringtracker::tracker
