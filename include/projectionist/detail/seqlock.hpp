#pragma once

/// A value that one thread publishes and any thread reads without a lock: a sequence lock over
/// relaxed atomic words. The writer makes the sequence odd, stores the words and makes it even
/// again; a reader copies the words between two reads of the sequence and tries again when they
/// differ or the first was odd. Writing never waits for a reader and a reader never blocks the
/// writer, so a reader that polls often costs the writer nothing but the shared cache line.
///
/// One writer at a time (the caller makes sure of it); `T` is trivially copyable and is copied
/// word by word, so every read returns a value that was stored as a whole.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace projectionist::detail {

template <class T>
class seqlock {
    static_assert(std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T>,
                  "projectionist: seqlock<T>: T is copied word by word, so it must be trivially copyable");
    static constexpr std::size_t words = (sizeof(T) + sizeof(std::uint64_t) - 1) / sizeof(std::uint64_t);
    using buffer = std::array<std::uint64_t, words>;

public:
    seqlock() noexcept { store(T{}); }
    seqlock(const seqlock&) = delete;
    seqlock& operator=(const seqlock&) = delete;

    /// Publishes `value`. Only one thread may store at a time.
    void store(const T& value) noexcept {
        buffer b{};
        std::memcpy(b.data(), &value, sizeof(T));
        const std::uint64_t s = sequence_.load(std::memory_order_relaxed);
        sequence_.store(s + 1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
        for (std::size_t i = 0; i < words; ++i) words_[i].store(b[i], std::memory_order_relaxed);
        sequence_.store(s + 2, std::memory_order_release);
    }

    /// The last value stored as a whole; from any thread.
    [[nodiscard]] T load() const noexcept {
        buffer b;
        for (;;) {
            const std::uint64_t before = sequence_.load(std::memory_order_acquire);
            if ((before & 1) != 0) continue;  // a store is under way
            for (std::size_t i = 0; i < words; ++i) b[i] = words_[i].load(std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_acquire);
            if (sequence_.load(std::memory_order_relaxed) == before) break;
        }
        T value;
        std::memcpy(static_cast<void*>(&value), b.data(), sizeof(T));  // trivially copyable: checked above
        return value;
    }

private:
    std::atomic<std::uint64_t> sequence_{0};
    std::array<std::atomic<std::uint64_t>, words> words_{};
};

}  // namespace projectionist::detail
