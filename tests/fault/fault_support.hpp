#pragma once
// What the fault tests of both backends share: a log of five events with a known read model,
// one event per batch, the projection_error a call must throw, and a watchdog that turns a
// runner that loops into a failure.

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

namespace fault_test {

namespace pj = projectionist;
using tickets_domain::ticket_row;
using ticket_table = pj::table<ticket_row, &ticket_row::ticket_id>;

/// One event per batch, in batch mode: a stop leaves the checkpoint right before the failure.
inline pj::runner_options one_by_one() {
    pj::runner_options o;
    o.batch_size = 1;
    o.backfill = pj::backfill_mode::batch;
    return o;
}

/// The rows of `table` in `storage`, by ticket id.
template <class Storage>
std::vector<ticket_row> rows_of(Storage& storage, std::string_view table) {
    std::vector<ticket_row> out;
    auto t = storage.template find_table<ticket_table>(table);
    REQUIRE(t);
    t->for_each([&](const ticket_row& r) { out.push_back(r); });
    std::sort(out.begin(), out.end(),
              [](const ticket_row& a, const ticket_row& b) { return a.ticket_id < b.ticket_id; });
    return out;
}

/// 1: t-1 registered, 2: t-2 registered, 3: t-1 closed, 4: t-1 reopened, 5: t-2 closed.
/// Type ids: 1 registered, 2 closed, 3 reopened. Aggregate numbers: t-1 0, t-2 1.
template <class Store>
void append_history(Store& store) {
    using namespace tickets_domain;
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "task"});
    store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});
    store.append(ticket_stream{}, "t-1", 2, ticket_reopened{"t-1"});
    store.append(ticket_stream{}, "t-2", 1, ticket_closed{"t-2"});
}

/// The read model of tickets<2> after all of append_history, and after its first two events.
inline const std::vector<ticket_row> whole_history{{"t-1", "bug", "open", 1}, {"t-2", "task", "closed", 0}};
inline const std::vector<ticket_row> first_two{{"t-1", "bug", "open", 0}, {"t-2", "task", "open", 0}};

/// The projection_error that `f` throws; fails the test if it throws anything else or nothing.
template <class F>
std::string projection_error_of(F&& f) {
    try {
        f();
    } catch (const pj::projection_error& e) {
        return e.what();
    } catch (const std::exception& e) {
        FAIL("not a projection_error: " << e.what());
    }
    FAIL("no error");
    return {};
}

/// Ends the process if a test runs for longer than a bound: a runner that loops is a failure,
/// not a hang.
class watchdog {
public:
    explicit watchdog(std::chrono::seconds limit)
        : thread_([limit](std::stop_token stop) {
              const auto until = std::chrono::steady_clock::now() + limit;
              while (!stop.stop_requested()) {
                  if (std::chrono::steady_clock::now() > until) {
                      std::fputs("fault test: a runner did not stop within the time limit\n", stderr);
                      std::_Exit(3);
                  }
                  std::this_thread::sleep_for(std::chrono::milliseconds(20));
              }
          }) {}

private:
    std::jthread thread_;
};

/// tickets<V>, whose init hook runs `hold` inside init's transaction.
template <unsigned V>
struct held_init : tickets_domain::tickets<V> {
    std::function<void()> hold;
    void init(auto&) {
        if (hold) hold();
    }
};

