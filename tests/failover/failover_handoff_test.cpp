// The hand-over of downstream emission between two versions that worker processes run. v1 runs
// per aggregate in four partitions, in two worker processes, live; a thread appends; v2 is
// initialized and run by two worker processes of its own; v2 is made live from this process while
// both versions' workers commit batches, then v1 again (a rollback), all under the appends.
// Checked, position by position, on the downstream log (each emitted event names its version and
// its source position): every ticket event's position is emitted exactly once, by v1 up to the
// first hand-over's position p, by v2 after p up to the second's q, and by v1 after q; none lost,
// none doubled. The same program is a worker when started as
// `<program> --handoff-worker-v1 ...` or `--handoff-worker-v2 ...`.

#include <catch2/catch.hpp>

#include <child_entry.hpp>

#include <array>
#include <barrier>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <set>
#include <type_traits>

#include <fmt/ranges.h>

#include <failover_support.hpp>

namespace failover_handoff_test {

namespace {

using namespace failover;
using namespace std::chrono_literals;
using postgres_test::pg_url;
using postgres_test::scoped_schema;

constexpr std::uint32_t partitions = 4;

using v1_runner = pj::runner<position_announcer<1>, pj::postgres_storage, pj::per_aggregate>;
using v2_runner = pj::runner<position_announcer<2>, pj::postgres_storage, pj::per_aggregate>;
static_assert(v1_runner::hands_over_emission && v2_runner::hands_over_emission);

/// The log as downstream sees it: the ticket events' positions, and for each source position the
/// versions that emitted for it (one entry per emission).
struct downstream {
    std::set<std::uint64_t> sources;
    std::map<std::uint64_t, std::vector<std::string>> by_position;

    static downstream of(const pj::postgres_event_store& store) {
        downstream d;
        for_each_record(store, [&](const auto& rec) {
            if (rec.stream() == "ticket") {
                d.sources.insert(rec.position());
            } else if (rec.stream() == "ticket_summary") {
                const auto e = store.event_of<ticket_status_changed>(rec);
                d.by_position[std::stoull(e.status)].push_back(e.ticket_id);
            }
        });
        return d;
    }

    /// Whether every source position was emitted at least once.
    [[nodiscard]] bool complete() const {
        for (const std::uint64_t s : sources)
            if (!by_position.contains(s)) return false;
        return true;
    }

