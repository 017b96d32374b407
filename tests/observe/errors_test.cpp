// projectionist_errors_total: each kind of error the runner tells apart, provoked on the memory
// backend and on SQLite, counted once where it happened, and written by the exporter; with what
// failures leave behind (dead letters, parked aggregates) and what a bulk backfill's flushes add,
// as the exporter writes them.

#include <catch2/catch.hpp>

#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include <projectionist/observe.hpp>
#include <projectionist/projectionist.hpp>
#include <projectionist/sqlite.hpp>
#include <sqlite_test_support.hpp>
#include <tickets_domain.hpp>

namespace errors_test {

namespace pj = projectionist;
using namespace tickets_domain;
using Catch::Contains;

namespace {

/// Exceptions to throw once, from the handler of the event at a position.
using fault_plan = std::map<std::uint64_t, std::exception_ptr>;

/// Records every ticket event as a row; throws what `faults` holds for an event's position, once.
/// Calls `seen` first, if set.
struct faulty : pj::projection<"faulty", 1, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    std::shared_ptr<fault_plan> faults = std::make_shared<fault_plan>();
    std::shared_ptr<std::function<void()>> seen = std::make_shared<std::function<void()>>();
    template <class E>
    void on(const E& e, auto& ctx) {
        if (*seen) (*seen)();
        if (const auto it = faults->find(ctx.envelope().position); it != faults->end()) {
            const std::exception_ptr cause = it->second;
            faults->erase(it);
            std::rethrow_exception(cause);
        }
        ctx.table().upsert({e.ticket_id, "", std::string(E::event_name), 0});
    }
};

/// The same version as `faulty`, defined differently: the catalog refuses it.
struct faulty_changed : faulty {
    static constexpr std::string_view revision = "rows carry the ticket type";
};

/// 1: t-1 registered, 2: t-2 registered, 3: t-1 closed, 4: t-1 reopened, 5: t-2 closed.
template <class Store>
void append_history(Store& store) {
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "task"});
    store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});
    store.append(ticket_stream{}, "t-1", 2, ticket_reopened{"t-1"});
    store.append(ticket_stream{}, "t-2", 1, ticket_closed{"t-2"});
}

/// One event per batch, in batch mode.
pj::runner_options one_by_one() {
    pj::runner_options o;
    o.batch_size = 1;
    o.backfill = pj::backfill_mode::batch;
    return o;
}

struct memory_backend {
    static constexpr std::string_view name = "memory";
    using storage_type = pj::memory_storage;
    pj::memory_event_store store;
    pj::memory_storage storage;
    memory_backend() { append_history(store); }
};

struct sqlite_backend {
    static constexpr std::string_view name = "sqlite";
    using storage_type = pj::sqlite_storage;
    sqlite_test::temp_dir dir{sqlite_test::fast_temp_base()};
    std::string file = dir.file("app.db");
    pj::sqlite_event_store store{file};
    pj::sqlite_storage storage{file};
    sqlite_backend() { append_history(store); }
};

/// The value of a series of faulty_v1 as the exporter writes it: `name` and the labels after
/// `version` (`,kind="handler"`), or "(not written)".
template <class Runner>
std::string exported(Runner& r, std::string_view name, std::string_view more_labels = {}) {
    pj::metrics_exporter metrics;
    metrics.add(r);
    const std::string page = metrics.render();
    const std::string series = fmt::format(R"({}{{projection="faulty",version="faulty_v1"{}}} )", name, more_labels);
    const auto at = page.find("\n" + series);
    if (at == std::string::npos) return "(not written)";
    const auto value = at + 1 + series.size();
    return page.substr(value, page.find('\n', value) - value);
}

/// The runner's errors of `kind` as the exporter writes them.
template <class Runner>
std::string exported(Runner& r, pj::error_kind kind) {
    return exported(r, "projectionist_errors_total", fmt::format(R"(,kind="{}")", pj::to_string(kind)));
}

/// Every kind but `kind` is at 0, `kind` at `n`: in the status and on the exported page.
template <class Runner>
void only(Runner& r, pj::error_kind kind, std::uint64_t n) {
    const pj::error_counts errors = r.status().errors;
    for (std::size_t i = 0; i < pj::error_counts::kinds; ++i) {
        const auto k = static_cast<pj::error_kind>(i);
        INFO("kind " << pj::to_string(k));
        CHECK(errors[k] == (k == kind ? n : 0));
        CHECK(exported(r, k) == std::to_string(k == kind ? n : 0));
    }
}

}  // namespace

