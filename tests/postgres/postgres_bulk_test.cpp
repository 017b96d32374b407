// The bulk backfill on PostgreSQL: the read model of batch mode, with binary COPY at every flush
// (into the table, or through a staging table when rows may exist), evicted rows read back by one
// `= ANY` query per batch, and the batch mode's read-ahead of a batch's rows.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/hana.hpp>

#include <postgres_test_support.hpp>
#include <projectionist/postgres.hpp>
#include <tickets_domain.hpp>

#include "../unit/runner/bulk/bulk_history.hpp"

namespace postgres_bulk_test {

namespace pj = projectionist;
using namespace tickets_domain;
using bulk_test::history;
using bulk_test::rows_of;
using postgres_test::pg_url;

namespace {

struct pg_backend {
    postgres_test::scoped_schema schema;
    postgres_test::scoped_schema reference_schema;
    pj::postgres_event_store store{pg_url(), schema.options()};
    pj::postgres_storage storage{pg_url(), schema.options()};
    pj::postgres_storage reference_storage{pg_url(), reference_schema.options()};
};

using row_table = pj::table<ticket_row, &ticket_row::ticket_id>;
static_assert(pj::has_bulk_write<pj::postgres_table<row_table>>);
static_assert(pj::has_batched_find<pj::postgres_table<row_table>>);
static_assert(pj::has_batch_prefetch<pj::postgres_table<row_table>>);

enum class colour : std::int16_t { red = 1, blue = -7 };

/// Every column type, for the binary COPY's encodings.
struct wide_row {
    BOOST_HANA_DEFINE_STRUCT(wide_row, (std::int64_t, id), (std::int16_t, small), (std::int32_t, medium),
                             (std::uint64_t, large), (std::uint8_t, byte), (bool, flag), (float, ratio),
                             (double, amount), (colour, paint), (std::optional<int>, maybe),
                             (std::optional<std::string>, note), (std::chrono::system_clock::time_point, at),
                             (std::string, text));
    friend bool operator==(const wide_row&, const wide_row&) = default;
};
using wide_table = pj::table<wide_row, &wide_row::id>;

template <class T>
std::vector<const T*> pointers(const std::vector<T>& items) {
    std::vector<const T*> out;
    for (const T& i : items) out.push_back(&i);
    return out;
}

}  // namespace

TEST_CASE("a bulk backfill on PostgreSQL builds the read model batch mode builds", "[bulk][postgres]") {
    pg_backend b;
    history h(7);
    h.append(b.store, 200, 1500);
    using R = pj::runner<tickets<2>, pj::manual_kickoff, pj::postgres_storage, pj::postgres_event_store>;
    R batch(b.store, b.reference_storage, {.backfill = pj::backfill_mode::batch});
    batch.init();

    SECTION("unbounded: one flush, by COPY") {
        R bulk(b.store, b.storage);  // bulk is the default on PostgreSQL
        bulk.init();
        bulk.backfill();
        batch.backfill();
        CHECK(rows_of(b.storage, "tickets_v2") == rows_of(b.reference_storage, "tickets_v2"));
        CHECK(bulk.status().bulk_flushes == 1);
        CHECK(bulk.status().events_applied == batch.status().events_applied);
    }
    SECTION("a budget of one byte: evicted rows read back in batches and written through the staging table") {
        R bulk(b.store, b.storage, {.bulk_memory_budget = 1, .bulk_read_size = 100});
        bulk.init();
        bulk.backfill();
        batch.backfill();
        CHECK(rows_of(b.storage, "tickets_v2") == rows_of(b.reference_storage, "tickets_v2"));
        CHECK(bulk.status().bulk_flushes == 15);
        CHECK(bulk.status().note.empty());
    }
    SECTION("once caught up, new events in batch mode with the batch's rows read ahead") {
        R bulk(b.store, b.storage);
        bulk.init();
        bulk.backfill();
        h.append(b.store, 250, 400);
        bulk.catch_up();
        batch.backfill();
        CHECK(rows_of(b.storage, "tickets_v2") == rows_of(b.reference_storage, "tickets_v2"));
        CHECK(bulk.status().position == b.store.head());
        CHECK(bulk.status().events_applied == batch.status().events_applied);
    }
}

TEST_CASE("a per-aggregate bulk backfill in passes on PostgreSQL: each pass reads its aggregates' events alone",
          "[bulk][postgres][passes]") {
    static_assert(pj::has_aggregate_range_read<pj::postgres_event_store>);
    pg_backend b;
    history h(11);
    h.append(b.store, 200, 1500);
    using R =
        pj::runner<tickets<2>, pj::per_aggregate, pj::manual_kickoff, pj::postgres_storage, pj::postgres_event_store>;
    R batch(b.store, b.reference_storage, {.backfill = pj::backfill_mode::batch});
    batch.init();
    batch.backfill();
    R passes(b.store, b.storage, {.bulk_memory_budget = 1, .bulk_read_size = 100, .bulk_passes_by_aggregate = true});
    passes.init();
    passes.backfill();
    CHECK(rows_of(b.storage, "tickets_v2") == rows_of(b.reference_storage, "tickets_v2"));
    const pj::runner_status st = passes.status();
    CHECK(st.bulk_passes >= 3);
    CHECK(st.events_applied == batch.status().events_applied);
    CHECK(st.events_skipped == 0);
    CHECK(st.note.empty());
    CHECK(st.position == b.store.head());
    for (int aggregate = 0; aggregate < 200; aggregate += 37) {
        const std::string id = "t-" + std::to_string(aggregate);
        CHECK(passes.aggregate_position(ticket_stream{}, id) == batch.aggregate_position(ticket_stream{}, id));
    }

    // A range read: only the range's events, in order, up to the position given.
    pj::postgres_event_store::batch out;
    b.store.read_aggregates(0, b.store.head(), {10, 20}, 10'000, out);
    REQUIRE_FALSE(out.empty());
    std::uint64_t last = 0;
    for (const auto& rec : out) {
        CHECK(rec.aggregate_number() >= 10);
        CHECK(rec.aggregate_number() < 20);
        CHECK(rec.position() > last);
        last = rec.position();
    }
    const std::size_t all = out.size();
    b.store.read_aggregates(0, last - 1, {10, 20}, 10'000, out);
    CHECK(out.size() == all - 1);
    b.store.read_aggregates(0, b.store.head(), {10, 20}, 3, out);
    CHECK(out.size() == 3);
}

TEST_CASE("postgres_table writes and reads many rows at once", "[bulk][postgres]") {
    postgres_test::scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
    auto session = storage.open("bulk_v1");

    SECTION("every column type survives the binary COPY, into the table and through the staging table") {
        auto& table = session.create_table<wide_table>("wide_v1");
        const auto at = std::chrono::system_clock::time_point(std::chrono::nanoseconds(1'700'000'000'123'456'789));
        std::vector<wide_row> added{{1, -2, 70000, std::numeric_limits<std::uint64_t>::max(), 200, true, 0.25f,
                                     -1.5e300, colour::blue, 7, "n\t\"\\", at, "x,y"},
                                    {2, 0, 0, 0, 0, false, 0, 0, colour::red, std::nullopt, std::nullopt, {}, ""}};
        session.begin();
        table.write_bulk(pointers(added), {}, {});
        session.commit(session.load_checkpoint(), {});
        CHECK(table.find(1) == added[0]);
        CHECK(table.find(2) == added[1]);

        std::vector<wide_row> changed{added[1]};
        changed[0].text = "changed";
        changed.push_back(added[0]);
        changed[1].id = 3;
        session.begin();
        table.write_bulk({}, pointers(changed), {});
        session.commit(session.load_checkpoint(), {});
        CHECK(table.find(2) == changed[0]);
        CHECK(table.find(3) == changed[1]);
        CHECK(table.size() == 3);
    }
    SECTION("added, changed and erased rows in one transaction; find_each and prefetch read many keys") {
        auto& table = session.create_table<row_table>("rows_v1");
        for (int i = 0; i < 10; ++i) table.upsert({"t-" + std::to_string(i), "bug", "before", 0});
        std::vector<ticket_row> added, changed;
        for (int i = 10; i < 300; ++i) added.push_back({"t-" + std::to_string(i), "bug", "open", 0});
        for (int i = 0; i < 3; ++i) changed.push_back({"t-" + std::to_string(i), "bug", "after", 1});
        const std::vector<std::string> erased{"t-8", "t-9"};
        session.begin();
        table.write_bulk(pointers(added), pointers(changed), pointers(erased));
        session.commit(session.load_checkpoint(), {});
        CHECK(table.size() == 298);
        CHECK(table.find(std::string("t-1"))->status == "after");
        CHECK(table.find(std::string("t-5"))->status == "before");
        CHECK_FALSE(table.find(std::string("t-8")));

        std::vector<std::string> keys{"t-1", "t-8", "t-299", "t-300"};
        std::map<std::string, std::string> found;
        table.find_each(pointers(keys), [&](ticket_row&& r) { found.emplace(r.ticket_id, r.status); });
        CHECK(found == std::map<std::string, std::string>{{"t-1", "after"}, {"t-299", "open"}});

        // Read ahead in a batch: the batch answers from what it read, without asking again (a
        // change made meanwhile by another connection is not seen).
        session.begin();
        table.prefetch(pointers(keys));
        schema.connection().exec("UPDATE " + schema.quoted() + ".\"rows_v1\" SET status = 'elsewhere'");
        CHECK(table.find(std::string("t-1"))->status == "after");
        CHECK_FALSE(table.find(std::string("t-300")));
        table.upsert({"t-300", "bug", "new", 0});
        session.commit(session.load_checkpoint(), {});
        CHECK(table.find(std::string("t-300"))->status == "new");
        CHECK(table.find(std::string("t-1"))->status == "elsewhere");
    }
}

}  // namespace postgres_bulk_test
