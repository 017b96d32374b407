// The per-aggregate bulk backfill in passes (runner_options::bulk_passes_by_aggregate), on
// SQLite: at the budget a pass goes on with half of its aggregates and a later pass applies the
// other half. It builds what one pass builds (tables, checkpoint, aggregates' positions), on one
// thread or several, from a SQLite log or an in-memory one; a stop in the middle leaves a
// checkpoint from which a later runner finishes with nothing lost and nothing applied twice.

#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <projectionist/sqlite.hpp>
#include <sqlite_test_support.hpp>
#include <tickets_domain.hpp>

#include "bulk_history.hpp"

namespace bulk_passes_test {

namespace pj = projectionist;
using namespace tickets_domain;
using bulk_test::committed;
using bulk_test::committed_of;
using bulk_test::history;
using bulk_test::rows_of;

static_assert(pj::has_aggregate_range_read<pj::sqlite_event_store>);
static_assert(pj::has_aggregate_range_read<pj::memory_event_store>);

namespace {

struct files {
    sqlite_test::temp_dir dir{sqlite_test::fast_temp_base()};
    pj::sqlite_event_store store{dir.file("app.db")};
};

/// tickets<2> that fails on one ticket's first close while `fail_on` names it.
struct fragile : pj::projection<"fragile", 1, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    std::string fail_on;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open", 0}); }
    void on(const ticket_closed& e, auto& ctx) {
        if (e.ticket_id == fail_on) throw std::runtime_error("close refused");
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
    }
    void on(const ticket_reopened& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) {
            r.status = "open";
            ++r.reopened;
        });
    }
};

/// fragile, failing on the event at position `fail_at` instead.
struct fragile_at : pj::projection<"fragile", 1, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    std::uint64_t fail_at = 0;
    void check(auto& ctx) const {
        if (ctx.envelope().position == fail_at) throw std::runtime_error("refused");
    }
    void on(const ticket_registered& e, auto& ctx) {
        check(ctx);
        ctx.table().insert({e.ticket_id, e.type, "open", 0});
    }
    void on(const ticket_closed& e, auto& ctx) {
        check(ctx);
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
    }
    void on(const ticket_reopened& e, auto& ctx) {
        check(ctx);
        ctx.table().update(e.ticket_id, [](ticket_row& r) {
            r.status = "open";
            ++r.reopened;
        });
    }
};

template <class P, class Store = pj::sqlite_event_store>
using sqlite_runner = pj::runner<P, pj::per_aggregate, pj::manual_kickoff, pj::sqlite_storage, Store>;

/// A budget of about a quarter of what 400 tickets' rows take in a row store.
constexpr std::size_t quarter = 10'000;

}  // namespace

