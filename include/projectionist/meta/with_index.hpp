#pragma once

#include <cstddef>
#include <type_traits>

/// Forces a function into its caller (gcc, clang). Used only on the runner's event path, where
/// the benchmark showed that gcc otherwise keeps the dispatch and the per-event step as separate
/// calls.
#if defined(__GNUC__) || defined(__clang__)
#define PROJECTIONIST_ALWAYS_INLINE [[gnu::always_inline]] inline
#else
#define PROJECTIONIST_ALWAYS_INLINE inline
#endif

namespace projectionist::detail {

/// `f(std::integral_constant<std::size_t, i>{})` for a run-time `i < N`: one `switch` (a jump
/// table), inlined into the caller together with the case bodies, like a hand-written switch.
/// Above 16 cases the range is split in two first (a comparison per split). `i >= N` is
/// undefined, as with `mp_with_index`: the caller keeps its indexes in range.
template <std::size_t N, std::size_t Offset = 0>
struct with_index_impl {
    template <class F>
    PROJECTIONIST_ALWAYS_INLINE static void call(std::size_t i, F& f) {
        if constexpr (N > 16) {
            if (i < N / 2)
                with_index_impl<N / 2, Offset>::call(i, f);
            else
                with_index_impl<N - N / 2, Offset + N / 2>::call(i - N / 2, f);
        } else {
#define PROJECTIONIST_WITH_INDEX_CASE(k)                          \
    case k:                                                       \
        if constexpr (k < N) {                                    \
            f(std::integral_constant<std::size_t, Offset + k>{}); \
            return;                                               \
        } else {                                                  \
            __builtin_unreachable();                              \
        }
            switch (i) {
                PROJECTIONIST_WITH_INDEX_CASE(0)
                PROJECTIONIST_WITH_INDEX_CASE(1)
                PROJECTIONIST_WITH_INDEX_CASE(2)
                PROJECTIONIST_WITH_INDEX_CASE(3)
                PROJECTIONIST_WITH_INDEX_CASE(4)
                PROJECTIONIST_WITH_INDEX_CASE(5)
                PROJECTIONIST_WITH_INDEX_CASE(6)
                PROJECTIONIST_WITH_INDEX_CASE(7)
                PROJECTIONIST_WITH_INDEX_CASE(8)
                PROJECTIONIST_WITH_INDEX_CASE(9)
                PROJECTIONIST_WITH_INDEX_CASE(10)
                PROJECTIONIST_WITH_INDEX_CASE(11)
                PROJECTIONIST_WITH_INDEX_CASE(12)
                PROJECTIONIST_WITH_INDEX_CASE(13)
                PROJECTIONIST_WITH_INDEX_CASE(14)
                PROJECTIONIST_WITH_INDEX_CASE(15)
                default: __builtin_unreachable();
            }
#undef PROJECTIONIST_WITH_INDEX_CASE
        }
    }
};

template <std::size_t N, class F>
PROJECTIONIST_ALWAYS_INLINE void with_index(std::size_t i, F& f) {
    static_assert(N > 0);
    with_index_impl<N>::call(i, f);
}

}  // namespace projectionist::detail
