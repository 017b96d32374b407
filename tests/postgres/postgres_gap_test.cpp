// Reading the PostgreSQL log never skips an event that a concurrent writer commits late.
//
// The hazard: with positions from a sequence, a transaction can take position N, stay open,
// and commit after another took and committed N+1; a reader that saw N+1 moves past N for ever.
// The store serializes appends under an advisory lock (see postgres_event_store.hpp), so
// positions are dense and commit in order. These tests show the hazard with a plain sequence,
// then hammer the store: 8 concurrent appenders, aborted transactions, one transaction held open
// for seconds, while a runner and a plain reader follow the log; nothing is missed, nothing is
// applied twice, and the read model equals one built from the final log.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <boost/hana/define_struct.hpp>

#include <postgres_test_support.hpp>
#include <projectionist/projectionist.hpp>
#include <projectionist/store/postgres_event_store.hpp>
#include <tickets_domain.hpp>

namespace pj = projectionist;
using namespace tickets_domain;
using postgres_test::pg_url;
using postgres_test::scoped_schema;
using namespace std::chrono_literals;

namespace {

/// How often the projection applied each position: a global, as the runner owns the projection.
struct application_log {
    std::mutex mutex;
    std::map<std::uint64_t, int> count;
    void applied(std::uint64_t position) {
        std::lock_guard lock(mutex);
        ++count[position];
    }
};
application_log applications;

struct followed_ticket {
    BOOST_HANA_DEFINE_STRUCT(followed_ticket, (std::string, ticket_id), (std::string, type), (std::string, status),
                             (int, reopened), (std::int64_t, version));
    friend bool operator==(const followed_ticket&, const followed_ticket&) = default;
};

/// tickets<2>, plus the last aggregate version applied and a count of applications per event.
struct followed_tickets : pj::projection<"followed_tickets", 1, ticket_stream> {
    using table = pj::table<followed_ticket, &followed_ticket::ticket_id>;

    void on(const ticket_registered& e, auto& ctx) {
        applications.applied(ctx.envelope().position);
        ctx.table().insert({e.ticket_id, e.type, "open", 0, applied_version(ctx)});
    }
    void on(const ticket_closed& e, auto& ctx) {
        applications.applied(ctx.envelope().position);
        const auto v = applied_version(ctx);
        ctx.table().update(e.ticket_id, [&](followed_ticket& r) {
            r.status = "closed";
            r.version = v;
        });
    }
    void on(const ticket_reopened& e, auto& ctx) {
        applications.applied(ctx.envelope().position);
        const auto v = applied_version(ctx);
        ctx.table().update(e.ticket_id, [&](followed_ticket& r) {
            r.status = "open";
            ++r.reopened;
            r.version = v;
        });
    }
    static std::int64_t applied_version(auto& ctx) {
        return static_cast<std::int64_t>(ctx.envelope().aggregate_version);
    }
};

}  // namespace

TEST_CASE("the hazard is real: a plain sequence lets a reader skip an event committed late", "[postgres][gap]") {
    scoped_schema schema;
    const std::string log = schema.quoted() + ".log";
    auto& setup = schema.connection();
    setup.exec("CREATE TABLE " + log + "(position bigserial PRIMARY KEY, what text NOT NULL)");
    pj::detail::pg::connection slow(pg_url()), fast(pg_url()), reader(pg_url());

    slow.exec("BEGIN");
    slow.exec("INSERT INTO " + log + "(what) VALUES ('slow')");  // takes position 1, stays open
    fast.exec("INSERT INTO " + log + "(what) VALUES ('fast')");  // takes 2, commits at once
    // The reader sees 2 and moves its checkpoint there...
    const std::int64_t checkpoint = postgres_test::scalar(reader, "SELECT max(position) FROM " + log);
    CHECK(checkpoint == 2);
    slow.exec("COMMIT");
    // ...so it never reads 1, although 1 is committed now.
    CHECK(postgres_test::scalar(
              reader, "SELECT count(*) FROM " + log + " WHERE position > " + std::to_string(checkpoint)) == 0);
    CHECK(postgres_test::scalar(reader, "SELECT count(*) FROM " + log + " WHERE position = 1") == 1);
}

