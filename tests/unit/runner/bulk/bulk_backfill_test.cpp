// The bulk backfill: the same read model as batch mode, on memory (forced) and on SQLite (the
// default there), with flushes at a memory budget, evicted rows read back, failures and the raw
// connection handled in batch mode from the last flush, and live events in batch mode afterwards.

#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <projectionist/sqlite.hpp>
#include <sqlite_test_support.hpp>
#include <tickets_domain.hpp>

#include "bulk_history.hpp"

namespace bulk_backfill_test {

namespace pj = projectionist;
using namespace tickets_domain;
using bulk_test::append_history;
using bulk_test::history;
using bulk_test::rows_of;

namespace {

/// tickets<2> that fails on one ticket's first close, or reaches for the raw connection there.
template <unsigned V>
struct touchy : pj::projection<"touchy", V, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    enum class on_close { nothing, fail, raw_connection, count_rows } action = on_close::nothing;
    std::string target = "t-7";

    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open", 0}); }
    void on(const ticket_closed& e, auto& ctx) {
        if (e.ticket_id == target) {
            if (action == on_close::fail) throw std::runtime_error("close refused");
            if (action == on_close::raw_connection) (void)ctx.storage();
            if (action == on_close::count_rows) (void)ctx.table().size();
        }
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
    }
    void on(const ticket_reopened& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) {
            r.status = "open";
            ++r.reopened;
        });
    }
};

/// The log and the bulk version in one SQLite file, the batch-mode reference in another.
struct sqlite_backend {
    static constexpr pj::backfill_mode bulk = pj::backfill_mode::automatic;  // bulk is SQLite's default
    sqlite_test::temp_dir dir{sqlite_test::fast_temp_base()};
    pj::sqlite_event_store store{dir.file("app.db")};
    pj::sqlite_storage storage{dir.file("app.db")};
    pj::sqlite_storage reference_storage{dir.file("reference.db")};
};

template <class Backend, class Partitioning>
struct setup {
    using backend = Backend;
    using partitioning = Partitioning;
};

}  // namespace

TEST_CASE("a bulk backfill asked to stop before a read flushes what it applied, and a later one goes on", "[bulk]") {
    sqlite_backend b;
    history(11).append(b.store, 200, 1500);
    struct stop_request {};
    int reads = 0;
    using bulk_runner = pj::runner<tickets<2>, pj::per_aggregate, pj::manual_kickoff, pj::sqlite_storage>;
    pj::runner_options options{.bulk_memory_budget = pj::runner_options::unbounded, .bulk_read_size = 100};
    options.before_batch_begin = [&] {
        if (++reads == 6) throw stop_request{};
    };
    {
        bulk_runner bulk(b.store, b.storage, options);
        bulk.init();
        CHECK_THROWS_AS(bulk.backfill(), stop_request);
        const pj::runner_status s = bulk.status();
        CHECK(s.position == 500);  // five reads of 100 applied, and flushed although unbounded
        CHECK(s.events_applied == 500);
        CHECK(s.bulk_flushes == 1);
        CHECK_FALSE(s.error.has_value());  // a stop, not a failure
        CHECK(s.mode == "batch");
    }
    {
        bulk_runner reference(b.store, b.reference_storage, {.backfill = pj::backfill_mode::batch});
        reference.init();
        reference.backfill();
        bulk_runner again(b.store, b.storage, pj::runner_options{});
        CHECK(again.status().position == 500);  // what the stop committed
        CHECK(again.backfill() == 1000);
        CHECK(rows_of(b.storage, "tickets_v2") == rows_of(b.reference_storage, "tickets_v2"));
    }
}

