#include "tracker/http_request_reader.hpp"

#include "common/assert.hpp"

namespace ringtracker::tracker::http {

namespace {

constexpr bool is_tchar(unsigned char c) {
  // RFC 9110 section 5.6.2: token characters.
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

// Bytes never allowed in a head: controls other than HT, CR (checked at the line end) and LF.
constexpr bool is_forbidden(unsigned char c) {
  return (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f;
}

bool iequals(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(a[i]);
    if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c | 0x20);
    if (c != static_cast<unsigned char>(lower[i])) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

struct LineCursor {
  std::string_view rest;
  // Next line without its LF and an optional CR before it; false at the end of the head.
  bool next(std::string_view& line) {
    if (rest.empty()) return false;
    auto nl = rest.find('\n');
    RT_ASSERT(nl != std::string_view::npos);
    line = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return true;
  }
};

// A CR anywhere but right before the LF is not a line end and not allowed inside a line.
bool has_cr(std::string_view line) { return line.find('\r') != std::string_view::npos; }

bool parse_target(std::string_view raw, std::string_view& target) {
  if (raw.empty()) return false;
  for (unsigned char c : raw)
    if (c <= 0x20 || c >= 0x7f) return false;
  if (raw.front() == '/') {
    target = raw;
    return true;
  }
  // RFC 9112 section 3.2.2: servers accept absolute-form; only the path and query matter here.
  std::string_view scheme_end = "://";
  auto colon = raw.find(scheme_end);
  if (colon == std::string_view::npos) return false;
  std::string_view scheme = raw.substr(0, colon);
  if (!iequals(scheme, "http") && !iequals(scheme, "https")) return false;
  std::string_view after = raw.substr(colon + scheme_end.size());
  auto slash = after.find('/');
  std::string_view authority = after.substr(0, slash);
  if (authority.empty() || authority.find('?') != std::string_view::npos) return false;
  target = slash == std::string_view::npos ? std::string_view("/") : after.substr(slash);
  return true;
}

bool parse_request_line(std::string_view line, RequestHead& head, HeadError& error) {
  error = HeadError::bad_request;
  auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return false;
  auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return false;  // HTTP/0.9 style: no version
  if (line.find(' ', sp2 + 1) != std::string_view::npos) return false;
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method)) return false;
  if (!parse_target(target, head.target)) return false;
  // "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 section 2.3).
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.') return false;
  char major = version[5];
  char minor = version[7];
  if (major < '0' || major > '9' || minor < '0' || minor > '9') return false;
  if (major != '1') {
    error = HeadError::version_not_supported;
    return false;
  }
  head.version_minor = minor == '0' ? 0 : 1;
  // Methods are case-sensitive (RFC 9110 section 9.1).
  if (method == "GET") {
    head.method = Method::get;
  } else if (method == "HEAD") {
    head.method = Method::head;
  } else {
    error = HeadError::method_not_allowed;
    return false;
  }
  return true;
}

bool parse_connection(std::string_view value, RequestHead& head) {
  while (!value.empty()) {
    auto comma = value.find(',');
    std::string_view item = trim_ows(value.substr(0, comma));
    if (iequals(item, "close")) head.connection_close = true;
    if (iequals(item, "keep-alive")) head.connection_keep_alive = true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return true;
}

bool parse_header(std::string_view line, RequestHead& head, HeadError& error) {
  error = HeadError::bad_request;
  if (line.front() == ' ' || line.front() == '\t') return false;  // obsolete line folding
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view name = line.substr(0, colon);
  if (!is_token(name)) return false;  // also refuses whitespace before the colon
  std::string_view value = trim_ows(line.substr(colon + 1));
  switch (name.size()) {
    case 10:
      if (iequals(name, "connection")) return parse_connection(value, head);
      break;
    case 14:
      if (iequals(name, "content-length")) {
        if (value.empty()) return false;
        bool nonzero = false;
        for (char c : value) {
          if (c < '0' || c > '9') return false;
          nonzero |= c != '0';
        }
        if (nonzero) {
          error = HeadError::body_not_accepted;
          return false;
        }
      }
      break;
    case 15:
      if (iequals(name, "x-forwarded-for")) {
        if (value.empty()) return true;
        if (head.forwarded_for_count == kForwardedForLinesMax) {
          error = HeadError::too_large;
          return false;
        }
        head.forwarded_for[head.forwarded_for_count++] = value;
      }
      break;
    case 17:
      if (iequals(name, "transfer-encoding")) {
        error = HeadError::body_not_accepted;
        return false;
      }
      break;
    default:
      break;
  }
  return true;
}

}  // namespace

HttpRequestReader::HttpRequestReader(std::size_t head_bytes_max) : head_bytes_max_(head_bytes_max) {
  RT_ASSERT(head_bytes_max > 0);
}

void HttpRequestReader::reset() {
  scanned_ = head_start_ = line_start_ = 0;
  failed_ = false;
  error_ = HeadError::bad_request;
}

HttpRequestReader::Result HttpRequestReader::read(std::string_view buffered) {
  Result r;
  auto fail = [&](HeadError e) {
    failed_ = true;
    error_ = e;
    r.status = Status::error;
    r.error = e;
    return r;
  };
  if (failed_) return fail(error_);
  RT_ASSERT(scanned_ <= buffered.size());
  // Only the bound's worth of bytes is looked at: what lies beyond belongs to a head that is
  // too large anyway.
  std::size_t limit = buffered.size() < head_bytes_max_ ? buffered.size() : head_bytes_max_;
  for (; scanned_ < limit; ++scanned_) {
    auto c = static_cast<unsigned char>(buffered[scanned_]);
    if (c != '\n') {
      if (is_forbidden(c)) return fail(HeadError::bad_request);
      continue;
    }
    std::size_t len = scanned_ - line_start_;
    bool empty = len == 0 || (len == 1 && buffered[line_start_] == '\r');
    if (!empty) {
      line_start_ = scanned_ + 1;
      continue;
    }
    if (line_start_ == head_start_) {
      // RFC 9112 section 2.2: ignore empty lines before the request line.
      head_start_ = line_start_ = scanned_ + 1;
      continue;
    }
    std::size_t end = scanned_ + 1;
    LineCursor lines{buffered.substr(head_start_, line_start_ - head_start_)};
    std::string_view line;
    HeadError error = HeadError::bad_request;
    bool has_request_line = lines.next(line);
    RT_ASSERT(has_request_line);
    if (has_cr(line) || !parse_request_line(line, r.head, error)) return fail(error);
    while (lines.next(line)) {
      if (has_cr(line) || !parse_header(line, r.head, error)) return fail(error);
    }
    r.status = Status::complete;
    r.consumed = end;
    return r;
  }
  if (buffered.size() >= head_bytes_max_) return fail(HeadError::too_large);
  return r;
}

}  // namespace ringtracker::tracker::http
