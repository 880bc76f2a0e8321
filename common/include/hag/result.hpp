// Errors as values at module boundaries: a minimal expected-like type (C++20 has no std::expected).
#pragma once

#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

namespace hag {

template <typename E>
struct Unexpected {
    E error;
};

template <typename E>
Unexpected<std::decay_t<E>> unexpected(E&& e) {
    return {std::forward<E>(e)};
}

// Result<T, E>: holds either a value or an error. Accessing the wrong side is a programming
// error (asserted in debug builds).
template <typename T, typename E>
class Result {
  public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
    template <typename G>
    Result(Unexpected<G> u) : v_(std::in_place_index<1>, E(std::move(u.error))) {}  // NOLINT

    [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & {
        assert(ok());
        return std::get<0>(v_);
    }
    const T& value() const& {
        assert(ok());
        return std::get<0>(v_);
    }
    T&& value() && {
        assert(ok());
        return std::get<0>(std::move(v_));
    }
    const E& error() const& {
        assert(!ok());
        return std::get<1>(v_);
    }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

  private:
    std::variant<T, E> v_;
};

// Result<void, E>
template <typename E>
class Result<void, E> {
  public:
    Result() = default;
    template <typename G>
    Result(Unexpected<G> u) : err_(E(std::move(u.error))), ok_(false) {}  // NOLINT

    [[nodiscard]] bool ok() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    const E& error() const& {
        assert(!ok_);
        return err_;
    }

  private:
    E err_{};
    bool ok_ = true;
};

}  // namespace hag