TEMPLATE_TEST_CASE("a bulk backfill builds the read model batch mode builds", "[bulk]",
                   (setup<sqlite_backend, pj::global>), (setup<sqlite_backend, pj::per_aggregate>)) {
    using P = typename TestType::partitioning;
    typename TestType::backend b;
    history h(7);
    h.append(b.store, 200, 1500);

    using bulk_runner = pj::runner<tickets<2>, P, pj::manual_kickoff, std::remove_cvref_t<decltype(b.storage)>,
                                   std::remove_cvref_t<decltype(b.store)>>;
    SECTION("unbounded: one flush at the end of the history") {
        bulk_runner bulk(b.store, b.storage, {.backfill = TestType::backend::bulk});
        bulk.init();
        const std::uint64_t applied = bulk.backfill();
        CHECK(applied == bulk.status().events_applied);
        bulk_runner batch(b.store, b.reference_storage, {.backfill = pj::backfill_mode::batch});
        batch.init();
        batch.backfill();

        CHECK(rows_of(b.storage, "tickets_v2") == rows_of(b.reference_storage, "tickets_v2"));
        const pj::runner_status s = bulk.status();
        CHECK(s.position == b.store.head());
        CHECK(s.events_applied == batch.status().events_applied);
        CHECK(s.bulk_flushes == 1);
        CHECK(s.bulk_rows_flushed == rows_of(b.storage, "tickets_v2").size());
        CHECK(s.bulk_rows_read == 0);  // nothing evicted, and the table was empty
        CHECK(s.mode == "batch");      // bulk only while it backfills
        CHECK(s.note.empty());
        CHECK(batch.status().bulk_flushes == 0);
    }
    SECTION("a budget of one byte: a flush and an eviction after every read, evicted rows read back") {
        bulk_runner bulk(b.store, b.storage,
                         {.backfill = TestType::backend::bulk, .bulk_memory_budget = 1, .bulk_read_size = 100});
        bulk.init();
        bulk.backfill();
        bulk_runner batch(b.store, b.reference_storage, {.backfill = pj::backfill_mode::batch});
        batch.init();
        batch.backfill();
        CHECK(rows_of(b.storage, "tickets_v2") == rows_of(b.reference_storage, "tickets_v2"));
        CHECK(bulk.status().bulk_flushes == 15);  // 1500 events, 100 at a time
        CHECK(bulk.status().events_applied == batch.status().events_applied);
        // Every row is evicted after each read; a later read's events read theirs back.
        CHECK(bulk.status().bulk_rows_read > 0);
        CHECK(bulk.status().bulk_rows_read < bulk.status().bulk_rows_flushed);
    }
    SECTION("a backfill's own budget and mode hold for that call only") {
        // The runner's options: unbounded, bulk. The first backfill asks for a one-byte budget
        // (a flush after each read of 100), the second, after a reset, for batch mode; the third
        // runs on the runner's options again.
        bulk_runner bulk(b.store, b.storage,
                         {.backfill = TestType::backend::bulk,
                          .bulk_memory_budget = pj::runner_options::unbounded,
                          .bulk_read_size = 100});
        bulk.init();
        bulk.backfill({.bulk_memory_budget = 1});
        CHECK(bulk.status().bulk_flushes == 15);
        bulk_runner batch(b.store, b.reference_storage, {.backfill = pj::backfill_mode::batch});
        batch.init();
        batch.backfill();
        const auto reference = rows_of(b.reference_storage, "tickets_v2");
        CHECK(rows_of(b.storage, "tickets_v2") == reference);

        bulk.reset();
        const auto batches = bulk.status().batches_committed;
        bulk.backfill({.mode = pj::backfill_mode::batch});
        CHECK(bulk.status().bulk_flushes == 15);                // none in batch mode
        CHECK(bulk.status().batches_committed - batches == 2);  // 1500 events, 1000 per batch
        CHECK(rows_of(b.storage, "tickets_v2") == reference);

        bulk.reset();
        bulk.backfill();
        CHECK(bulk.status().bulk_flushes == 16);  // unbounded again: one flush at the end
        CHECK(rows_of(b.storage, "tickets_v2") == reference);
    }
    SECTION("a backfill's own options are the runner's again after it throws") {
        bulk_runner bulk(b.store, b.storage,
                         {.backfill = TestType::backend::bulk,
                          .bulk_memory_budget = pj::runner_options::unbounded,
                          .bulk_read_size = 100});
        // Not initialized (manual kick-off): the call throws before it reads anything.
        CHECK_THROWS_AS(bulk.backfill({.bulk_memory_budget = 1, .mode = pj::backfill_mode::batch}), pj::state_error);
        bulk.init();
        bulk.backfill();
        CHECK(bulk.status().bulk_flushes == 1);
    }
    SECTION("once caught up, new events are applied in batch mode, with no gap and no repeat") {
        bulk_runner bulk(b.store, b.storage, {.backfill = TestType::backend::bulk});
        bulk.init();
        bulk.backfill();
        h.append(b.store, 250, 300);  // new tickets, and new events of old ones
        const auto flushes = bulk.status().bulk_flushes;
        bulk.catch_up();
        CHECK(bulk.status().bulk_flushes == flushes);  // caught_up: batch mode

        bulk_runner batch(b.store, b.reference_storage, {.backfill = pj::backfill_mode::batch});
        batch.init();
        batch.backfill();
        CHECK(rows_of(b.storage, "tickets_v2") == rows_of(b.reference_storage, "tickets_v2"));
        CHECK(bulk.status().events_applied == batch.status().events_applied);
        CHECK(bulk.status().position == b.store.head());
    }
}

