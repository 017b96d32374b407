// What status() counts for an operator: batches committed, their durations in histogram buckets,
// and when the last applied event was recorded (for the lag in seconds); and that a status read
// from another thread while the runner works shows the numbers of one batch together.

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <projectionist/detail/seqlock.hpp>
#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

namespace status_test {

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

TEST_CASE("a seqlock's reader sees every value whole while the writer stores") {
    struct words {
        std::array<std::uint64_t, 40> w{};
    };
    pj::detail::seqlock<words> cell;
    std::atomic<bool> done{false};
    std::uint64_t torn = 0;
    std::uint64_t reads = 0;
    std::uint64_t last = 0;
    bool backwards = false;
    std::jthread reader([&] {
        while (!done.load()) {
            const words v = cell.load();
            for (auto x : v.w)
                if (x != v.w[0]) ++torn;
            if (v.w[0] < last) backwards = true;
            last = v.w[0];
            ++reads;
        }
    });
    for (std::uint64_t i = 1; i <= 200'000; ++i) {
        words v;
        v.w.fill(i);
        cell.store(v);
    }
    done = true;
    reader.join();
    CHECK(torn == 0);
    CHECK_FALSE(backwards);
    CHECK(reads > 0);
    CHECK(cell.load().w[39] == 200'000);
}

TEST_CASE("status read from another thread during a catch-up shows one batch's numbers together") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    for (int i = 0; i < 2000; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", 0, true);  // 4000 events
    pj::runner<tickets<2>> r(store, storage, {.batch_size = 10});
    r.init();
    std::atomic<bool> done{false};
    std::vector<std::string> problems;
    std::uint64_t snapshots = 0;
    std::jthread scraper([&] {
        std::uint64_t last_position = 0;
        while (!done.load()) {
            const pj::runner_status s = r.status();
            ++snapshots;
            // Every handler of tickets<2> applies one event, and every batch holds 10 of them.
            if (s.events_applied != s.position || s.batches_committed * 10 != s.position ||
                s.batch_seconds.count != s.batches_committed || s.position < last_position || s.name != "tickets_v2")
                problems.push_back(fmt::format("position {} applied {} batches {} observed {} (before: {})", s.position,
                                               s.events_applied, s.batches_committed, s.batch_seconds.count,
                                               last_position));
            last_position = s.position;
        }
    });
    CHECK(r.catch_up() == 4000);
    done = true;
    scraper.join();
    for (const auto& p : problems) UNSCOPED_INFO(p);
    CHECK(problems.empty());
    CHECK(snapshots > 0);
    const pj::runner_status s = r.status();
    CHECK(s.position == 4000);
    CHECK(s.batches_committed == 400);
    CHECK(s.state == pj::projection_state::caught_up);
}

}  // namespace status_test