TEST_CASE("the kinds of errors read from their exceptions", "[metrics][errors]") {
    using pj::error_kind;
    auto kind = [](auto e, bool event = false) { return pj::detail::kind_of(std::make_exception_ptr(e), event); };
    CHECK(kind(std::runtime_error("bug"), true) == error_kind::handler);
    CHECK(kind(pj::storage_error("full", 13), true) == error_kind::handler);  // the caller says an event is at fault
    CHECK(kind(pj::storage_error("full", 13)) == error_kind::storage);
    CHECK(kind(pj::storage_error("server closed the connection", 0, true)) == error_kind::connection);
    CHECK(kind(pj::checkpoint_conflict("moved")) == error_kind::conflict);
    CHECK(kind(pj::lease_lost("taken over")) == error_kind::fenced);
    CHECK(kind(pj::table_error("duplicate key")) == error_kind::other);
    CHECK(kind(std::runtime_error("?")) == error_kind::other);
    CHECK(pj::to_string(error_kind::handler) == "handler");
    CHECK(pj::to_string(error_kind::other) == "other");
}

TEMPLATE_TEST_CASE("errors are counted by kind where the runner meets them", "[metrics][errors]", memory_backend,
                   sqlite_backend) {
    using S = typename TestType::storage_type;
    INFO("backend " << TestType::name);
    TestType b;
    faulty p;
    auto& faults = *p.faults;

    SECTION("an event whose handler throws stops the runner: handler") {
        faults[3] = std::make_exception_ptr(std::runtime_error("cannot close"));
        pj::runner<faulty, S> r(b.store, b.storage, p, one_by_one());
        only(r, pj::error_kind::handler, 0);
        CHECK_THROWS_AS(r.catch_up(), pj::projection_error);
        CHECK(r.position() == 2);
        only(r, pj::error_kind::handler, 1);
        // A catch-up refused while stopped is not a new error.
        CHECK_THROWS_AS(r.catch_up(), pj::state_error);
        only(r, pj::error_kind::handler, 1);
    }

    SECTION("events dead-lettered by skip_to_dead_letter: handler, once per event") {
        faults[2] = std::make_exception_ptr(std::runtime_error("bad registration"));
        faults[4] = std::make_exception_ptr(std::runtime_error("bad reopening"));
        pj::runner_options five = one_by_one();
        five.batch_size = 5;  // both in one batch: each fails once, then is recorded as a dead letter
        pj::runner<faulty, S, pj::skip_to_dead_letter> r(b.store, b.storage, p, five);
        r.catch_up();
        CHECK(r.position() == 5);
        CHECK(r.status().events_dead_lettered == 2);
        CHECK_FALSE(r.status().error);
        only(r, pj::error_kind::handler, 2);
    }

    SECTION("the database refusing a write stops the runner: storage") {
        faults[2] = std::make_exception_ptr(pj::storage_error("the database is full", 13));
        pj::runner<faulty, S, pj::skip_to_dead_letter> r(b.store, b.storage, p, one_by_one());
        CHECK_THROWS_AS(r.catch_up(), pj::projection_error);
        CHECK(r.status().events_dead_lettered == 0);  // not the event's failure
        only(r, pj::error_kind::storage, 1);
    }

    SECTION("a lost connection stops the runner once, however many attempts to reconnect: connection") {
        faults[3] = std::make_exception_ptr(pj::storage_error("server closed the connection", 0, true));
        pj::runner<faulty, S> r(b.store, b.storage, p, one_by_one());
        CHECK_THROWS_AS(r.catch_up(), pj::projection_error);
        CHECK(r.connection_lost());
        only(r, pj::error_kind::connection, 1);
        CHECK(r.reconnect());
        CHECK(r.catch_up() == 3);
        only(r, pj::error_kind::connection, 1);
    }

    SECTION("another runner's checkpoint moved: conflict, and the runner goes on") {
        faults[3] = std::make_exception_ptr(pj::checkpoint_conflict("the checkpoint moved"));
        pj::runner<faulty, S> r(b.store, b.storage, p, one_by_one());
        r.catch_up();
        CHECK(r.position() == 5);
        CHECK_FALSE(r.status().error);
        only(r, pj::error_kind::conflict, 1);
    }

    SECTION("a worker's lease lost: fenced, not a stop") {
        faults[3] = std::make_exception_ptr(pj::lease_lost("partition 0 was taken over"));
        pj::runner<faulty, S> r(b.store, b.storage, p, one_by_one());
        CHECK_THROWS_AS(r.catch_up(), pj::lease_lost);
        CHECK(r.position() == 2);
        CHECK_FALSE(r.status().error);
        only(r, pj::error_kind::fenced, 1);
    }

    SECTION("another definition of an initialized version is refused: definition, once") {
        pj::runner<faulty, S> first(b.store, b.storage, p, one_by_one());
        first.catch_up();
        pj::runner<faulty_changed, S> r(b.store, b.storage, one_by_one());
        REQUIRE(r.status().error);
        CHECK_THAT(*r.status().error, Contains("changed since it was initialized"));
        CHECK(r.status().errors[pj::error_kind::definition] == 1);
        CHECK_THROWS_AS(r.catch_up(), pj::state_error);
        CHECK_THROWS_AS(r.catch_up(), pj::state_error);
        CHECK(r.status().errors[pj::error_kind::definition] == 1);
        CHECK(r.status().errors.total() == 1);
        only(first, pj::error_kind::definition, 0);
    }
}

