#include "tracker/access_list.hpp"

#include <fstream>
#include <sstream>

namespace ringtracker::tracker {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

Expected<AccessMode, std::string> parse_access_mode(std::string_view text) {
  if (text == "off") return AccessMode::off;
  if (text == "allow") return AccessMode::allow;
  if (text == "deny") return AccessMode::deny;
  return Unexpected(std::string("access mode must be off, allow or deny, not '") +
                    std::string(text) + "'");
}

Expected<AccessList, std::string> AccessList::parse(AccessMode mode, std::string_view text) {
  std::unordered_set<std::string> hashes;
  std::size_t line_no = 0;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (auto hash_pos = line.find('#'); hash_pos != std::string_view::npos)
      line = trim(line.substr(0, hash_pos));
    if (line.empty()) continue;
    if (line.size() != 40)
      return Unexpected("line " + std::to_string(line_no) + ": expected 40 hex digits");
    std::string raw(20, '\0');
    for (std::size_t i = 0; i < 20; ++i) {
      int hi = hex_value(line[2 * i]), lo = hex_value(line[2 * i + 1]);
      if (hi < 0 || lo < 0)
        return Unexpected("line " + std::to_string(line_no) + ": not a hex digit");
      raw[i] = static_cast<char>(hi * 16 + lo);
    }
    if (hashes.size() >= kEntriesMax)
      return Unexpected("more than " + std::to_string(kEntriesMax) + " entries");
    hashes.insert(std::move(raw));
  }
  return AccessList(mode, std::move(hashes));
}

Expected<AccessList, std::string> AccessList::load(AccessMode mode, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Unexpected("cannot read access list " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  auto r = parse(mode, ss.str());
  if (!r) return Unexpected(path + ": " + r.error());
  return r;
}

bool AccessList::permits(const InfoHash& h) const {
  if (mode_ == AccessMode::off) return true;
  bool listed = hashes_.count(std::string(reinterpret_cast<const char*>(h.data()), h.size())) > 0;
  return mode_ == AccessMode::allow ? listed : !listed;
}

}  // namespace ringtracker::tracker
