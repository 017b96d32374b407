// What status() counts for an operator: batches committed, their durations in histogram buckets,
// and when the last applied event was recorded (for the lag in seconds).

#include <catch2/catch.hpp>

#include <string>

#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

namespace pj = projectionist;
using namespace tickets_domain;

TEST_CASE("status counts the committed batches and their durations") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    for (int i = 0; i < 25; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", 0, true);  // 50 events
    pj::runner<tickets<2>> r(store, storage, {.batch_size = 20});
    CHECK_FALSE(r.status().last_event_recorded_at.has_value());
    r.catch_up();
    const pj::runner_status s = r.status();
    CHECK(s.batches_committed == 3);  // 20 + 20 + 10
    CHECK(s.batch_seconds.count == 3);
    std::uint64_t in_buckets = 0;
    for (auto c : s.batch_seconds.counts) in_buckets += c;
    CHECK(in_buckets == 3);
    CHECK(s.batch_seconds.sum >= 0);
    CHECK(s.flush_seconds.count == 0);
    REQUIRE(s.last_event_recorded_at.has_value());
    pj::memory_event_store::batch last;
    store.read(store.head() - 1, 1, last);
    REQUIRE(last.size() == 1);
    CHECK(*s.last_event_recorded_at == last[0]->recorded_at());
}

TEST_CASE("duration_histogram puts an observation in the first bucket whose bound holds it") {
    pj::duration_histogram h;
    h.observe(0.0005);  // <= 1 ms
    h.observe(0.001);   // <= 1 ms: bounds are inclusive
    h.observe(0.3);     // <= 1 s
    h.observe(100);     // above every bound
    CHECK(h.counts[0] == 2);
    CHECK(h.counts[8] == 1);
    CHECK(h.counts.back() == 1);
    CHECK(h.count == 4);
    CHECK(h.sum == Approx(100.3015));
}
