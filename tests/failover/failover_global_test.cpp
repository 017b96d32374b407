// A global projection run by three worker processes: exactly one applies it at a time, the others
// stand by. The leader is killed with SIGKILL, frozen with SIGSTOP past its lease and resumed,
// and so on, while a thread appends. Checked:
//   - a standby takes over within a bounded time (printed: p50, p99, max);
//   - the applies log (a row per applied event with the holder and epoch of the lease its batch
//     committed under) has every position exactly once, epochs that never go down along the
//     positions, and one worker per epoch: never two leaders applying at once;
//   - the frozen leader, once resumed, commits nothing more under its old epoch;
//   - the read model equals the reference built from the log, every apply counter equals its
//     ticket's number of events.
// The same program is a worker when started as `<program> --failover-global-worker ...`.
// PROJECTIONIST_FAILOVER_ROUNDS (environment) sets the number of failure rounds (default 5:
// SIGKILL, SIGSTOP, SIGKILL, ...).

#include <catch2/catch.hpp>

#include <child_entry.hpp>

#include <cstdlib>
#include <memory>
#include <set>

#include <failover_support.hpp>

namespace failover_global_test {

namespace {

using namespace failover;
using namespace std::chrono_literals;
using postgres_test::pg_url;
using postgres_test::scoped_schema;

constexpr std::string_view projection = "led_v1";

int rounds() {
    const char* env = std::getenv("PROJECTIONIST_FAILOVER_ROUNDS");
    return env && *env ? std::max(1, std::atoi(env)) : 5;
}

std::int64_t lines_with_epoch(pj::detail::pg::connection& db, const std::string& schema, std::uint64_t epoch) {
    return postgres_test::scalar(db, fmt::format("SELECT count(*) FROM {}.led_v1_applies WHERE epoch = {}",
                                                 pj::detail::pg::quote(schema), epoch));
}

}  // namespace

TEST_CASE("a global projection runs in one worker at a time; a standby takes over from a killed or frozen leader",
          "[failover][global]") {
    scoped_schema schema;
    const std::string url = pg_url();
    auto& db = schema.connection();
    pj::postgres_event_store store(url, schema.options());
    pj::postgres_storage storage(url, schema.options());
    {
        pj::runner<led, pj::postgres_storage> setup(store, storage);
        setup.init();  // tables and catalog row, once, before the workers start
    }
    create_reports_table(db, schema.name());
    appender app(url, schema.options(), "g", 120, 4ms);
    app.append_now(300);  // a history to start with

    std::map<std::string, std::unique_ptr<child_process>> workers;
    int next = 1;
    auto start_worker = [&] {
        const std::string id = "w" + std::to_string(next++);
        workers[id] = std::make_unique<child_process>(
            std::vector<std::string>{"--failover-global-worker", url, schema.name(), id, "1"});
        return id;
    };
    for (int i = 0; i < 3; ++i) start_worker();
    app.start();

    // The current leader: the unexpired holder of the one lease.
    auto leader = [&]() -> std::optional<pj::lease_state> {
        const auto s = lease_states(db, schema.name(), std::string(projection));
        if (s.size() == 1 && s[0].holder && !s[0].expired) return s[0];
        return std::nullopt;
    };
    REQUIRE(wait_until(30s, [&] { return leader().has_value(); }));

    std::vector<double> takeover_ms;
    std::set<std::string> resumed;  // workers frozen and resumed (and not killed since)
    for (int round = 0; round < rounds(); ++round) {
        const int sig = round % 2 == 1 ? SIGSTOP : SIGKILL;
        const pj::lease_state before = *leader();
        const std::string victim = *before.holder;
        INFO("round " << (sig == SIGKILL ? "SIGKILL " : "SIGSTOP ") << victim << ", epoch " << before.epoch);
        // The leader is applying: lines under its epoch appear.
        REQUIRE(wait_until(20s, [&] { return lines_with_epoch(db, schema.name(), before.epoch) > 0; }));
        const auto t0 = clock::now();
        workers.at(victim)->signal(sig);
        std::optional<pj::lease_state> after;
        REQUIRE(wait_until(20s, [&] {
            after = leader();
            return after && *after->holder != victim && after->epoch > before.epoch;
        }));
        takeover_ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count());
        const std::int64_t old_lines = lines_with_epoch(db, schema.name(), before.epoch);
        // The new leader applies (the appender keeps adding events).
        REQUIRE(wait_until(20s, [&] { return lines_with_epoch(db, schema.name(), after->epoch) > 0; }));
        if (sig == SIGKILL) {
            const auto status = workers.at(victim)->wait(5s);
            REQUIRE(status);
            CHECK(WIFSIGNALED(*status));
            workers.erase(victim);
            resumed.erase(victim);
            start_worker();  // three again
        } else {
            workers.at(victim)->signal(SIGCONT);
            resumed.insert(victim);
            // Resumed, it finds its lease gone: the new leader keeps applying, and nothing more
            // is committed under the old epoch (its late batch, if any, is refused by the fence).
            const std::int64_t new_lines = lines_with_epoch(db, schema.name(), after->epoch);
            REQUIRE(
                wait_until(20s, [&] { return lines_with_epoch(db, schema.name(), after->epoch) > new_lines + 20; }));
            CHECK(lines_with_epoch(db, schema.name(), before.epoch) == old_lines);
        }
    }