/// Two runners of one version in two "processes" (each with its own store and storage, made by
/// `make_store` and `make_storage`, which return unique_ptrs), both made before either acts, so
/// that each believes the version new and its checkpoint at 0. Init is idempotent and the loser
/// of a catch-up goes on from the winner's position: one after the other, then at once.
template <class MakeStore, class MakeStorage>
void two_runners_of_one_version(MakeStore make_store, MakeStorage make_storage) {
    using storage_type = typename decltype(make_storage())::element_type;
    append_history(*make_store());
    auto store_a = make_store(), store_b = make_store();
    auto storage_a = make_storage(), storage_b = make_storage();
    {
        pj::runner<tickets_domain::tickets<2>, storage_type> a(*store_a, *storage_a, one_by_one());
        pj::runner<tickets_domain::tickets<2>, storage_type> b(*store_b, *storage_b, one_by_one());
        CHECK(a.init().created);
        const auto second = b.init();  // was: "the checkpoint of 'tickets_v2' was moved by another runner"
        CHECK_FALSE(second.created);
        CHECK(a.catch_up() == 5);
        CHECK(b.catch_up() == 0);  // was: checkpoint_conflict out of catch_up
        CHECK(b.position() == 5);
        CHECK_FALSE(b.status().error);
        CHECK(rows_of(*storage_a, "tickets_v2") == whole_history);
    }
    // At once, from two threads, each with its own connections; bulk backfill (the default). A
    // holds its init transaction open a while, so that B looks at the catalog before A commits
    // and starts its own init after.
    std::atomic<bool> a_inside{false};
    held_init<3> slow;
    slow.hold = [&] {
        a_inside = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
    };
    pj::runner<held_init<3>, storage_type> a(*store_a, *storage_a, slow);
    pj::runner<held_init<3>, storage_type> b(*store_b, *storage_b);
    std::string failure_a, failure_b;
    auto both = [](auto& r, std::string& failure) {
        try {
            r.init();
            r.catch_up();
        } catch (const std::exception& e) {
            failure = e.what();
        }
    };
    {
        std::jthread ta([&] { both(a, failure_a); });
        std::jthread tb([&] {
            while (!a_inside) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            both(b, failure_b);
        });
    }
    CHECK(failure_a == "");
    CHECK(failure_b == "");
    a.refresh();
    b.refresh();
    CHECK(a.position() == 5);
    CHECK(b.position() == 5);
    CHECK(rows_of(*storage_a, "tickets_v3") == whole_history);

    // Two catch-ups from 0 that overlap, over a longer log: the loser of each batch goes on from
    // the winner's position, and every event is applied once.
    auto more = store_a->new_batch();
    for (int i = 0; i < 3000; ++i)
        more.add(tickets_domain::ticket_stream{}, "u-" + std::to_string(i), 0,
                 tickets_domain::ticket_registered{"u-" + std::to_string(i), i % 2 ? "bug" : "task"});
    store_a->append(more);
    pj::runner<tickets_domain::tickets<2>, storage_type> reference(*store_a, *storage_a);
    reference.catch_up();
    const auto expected = rows_of(*storage_a, "tickets_v2");
    REQUIRE(expected.size() == 3002);
    pj::runner_options small_batches;
    small_batches.batch_size = 7;
    small_batches.backfill = pj::backfill_mode::batch;
    for (const pj::runner_options& options : {small_batches, pj::runner_options{}}) {
        INFO("catch-ups at once, backfill " << (options.backfill == pj::backfill_mode::batch ? "batch" : "automatic"));
        {
            pj::runner<tickets_domain::tickets<4>, storage_type> c(*store_a, *storage_a, options);
            pj::runner<tickets_domain::tickets<4>, storage_type> d(*store_b, *storage_b, options);
            c.init();
            d.init();
            std::string failure_c, failure_d;
            auto catch_up = [](auto& r, std::string& failure) {
                try {
                    r.catch_up();
                } catch (const std::exception& e) {
                    failure = e.what();
                }
            };
            {
                std::jthread tc([&] { catch_up(c, failure_c); });
                std::jthread td([&] { catch_up(d, failure_d); });
            }
            CHECK(failure_c == "");
            CHECK(failure_d == "");
            c.refresh();
            d.refresh();
            CHECK(c.position() == 3005);
            CHECK(d.position() == 3005);
            CHECK(rows_of(*storage_a, "tickets_v4") == expected);
            c.remove();
        }
    }
}

/// A runner has run the version in one process when another process deletes it: the runner's
/// next catch-up applies nothing and re-creates nothing, and nothing is left of the version but its
/// tombstone (`leftovers` says how many checkpoint rows, tables and dead letters of it there
/// are). The delete falls between two catch-ups of the running runner, so the test does not
/// depend on which process wins the database's write lock.
template <class MakeStore, class MakeStorage, class Leftovers>
void delete_under_a_running_runner(MakeStore make_store, MakeStorage make_storage, Leftovers leftovers) {
    using storage_type = typename decltype(make_storage())::element_type;
    auto store = make_store();
    auto append_tickets = [&](int from, int to) {
        auto log = store->new_batch();
        for (int i = from; i < to; ++i)
            log.add(tickets_domain::ticket_stream{}, "u-" + std::to_string(i), 0,
                    tickets_domain::ticket_registered{"u-" + std::to_string(i), "bug"});
        store->append(log);
    };
    append_tickets(0, 20);
    auto storage_a = make_storage(), storage_b = make_storage();
    auto store_b = make_store();
    pj::runner<tickets_domain::tickets<2>, storage_type, pj::skip_to_dead_letter> a(*store, *storage_a);
    pj::runner<tickets_domain::tickets<2>, storage_type, pj::skip_to_dead_letter> b(*store_b, *storage_b, one_by_one());
    a.init();
    CHECK(b.catch_up() == 20);
    append_tickets(20, 40);
    a.remove();
    // The runner looks at the catalog before its next batch: it applies nothing, re-creates
    // nothing and reports the version deleted.
    CHECK(b.catch_up() == 0);
    CHECK(b.state() == pj::projection_state::deleted);
    CHECK(b.status().events_dead_lettered == 0);
    CHECK(leftovers() == "0 checkpoints, 0 tables, 0 dead letters");
    a.refresh();
    CHECK(a.state() == pj::projection_state::deleted);
}

}  // namespace fault_test
