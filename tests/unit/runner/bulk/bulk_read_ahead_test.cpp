// The bulk backfill's read ahead: on a store that has_concurrent_read, the log's next events are
// read on a second thread while the last read's are applied; on a store that does not declare it,
// every read is made in turn on the runner's thread. Either way the read model, the checkpoint and
// the status are the same, and a read that fails on the reading thread is reported where and as it
// is reported when it fails in its turn, with nothing committed lost.

#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <projectionist/sqlite.hpp>
#include <sqlite_test_support.hpp>
#include <tickets_domain.hpp>

#include "bulk_history.hpp"

namespace bulk_read_ahead_test {

namespace pj = projectionist;
using namespace tickets_domain;
using bulk_test::append_history;
using bulk_test::committed;
using bulk_test::committed_of;
using bulk_test::rows_of;

namespace {

/// The SQLite store, declaring `reads_concurrently` as `Concurrent`, that records the thread of
/// every read and can fail the read after a chosen position once, as a store whose disk went away.
template <bool Concurrent>
class watched_store : public pj::sqlite_event_store {
public:
    using pj::sqlite_event_store::sqlite_event_store;
    static constexpr bool reads_concurrently = Concurrent;

    void read(std::uint64_t after, std::size_t max, batch& out) const {
        {
            std::lock_guard lock(mutex_);
            threads_.insert(std::this_thread::get_id());
            if (fail_after_ && *fail_after_ == after) {
                fail_after_.reset();
                throw pj::storage_error("the log's disk went away", 10);
            }
        }
        pj::sqlite_event_store::read(after, max, out);
    }

