// The bulk backfill with its apply phase on several threads (runner_options::bulk_apply_threads)
// on PostgreSQL: the same tables, checkpoint and aggregates' positions as on one thread, with the
// rows of a budget's evictions read back (one `= ANY` query per read, and single reads from the
// apply threads, one at a time over the runner's connection); a shared row found out.

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include <postgres_test_support.hpp>
#include <projectionist/postgres.hpp>
#include <tickets_domain.hpp>

#include "../unit/runner/bulk/bulk_history.hpp"

namespace postgres_bulk_parallel_test {

namespace pj = projectionist;
using namespace tickets_domain;
using bulk_test::history;
using bulk_test::rows_of;
using postgres_test::pg_url;

namespace {

/// The committed checkpoint, the aggregates' positions without trailing zeros.
std::pair<std::uint64_t, std::vector<std::uint64_t>> committed_of(pj::postgres_storage& storage,
                                                                  std::string_view name) {
    auto session = storage.open(name);
    const pj::checkpoint& cp = session.reload_checkpoint();
    std::vector<std::uint64_t> versions = cp.aggregate_versions;
    while (!versions.empty() && versions.back() == 0) versions.pop_back();
    return {cp.position, versions};
}

/// tickets<2> whose registrations also count in one shared row (the same key for every ticket).
struct counted : pj::projection<"counted", 1, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) {
        ctx.table().insert({e.ticket_id, e.type, "open", 0});
        if (!ctx.table().update("all", [](ticket_row& r) { ++r.reopened; })) ctx.table().insert({"all", "", "", 1});
    }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
    }
};

template <class P>
using pg_runner = pj::runner<P, pj::per_aggregate, pj::manual_kickoff, pj::postgres_storage, pj::postgres_event_store>;

}  // namespace

TEST_CASE("a bulk backfill on several threads on PostgreSQL builds what one thread builds", "[bulk][postgres]") {
    postgres_test::scoped_schema log_schema, one_schema, many_schema;
    pj::postgres_event_store store{pg_url(), log_schema.options()};
    history h(29);
    h.append(store, 300, 2500);
    const std::size_t budget = GENERATE(values<std::size_t>({pj::runner_options::unbounded, 1}));
    INFO("budget " << budget);

    pj::postgres_storage one_storage{pg_url(), one_schema.options()};
    pg_runner<tickets<2>> one(store, one_storage, {.bulk_memory_budget = budget, .bulk_read_size = 250});
    one.init();
    one.backfill();
    pj::postgres_storage many_storage{pg_url(), many_schema.options()};
    pg_runner<tickets<2>> many(store, many_storage,
                               {.bulk_memory_budget = budget, .bulk_read_size = 250, .bulk_apply_threads = 2});
    many.init();
    many.backfill();

    CHECK(rows_of(many_storage, "tickets_v2").size() == 300);
    CHECK(rows_of(many_storage, "tickets_v2") == rows_of(one_storage, "tickets_v2"));
    CHECK(committed_of(many_storage, "tickets_v2") == committed_of(one_storage, "tickets_v2"));
    CHECK(many.status().position == store.head());
    CHECK(many.status().events_applied == one.status().events_applied);
    CHECK(many.status().bulk_flushes == one.status().bulk_flushes);
    CHECK(many.status().note.empty());
}

TEST_CASE("a shared row on several threads on PostgreSQL: the pass goes on on one thread", "[bulk][postgres]") {
    postgres_test::scoped_schema log_schema, one_schema, many_schema;
    pj::postgres_event_store store{pg_url(), log_schema.options()};
    history h(31);
    h.append(store, 100, 800);

    pj::postgres_storage one_storage{pg_url(), one_schema.options()};
    pg_runner<counted> one(store, one_storage, {.bulk_read_size = 200});
    one.init();
    one.backfill();
    pj::postgres_storage many_storage{pg_url(), many_schema.options()};
    pg_runner<counted> many(store, many_storage, {.bulk_read_size = 200, .bulk_apply_threads = 2});
    many.init();
    many.backfill();

    CHECK(rows_of(many_storage, "counted_v1") == rows_of(one_storage, "counted_v1"));
    CHECK(rows_of(many_storage, "counted_v1").count("all") == 1);
    CHECK(committed_of(many_storage, "counted_v1") == committed_of(one_storage, "counted_v1"));
    CHECK(many.status().note.find("applied events on one thread") != std::string::npos);
    CHECK(many.status().position == store.head());
}

}  // namespace postgres_bulk_parallel_test
