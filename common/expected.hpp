// A minimal Expected<T, E> for bytes from outside (network, config), shaped like C++23
// std::expected so that moving to it is a rename. It owns no allocation beyond std::variant.
#pragma once

#include <type_traits>
#include <utility>
#include <variant>

#include "common/assert.hpp"

namespace ringtracker {

template <class E>
class Unexpected {
 public:
  explicit Unexpected(E e) : error_(std::move(e)) {}
  const E& error() const& { return error_; }
  E& error() & { return error_; }
  E&& error() && { return std::move(error_); }

 private:
  E error_;
};

template <class E>
Unexpected(E) -> Unexpected<E>;

/// Holds either a value or an error. Accessing the wrong alternative is a programmer error
/// (always-on assertion), never undefined behaviour.
template <class T, class E>
class Expected {
 public:
  using value_type = T;
  using error_type = E;

  template <class U = T, class = std::enable_if_t<std::is_constructible_v<T, U&&>>>
  Expected(U&& v) : v_(std::in_place_index<0>, std::forward<U>(v)) {}  // NOLINT: implicit
  template <class G>
  Expected(Unexpected<G> u) : v_(std::in_place_index<1>, std::move(u).error()) {}  // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    RT_ASSERT(has_value());
    return std::get<0>(v_);
  }
  const T& value() const& {
    RT_ASSERT(has_value());
    return std::get<0>(v_);
  }
  T&& value() && {
    RT_ASSERT(has_value());
    return std::get<0>(std::move(v_));
  }
  const E& error() const& {
    RT_ASSERT(!has_value());
    return std::get<1>(v_);
  }
  E& error() & {
    RT_ASSERT(!has_value());
    return std::get<1>(v_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, E> v_;
};

/// Expected<void, E>: success carries nothing.
template <class E>
class Expected<void, E> {
 public:
  using value_type = void;
  using error_type = E;

  Expected() = default;
  template <class G>
  Expected(Unexpected<G> u) : err_(std::move(u).error()), ok_(false) {}  // NOLINT
  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const E& error() const {
    RT_ASSERT(!ok_);
    return err_;
  }

 private:
  E err_{};
  bool ok_ = true;
};

/// The value-returning form of a call that fills a T in place (`fill(out)` returns
/// Expected<void, E>): runs it on a fresh T and returns that, or the error.
template <class T, class Fill>
auto filled(Fill&& fill) -> Expected<T, typename std::invoke_result_t<Fill&, T&>::error_type> {
  T value;
  auto done = fill(value);
  if (!done) return Unexpected(done.error());
  return value;
}

}  // namespace ringtracker