TEMPLATE_TEST_CASE("read_aggregates: a range's events alone, in order, up to a position", "[bulk][passes]",
                   pj::sqlite_event_store, pj::memory_event_store) {
    sqlite_test::temp_dir dir{sqlite_test::fast_temp_base()};
    auto store = [&] {
        if constexpr (std::is_same_v<TestType, pj::sqlite_event_store>)
            return std::make_unique<TestType>(dir.file("app.db"));
        else
            return std::make_unique<TestType>();
    }();
    history(43).append(*store, 50, 600);
    typename TestType::batch all;
    store->read(0, 10'000, all);
    std::vector<std::uint64_t> expected;  // positions of aggregates 10 to 19
    for (const auto& r : all)
        if (pj::detail::deref(r).aggregate_number() >= 10 && pj::detail::deref(r).aggregate_number() < 20)
            expected.push_back(pj::detail::deref(r).position());
    REQUIRE(expected.size() > 3);

    typename TestType::batch out;
    const auto positions = [&] {
        std::vector<std::uint64_t> p;
        for (const auto& r : out) p.push_back(pj::detail::deref(r).position());
        return p;
    };
    store->read_aggregates(0, store->head(), {10, 20}, 10'000, out);
    CHECK(positions() == expected);
    store->read_aggregates(0, expected.back() - 1, {10, 20}, 10'000, out);
    CHECK(positions() == std::vector<std::uint64_t>(expected.begin(), expected.end() - 1));
    store->read_aggregates(expected[0], store->head(), {10, 20}, 2, out);
    CHECK(positions() == std::vector<std::uint64_t>{expected[1], expected[2]});
    store->read_aggregates(0, store->head(), {}, 10'000, out);
    CHECK(out.size() == all.size());
    store->read_aggregates(store->head(), store->head(), {}, 10'000, out);
    CHECK(out.empty());
}

TEST_CASE("a per-aggregate bulk backfill in passes builds what one pass builds", "[bulk][passes]") {
    files f;
    history h(29);
    h.append(f.store, 400, 4000);

    struct shape {
        const char* what;
        std::size_t budget;
        std::size_t read;
        std::size_t threads;
    };
    const shape s = GENERATE(values<shape>({{"a quarter of the rows, reads of 250", quarter, 250, 1},
                                            {"a quarter of the rows, reads of 1000, two threads", quarter, 1000, 2},
                                            {"a split after every read", 1, 100, 1},
                                            {"a split after every read, two threads", 1, 100, 2}}));
    INFO(s.what);

    pj::sqlite_storage one_storage(f.dir.file("one.db"));
    sqlite_runner<tickets<2>> one(f.store, one_storage, {.bulk_memory_budget = pj::runner_options::unbounded});
    one.init();
    one.backfill();

    pj::sqlite_storage passes_storage(f.dir.file("passes.db"));
    sqlite_runner<tickets<2>> passes(f.store, passes_storage,
                                     {.bulk_memory_budget = s.budget,
                                      .bulk_read_size = s.read,
                                      .bulk_apply_threads = s.threads,
                                      .bulk_passes_by_aggregate = true});
    passes.init();
    const std::uint64_t applied = passes.backfill();

    const auto rows = rows_of(passes_storage, "tickets_v2");
    CHECK(rows.size() == 400);
    CHECK(rows == rows_of(one_storage, "tickets_v2"));
    CHECK(committed_of(passes_storage, "tickets_v2") == committed_of(one_storage, "tickets_v2"));
    CHECK(committed_of(passes_storage, "tickets_v2").position == f.store.head());
    const pj::runner_status p = passes.status();
    const pj::runner_status o = one.status();
    CHECK(applied == o.events_applied);
    CHECK(p.events_applied == o.events_applied);
    CHECK(p.events_skipped == 0);
    CHECK(p.aggregates_tracked == o.aggregates_tracked);
    CHECK(o.bulk_passes == 0);
    CHECK(p.bulk_passes >= 3);
    CHECK(p.bulk_flushes > p.bulk_passes);
    CHECK(p.note.empty());
    CHECK(p.mode == "batch");
    CHECK(p.position == f.store.head());
    // Later events, of old and new tickets, in batch mode on top.
    h.append(f.store, 450, 300);
    one.catch_up();
    passes.catch_up();
    CHECK(rows_of(passes_storage, "tickets_v2") == rows_of(one_storage, "tickets_v2"));
    CHECK(committed_of(passes_storage, "tickets_v2") == committed_of(one_storage, "tickets_v2"));
}

TEST_CASE("a catch-up in passes commits the head it reached, then follows later events", "[bulk][passes]") {
    // catch_up (and run) replay to the end of the log, not to a head read at the start.
    files f;
    history h(29);
    h.append(f.store, 400, 4000);
    pj::sqlite_storage one_storage(f.dir.file("one.db"));
    sqlite_runner<tickets<2>> one(f.store, one_storage, {.bulk_memory_budget = pj::runner_options::unbounded});
    one.init();
    one.catch_up();
    pj::sqlite_storage passes_storage(f.dir.file("passes.db"));
    sqlite_runner<tickets<2>> passes(
        f.store, passes_storage,
        {.bulk_memory_budget = quarter, .bulk_read_size = 250, .bulk_passes_by_aggregate = true});
    passes.init();
    passes.catch_up();
    CHECK(passes.status().bulk_passes >= 1);
    CHECK(committed_of(passes_storage, "tickets_v2").position == f.store.head());
    CHECK(rows_of(passes_storage, "tickets_v2") == rows_of(one_storage, "tickets_v2"));
    CHECK(committed_of(passes_storage, "tickets_v2") == committed_of(one_storage, "tickets_v2"));

    h.append(f.store, 450, 300);
    CHECK(passes.catch_up() == one.catch_up());
    CHECK(committed_of(passes_storage, "tickets_v2").position == f.store.head());
    CHECK(rows_of(passes_storage, "tickets_v2") == rows_of(one_storage, "tickets_v2"));
    CHECK(committed_of(passes_storage, "tickets_v2") == committed_of(one_storage, "tickets_v2"));
}

TEST_CASE("a split's flush commits only the positions it wrote, when SQLite folds the positions too",
          "[bulk][passes]") {
    // A log limit of 1 folds the aggregates' positions into one snapshot row as often as it can.
    // A split writes the rows of the aggregates it leaves; the pass's own aggregates have applied
    // events whose rows are still in memory, and their positions must stay as committed: a
    // failure (or a crash) after that flush resumes them from there.
    files f;
    history(41).append(f.store, 40, 4000);
    pj::sqlite_event_store::batch all;
    f.store.read(0, 100'000, all);
    pj::sqlite_storage whole(f.dir.file("whole.db"));
    {
        sqlite_runner<fragile_at> r(f.store, whole, fragile_at{},
                                    {.bulk_memory_budget = pj::runner_options::unbounded});
        r.init();
        r.backfill();
    }
    // Failures at the first event of one aggregate after a position, in the later half of the log.
    const auto first_event = [&](std::uint64_t after, std::uint64_t aggregate) -> std::uint64_t {
        for (const auto& r : all)
            if (r.position() > after && r.aggregate_number() == aggregate) return r.position();
        return 0;
    };
    const std::uint64_t fail_at = GENERATE_COPY(first_event(2164, 15), first_event(2500, 5), first_event(3000, 30));
    REQUIRE(fail_at != 0);
    INFO("failing at " << fail_at);
    pj::sqlite_options folding;
    folding.aggregate_position_log_limit = 1;
    pj::sqlite_storage storage(f.dir.file(fmt::format("rm-{}.db", fail_at)), folding);
    const auto options =
        pj::runner_options{.bulk_memory_budget = 1, .bulk_read_size = 100, .bulk_passes_by_aggregate = true};
    {
        fragile_at p;
        p.fail_at = fail_at;
        sqlite_runner<fragile_at> r(f.store, storage, p, options);
        r.init();
        CHECK_THROWS_AS(r.backfill(), pj::projection_error);
        CHECK(r.status().bulk_passes >= 1);
    }
    {
        sqlite_runner<fragile_at> r(f.store, storage, fragile_at{}, options);
        r.backfill();
        CHECK(r.status().position == f.store.head());
    }
    // A reopened count would be off for any event applied twice, a status for any lost.
    CHECK(rows_of(storage, "fragile_v1") == rows_of(whole, "fragile_v1"));
    CHECK(committed_of(storage, "fragile_v1") == committed_of(whole, "fragile_v1"));
}

TEST_CASE("passes by aggregate read an in-memory log through its range reads too", "[bulk][passes]") {
    pj::memory_event_store store;
    history(31).append(store, 300, 3000);
    sqlite_test::temp_dir dir{sqlite_test::fast_temp_base()};

    pj::sqlite_storage one_storage(dir.file("one.db"));
    sqlite_runner<tickets<2>, pj::memory_event_store> one(
        store, one_storage, {.backfill = pj::backfill_mode::bulk, .bulk_memory_budget = pj::runner_options::unbounded});
    one.init();
    one.backfill();
    pj::sqlite_storage passes_storage(dir.file("passes.db"));
    sqlite_runner<tickets<2>, pj::memory_event_store> passes(store, passes_storage,
                                                             {.backfill = pj::backfill_mode::bulk,
                                                              .bulk_memory_budget = 1,
                                                              .bulk_read_size = 100,
                                                              .bulk_passes_by_aggregate = true});
    passes.init();
    passes.backfill();

    CHECK(passes.status().bulk_passes >= 3);
    CHECK(rows_of(passes_storage, "tickets_v2") == rows_of(one_storage, "tickets_v2"));
    CHECK(committed_of(passes_storage, "tickets_v2") == committed_of(one_storage, "tickets_v2"));
}

TEST_CASE("the option is ignored by a global projection and an unbounded budget", "[bulk][passes]") {
    files f;
    history(37).append(f.store, 100, 800);
    pj::sqlite_storage storage(f.dir.file("rm.db"));
    pj::runner<tickets<2>, pj::global, pj::manual_kickoff, pj::sqlite_storage, pj::sqlite_event_store> global(
        f.store, storage, {.bulk_memory_budget = 1, .bulk_read_size = 100, .bulk_passes_by_aggregate = true});
    global.init();
    global.backfill();
    CHECK(global.status().bulk_passes == 0);
    CHECK(global.status().bulk_flushes == 8);  // a flush and an eviction after every read

    pj::sqlite_storage other(f.dir.file("other.db"));
    sqlite_runner<tickets<2>> unbounded(
        f.store, other, {.bulk_memory_budget = pj::runner_options::unbounded, .bulk_passes_by_aggregate = true});
    unbounded.init();
    unbounded.backfill();
    CHECK(unbounded.status().bulk_passes == 0);
    CHECK(unbounded.status().bulk_flushes == 1);
    CHECK(rows_of(other, "tickets_v2") == rows_of(storage, "tickets_v2"));
}

TEST_CASE("a backfill in passes that stops midway is finished by a later runner, nothing applied twice",
          "[bulk][passes]") {
    files f;
    history h(41);
    h.append(f.store, 200, 2400);
    const auto options =
        pj::runner_options{.bulk_memory_budget = 1, .bulk_read_size = 100, .bulk_passes_by_aggregate = true};

    // The ticket numbered last among those that are closed: its events come in the last pass.
    std::string last_closed;
    {
        pj::sqlite_event_store::batch all;
        f.store.read(0, 100'000, all);
        std::uint64_t highest = 0;
        for (const auto& r : all)
            if (r.type_name() == "ticket.closed" && r.aggregate_number() >= highest) {
                highest = r.aggregate_number();
                last_closed = std::string(r.aggregate_id());
            }
        REQUIRE(highest > 100);
    }
    pj::sqlite_storage storage(f.dir.file("rm.db"));
    std::string error;
    {
        fragile p;
        p.fail_on = last_closed;
        sqlite_runner<fragile> r(f.store, storage, p, options);
        r.init();
        try {
            r.backfill();
        } catch (const pj::projection_error& e) {
            error = e.what();
        }
        const pj::runner_status st = r.status();
        INFO(st.note << " / " << error);
        CHECK(st.bulk_passes >= 1);
    }
    REQUIRE(error.find("close refused") != std::string::npos);
    // What the stop left: the checkpoint where the oldest unfinished pass starts, and aggregates
    // whose positions are past it (their passes ended first).
    const committed stopped = committed_of(storage, "fragile_v1");
    CHECK(stopped.position < f.store.head());
    std::uint64_t ahead = 0;
    for (std::uint64_t v : stopped.versions) ahead += v > 0 ? 1 : 0;
    CHECK(ahead > 0);

    {
        fragile p;
        sqlite_runner<fragile> r(f.store, storage, p, options);
        r.backfill();
        CHECK(r.status().position == f.store.head());
        CHECK(r.status().note.empty());
    }
    pj::sqlite_storage whole(f.dir.file("whole.db"));
    {
        fragile p;
        sqlite_runner<fragile> r(f.store, whole, p, {.bulk_memory_budget = pj::runner_options::unbounded});
        r.init();
        r.backfill();
    }
    // A reopened count would be off for any event applied twice, a status for any lost.
    CHECK(rows_of(storage, "fragile_v1") == rows_of(whole, "fragile_v1"));
    CHECK(committed_of(storage, "fragile_v1") == committed_of(whole, "fragile_v1"));
}

}  // namespace bulk_passes_test
