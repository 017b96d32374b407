// Upgrading a projection from global to partitioned tracking, on one SQLite file.
//
// parcels_v1 is a globally tracked projection: one position in the log, every event applied in
// strict global order. parcels_v2 is the SAME projection (the same handlers, the same table
// shape), now partitioned: it keeps a position per aggregate (per parcel) instead of a single
// global one. v2 is deployed beside v1 over the same event store with manual kick-off, stays
// dormant while parcels keep moving, is initialized and backfilled by hand, verified equal to
// v1 (a structural diff with no expected change, and a spot check of a few parcels), switched
// to with the query router, made live, and v1 is deleted. The positions of both are printed:
// v1's global position, and v2's per-aggregate positions (also visible in the view
// projectionist_aggregate_positions). Every step is printed; the program checks each outcome
// and exits 1 if one is not what it prints.
//
// The SQLite file (parcels-demo.db in the current directory) is removed at the end.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <sqlite3.h>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>

#include <projectionist/deploy/deployment.hpp>
#include <projectionist/deploy/router.hpp>
#include <projectionist/deploy/verify.hpp>
#include <projectionist/sqlite.hpp>

namespace pj = projectionist;
namespace verify = projectionist::verify;

// ---- the domain -----------------------------------------------------------------------------
struct parcel_registered {
    BOOST_HANA_DEFINE_STRUCT(parcel_registered, (std::string, parcel_id), (std::string, destination));
    static constexpr std::string_view event_name = "parcel.registered";
};
struct parcel_scanned {
    BOOST_HANA_DEFINE_STRUCT(parcel_scanned, (std::string, parcel_id), (std::string, location));
    static constexpr std::string_view event_name = "parcel.scanned";
};
struct parcel_delivered {
    BOOST_HANA_DEFINE_STRUCT(parcel_delivered, (std::string, parcel_id), (std::string, signed_by));
    static constexpr std::string_view event_name = "parcel.delivered";
};
using parcel_stream = pj::stream<"parcel", parcel_registered, parcel_scanned, parcel_delivered>;

struct parcel_row {
    BOOST_HANA_DEFINE_STRUCT(parcel_row, (std::string, parcel_id), (std::string, destination), (std::string, status),
                             (std::string, last_location), (int, scans));
};

// ---- the projection: the same handlers in every version ----------------------------------------
// Exhaustive: a handler missing for any parcel event would not compile.
template <unsigned V>
struct parcels : pj::projection<"parcels", V, parcel_stream, pj::exhaustive> {
    using table = pj::table<parcel_row, &parcel_row::parcel_id>;

    void on(const parcel_registered& e, auto& ctx) {
        ctx.table().insert({e.parcel_id, e.destination, "registered", "", 0});
    }
    void on(const parcel_scanned& e, auto& ctx) {
        ctx.table().update(e.parcel_id, [&](parcel_row& p) {
            p.status = "in transit";
            p.last_location = e.location;
            ++p.scans;
        });
    }
    void on(const parcel_delivered& e, auto& ctx) {
        ctx.table().update(e.parcel_id, [&](parcel_row& p) {
            p.status = "delivered to " + e.signed_by;
            p.last_location = p.destination;
        });
    }
};

// The only difference between the versions is how the runner tracks them.
using global_v1 = pj::runner<parcels<1>, pj::sqlite_storage>;  // pj::global is the default
using partitioned_v2 = pj::runner<parcels<2>, pj::sqlite_storage, pj::per_aggregate, pj::manual_kickoff>;
using parcels_deployment = pj::deployment<global_v1, partitioned_v2>;
using parcels_router = pj::router<parcels<1>, parcels<2>>;

static_assert(pj::name_of<parcels<1>> == "parcels_v1" && pj::name_of<parcels<2>> == "parcels_v2");
static_assert(std::is_same_v<global_v1::partitioning, pj::global> && !global_v1::partitioning::partitioned);
static_assert(std::is_same_v<partitioned_v2::partitioning, pj::per_aggregate> &&
              partitioned_v2::partitioning::partitioned);
static_assert(partitioned_v2::kickoff::manual && !global_v1::kickoff::manual);
static_assert(global_v1::handler_table::size == 3 && partitioned_v2::handler_table::size == 3);
static_assert(parcels_deployment::base_name == "parcels" && parcels_deployment::names[1] == "parcels_v2");