TEST_CASE("SQLite: real conflicts, a real read-only database and a version deleted mid-catch-up", "[metrics][errors]") {
    sqlite_backend b;

    SECTION("two runners of one version: the stale one counts a conflict and goes on") {
        pj::sqlite_storage other_storage(b.file);
        pj::runner<faulty, pj::sqlite_storage> a(b.store, b.storage, one_by_one());
        a.init();
        pj::runner<faulty, pj::sqlite_storage> stale(b.store, other_storage, one_by_one());
        a.catch_up();
        stale.catch_up();  // it loaded the checkpoint before a moved it: its first commit is refused
        CHECK(stale.position() == 5);
        CHECK(stale.status().errors[pj::error_kind::conflict] >= 1);
        CHECK(stale.status().errors.total() == stale.status().errors[pj::error_kind::conflict]);
        only(a, pj::error_kind::conflict, 0);
    }

    SECTION("a read-only database: storage") {
        pj::runner<faulty, pj::sqlite_storage, pj::skip_to_dead_letter> r(b.store, b.storage, one_by_one());
        r.init();
        r.session().connection().exec("PRAGMA query_only=1");
        CHECK_THROWS_AS(r.catch_up(), pj::projection_error);
        CHECK_THAT(*r.status().error, Contains("read-only"));
        only(r, pj::error_kind::storage, 1);
    }

    SECTION("deleted by another process between a batch's read and its begin: deleted") {
        pj::sqlite_event_store other_store(b.file);
        pj::sqlite_storage other_storage(b.file);
        pj::runner<faulty, pj::sqlite_storage> other(other_store, other_storage);
        int batches = 0;
        pj::runner_options options = one_by_one();
        options.before_batch_begin = [&] {
            if (++batches != 2) return;
            other.refresh();
            other.remove({.force = true, .by = "test"});
        };
        pj::runner<faulty, pj::sqlite_storage> r(b.store, b.storage, options);
        r.init();
        CHECK_THROWS_AS(r.catch_up(), pj::projection_error);
        REQUIRE(r.status().error);
        CHECK_THAT(*r.status().error, Contains("deleted by another process"));
        only(r, pj::error_kind::deleted, 1);
    }
}

TEMPLATE_TEST_CASE("dead letters and parked aggregates, as the exporter writes them", "[metrics][errors]",
                   memory_backend, sqlite_backend) {
    using S = typename TestType::storage_type;
    INFO("backend " << TestType::name);
    TestType b;
    faulty p;
    (*p.faults)[1] = std::make_exception_ptr(std::runtime_error("bad registration"));  // t-1's first event
    pj::runner<faulty, S, pj::per_aggregate, pj::skip_to_dead_letter> r(b.store, b.storage, p, one_by_one());
    r.catch_up();
    CHECK(r.position() == 5);
    // t-1 is parked: its later events (3, 4) are dead letters too, without a new error.
    CHECK(exported(r, "projectionist_dead_letters_total") == "3");
    CHECK(exported(r, "projectionist_parked_aggregates") == "1");
    CHECK(exported(r, "projectionist_events_applied_total") == "2");  // t-2's
    only(r, pj::error_kind::handler, 1);
}

