// BufferPool: byte strings that go round instead of being allocated and freed per message. A
// ring message is written by the data layer, bundled with others for the same node, wrapped in
// the ring's envelope and queued on the socket: each step used to allocate a buffer of a few
// KiB (out of the allocator's fast path) and free the last one. Each step now takes its buffer
// here and gives the one it is done with back, so a steady flow of messages allocates nothing.
//
// Bounded: at most kBuffersMax buffers of at most kBufferBytesMax capacity are kept; anything
// beyond is freed as before. One pool per thread (the event loop's).
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace ringtracker {

class BufferPool {
 public:
  /// Buffers kept: more than one event-loop pass has in flight (a forward and a reply batch
  /// per peer node, their bundles, envelopes and socket copies).
  static constexpr std::size_t kBuffersMax = 32;
  /// Larger buffers (a rare big transfer chunk) are freed, not kept: the pool holds at most
  /// kBuffersMax x kBufferBytesMax bytes.
  static constexpr std::size_t kBufferBytesMax = 64 * 1024;

  /// This thread's pool.
  static BufferPool& local() {
    thread_local BufferPool pool;
    return pool;
  }

  /// An empty buffer: the last one given back (with its capacity), or a new one.
  std::string take() {
    if (free_.empty()) return {};
    std::string b = std::move(free_.back());
    free_.pop_back();
    return b;
  }

  /// Keeps `buffer`'s memory for a later take(), unless it has none worth keeping or the pool
  /// is full.
  void give(std::string&& buffer) {
    const std::size_t capacity = buffer.capacity();
    if (capacity <= kSmallBytes || capacity > kBufferBytesMax || free_.size() >= kBuffersMax)
      return;
    buffer.clear();
    if (free_.capacity() == 0) free_.reserve(kBuffersMax);
    free_.push_back(std::move(buffer));
  }

  /// Gives `s` a buffer from the pool when it is empty and holds no memory of its own (new or
  /// moved from), so that what is written into it next lands in a buffer given back before.
  void refill(std::string& s) {
    if (s.empty() && s.capacity() <= kSmallBytes && !free_.empty()) s = take();
  }

  std::size_t size() const { return free_.size(); }

 private:
  /// A string's own inline bytes: nothing allocated to keep.
  static constexpr std::size_t kSmallBytes = std::string().capacity();
  std::vector<std::string> free_;
};

}  // namespace ringtracker