namespace {

int failures = 0;
void check(bool ok, std::string_view what) {
    fmt::print("  [{}] {}\n", ok ? "ok" : "FAILED", what);
    if (!ok) ++failures;
}
void step(std::string_view title) {
    fmt::print("\n== {}\n", title);
}
void print_status(const pj::runner_status& s) {
    fmt::print(
        "  {:<10} {:<13} state={:<12} live={:<5} position={:<5} head={:<5} lag={:<5} aggregates tracked={:<4} "
        "applied={}{}\n",
        s.name, s.partitioning, pj::to_string(s.state), s.live, s.position, s.head, s.lag, s.aggregates_tracked,
        s.events_applied, s.note.empty() ? "" : "  (" + s.note + ")");
}

/// One integer from a SQL query on the storage's connection.
std::int64_t scalar(pj::sqlite_storage& storage, const std::string& sql) {
    sqlite3* db = storage.connection().get();
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK)
        throw std::runtime_error(fmt::format("preparing '{}': {}", sql, sqlite3_errmsg(db)));
    const std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> statement(raw, &sqlite3_finalize);
    if (sqlite3_step(raw) != SQLITE_ROW) throw std::runtime_error(fmt::format("'{}' returned no row", sql));
    return sqlite3_column_int64(raw, 0);
}
std::int64_t checkpoint_rows(pj::sqlite_storage& storage, std::string_view projection) {
    return scalar(storage, fmt::format("select count(*) from projectionist_aggregate_positions where "
                                       "projection = '{}'",
                                       projection));
}

constexpr std::string_view hubs[] = {"Leipzig hub", "Koeln hub", "Hamburg hub", "Muenchen hub", "local depot"};

/// Registers parcels [from, to): each is scanned a few times and most are delivered.
void ship(pj::sqlite_event_store& store, int from, int to) {
    for (int i = from; i < to; ++i) {
        const std::string id = fmt::format("p-{:04}", i);
        auto v =
            store.append(parcel_stream{}, id, 0, parcel_registered{id, fmt::format("{} Main St", 10 + i % 90)}).version;
        for (int s = 0; s < i % 4 + 1; ++s)
            v = store.append(parcel_stream{}, id, v, parcel_scanned{id, std::string(hubs[(i + s) % 5])}).version;
        if (i % 3 != 0) store.append(parcel_stream{}, id, v, parcel_delivered{id, i % 2 ? "recipient" : "neighbour"});
    }
}

/// One more scan of a parcel that is still on its way.
void scan(pj::sqlite_event_store& store, const std::string& id, std::string_view location) {
    store.append(parcel_stream{}, id, store.version_of(parcel_stream{}, id), parcel_scanned{id, std::string(location)});
}

/// v2's position for a few parcels next to the log's version of each.
bool print_aggregate_positions(partitioned_v2& v2, pj::sqlite_event_store& store, const std::vector<std::string>& ids) {
    bool all_current = true;
    for (const auto& id : ids) {
        const auto applied = v2.aggregate_position(parcel_stream{}, id);
        const auto in_log = store.version_of(parcel_stream{}, id);
        fmt::print("    {}: v2 applied version {} of {} in the log\n", id, applied, in_log);
        all_current = all_current && applied == in_log;
    }
    return all_current;
}

void remove_database(const std::string& path) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

}  // namespace