    app.stop();
    const std::uint64_t head = store.head();
    auto position = [&] {
        pj::detail::pg::params p;
        p.add(projection);
        const auto r =
            db.query("SELECT position FROM " + schema.quoted() + ".projectionist_checkpoints WHERE projection = $1", p);
        return r.rows() == 0 ? 0 : static_cast<std::uint64_t>(r.int64(0, 0));
    };
    REQUIRE(wait_until(60s, [&] { return position() == head; }));
    for (auto& [id, w] : workers) w->signal(SIGTERM);
    for (auto& [id, w] : workers) {
        const auto status = w->wait(20s);
        INFO("worker " << id);
        REQUIRE(status);
        CHECK(describe(*status) == "exited with code 0");
    }

    // The applies log: every position once, epochs never going down, one worker per epoch.
    std::size_t terms = 0;
    const auto log_problems = check_applies(applies(db, schema.name(), projection), head, 1, terms);
    for (const auto& p : log_problems) UNSCOPED_INFO(p);
    CHECK(log_problems.empty());
    CHECK(terms >= static_cast<std::size_t>(rounds()) + 1);  // the first leader, then one per round

    const auto problems = compare_with_reference(storage, "led_v1", reference(store));
    for (const auto& p : problems) UNSCOPED_INFO(p);
    CHECK(problems.empty());

    const auto reps = reports(db, schema.name());
    for (const auto& id : resumed) {
        INFO("resumed worker " << id);
        REQUIRE(reps.contains(id));
        CHECK(reps.at(id).lost >= 1);  // it noticed that it had lost its lease
    }
    std::int64_t fenced = 0;
    for (const auto& [id, r] : reps) fenced += r.fenced;

    fmt::print(
        "failover [global]: {} events, {} leadership terms, lease {} ms, heartbeat {} ms; takeover after SIGKILL / "
        "SIGSTOP of the leader: p50 {:.0f} ms, p99 {:.0f} ms, max {:.0f} ms over {} takeovers; batches refused by "
        "the fence: {}\n",
        head, terms, lease_ttl.count(), heartbeat.count(), percentile(takeover_ms, 50), percentile(takeover_ms, 99),
        percentile(takeover_ms, 100), takeover_ms.size(), fenced);
    std::fflush(stdout);
    // Expiry is at most lease_ttl after the last renewal, the claim at most a heartbeat later;
    // the rest is slack for a loaded machine.
    CHECK(percentile(takeover_ms, 100) < static_cast<double>((2 * lease_ttl + 4 * heartbeat).count()));
}

const child_entries::entry worker{"--failover-global-worker", [](int argc, char* argv[]) {
                                      return failover::worker_main<failover::led, projectionist::global>(argc, argv);
                                  }};

}  // namespace failover_global_test
