// The bookkeeping of a bulk backfill in passes by aggregate (runner/bulk_passes.hpp): the ranges a
// split keeps and leaves, the position each flush may commit, and the order the passes run in.

#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <optional>

#include <projectionist/runner/bulk_passes.hpp>

namespace bulk_passes_plan_test {

namespace pj = projectionist;
using plan = pj::detail::aggregate_passes;
constexpr std::uint64_t open_end = std::numeric_limits<std::uint64_t>::max();

TEST_CASE("a split keeps three quarters of the numbers met and leaves the rest from the cursor", "[bulk][passes]") {
    plan p(100);
    CHECK(p.range().whole());
    for (std::uint64_t n = 0; n < 40; ++n) p.saw(n);
    CHECK(p.split(500) == 30);
    CHECK(p.range() == pj::aggregate_numbers{0, 30});
    CHECK(p.pending());
    // Nothing of the pass committed since 100; the pass left at 500 starts after that.
    CHECK(p.commit_position(600, false) == 100);
    CHECK(p.commit_position(600, true) == 500);  // everything to 600 committed, but [30, ...) from 500
    p.flushed(600, true);
    CHECK(p.commit_position(700, false) == 500);

    // The kept pass meets nothing new (numbers above 30 are not read): a second split cuts [0, 30).
    CHECK(p.split(800) == 21);
    CHECK(p.range() == pj::aggregate_numbers{0, 21});

    // The end: the oldest pass left runs first, with its numbers, from where it was left.
    p.flushed(1000, true);
    CHECK(p.next() == std::optional<std::uint64_t>(500));
    CHECK(p.range() == pj::aggregate_numbers{30, open_end});
    CHECK(p.commit_position(900, false) == 500);  // the pass's aggregates: committed to 500
    CHECK(p.commit_position(900, true) == 800);   // [21, 30) waits from 800
    CHECK(p.next() == std::optional<std::uint64_t>(800));
    CHECK(p.range() == pj::aggregate_numbers{21, 30});
    CHECK_FALSE(p.pending());
    CHECK(p.next() == std::nullopt);
    CHECK(p.begun() == 2);
}

TEST_CASE("a pass that met one aggregate does not split", "[bulk][passes]") {
    plan q(0);
    CHECK(q.split(10) == 0);  // nothing met
    plan r(0);
    r.saw(0);
    CHECK(r.split(10) == 0);  // one aggregate: its rows are evicted as without passes
    CHECK(r.range().whole());
    CHECK_FALSE(r.pending());
}

TEST_CASE("a later pass splits within its own range", "[bulk][passes]") {
    plan p(0);
    for (std::uint64_t n = 0; n < 8; ++n) p.saw(n);
    CHECK(p.split(100) == 6);
    p.flushed(200, true);
    CHECK(p.next() == std::optional<std::uint64_t>(100));
    for (std::uint64_t n = 6; n < 26; ++n) p.saw(n);  // numbers met from 6: 20 of them
    CHECK(p.split(300) == 21);
    CHECK(p.range() == pj::aggregate_numbers{6, 21});
    CHECK(p.commit_position(350, false) == 100);
    CHECK(p.next() == std::optional<std::uint64_t>(300));
    CHECK(p.range() == pj::aggregate_numbers{21, open_end});
}

}  // namespace bulk_passes_plan_test
