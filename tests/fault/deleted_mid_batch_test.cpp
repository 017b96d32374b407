// A version deleted by another connection in the middle of a batch: after the batch read its
// events and before its transaction began (runner_options::before_batch_begin). The runner stops
// saying that the version was deleted, and writes nothing of it: no catalog row but the delete's
// tombstone, no checkpoint, no table. Once with a batch whose event writes a row (the write finds
// the table gone), once with a batch whose event the version ignores (only the checkpoint would
// be written).

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include <fmt/format.h>

#include <fault_support.hpp>
#include <projectionist/sqlite.hpp>
#include <sqlite_test_support.hpp>
#include <tickets_domain.hpp>

namespace deleted_mid_batch_test {

namespace pj = projectionist;
using namespace tickets_domain;
using namespace fault_test;
using Catch::Contains;

namespace {

std::int64_t count(const std::string& file, const std::string& sql) {
    sqlite_test::raw_db db(file, SQLITE_OPEN_READONLY);
    return std::stoll(db.text(sql));
}

}  // namespace

TEST_CASE("a version deleted between a batch's read and its begin stops the runner, leaving nothing of it",
          "[fault][delete]") {
    // append_history: 1 t-1 registered, 2 t-2 registered, 3 t-1 closed, 4 t-1 reopened (which
    // tickets<1> ignores), 5 t-2 closed; one event per batch.
    const int deleted_before = GENERATE(2, 4);
    INFO("deleted before batch " << deleted_before);
    watchdog bound(std::chrono::seconds(60));
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("app.db");
    pj::sqlite_event_store store(file);
    pj::sqlite_storage storage(file);
    append_history(store);

    // The other process: its own connections.
    pj::sqlite_event_store other_store(file);
    pj::sqlite_storage other_storage(file);
    pj::runner<tickets<1>, pj::sqlite_storage> other(other_store, other_storage);

    int batches = 0;
    pj::runner_options options = one_by_one();
    options.before_batch_begin = [&] {
        if (++batches != deleted_before) return;
        other.refresh();
        other.remove({.force = true, .by = "test"});
    };
    pj::runner<tickets<1>, pj::sqlite_storage> r(store, storage, options);
    r.init();
    const std::string stopped = projection_error_of([&] { r.catch_up(); });
    CHECK_THAT(stopped, Contains("tickets_v1 was deleted by another process"));
    CHECK(batches == deleted_before);
    REQUIRE(r.status().error);
    CHECK_THAT(*r.status().error, Contains("deleted"));

    // Nothing of the version but the tombstone.
    const auto entry = storage.find_catalog("tickets_v1");
    REQUIRE(entry);
    CHECK(entry->state == pj::projection_state::deleted);
    CHECK(count(file, "SELECT count(*) FROM projectionist_checkpoints WHERE projection = 'tickets_v1'") == 0);
    CHECK(count(file, "SELECT count(*) FROM sqlite_master WHERE name = 'tickets_v1'") == 0);
    // And the runner writes nothing more, whether it refuses a catch-up or has nothing to do.
    try {
        r.catch_up();
    } catch (const pj::error&) {
    }
    CHECK(r.state() == pj::projection_state::deleted);  // the catalog's; status() reads stopped
    CHECK(count(file, "SELECT count(*) FROM projectionist_checkpoints WHERE projection = 'tickets_v1'") == 0);
    CHECK(count(file, "SELECT count(*) FROM sqlite_master WHERE name = 'tickets_v1'") == 0);
}

}  // namespace deleted_mid_batch_test