    void fail_once_after(std::uint64_t position) {
        std::lock_guard lock(mutex_);
        fail_after_ = position;
    }
    [[nodiscard]] std::set<std::thread::id> threads() const {
        std::lock_guard lock(mutex_);
        return threads_;
    }

private:
    mutable std::mutex mutex_;
    mutable std::set<std::thread::id> threads_;
    mutable std::optional<std::uint64_t> fail_after_;
};

static_assert(pj::has_concurrent_read<pj::sqlite_event_store>);
static_assert(pj::has_concurrent_read<pj::memory_event_store>);
static_assert(pj::has_concurrent_read<watched_store<true>>);
static_assert(!pj::has_concurrent_read<watched_store<false>>, "a declared false is false");

/// What a backfill left: what it threw, its status, and what the database holds.
struct outcome {
    std::string thrown;
    std::string note;
    std::optional<std::string> error;
    std::uint64_t position = 0;
    std::uint64_t events_applied = 0;
    std::uint64_t bulk_flushes = 0;
    std::uint64_t storage_errors = 0;
    committed checkpoint;
    std::map<std::string, ticket_row> rows;
    std::size_t reading_threads = 0;
    // After resume() and a second backfill:
    std::uint64_t resumed_position = 0;
    std::uint64_t applied_in_all = 0;  ///< events applied and committed by both backfills
    std::map<std::string, ticket_row> resumed_rows;
    friend bool operator==(const outcome& a, const outcome& b) {
        // Everything but the threads the reads ran on.
        return a.thrown == b.thrown && a.note == b.note && a.error == b.error && a.position == b.position &&
               a.events_applied == b.events_applied && a.bulk_flushes == b.bulk_flushes &&
               a.storage_errors == b.storage_errors && a.checkpoint == b.checkpoint && a.rows == b.rows &&
               a.resumed_position == b.resumed_position && a.applied_in_all == b.applied_in_all &&
               a.resumed_rows == b.resumed_rows;
    }
};

/// A bulk backfill of tickets<2> (partitioned as `P`) over the same history, into a database of
/// its own, on a store that declares `Concurrent`; the read after `fail_after`, if any, fails once.
/// Then the runner is resumed and backfills again.
template <bool Concurrent, class P>
outcome backfill(std::optional<std::uint64_t> fail_after, std::size_t budget, std::size_t lanes = 1) {
    sqlite_test::temp_dir dir{sqlite_test::fast_temp_base()};
    watched_store<Concurrent> store{dir.file("app.db")};
    append_history(store, 120, 1500, 23);
    pj::sqlite_storage storage{dir.file("model.db")};
    using R = pj::runner<tickets<2>, P, pj::manual_kickoff, pj::sqlite_storage, watched_store<Concurrent>>;
    R r(store, storage,
        {.backfill = pj::backfill_mode::bulk,
         .bulk_memory_budget = budget,
         .bulk_read_size = 100,
         .bulk_apply_threads = lanes});
    r.init();
    if (fail_after) store.fail_once_after(*fail_after);
    outcome o;
    try {
        r.backfill();
    } catch (const std::exception& e) {
        o.thrown = e.what();
    }
    const pj::runner_status s = r.status();
    o.note = s.note;
    o.error = s.error;
    o.position = s.position;
    o.events_applied = s.events_applied;
    o.bulk_flushes = s.bulk_flushes;
    o.storage_errors = s.errors[pj::error_kind::storage];
    o.checkpoint = committed_of(storage, "tickets_v2");
    o.rows = rows_of(storage, "tickets_v2");
    o.reading_threads = store.threads().size();
    if (s.error) r.resume();
    r.backfill();
    o.resumed_position = r.status().position;
    o.applied_in_all = r.status().events_applied;
    o.resumed_rows = rows_of(storage, "tickets_v2");
    return o;
}

}  // namespace

TEMPLATE_TEST_CASE("a bulk backfill reads ahead on a store that allows it, and builds the same read model", "[bulk]",
                   pj::global, pj::per_aggregate) {
    for (const std::size_t budget : {pj::runner_options::unbounded, std::size_t{1}}) {
        CAPTURE(budget);
        const outcome ahead = backfill<true, TestType>(std::nullopt, budget);
        const outcome in_turn = backfill<false, TestType>(std::nullopt, budget);
        CHECK(ahead.thrown.empty());
        CHECK(ahead.note.empty());
        CHECK(ahead.position == 1500);
        CHECK(ahead.checkpoint.position == 1500);
        CHECK(ahead.rows.size() == 120);
        CHECK(ahead == in_turn);
        CHECK(ahead.bulk_flushes == (budget == 1 ? 15U : 1U));
        // The first read is the runner's; the others, made while the last were applied, are not.
        CHECK(ahead.reading_threads >= 2);
        CHECK(in_turn.reading_threads == 1);
    }
}

TEST_CASE("several apply threads read ahead only on a store that allows it", "[bulk]") {
    const outcome ahead = backfill<true, pj::per_aggregate>(std::nullopt, pj::runner_options::unbounded, 2);
    const outcome in_turn = backfill<false, pj::per_aggregate>(std::nullopt, pj::runner_options::unbounded, 2);
    CHECK(ahead.thrown.empty());
    CHECK(ahead == in_turn);
    CHECK(ahead.rows.size() == 120);
    // Reads on the runner's thread, while the apply threads work, or in turn.
    CHECK(ahead.reading_threads == 1);
    CHECK(in_turn.reading_threads == 1);
}

TEMPLATE_TEST_CASE("a read that fails on the reading thread is reported as the same read failing in its turn", "[bulk]",
                   pj::global, pj::per_aggregate) {
    // The read after 700: with a budget of one byte, 7 flushes are committed before it (one per
    // read of 100); unbounded, none.
    for (const std::size_t budget : {pj::runner_options::unbounded, std::size_t{1}}) {
        CAPTURE(budget);
        const outcome ahead = backfill<true, TestType>(700, budget);
        const outcome in_turn = backfill<false, TestType>(700, budget);
        CHECK(ahead == in_turn);
        CHECK(ahead.reading_threads >= 2);
        // The store's error, named, and nothing committed lost: the rows are those of the
        // checkpoint, which the backfill reached or kept.
        const std::string said = ahead.thrown + " | " + ahead.note + " | " + ahead.error.value_or("");
        CHECK(said.find("the log's disk went away") != std::string::npos);
        CHECK(ahead.storage_errors == 1);
        // The flushes before the failing read are kept: with a budget of one byte, the read of
        // 601-700 was applied and flushed before the read after 700 was due.
        CHECK(ahead.checkpoint.position == (budget == 1 ? 700U : 0U));
        CHECK(ahead.bulk_flushes == (budget == 1 ? 7U : 0U));
        // Resumed, the backfill ends as one without the failure ends, nothing applied twice.
        const outcome clean = backfill<true, TestType>(std::nullopt, budget);
        CHECK(ahead.resumed_position == 1500);
        CHECK(ahead.resumed_rows == clean.rows);
        CHECK(ahead.applied_in_all == clean.events_applied);
    }
}

}  // namespace bulk_read_ahead_test
