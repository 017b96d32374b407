// Shadow reads that scale: a sampled share of shadow_query calls runs on the other version; the
// discrepancy log stays bounded and numbers what it keeps.

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include <projectionist/deploy/router.hpp>
#include <projectionist/projectionist.hpp>

#include "tickets_domain.hpp"

namespace shadow_sampling_test {

namespace pj = projectionist;
using tickets_domain::tickets;
using tickets_router = pj::router<tickets<1>, tickets<2>>;

namespace {

/// Answers the version number: every compared read is a discrepancy.
constexpr auto version_answer = []<class P>(std::type_identity<P>) { return int(P::version); };

}  // namespace

TEST_CASE("a sampling share shadows about that share of the queries, and each still gets an answer",
          "[rollout][shadow]") {
    pj::memory_storage storage;
    tickets_router router(storage,
                          pj::router_options{.max_discrepancies = 50, .shadow_sampling = 100, .shadow_rereads = 0});
    router.rollout<tickets<2>>(0);
    CHECK(router.shadow_sampling() == 100);
    constexpr int queries = 100'000;
    int answered_by_v1 = 0;
    for (int i = 0; i < queries; ++i)
        answered_by_v1 += router.shadow_query(fmt::format("user-{}", i), version_answer) == 1;
    CHECK(answered_by_v1 == queries);  // the primary answers, sampled or not
    const auto stats = router.shadow_stats();
    CHECK(stats.queries == queries);
    // 1% of 100,000: 1000 expected, standard deviation about 31.
    CHECK(stats.compared > 800);
    CHECK(stats.compared < 1200);
    CHECK(stats.discrepancies == stats.compared);

    // The log is bounded and keeps the most recent, numbered in the order they were found.
    const auto log = router.discrepancies();
    REQUIRE(log.size() == 50);
    CHECK(log.back().sequence == stats.discrepancies);
    for (std::size_t i = 1; i < log.size(); ++i) CHECK(log[i].sequence == log[i - 1].sequence + 1);
    CHECK(log.back().primary_value == "1");
    CHECK(log.back().candidate_value == "2");
}

TEST_CASE("sampling at 0 shadows nothing, at 100% everything; the share can change at run time", "[rollout][shadow]") {
    pj::memory_storage storage;
    tickets_router router(storage, pj::router_options{.shadow_rereads = 0});
    CHECK(router.shadow_sampling() == 10000);  // the default: every call
    router.rollout<tickets<2>>(0);
    for (int i = 0; i < 100; ++i) (void)router.shadow_query(fmt::format("user-{}", i), version_answer);
    CHECK(router.shadow_stats().compared == 100);

    router.set_shadow_sampling(0);
    for (int i = 0; i < 100; ++i) (void)router.shadow_query(fmt::format("user-{}", i), version_answer);
    CHECK(router.shadow_stats().queries == 200);
    CHECK(router.shadow_stats().compared == 100);
    CHECK(router.in_flight<tickets<2>>() == 0);

    router.set_shadow_sampling(20000);  // above 100% counts as 100%
    CHECK(router.shadow_sampling() == 10000);
}

TEST_CASE("sampled shadow reads on several threads count every compared read once", "[rollout][shadow]") {
    pj::memory_storage storage;
    tickets_router router(storage,
                          pj::router_options{.max_discrepancies = 10, .shadow_sampling = 5000, .shadow_rereads = 0});
    router.rollout<tickets<2>>(0);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 20'000; ++i) (void)router.shadow_query(fmt::format("u-{}-{}", t, i), version_answer);
        });
    for (auto& th : threads) th.join();
    const auto stats = router.shadow_stats();
    CHECK(stats.queries == 80'000);
    CHECK(stats.compared > 38'000);  // 40,000 expected, standard deviation about 141
    CHECK(stats.compared < 42'000);
    CHECK(stats.discrepancies == stats.compared);
    CHECK(router.discrepancies().size() == 10);
}

}  // namespace shadow_sampling_test