TEST_CASE("a bulk backfill's flushes, as the exporter writes them (SQLite)", "[metrics][bulk]") {
    sqlite_backend b;
    faulty p;
    pj::runner_options bulk;
    bulk.backfill = pj::backfill_mode::bulk;
    pj::runner<faulty, pj::sqlite_storage> r(b.store, b.storage, p, bulk);
    std::string during;
    *p.seen = [&] {
        if (during.empty()) during = exported(r, "projectionist_bulk_mode");
    };
    r.init();
    r.backfill();
    CHECK(during == "1");  // read from a handler while the bulk backfill applies
    const pj::runner_status s = r.status();
    REQUIRE(s.bulk_flushes > 0);
    CHECK(s.flush_seconds.count == s.bulk_flushes);
    CHECK(exported(r, "projectionist_bulk_mode") == "0");
    CHECK(exported(r, "projectionist_flush_duration_seconds_count") == std::to_string(s.bulk_flushes));
    CHECK(exported(r, "projectionist_flush_duration_seconds_bucket", R"(,le="+Inf")") ==
          std::to_string(s.bulk_flushes));
    CHECK(exported(r, "projectionist_bulk_rows_flushed_total") == std::to_string(s.bulk_rows_flushed));
    CHECK(s.bulk_rows_flushed == 2);  // t-1 and t-2
    CHECK(exported(r, "projectionist_batches_total") == std::to_string(s.batches_committed));
    CHECK(exported(r, "projectionist_events_applied_total") == "5");
    only(r, pj::error_kind::handler, 0);
}

TEST_CASE("a bulk backfill's later passes by aggregate, as the exporter writes them (SQLite)", "[metrics][bulk]") {
    // A budget of one byte and one event per read: the pass splits as soon as it met t-1 and t-2,
    // and goes on with t-1; t-2's events are applied by a later pass.
    sqlite_backend b;
    pj::runner_options o;
    o.backfill = pj::backfill_mode::bulk;
    o.bulk_memory_budget = 1;
    o.bulk_read_size = 1;
    o.bulk_passes_by_aggregate = true;
    pj::runner<faulty, pj::sqlite_storage, pj::per_aggregate> passes(b.store, b.storage, faulty{}, o);
    passes.init();
    CHECK(exported(passes, "projectionist_bulk_passes_total") == "0");
    passes.backfill();
    const pj::runner_status s = passes.status();
    CHECK(s.bulk_passes >= 1);
    CHECK(exported(passes, "projectionist_bulk_passes_total") == std::to_string(s.bulk_passes));
    CHECK(exported(passes, "projectionist_bulk_rows_read_total") == std::to_string(s.bulk_rows_read));
    CHECK(exported(passes, "projectionist_events_applied_total") == "5");
    CHECK(s.position == 5);
}

TEST_CASE("a bulk backfill whose flush finds the checkpoint moved counts one conflict (SQLite)", "[metrics][bulk]") {
    sqlite_backend b;
    faulty p;
    faulty q;  // the other runner's handlers: without the hook below
    pj::runner_options bulk;
    bulk.backfill = pj::backfill_mode::bulk;
    pj::sqlite_storage other_storage(b.file);
    pj::runner<faulty, pj::sqlite_storage> a(b.store, b.storage, q, one_by_one());
    a.init();
    pj::runner<faulty, pj::sqlite_storage> stale(b.store, other_storage, p, bulk);
    bool moved = false;
    *p.seen = [&] {
        if (moved) return;
        moved = true;
        a.catch_up();  // commits the whole history before the bulk pass flushes
    };
    stale.backfill();
    REQUIRE(moved);
    CHECK(a.position() == 5);
    CHECK(stale.position() == 5);
    const pj::runner_status s = stale.status();
    CHECK_FALSE(s.error);
    CHECK_THAT(s.note, Contains("went on in batch mode from position 5"));
    CHECK(s.bulk_flushes == 0);
    only(stale, pj::error_kind::conflict, 1);
    only(a, pj::error_kind::conflict, 0);
}

}  // namespace errors_test
