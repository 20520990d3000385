// SlotMap: values by 32-bit key in a vector of slots, for objects that come and go by the
// thousand per second (requests waiting for the ring). No heap node per value: a freed slot is
// kept and handed out again. A key carries its slot and the slot's reuse count, and slots are
// reused first freed, first reused, so a key stays unique for (slots in use) x 2^(32 - slot
// bits) insertions: a late answer to a finished request does not find the one that reuses its
// slot. Never returns key 0. Storage for `capacity` values is reserved at construction
// (address space; pages are touched as slots come into use), so a pointer from find() stays
// valid until its value is erased.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/assert.hpp"

namespace ringtracker {

template <class T>
class SlotMap {
 public:
  /// At most `capacity` values at once (1 .. 2^24).
  explicit SlotMap(std::size_t capacity)
      : capacity_(capacity),
        slot_bits_(static_cast<unsigned>(std::bit_width(capacity - 1))),
        slot_mask_((std::uint32_t{1} << slot_bits_) - 1) {
    RT_ASSERT(capacity >= 1 && capacity <= (std::size_t{1} << 24));
    slots_.reserve(capacity);
    free_.resize(capacity);
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool full() const { return size_ >= capacity_; }

  /// Stores `value` (the map must not be full) and returns its key.
  std::uint32_t insert(T value) {
    RT_ASSERT(!full());
    std::uint32_t slot;
    if (free_count_ != 0) {
      slot = free_[free_head_];
      free_head_ = (free_head_ + 1) % capacity_;
      --free_count_;
    } else {
      slot = static_cast<std::uint32_t>(slots_.size());
      slots_.emplace_back();
    }
    Slot& s = slots_[slot];
    s.value = std::move(value);
    s.live = true;
    ++size_;
    return key_of(slot, s.generation);
  }

  /// The value under `key`, or nullptr (never stored, or erased since).
  T* find(std::uint32_t key) {
    const std::uint32_t slot = key & slot_mask_;
    if (slot >= slots_.size()) return nullptr;
    Slot& s = slots_[slot];
    if (!s.live || key_of(slot, s.generation) != key) return nullptr;
    return &s.value;
  }
  const T* find(std::uint32_t key) const { return const_cast<SlotMap*>(this)->find(key); }

  /// Destroys the value under `key` (its resources are released now). False if none.
  bool erase(std::uint32_t key) {
    if (find(key) == nullptr) return false;
    const std::uint32_t slot = key & slot_mask_;
    Slot& s = slots_[slot];
    s.value = T{};
    s.live = false;
    // The next key of this slot differs; generation 0 with slot 0 would be key 0: skipped.
    s.generation = (s.generation + 1) & generation_mask();
    if (s.generation == 0 && slot == 0) s.generation = 1;
    free_[(free_head_ + free_count_) % capacity_] = slot;
    ++free_count_;
    --size_;
    return true;
  }

  /// f(key, T&) for every value, in slot order.
  template <class F>
  void for_each(F&& f) {
    for (std::uint32_t slot = 0; slot < slots_.size(); ++slot) {
      Slot& s = slots_[slot];
      if (s.live) f(key_of(slot, s.generation), s.value);
    }
  }

 private:
  struct Slot {
    T value{};
    std::uint32_t generation = 1;
    bool live = false;
  };
  std::uint32_t generation_mask() const { return 0xffffffffu >> slot_bits_; }
  std::uint32_t key_of(std::uint32_t slot, std::uint32_t generation) const {
    return slot_bits_ == 0 ? generation : (generation << slot_bits_) | slot;
  }

  std::size_t capacity_;
  unsigned slot_bits_;
  std::uint32_t slot_mask_;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_;  // a ring of capacity_ entries: oldest freed first
  std::size_t free_head_ = 0;
  std::size_t free_count_ = 0;
  std::size_t size_ = 0;
};

}  // namespace ringtracker