    /// The problems (empty: none): a source position emitted other than once, or by another
    /// version than its segment's; `segments` are (last position, version), in order.
    [[nodiscard]] std::vector<std::string> problems(
        const std::vector<std::pair<std::uint64_t, std::string_view>>& segments) const {
        std::vector<std::string> out;
        for (const std::uint64_t s : sources) {
            if (out.size() >= 20) break;
            const auto it = by_position.find(s);
            if (it == by_position.end()) {
                out.push_back(fmt::format("position {} never emitted", s));
                continue;
            }
            if (it->second.size() != 1) {
                out.push_back(fmt::format("position {} emitted {} times ({})", s, it->second.size(),
                                          fmt::join(it->second, ", ")));
                continue;
            }
            std::string_view owner;
            for (const auto& [last, version] : segments) {
                if (s <= last) {
                    owner = version;
                    break;
                }
            }
            if (it->second.front() != owner)
                out.push_back(fmt::format("position {} emitted by {}, not {}", s, it->second.front(), owner));
        }
        for (const auto& [s, by] : by_position)
            if (!sources.contains(s)) out.push_back(fmt::format("position {} emitted, not a ticket event", s));
        return out;
    }
};

}  // namespace

TEST_CASE("a hand-over between versions that workers run emits each position exactly once", "[failover][handoff]") {
    scoped_schema schema;
    const std::string url = pg_url();
    auto& db = schema.connection();
    pj::postgres_event_store store(url, schema.options());
    pj::postgres_storage storage(url, schema.options());
    {
        // v1's tables and catalog row, once, before the workers start; live from the start.
        v1_runner setup(store, storage);
        setup.init();
        setup.make_live();
    }
    create_reports_table(db, schema.name());
    appender app(url, schema.options(), "h", 200, 2ms);
    app.append_now(300);

    std::map<std::string, std::unique_ptr<child_process>> workers;
    auto start_worker = [&](std::string_view which, const std::string& id) {
        workers[id] = std::make_unique<child_process>(
            std::vector<std::string>{std::string(which), url, schema.name(), id, std::to_string(partitions)});
    };
    start_worker("--handoff-worker-v1", "v1-a");
    start_worker("--handoff-worker-v1", "v1-b");
    app.start();

    // Every partition of `version` has a checkpoint at or past `position`.
    auto partitions_at = [&](std::string_view version, std::uint64_t position) {
        pj::detail::pg::params p;
        p.add(std::string(version) + "#");
        const auto r = db.query("SELECT count(*), min(position) FROM " + schema.quoted() +
                                    ".projectionist_checkpoints WHERE starts_with(projection, $1)",
                                p);
        return r.int64(0, 0) == partitions && static_cast<std::uint64_t>(r.int64(0, 1)) >= position;
    };
    REQUIRE(wait_until(60s, [&] { return partitions_at("announced_v1", 300); }));

    {
        v2_runner setup(store, storage);
        setup.init();
    }
    start_worker("--handoff-worker-v2", "v2-a");
    start_worker("--handoff-worker-v2", "v2-b");
    // v2 replays the history (emitting nothing: not live) and follows.
    const std::uint64_t replayed = store.head();
    REQUIRE(wait_until(60s, [&] { return partitions_at("announced_v2", replayed); }));

    // The switch to v2, from another process than the workers', while both versions commit.
    v2_runner v2(store, storage);
    v2.make_live();
    REQUIRE(v2.emission_share().has_value());
    const std::uint64_t p = v2.emission_share()->after;
    INFO("hand-over to v2 at position " << p);
    CHECK(v2.status().live);
    CHECK(storage.find_catalog("announced_v1")->live == false);

    // Back to v1 once its workers have caught up to p (refused before, saying why).
    REQUIRE(wait_until(60s, [&] { return partitions_at("announced_v1", p) && store.head() > p + 200; }));
    v1_runner v1(store, storage);
    std::string refused;
    const bool rolled_back = wait_until(60s, [&] {
        try {
            v1.make_live();
            return true;
        } catch (const pj::state_error& e) {
            refused = e.what();
            return false;
        }
    });
    INFO("the last refusal: " << refused);
    REQUIRE(rolled_back);
    const std::uint64_t q = v1.emission_share()->after;
    INFO("hand-over back to v1 at position " << q);
    CHECK(q >= p);
    REQUIRE(wait_until(60s, [&] { return store.head() > q + 200; }));
    app.stop();

    // Both versions follow to the head (their own emissions move it: wait until it stays).
    auto settled = [&] {
        const std::uint64_t head = store.head();
        return partitions_at("announced_v1", head) && partitions_at("announced_v2", head) && store.head() == head;
    };
    REQUIRE(wait_until(60s, settled));
    for (auto& [id, w] : workers) w->signal(SIGTERM);
    for (auto& [id, w] : workers) {
        const auto status = w->wait(20s);
        INFO("worker " << id);
        REQUIRE(status);
        CHECK(describe(*status) == "exited with code 0");
    }

    const downstream d = downstream::of(store);
    const std::uint64_t end = std::numeric_limits<std::uint64_t>::max();
    const auto problems = d.problems({{p, "announced_v1"}, {q, "announced_v2"}, {end, "announced_v1"}});
    for (const auto& s : problems) UNSCOPED_INFO(s);
    CHECK(problems.empty());
    CHECK(d.complete());
    // Each segment had events of its own: the hand-overs happened under traffic.
    CHECK(d.sources.size() > 600);
    CHECK(std::count_if(d.sources.begin(), d.sources.end(), [&](std::uint64_t s) { return s > p && s <= q; }) > 0);
    CHECK(std::count_if(d.sources.begin(), d.sources.end(), [&](std::uint64_t s) { return s > q; }) > 0);
    const auto reps = reports(db, schema.name());
    CHECK(reps.size() == 4);
    for (const auto& [id, r] : reps) {
        INFO("worker " << id << ": " << r.last_error);
        CHECK(r.applied > 0);
    }
    fmt::print(
        "failover [handoff]: {} ticket events, {} partitions, hand-over to v2 at {}, back to v1 at {}; every "
        "position emitted once\n",
        d.sources.size(), partitions, p, q);
    std::fflush(stdout);
}

TEST_CASE("a version whose partitions lag behind its hand-over is not made live again", "[failover][handoff]") {
    // The runners of the partitions, in this process and each with a session of its own, as
    // workers would run them; v1's partition 3 lags.
    scoped_schema schema;
    const std::string url = pg_url();
    pj::postgres_event_store store(url, schema.options());
    pj::postgres_storage storage(url, schema.options());
    appender app(url, schema.options(), "r", 40, 0ms);
    app.append_now(200);
    {
        v1_runner setup(store, storage);
        setup.init();
        setup.make_live();
    }
    auto sliced = [&]<class R>(std::type_identity<R>) {
        std::vector<std::unique_ptr<R>> out;
        for (std::uint32_t k = 0; k < partitions; ++k)
            out.push_back(
                std::make_unique<R>(store, storage, pj::runner_options{.batch_size = 10, .slice = {partitions, k}}));
        return out;
    };
    auto v1_parts = sliced(std::type_identity<v1_runner>{});
    for (auto& r : v1_parts) r->catch_up();
    app.append_now(100);
    for (std::uint32_t k = 0; k + 1 < partitions; ++k) v1_parts[k]->catch_up();
    {
        v2_runner setup(store, storage);
        setup.init();
    }
    auto v2_parts = sliced(std::type_identity<v2_runner>{});
    for (auto& r : v2_parts) r->catch_up();

    v2_runner v2(store, storage);
    v2.make_live();
    const std::uint64_t p = v2.emission_share()->after;
    const std::uint64_t lagging = v1_parts.back()->position();
    REQUIRE(lagging < p);
    // v1's partition 3 still owes downstream its events up to p: v1 is not live again before it
    // caught up, whichever of its partitions are ahead.
    v1_runner v1(store, storage);
    std::string refused;
    try {
        v1.make_live();
    } catch (const pj::state_error& e) {
        refused = e.what();
    }
    CHECK_THAT(refused, Catch::Contains("cannot make announced_v1 live: it still emits downstream for the source "
                                        "positions up to " +
                                        std::to_string(p)));
    CHECK(v2.status().live);
    for (auto& r : v1_parts) r->catch_up();  // partition 3 emits what it owes
    v1.make_live();
    const std::uint64_t q = v1.emission_share()->after;
    app.append_now(60);
    for (auto& r : v1_parts) r->catch_up();
    for (auto& r : v2_parts) r->catch_up();

    const downstream d = downstream::of(store);
    const std::uint64_t end = std::numeric_limits<std::uint64_t>::max();
    const auto problems = d.problems({{p, "announced_v1"}, {q, "announced_v2"}, {end, "announced_v1"}});
    for (const auto& s : problems) UNSCOPED_INFO(s);
    CHECK(problems.empty());
    CHECK(d.sources.size() == 360);

    // v2's share ended at q, which each of its partitions passed: a runner without a slice (the
    // command line's, say) may delete it, though its own checkpoint never moved.
    v2_runner other(store, storage);
    other.remove({.by = "test"});
    CHECK(other.state() == pj::projection_state::deleted);
}

TEST_CASE("versions made live at once from several processes end with one of them live", "[failover][handoff]") {
    // Three versions, each in a "process" of its own (its connections); in every round two of them
    // are made live at the same instant, every other round after both were marked live (each
    // hand-over then locks the other's checkpoint).
    scoped_schema schema;
    const std::string url = pg_url();
    appender app(url, schema.options(), "c", 10, 0ms);
    app.append_now(20);
    struct process {
        pj::postgres_event_store store;
        pj::postgres_storage storage;
        process(const std::string& url, const scoped_schema& schema)
            : store(url, schema.options()), storage(url, schema.options()) {}
    };
    process p1(url, schema), p2(url, schema), p3(url, schema);
    pj::runner<position_announcer<1>, pj::postgres_storage> v1(p1.store, p1.storage);
    pj::runner<position_announcer<2>, pj::postgres_storage> v2(p2.store, p2.storage);
    pj::runner<position_announcer<3>, pj::postgres_storage> v3(p3.store, p3.storage);
    v1.catch_up();
    v2.catch_up();
    v3.catch_up();
    v1.make_live();
    std::array<std::function<void()>, 3> make_live{[&] { v1.make_live(); }, [&] { v2.make_live(); },
                                                   [&] { v3.make_live(); }};
    pj::postgres_storage observer(url, schema.options());
    std::vector<std::string> failures;
    std::mutex failure_mutex;
    for (int round = 0; round < 60; ++round) {
        const std::size_t a = static_cast<std::size_t>(round) % 3;
        const std::size_t b = (a + 1 + static_cast<std::size_t>(round / 3) % 2) % 3;
        if (round % 2 == 1) {
            pj::detail::pg::params p;
            p.add(fmt::format("announced_v{}", a + 1)).add(fmt::format("announced_v{}", b + 1));
            observer.connection().query("UPDATE projectionist_catalog SET live = true WHERE name IN ($1, $2)", p);
        }
        std::barrier start(2);
        auto body = [&](std::size_t which) {
            start.arrive_and_wait();
            try {
                make_live[which]();
            } catch (const std::exception& e) {
                std::lock_guard lock(failure_mutex);
                failures.push_back(fmt::format("round {}: {}", round, e.what()));
            }
        };
        {
            std::jthread ta(body, a);
            std::jthread tb(body, b);
        }
        INFO("round " << round);
        std::vector<std::string> live;
        for (const auto& e : observer.catalog())
            if (e.live) live.push_back(e.name);
        CHECK(live.size() == 1);
        const std::string key = "projectionist.emission.announced";
        std::vector<std::string> open;
        for (const auto& [name, w] : pj::detail::parse_windows(observer.find_setting(key).value_or(""), key))
            if (!w.through) open.push_back(name);
        CHECK(open == live);
    }
    for (const auto& f : failures) UNSCOPED_INFO(f);
    CHECK(failures.empty());
}

const child_entries::entry worker_v1{
    "--handoff-worker-v1", [](int argc, char* argv[]) {
        return failover::worker_main<position_announcer<1>, projectionist::per_aggregate>(argc, argv);
    }};
const child_entries::entry worker_v2{
    "--handoff-worker-v2", [](int argc, char* argv[]) {
        return failover::worker_main<position_announcer<2>, projectionist::per_aggregate>(argc, argv);
    }};

}  // namespace failover_handoff_test