TEST_CASE("what bulk mode cannot serve makes it go on in batch mode from its last flush", "[bulk]") {
    using TestType = sqlite_backend;
    TestType b;
    append_history(b.store, 50, 600, 11);
    using R = pj::runner<touchy<2>, pj::manual_kickoff, std::remove_cvref_t<decltype(b.storage)>,
                         std::remove_cvref_t<decltype(b.store)>>;
    using action = typename touchy<2>::on_close;
    const auto run = [&](auto& storage, pj::backfill_mode mode, action a) {
        touchy<2> p;
        p.action = a;
        R r(b.store, storage, p, {.backfill = mode, .bulk_memory_budget = 1, .bulk_read_size = 100});
        r.init();
        r.backfill();
        return r.status();
    };

    SECTION("the raw connection") {
        const pj::runner_status s = run(b.storage, TestType::bulk, action::raw_connection);
        run(b.reference_storage, pj::backfill_mode::batch, action::nothing);
        CHECK(s.note.find("went on in batch mode") != std::string::npos);
        CHECK(s.note.find("ctx.storage()") != std::string::npos);
        CHECK(s.position == b.store.head());
        CHECK(s.mode == "batch");
    }
    SECTION("a whole-table question") {
        const pj::runner_status s = run(b.storage, TestType::bulk, action::count_rows);
        run(b.reference_storage, pj::backfill_mode::batch, action::nothing);
        CHECK(s.note.find("size() is not available during a bulk backfill") != std::string::npos);
        CHECK(s.position == b.store.head());
    }
    auto bulk_rows = rows_of(b.storage, "touchy_v2");
    // The reference ran with no action; the actions above do nothing to the rows.
    CHECK(bulk_rows == rows_of(b.reference_storage, "touchy_v2"));
}

TEST_CASE("a failing handler stops a bulk backfill where batch mode stops", "[bulk]") {
    using TestType = sqlite_backend;
    TestType b;
    append_history(b.store, 50, 600, 13);
    using R = pj::runner<touchy<2>, pj::manual_kickoff, std::remove_cvref_t<decltype(b.storage)>,
                         std::remove_cvref_t<decltype(b.store)>>;
    const auto run = [&](auto& storage, pj::backfill_mode mode) {
        touchy<2> p;
        p.action = touchy<2>::on_close::fail;
        R r(b.store, storage, p, {.backfill = mode, .bulk_memory_budget = 1, .bulk_read_size = 100});
        r.init();
        std::string error;
        try {
            r.backfill();
        } catch (const pj::projection_error& e) {
            error = e.what();
        }
        return std::pair(r.status(), error);
    };
    const auto [bulk, bulk_error] = run(b.storage, TestType::bulk);
    const auto [batch, batch_error] = run(b.reference_storage, pj::backfill_mode::batch);
    REQUIRE_FALSE(batch_error.empty());
    CHECK(bulk_error == batch_error);  // same position, aggregate, event and reason
    CHECK(bulk.position == batch.position);
    CHECK(bulk.events_applied == batch.events_applied);
    CHECK(bulk.error == batch.error);
    CHECK(rows_of(b.storage, "touchy_v2") == rows_of(b.reference_storage, "touchy_v2"));
}

TEST_CASE("a version that has caught up is never backfilled in bulk", "[bulk]") {
    sqlite_backend b;
    history h(3);
    h.append(b.store, 20, 100);
    pj::runner<tickets<2>, pj::manual_kickoff, pj::sqlite_storage> r(b.store, b.storage);
    r.init();
    r.backfill();
    CHECK(r.status().bulk_flushes == 1);
    h.append(b.store, 30, 50);
    r.backfill();  // caught_up: batch mode
    CHECK(r.status().bulk_flushes == 1);
    r.reset();  // initialized again: the next backfill is a bulk one
    r.backfill();
    CHECK(r.status().bulk_flushes == 2);
}

TEST_CASE("a flush at least every bulk_flush_every positions, however small the read model", "[bulk]") {
    sqlite_backend b;
    history h(5);
    h.append(b.store, 10, 1000);
    pj::runner<tickets<2>, pj::manual_kickoff, pj::sqlite_storage> r(b.store, b.storage,
                                                                     {.bulk_read_size = 100, .bulk_flush_every = 250});
    r.init();
    r.backfill();
    CHECK(r.status().bulk_flushes == 4);  // at 300, 600, 900 and the end: each read is 100 positions
    CHECK(r.status().position == b.store.head());
}

TEST_CASE("memory storage backfills in batch mode: its tables are in memory already", "[bulk]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    history h(9);
    h.append(store, 20, 200);
    pj::runner<tickets<2>, pj::manual_kickoff> r(store, storage, {.backfill = pj::backfill_mode::bulk});
    r.init();
    r.backfill();
    CHECK(r.status().bulk_flushes == 0);
    CHECK(r.status().position == store.head());
}

}  // namespace bulk_backfill_test