int main() {
    const std::string path = "parcels-demo.db";
    remove_database(path);
    try {
        pj::sqlite_event_store store(path);
        pj::sqlite_storage storage(path);
        fmt::print("event log and read models: {}\n", path);

        step("v1, tracked globally, serves parcel tracking");
        parcels_deployment d(store, storage);
        auto& v1 = d.get<parcels<1>>();
        auto& v2 = d.get<parcels<2>>();
        ship(store, 0, 150);
        d.catch_up();  // v1 (auto kick-off) follows; v2 (manual kick-off) stays dormant
        d.make_live("parcels_v1");
        d.serve("parcels_v1");
        parcels_router router(storage);
        print_status(v1.status());
        fmt::print("  v1's position: {} (one number for the whole log)\n", v1.position());
        check(v1.status().lag == 0 && v1.status().state == pj::projection_state::serving, "v1 serves, caught up");

        step("deploy parcels_v2, partitioned per aggregate, beside v1: dormant (manual kick-off)");
        ship(store, 150, 180);
        d.catch_up();
        print_status(v1.status());
        print_status(v2.status());
        check(v2.status().dormant && !storage.has_table("parcels_v2") && checkpoint_rows(storage, "parcels_v2") == 0,
              "v2 created nothing and tracks nothing");

        step("init parcels_v2 and backfill it while parcels keep moving and v1 keeps serving");
        d.init("parcels_v2");
        ship(store, 180, 200);
        scan(store, "p-0003", "customs");
        scan(store, "p-0042", "customs");
        v1.catch_up();
        const auto applied = d.backfill("parcels_v2");
        print_status(v1.status());
        print_status(v2.status());
        const auto tracked = checkpoint_rows(storage, "parcels_v2");
        fmt::print("  v2 applied {} events; per-aggregate positions:\n", applied);
        const std::vector<std::string> some{"p-0000", "p-0003", "p-0042", "p-0199"};
        const bool current = print_aggregate_positions(v2, store, some);
        fmt::print(
            "  select count(*) from projectionist_aggregate_positions where projection = 'parcels_v2': {}\n"
            "  ... where projection = 'parcels_v1': {} (global: no per-aggregate rows)\n",
            tracked, checkpoint_rows(storage, "parcels_v1"));
        check(v2.status().lag == 0 && v2.status().state == pj::projection_state::caught_up, "v2 caught up");
        check(current, "v2 applied every event of each parcel shown");
        check(v2.status().aggregates_tracked == 200 && tracked == 200,
              "v2 tracks a position for each of the 200 parcels, one checkpoint row each");
        check(checkpoint_rows(storage, "parcels_v1") == 0, "v1 keeps a single global position");

        step("verify v2 against v1: the same projection must give the same table");
        {
            auto t1 = storage.find_table<parcels<1>::table>("parcels_v1");
            auto t2 = storage.find_table<parcels<2>::table>("parcels_v2");
            verify::report report;
            report.structure = verify::structural_diff(t1, t2);  // no expected change: everything must be equal
            report.spot_checks.push_back(
                verify::spot_check(t1, t2, {"p-0000", "p-0003", "p-0042", "p-0150", "p-0199"}));
            fmt::print("{}", verify::to_text(report));
            check(verify::passed(report), "structural diff and spot check pass with no difference at all");
            check(report.structure->a_rows == 200 && report.structure->b_rows == 200, "200 parcels on each side");
        }

        step("switch queries to v2 (router), record it serving, make it live");
        fmt::print("  before: dispatcher routes user 'ops-1' to {}\n", router.route("ops-1"));
        router.switch_to<parcels<2>>();
        d.serve("parcels_v2");
        d.make_live("parcels_v2");
        fmt::print("  router: {}\n", router.status().to_string());
        const auto where = router.query("ops-1", [&]<class P>(std::type_identity<P>) {
            const auto row = storage.find_table<typename P::table>(pj::name_of<P>)->find("p-0042");
            return fmt::format("{} says p-0042 is {} ({} scans)", pj::name_of<P>, row ? row->status : "unknown",
                               row ? row->scans : 0);
        });
        fmt::print("  ops-1 asks: {}\n", where);
        check(router.route("ops-1") == "parcels_v2" && where.starts_with("parcels_v2"), "queries go to v2");
        check(v1.state() == pj::projection_state::retired && v2.state() == pj::projection_state::serving &&
                  v2.status().live,
              "v1 retired, v2 serving and live");

        step("delete v1");
        check(router.wait_for_drain("parcels_v1", std::chrono::seconds(1)), "no query is running on v1");
        d.remove("parcels_v1");
        for (const auto& s : d.status()) print_status(s);
        const auto tombstone = storage.find_catalog("parcels_v1");
        check(!storage.has_table("parcels_v1") && tombstone && tombstone->state == pj::projection_state::deleted &&
                  storage.has_table("parcels_v2"),
              "v1's table is gone and its catalog row says deleted; v2's table is not");
        check(checkpoint_rows(storage, "parcels_v2") == 200, "v2's per-aggregate checkpoints are untouched");

        step("v2 follows new events, parcel by parcel");
        ship(store, 200, 205);
        scan(store, "p-0003", "local depot");
        d.catch_up();
        print_status(v2.status());
        const bool still_current = print_aggregate_positions(v2, store, {"p-0003", "p-0042", "p-0204"});
        fmt::print("  projectionist_aggregate_positions rows for parcels_v2: {}\n",
                   checkpoint_rows(storage, "parcels_v2"));
        check(still_current && v2.status().lag == 0, "v2 is current for every parcel shown");
        check(v2.status().aggregates_tracked == 205 && checkpoint_rows(storage, "parcels_v2") == 205,
              "the 5 new parcels are tracked too");
    } catch (const std::exception& e) {
        fmt::print(stderr, "global_to_partitioned: {}\n", e.what());
        ++failures;
    }

    remove_database(path);
    fmt::print("\n{}\n", failures == 0 ? "global to partitioned: done" : "global to partitioned: FAILED");
    return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
