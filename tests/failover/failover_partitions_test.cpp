// A per-aggregate projection in six partitions, run by three worker processes while a thread
// appends. Rounds of failure: a worker killed with SIGKILL (and a new one started), a worker
// frozen with SIGSTOP past its lease and resumed, again. Checked:
//   - the partitions are spread fairly (ceil(6 / live workers) at most each) after every change;
//   - every orphaned partition is claimed again within a bounded time (printed: p50, p99, max);
//   - a resumed worker notices that it lost its leases;
//   - the applies log (a row per applied event with the worker, partition and epoch of the lease
//     its batch committed under): every position once, in its aggregate's partition, and within
//     each partition epochs that never go down, one worker per epoch: no late commit;
//   - at the end every partition's checkpoint is at the head, the read model equals the reference
//     built from the log, and every apply counter equals its ticket's number of events: nothing
//     applied twice (a second registration would even fail on the duplicate key), nothing missed.
// The same program is a worker when started as `<program> --failover-partitions-worker ...`.
// PROJECTIONIST_FAILOVER_ROUNDS (environment) sets the number of failure rounds (default 4).

#include <catch2/catch.hpp>

#include <child_entry.hpp>

#include <cstdlib>
#include <memory>
#include <set>

#include <failover_support.hpp>

namespace failover_partitions_test {

namespace {

using namespace failover;
using namespace std::chrono_literals;
using postgres_test::pg_url;
using postgres_test::scoped_schema;

constexpr std::uint32_t partitions = 6;

int rounds() {
    const char* env = std::getenv("PROJECTIONIST_FAILOVER_ROUNDS");
    return env && *env ? std::max(1, std::atoi(env)) : 4;
}

}  // namespace

TEST_CASE("partitions of a per-aggregate projection move to the live workers; nothing is applied twice",
          "[failover][partitions]") {
    scoped_schema schema;
    const std::string url = pg_url();
    auto& db = schema.connection();
    pj::postgres_event_store store(url, schema.options());
    pj::postgres_storage storage(url, schema.options());
    {
        pj::runner<counted, pj::postgres_storage, pj::per_aggregate> setup(store, storage);
        setup.init();  // tables and catalog row, once, before the workers start
    }
    create_reports_table(db, schema.name());
    appender app(url, schema.options(), "t", 400, 3ms);
    app.append_now(600);  // a history to start with

    std::map<std::string, std::unique_ptr<child_process>> workers;
    std::set<std::string> running;  // started, not killed, not stopped
    int next = 1;
    auto start_worker = [&] {
        const std::string id = "w" + std::to_string(next++);
        workers[id] = std::make_unique<child_process>(std::vector<std::string>{
            "--failover-partitions-worker", url, schema.name(), id, std::to_string(partitions)});
        running.insert(id);
        return id;
    };
    for (int i = 0; i < 3; ++i) start_worker();
    app.start();

    const std::string name = "counted_v1";
    // Every partition held (unexpired) by a running worker, none over its fair share.
    auto balanced = [&] {
        const auto states = lease_states(db, schema.name(), name);
        if (states.size() != partitions) return false;
        std::map<std::string, std::uint32_t> count;
        for (const auto& s : states) {
            if (!s.holder || s.expired || !running.contains(*s.holder)) return false;
            ++count[*s.holder];
        }
        const std::uint32_t share =
            pj::postgres_lease_table::share_of(partitions, static_cast<std::uint32_t>(running.size()));
        for (const auto& [w, n] : count)
            if (n > share) return false;
        return true;
    };
    REQUIRE(wait_until(30s, balanced));

    std::vector<double> reclaim_ms;
    std::set<std::string> resumed;
    for (int round = 0; round < rounds(); ++round) {
        const bool freeze = round % 2 == 1;
        const auto states = lease_states(db, schema.name(), name);
        // The victim: a running worker that holds partitions.
        std::map<std::uint32_t, std::uint64_t> orphans;  // partition -> epoch at the signal
        std::string victim;
        for (const auto& s : states)
            if (s.holder && (victim.empty() || *s.holder == victim)) {
                victim = *s.holder;
                orphans[s.partition] = s.epoch;
            }
        REQUIRE(!orphans.empty());
        INFO("round " << round << ": " << (freeze ? "SIGSTOP " : "SIGKILL ") << victim << ", holding " << orphans.size()
                      << " partitions");
        const auto t0 = clock::now();
        workers.at(victim)->signal(freeze ? SIGSTOP : SIGKILL);
        running.erase(victim);
        std::map<std::uint32_t, double> taken;  // partition -> ms until claimed by another worker
        REQUIRE(wait_until(20s, [&] {
            const double ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
            for (const auto& s : lease_states(db, schema.name(), name))
                if (orphans.contains(s.partition) && !taken.contains(s.partition) && s.holder && *s.holder != victim &&
                    s.epoch > orphans.at(s.partition))
                    taken[s.partition] = ms;
            return taken.size() == orphans.size();
        }));
        for (const auto& [p, ms] : taken) reclaim_ms.push_back(ms);
        if (freeze) {
            // Frozen past its lease (the claims above prove it expired); the others go on.
            workers.at(victim)->signal(SIGCONT);
            running.insert(victim);
            resumed.insert(victim);
        } else {
            const auto status = workers.at(victim)->wait(5s);
            REQUIRE(status);
            CHECK(WIFSIGNALED(*status));
            workers.erase(victim);
            resumed.erase(victim);
            start_worker();
        }
        REQUIRE(wait_until(30s, balanced));
    }

    app.stop();
    const std::uint64_t head = store.head();
    auto all_at_head = [&] {
        pj::detail::pg::params p;
        p.add(name + "#");
        const auto r = db.query("SELECT count(*), min(position) FROM " + schema.quoted() +
                                    ".projectionist_checkpoints WHERE starts_with(projection, $1)",
                                p);
        return r.int64(0, 0) == partitions && static_cast<std::uint64_t>(r.int64(0, 1)) == head;
    };
    REQUIRE(wait_until(60s, all_at_head));
    for (auto& [id, w] : workers) w->signal(SIGTERM);
    for (auto& [id, w] : workers) {
        const auto status = w->wait(20s);
        INFO("worker " << id);
        REQUIRE(status);
        CHECK(describe(*status) == "exited with code 0");
    }

    // Every event applied once, in its aggregate's partition, by one worker per (partition, epoch),
    // with epochs never going down within a partition: no late commit from a lost lease.
    std::size_t terms = 0;
    const auto log_problems = check_applies(applies(db, schema.name(), name), head, partitions, terms);
    for (const auto& p : log_problems) UNSCOPED_INFO(p);
    CHECK(log_problems.empty());

    const auto want = reference(store);
    const auto problems = compare_with_reference(storage, name, want);
    for (const auto& p : problems) UNSCOPED_INFO(p);
    CHECK(problems.empty());
    std::uint64_t events = 0;
    for (const auto& [id, r] : want) events += static_cast<std::uint64_t>(r.applied);
    CHECK(events == head);

    const auto reps = reports(db, schema.name());
    std::int64_t fenced = 0, lost = 0, claims = 0, releases = 0;
    for (const auto& [id, r] : reps) {
        fenced += r.fenced;
        lost += r.lost;
        claims += r.claims;
        releases += r.releases;
    }
    for (const auto& id : resumed) {
        INFO("resumed worker " << id);
        REQUIRE(reps.contains(id));
        CHECK(reps.at(id).lost >= 1);
    }

    fmt::print(
        "failover [per aggregate]: {} events over {} tickets, {} partitions, {} rounds, {} (partition, epoch) terms, "
        "lease {} ms, heartbeat {} ms; "
        "re-claim of orphaned partitions: p50 {:.0f} ms, p99 {:.0f} ms, max {:.0f} ms over {} partitions; surviving "
        "workers: {} claims, {} releases, {} leases lost, {} batches refused by the fence\n",
        head, want.size(), partitions, rounds(), terms, lease_ttl.count(), heartbeat.count(),
        percentile(reclaim_ms, 50), percentile(reclaim_ms, 99), percentile(reclaim_ms, 100), reclaim_ms.size(), claims,
        releases, lost, fenced);
    std::fflush(stdout);
    CHECK(percentile(reclaim_ms, 100) < static_cast<double>((2 * lease_ttl + 4 * heartbeat).count()));
}

TEST_CASE("per-aggregate workers start a projection nobody initialized, and stop cleanly", "[failover][partitions]") {
    // Three workers in this process (threads), auto kick-off: their partitions' runners race to
    // create the tables and the catalog row; the losers' errors only restart their runners.
    scoped_schema schema;
    const std::string url = pg_url();
    auto& db = schema.connection();
    pj::postgres_event_store store(url, schema.options());
    pj::postgres_storage storage(url, schema.options());
    appender app(url, schema.options(), "s", 150, 1ms);
    app.append_now(500);

    struct in_process {
        pj::postgres_event_store store;
        pj::postgres_storage storage;
        pj::worker<counted, pj::postgres_storage, pj::per_aggregate> worker;
        std::jthread thread;
        in_process(const std::string& url, const scoped_schema& schema, std::string id)
            : store(url, schema.options()),
              storage(url, schema.options()),
              worker(store, storage, options(std::move(id))),
              thread([this](std::stop_token st) { worker.run(st); }) {}
        static pj::worker_options options(std::string id) {
            pj::worker_options o;
            o.partitions = 4;
            o.lease_ttl = lease_ttl;
            o.heartbeat = heartbeat;
            o.poll_interval = 20ms;
            o.id = std::move(id);
            return o;
        }
    };
    std::vector<std::unique_ptr<in_process>> workers;
    for (const char* id : {"a", "b", "c"}) workers.push_back(std::make_unique<in_process>(url, schema, id));
    const std::uint64_t head = store.head();
    auto at_head = [&] {
        const auto r = db.query("SELECT count(*), min(position) FROM " + schema.quoted() +
                                ".projectionist_checkpoints WHERE starts_with(projection, 'counted_v1#')");
        return r.int64(0, 0) == 4 && static_cast<std::uint64_t>(r.int64(0, 1)) == head;
    };
    auto spread = [&] {  // at most ceil(4 / 3) each, all four held
        std::size_t held = 0;
        for (const auto& w : workers) {
            const auto n = w->worker.status().held.size();
            if (n > 2) return false;
            held += n;
        }
        return held == 4;
    };
    REQUIRE(wait_until(60s, [&] { return at_head() && spread(); }));
    // A worker counts a catch-up's events when the catch-up returns, a little after its last
    // commit: the counts are read once every worker has stopped.
    for (const auto& w : workers) w->thread.request_stop();
    for (const auto& w : workers) w->thread.join();  // run() returned: every lease given back
    std::uint64_t applied = 0;
    for (const auto& w : workers) {
        const auto s = w->worker.status();
        CHECK(s.fenced_commits == 0);
        applied += s.events_applied;
    }
    workers.clear();
    for (const auto& s : lease_states(db, schema.name(), "counted_v1")) CHECK_FALSE(s.holder.has_value());
    CHECK(postgres_test::scalar(db, "SELECT count(*) FROM " + schema.quoted() + ".projectionist_workers") == 0);
    CHECK(applied == head);
    const auto problems = compare_with_reference(storage, "counted_v1", reference(store));
    for (const auto& p : problems) UNSCOPED_INFO(p);
    CHECK(problems.empty());
    std::size_t terms = 0;
    const auto log_problems = check_applies(applies(db, schema.name(), "counted_v1"), head, 4, terms);
    for (const auto& p : log_problems) UNSCOPED_INFO(p);
    CHECK(log_problems.empty());
}

const child_entries::entry worker{"--failover-partitions-worker", [](int argc, char* argv[]) {
                                      return failover::worker_main<failover::counted, projectionist::per_aggregate>(
                                          argc, argv);
                                  }};

}  // namespace failover_partitions_test