TEST_CASE("the store: an append committed late holds back the later ones, so no reader skips it", "[postgres][gap]") {
    scoped_schema schema;
    pj::postgres_options options = schema.options();
    options.lock_timeout = 30s;
    pj::postgres_event_store reader(pg_url(), options);
    pj::postgres_event_store fast(pg_url(), options);
    auto slow_connection = pj::detail::pg::open_database(pg_url(), options);
    auto slow = reader.writer_on(slow_connection);

    slow_connection.exec("BEGIN");
    CHECK(slow.append(ticket_stream{}, "slow", 0, ticket_registered{"slow", "bug"}).first_position == 1);
    std::atomic<bool> fast_done{false};
    std::jthread fast_thread([&] {
        fast.append(ticket_stream{}, "fast", 0, ticket_registered{"fast", "bug"});
        fast_done = true;
    });
    std::this_thread::sleep_for(500ms);
    CHECK_FALSE(fast_done);  // waiting for the open append's transaction
    CHECK(reader.head() == 0);
    pj::postgres_event_store::batch batch;
    reader.read(0, 10, batch);
    CHECK(batch.empty());
    slow_connection.exec("COMMIT");
    fast_thread.join();
    CHECK(fast_done);
    reader.read(0, 10, batch);
    REQUIRE(batch.size() == 2);
    CHECK(batch[0].aggregate_id() == "slow");
    CHECK(batch[0].position() == 1);
    CHECK(batch[1].aggregate_id() == "fast");
    CHECK(batch[1].position() == 2);
}

