#pragma once
// The application the rollout tests run, once per backend: a tickets read model whose v2 adds a
// column (`closes`, an expected change) and, in its buggy build, spoils the title of 2% of the
// tickets (a change the structural diff cannot see: titles are all distinct either way, so only
// shadow reads find it). An `app` is what one application process holds: the deployment, the
// router, the controller, the rollout, a thread that follows the log and judges the plan, and a
// connection of its own for queries.
//
// The backend is chosen by a compile definition, as in tests/backend: PROJECTIONIST_TEST_BACKEND_SQLITE
// or PROJECTIONIST_TEST_BACKEND_POSTGRES.

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>

#include <projectionist/deploy.hpp>
#include <projectionist/deploy/rollout/rollout.hpp>
#include <projectionist/observe.hpp>

#if defined(PROJECTIONIST_TEST_BACKEND_SQLITE)
#include <projectionist/sqlite.hpp>

#include "sqlite_test_support.hpp"
#elif defined(PROJECTIONIST_TEST_BACKEND_POSTGRES)
#include <projectionist/postgres.hpp>

#include "postgres_test_support.hpp"
#else
#error "define PROJECTIONIST_TEST_BACKEND_SQLITE or PROJECTIONIST_TEST_BACKEND_POSTGRES"
#endif

namespace rollout_test {

namespace pj = projectionist;

struct ticket_opened {
    BOOST_HANA_DEFINE_STRUCT(ticket_opened, (std::string, ticket_id), (std::string, title));
    static constexpr std::string_view event_name = "ticket.opened";
};
struct ticket_closed {
    BOOST_HANA_DEFINE_STRUCT(ticket_closed, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.closed";
};
using ticket_stream = pj::stream<"ticket", ticket_opened, ticket_closed>;

struct row_v1 {
    BOOST_HANA_DEFINE_STRUCT(row_v1, (std::string, ticket_id), (std::string, title), (std::string, status));
};
struct row_v2 {
    BOOST_HANA_DEFINE_STRUCT(row_v2, (std::string, ticket_id), (std::string, title), (std::string, status),
                             (int, closes));
};

/// What a query answers, from either version (v1 has no `closes`: -1).
struct ticket_view {
    BOOST_HANA_DEFINE_STRUCT(ticket_view, (std::string, ticket_id), (std::string, title), (std::string, status),
                             (int, closes));
};

struct tickets_v1 : pj::projection<"tickets", 1, ticket_stream> {
    using table = pj::table<row_v1, &row_v1::ticket_id>;
    void on(const ticket_opened& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.title, "open"}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](row_v1& r) { r.status = "closed"; });
    }
};

/// Whether the buggy v2 spoils this ticket's title: 2% of the tickets.
inline bool spoiled(std::string_view ticket_id) {
    return pj::routing_bucket(ticket_id) < 200;
}

/// How a build of v2 behaves: right, spoiling 2% of the titles, failing on a ticket titled
/// "poison", or never closing a ticket (which the structural diff sees in the status counts).
enum class build { good, spoils_titles, fails_on_poison, never_closes };

template <build B>
struct tickets_v2_t : pj::projection<"tickets", 2, ticket_stream> {
    using table = pj::table<row_v2, &row_v2::ticket_id>;
    void on(const ticket_opened& e, auto& ctx) {
        if (B == build::fails_on_poison && e.title == "poison") throw std::runtime_error("cannot read a poison title");
        const bool spoil = B == build::spoils_titles && spoiled(e.ticket_id);
        ctx.table().insert({e.ticket_id, spoil ? e.title + "!" : e.title, "open", 0});
    }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](row_v2& r) {
            r.status = B == build::never_closes ? "open" : "closed";
            ++r.closes;
        });
    }
};
using good_v2 = tickets_v2_t<build::good>;
using buggy_v2 = tickets_v2_t<build::spoils_titles>;
using fragile_v2 = tickets_v2_t<build::fails_on_poison>;
using stuck_v2 = tickets_v2_t<build::never_closes>;

constexpr int ticket_count = 400;

inline std::string ticket(int i) {
    return fmt::format("T-{}", i % ticket_count);
}
inline std::string user(long i) {
    return fmt::format("user-{}", i);
}

// ---- the backend -----------------------------------------------------------------------------------

#if defined(PROJECTIONIST_TEST_BACKEND_SQLITE)
using store_type = pj::sqlite_event_store;
using storage_type = pj::sqlite_storage;

/// Where the database is: one SQLite file.
struct place {
    sqlite_test::temp_dir dir{sqlite_test::fast_temp_base()};
    std::string file = dir.file("rollout.db");
    std::unique_ptr<store_type> store() const { return std::make_unique<store_type>(file); }
    std::unique_ptr<storage_type> storage() const { return std::make_unique<storage_type>(file); }
};
#else
using store_type = pj::postgres_event_store;
using storage_type = pj::postgres_storage;