TEST_CASE(
    "8 concurrent appenders, aborted and long transactions: a following projection misses nothing and "
    "applies nothing twice",
    "[postgres][gap]") {
    scoped_schema schema;
    pj::postgres_options options = schema.options();
    options.lock_timeout = 60s;  // the held transaction makes appenders wait; sanitizer builds are slow
    constexpr int appenders = 8;
    constexpr int tickets_per_appender = 12;
    constexpr auto held_for = 2500ms;
    {
        std::lock_guard lock(applications.mutex);
        applications.count.clear();
    }
    { pj::postgres_event_store create(pg_url(), options); }

    std::atomic<int> appenders_done{0};
    std::atomic<int> aborted{0};
    std::atomic<int> committed_appends{0};
    std::atomic<bool> held_open{false};
    std::vector<std::string> failures;
    std::mutex failures_mutex;
    auto fail = [&](const std::string& what) {
        std::lock_guard lock(failures_mutex);
        failures.push_back(what);
    };

    // The follower: a runner over memory storage, following the log with run().
    pj::postgres_event_store follower_store(pg_url(), options);
    pj::memory_storage storage;
    pj::runner<followed_tickets, pj::memory_storage, pj::postgres_event_store> runner(follower_store, storage,
                                                                                      pj::runner_options{7, 20ms});
    std::jthread follower([&](std::stop_token stop) { runner.run(stop); });

    // A plain reader, batches of 5: every batch must continue exactly where the last one ended.
    std::vector<std::uint64_t> read_positions;
    std::size_t read_while_appending = 0;  // proves the reader ran alongside the appenders
    std::atomic<bool> readers_may_stop{false};
    std::jthread plain_reader([&](std::stop_token stop) {
        try {
            pj::postgres_event_store store(pg_url(), options);
            pj::postgres_event_store::batch batch;
            std::uint64_t after = 0;
            while (!stop.stop_requested()) {
                store.read(after, 5, batch);
                for (const auto& r : batch) {
                    if (r.position() != after + 1)
                        fail("the reader saw position " + std::to_string(r.position()) + " after " +
                             std::to_string(after));
                    read_positions.push_back(r.position());
                    if (appenders_done < appenders) ++read_while_appending;
                    after = r.position();
                }
                if (batch.empty()) {
                    if (readers_may_stop && after == store.head()) break;
                    std::this_thread::sleep_for(2ms);
                }
            }
        } catch (const std::exception& e) {
            fail(std::string("reader: ") + e.what());
        }
    });

    {
        std::vector<std::jthread> writers;
        for (int w = 0; w < appenders; ++w)
            writers.emplace_back([&, w] {
                try {
                    pj::postgres_event_store store(pg_url(), options);
                    auto side = pj::detail::pg::open_database(pg_url(), options);
                    auto side_writer = store.writer_on(side);
                    for (int t = 0; t < tickets_per_appender; ++t) {
                        const std::string id = "w" + std::to_string(w) + "-t" + std::to_string(t);
                        std::uint64_t v = store.append(ticket_stream{}, id, 0, ticket_registered{id, "bug"}).version;
                        ++committed_appends;
                        for (int step = 0; step < 4; ++step) {
                            if ((w + t + step) % 5 == 0) {
                                // Aborted on purpose: appended in a transaction that rolls back.
                                side.exec("BEGIN");
                                side_writer.append(ticket_stream{}, id, v, ticket_closed{id}, ticket_reopened{id});
                                side.exec("ROLLBACK");
                                ++aborted;
                            } else if (w == 0 && t == 3 && step == 1) {
                                // Held open for seconds while the other appenders queue up.
                                side.exec("BEGIN");
                                v = side_writer.append(ticket_stream{}, id, v, ticket_closed{id}).version;
                                held_open = true;
                                std::this_thread::sleep_for(held_for);
                                side.exec("COMMIT");
                                ++committed_appends;
                            } else if (step % 2 == 0) {
                                v = store.append(ticket_stream{}, id, v, ticket_closed{id}).version;
                                ++committed_appends;
                            } else {
                                v = store.append(ticket_stream{}, id, v, ticket_closed{id}, ticket_reopened{id})
                                        .version;
                                ++committed_appends;
                            }
                        }
                    }
                } catch (const std::exception& e) {
                    fail("appender " + std::to_string(w) + ": " + e.what());
                }
                ++appenders_done;
            });
    }  // all appenders joined
    REQUIRE(appenders_done == appenders);
    CHECK(held_open);
    CHECK(aborted > 0);

    pj::postgres_event_store final_log(pg_url(), options);
    const std::uint64_t head = final_log.head();
    // Wait for the followers to reach the head (bounded: a stuck follower fails the test);
    // status() is the thread-safe view of a running runner.
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (runner.status().position < head && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    readers_may_stop = true;
    plain_reader.join();
    follower.request_stop();
    follower.join();
    {
        std::lock_guard lock(failures_mutex);
        for (const auto& f : failures) UNSCOPED_INFO(f);
        CHECK(failures.empty());
    }
    REQUIRE_FALSE(runner.status().error.has_value());
    CHECK(runner.position() == head);

    // The final log: dense positions (aborted appends left no holes), every committed append.
    pj::postgres_event_store::batch log;
    final_log.read(0, static_cast<std::size_t>(-1), log);
    REQUIRE(log.size() == head);
    for (std::size_t i = 0; i < log.size(); ++i) REQUIRE(log[i].position() == i + 1);

    // The plain reader saw every position once, in order.
    CHECK(read_positions.size() == head);
    CHECK(read_while_appending > 0);
    CHECK((!read_positions.empty() && read_positions.back() == head));

    // The runner applied every event exactly once: zero missed, zero applied twice.
    {
        std::lock_guard lock(applications.mutex);
        std::size_t missed = 0, twice = 0;
        for (std::uint64_t p = 1; p <= head; ++p) {
            const auto it = applications.count.find(p);
            if (it == applications.count.end())
                ++missed;
            else if (it->second != 1)
                ++twice;
        }
        CHECK(missed == 0);
        CHECK(twice == 0);
        CHECK(applications.count.size() == head);
    }

    // The read model equals the reference built from the final log.
    std::map<std::string, followed_ticket> reference;
    for (const auto& r : log) {
        const std::string id(r.aggregate_id());
        if (r.type_name() == "ticket.registered") {
            reference[id] = {id, final_log.event_of<ticket_registered>(r).type, "open", 0,
                             static_cast<std::int64_t>(r.aggregate_version())};
        } else {
            followed_ticket& row = reference.at(id);
            REQUIRE(static_cast<std::int64_t>(r.aggregate_version()) == row.version + 1);  // order per aggregate
            row.version = static_cast<std::int64_t>(r.aggregate_version());
            if (r.type_name() == "ticket.closed") {
                row.status = "closed";
            } else {
                row.status = "open";
                ++row.reopened;
            }
        }
    }
    CHECK(reference.size() == appenders * tickets_per_appender);
    auto table = storage.find_table<followed_tickets::table>("followed_tickets_v1");
    REQUIRE(table.has_value());
    CHECK(table->size() == reference.size());
    std::size_t equal = 0;
    for (const auto& [id, expected] : reference) {
        const std::optional<followed_ticket> row = table->find(id);
        INFO("ticket " << id);
        REQUIRE(row.has_value());
        CHECK(*row == expected);
        if (*row == expected) ++equal;
    }
    CHECK(equal == reference.size());
    // Every committed append is in the log, and no aborted one.
    std::uint64_t versions = 0;
    for (const auto& [id, row] : reference) versions += static_cast<std::uint64_t>(row.version);
    CHECK(versions == head);
    CHECK(committed_appends > 0);
}