/// Where the database is: a schema of the test's own on the test server.
struct place {
    postgres_test::scoped_schema schema{"pj_rollout"};
    std::unique_ptr<store_type> store() const {
        return std::make_unique<store_type>(postgres_test::pg_url(), schema.options());
    }
    std::unique_ptr<storage_type> storage() const {
        return std::make_unique<storage_type>(postgres_test::pg_url(), schema.options());
    }
};
#endif

/// The history: every ticket opened, one in three closed.
inline void seed(const place& where) {
    auto store = where.store();
    for (int i = 0; i < ticket_count; ++i) {
        const std::string id = ticket(i);
        std::uint64_t v = store->append(ticket_stream{}, id, 0, ticket_opened{id, fmt::format("title {}", i)}).version;
        if (i % 3 == 0) store->append(ticket_stream{}, id, v, ticket_closed{id});
    }
}

/// One application process: its deployment, router, controller and rollout over its own
/// connections, a thread that follows the log and judges the plan, and queries on a connection
/// of their own, counted per version.
template <class V2>
struct app {
    using deployment_type =
        pj::deployment<pj::runner<tickets_v1, storage_type>, pj::runner<V2, storage_type, pj::manual_kickoff>>;
    using router_type = pj::router<tickets_v1, V2>;

    std::unique_ptr<store_type> store;
    std::unique_ptr<storage_type> storage;
    std::unique_ptr<storage_type> query_storage;
    deployment_type deployment;
    router_type router;
    pj::controller<deployment_type, router_type> control;
    pj::rollout<router_type> rollout;
    std::atomic<long> on_v1{0};
    std::atomic<long> on_v2{0};
    std::jthread follower;

    explicit app(const place& where, std::chrono::milliseconds interval = std::chrono::milliseconds(5))
        : store(where.store()),
          storage(where.storage()),
          query_storage(where.storage()),
          deployment(*store, *storage),
          router(*storage),
          control(deployment, router),
          rollout(control, router, *storage, {.interval = interval}) {}
    ~app() { stop(); }

    /// v1 caught up and serving, v2 initialized and backfilled.
    void deploy_v2() {
        control.catch_up("tickets_v1");
        control.switch_to("tickets_v1");
        control.init("tickets_v2");
        control.backfill("tickets_v2");
    }

    void start_following() {
        follower = std::jthread([this](std::stop_token stop) { rollout.run(stop); });
    }
    void stop() {
        if (follower.joinable()) {
            follower.request_stop();
            follower.join();
        }
    }

    /// One query, with a shadow read, as the application sends it.
    std::optional<ticket_view> ask(long i) {
        return rollout.shadow_query(user(i), [&]<class P>(std::type_identity<P>) -> std::optional<ticket_view> {
            (P::version == 1 ? on_v1 : on_v2).fetch_add(1);
            auto table = query_storage->find_table<typename P::table>(pj::name_of<P>);
            if (!table) throw std::runtime_error(fmt::format("no table {}", pj::name_of<P>));
            auto row = table->find(ticket(static_cast<int>(i)));
            if (!row) return std::nullopt;
            if constexpr (P::version == 1)
                return ticket_view{row->ticket_id, row->title, row->status, -1};
            else
                return ticket_view{row->ticket_id, row->title, row->status, row->closes};
        });
    }
};

/// Reads the plan on a connection of its own, as a command line or a dashboard would.
struct watcher {
    std::unique_ptr<storage_type> storage;
    explicit watcher(const place& where) : storage(where.storage()) {}
    [[nodiscard]] pj::rollout_record record() const {
        auto r = pj::find_rollout(*storage, "tickets");
        if (!r) throw std::runtime_error("no rollout saved");
        return *r;
    }
    /// The processes that reported shadow reads.
    [[nodiscard]] std::size_t observers() const {
        const std::string key = pj::detail::rollout::observers_key("tickets");
        auto saved = storage->find_setting(key);
        return saved ? pj::detail::rollout::parse_observers(*saved, key).size() : 0;
    }
};

/// Sends queries (one in ten also reads the plan) until the plan stops moving or `limit` passes;
/// calls `each(record)` after every read of the plan. Returns the last record read.
template <class App, class Each>
pj::rollout_record ask_until_done(App& a, const watcher& w, Each each,
                                  std::chrono::seconds limit = std::chrono::seconds(120)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (long i = 0;; ++i) {
        (void)a.ask(i);
        if (i % 10 != 0) continue;
        pj::rollout_record r = w.record();
        each(r);
        if (!pj::active(r.state) || std::chrono::steady_clock::now() > deadline) return r;
    }
}

/// A plan compressed in time: steps of 1, 10, 50 and 100% of at least 20 ms and 60 shadow reads.
inline pj::rollout_plan quick_plan() {
    return {.candidate = "tickets_v2",
            .steps = pj::percent_steps({1, 10, 50, 100}),
            .dwell = std::chrono::milliseconds(20),
            .min_shadow_reads = 60,
            .max_discrepancy = 0.001,
            .expected_changes = {"closes"}};
}

}  // namespace rollout_test
