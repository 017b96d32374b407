// The blue-green deployment of the tickets projection, end to end, on one SQLite file.
//
// v1 serves. Its bug: a ticket closed and then reopened stays "closed". v2 fixes that and adds a
// column (how many times a ticket was reopened); it is deployed beside v1 with manual kick-off
// (dormant), initialized, backfilled while new events keep arriving, verified against v1 (the
// diff must show the expected difference and no other), switched to for 10% of the users and
// then for everyone, made live (only now do its emitted events reach downstream), and v1 is
// deleted. The traffic steps go through the blue-green controller, which refuses what would
// hurt readers (traffic to a version still replaying, deleting a version that gets queries).
// Every step is printed; the program checks each outcome and exits 1 if one is wrong.
//
// Usage: tickets_blue_green [--keep] [DATABASE]   (default: a fresh file in the temp directory,
// removed at the end unless --keep)

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>

#include <unistd.h>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>

#include <projectionist/deploy.hpp>
#include <projectionist/sqlite.hpp>

#include "../common/tickets_events.hpp"

namespace pj = projectionist;

// ---- events (the ticket events and their stream: ../common/tickets_events.hpp) -----------------

/// What the dashboard's downstream consumers receive.
struct ticket_status_changed {
    BOOST_HANA_DEFINE_STRUCT(ticket_status_changed, (std::string, ticket_id), (std::string, status));
    static constexpr std::string_view event_name = "ticket_board.status_changed";
};
using board_stream = pj::stream<"ticket_board", ticket_status_changed>;

// ---- read models: v2 adds a column --------------------------------------------------------------
struct ticket_v1 {
    BOOST_HANA_DEFINE_STRUCT(ticket_v1, (std::string, ticket_id), (std::string, type), (std::string, status));
};
struct ticket_v2 {
    BOOST_HANA_DEFINE_STRUCT(ticket_v2, (std::string, ticket_id), (std::string, type), (std::string, status),
                             (int, reopened));
};

// ---- the projection, two versions ---------------------------------------------------------------
template <unsigned V>
struct tickets;

template <>
struct tickets<1> : pj::projection<"tickets", 1, ticket_stream, pj::emits_to<board_stream>> {
    using table = pj::table<ticket_v1, &ticket_v1::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) {
        ctx.table().insert({e.ticket_id, e.type, "open"});
        ctx.emit(ticket_status_changed{e.ticket_id, "open"});
    }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_v1& t) { t.status = "closed"; });
        ctx.emit(ticket_status_changed{e.ticket_id, "closed"});
    }
};

// Exhaustive: a v2 that forgot an event type would not compile.
template <>
struct tickets<2> : pj::projection<"tickets", 2, ticket_stream, pj::emits_to<board_stream>, pj::exhaustive> {
    using table = pj::table<ticket_v2, &ticket_v2::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) {
        ctx.table().insert({e.ticket_id, e.type, "open", 0});
        ctx.emit(ticket_status_changed{e.ticket_id, "open"});
    }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_v2& t) { t.status = "closed"; });
        ctx.emit(ticket_status_changed{e.ticket_id, "closed"});
    }
    void on(const ticket_reopened& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_v2& t) {
            t.status = "open";
            ++t.reopened;
        });
        ctx.emit(ticket_status_changed{e.ticket_id, "reopened"});
    }
};
static_assert(pj::name_of<tickets<1>> == "tickets_v1" && pj::name_of<tickets<2>> == "tickets_v2");

using tickets_deployment =
    pj::deployment<pj::runner<tickets<1>, pj::sqlite_storage>,
                   pj::runner<tickets<2>, pj::sqlite_storage, pj::manual_kickoff, pj::emit_when_live>>;
using tickets_router = pj::router<tickets<1>, tickets<2>>;

namespace {

int failures = 0;
void check(bool ok, std::string_view what) {
    fmt::print("  [{}] {}\n", ok ? "ok" : "FAILED", what);
    if (!ok) ++failures;
}
void step(int n, std::string_view title) {
    fmt::print("\n{}. {}\n", n, title);
}

void print_status(const tickets_deployment& d) {
    for (const auto& s : d.status())
        fmt::print("   {:<11} {:<12} live={:<5} position={:<6} head={:<6} lag={:<6}{}\n", s.name,
                   pj::to_string(s.state), s.live, s.position, s.head, s.lag,
                   s.note.empty() ? "" : "  (" + s.note + ")");
}

/// One ticket's life: registered, closed; every fifth is reopened afterwards (v1's bug).
void ticket_life(pj::sqlite_event_store& store, int i) {
    const std::string id = fmt::format("T-{:05}", i);
    auto v = store.append(ticket_stream{}, id, 0, ticket_registered{id, i % 3 ? "bug" : "question"}).version;
    if (i % 4 != 0) v = store.append(ticket_stream{}, id, v, ticket_closed{id}).version;
    if (i % 5 == 1 && i % 4 != 0) store.append(ticket_stream{}, id, v, ticket_reopened{id});
}

/// The dashboard's query: a ticket's status, answered by whichever version serves this user.
std::string ticket_status(const tickets_router& router, pj::sqlite_storage& storage, std::string_view user,
                          const std::string& ticket) {
    return router.query(user, [&]<class P>(std::type_identity<P>) {
        auto table = storage.find_table<typename P::table>(pj::name_of<P>);
        auto row = table ? table->find(ticket) : std::nullopt;
        return row ? row->status : std::string("(none)");
    });
}

/// The message of the error `f` throws, or empty.
template <class F>
std::string refusal(F&& f) {
    try {
        f();
    } catch (const pj::error& e) {
        return e.what();
    }
    return {};
}

std::size_t board_events(pj::sqlite_event_store& store) {
    pj::sqlite_event_store::batch batch;
    std::size_t n = 0;
    for (std::uint64_t at = 0;;) {
        store.read(at, 5000, batch);
        if (batch.empty()) return n;
        for (const auto& rec : batch) n += rec.stream() == "ticket_board" ? 1 : 0;
        at = batch[batch.size() - 1].position();
    }
}

int usage(std::string_view problem) {
    fmt::print(stderr, "tickets_blue_green: {}\nusage: tickets_blue_green [--keep] [DATABASE]\n", problem);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    bool keep = false;
    std::string path;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--keep")
            keep = true;
        else if (arg == "--help" || arg == "-h")
            return fmt::print("usage: tickets_blue_green [--keep] [DATABASE]\n"), 0;
        else if (arg.starts_with("-"))
            return usage(fmt::format("unknown option '{}'", arg));
        else if (!path.empty())
            return usage(fmt::format("one database path only (got '{}' and '{}')", path, arg));
        else
            path = std::string(arg);
    }
    const bool own_file = path.empty();
    if (own_file)  // a fresh file of its own, so that an interrupted earlier run is never in the way
        path =
            (std::filesystem::temp_directory_path() / fmt::format("projectionist-tickets-{}.db", ::getpid())).string();
    if (std::filesystem::exists(path))
        return usage(fmt::format("'{}' exists; the demo starts from an empty database", path));

    try {
        pj::sqlite_event_store store(path);
        pj::sqlite_storage storage(path);
        fmt::print("tickets: blue-green deployment on {}\n", path);

        step(1, "v1 is in production: it serves every query and emits to the ticket board");
        for (int i = 0; i < 2000; ++i) ticket_life(store, i);
        tickets_deployment deployment(store, storage);
        tickets_router router(storage);
        deployment.catch_up();
        deployment.get<tickets<1>>().make_live();
        deployment.serve("tickets_v1");
        print_status(deployment);
        const std::string reopened_ticket = "T-00001";  // closed, then reopened
        fmt::print("   a support agent asks for {}: {}\n", reopened_ticket,
                   ticket_status(router, storage, "agent-7", reopened_ticket));
        check(ticket_status(router, storage, "agent-7", reopened_ticket) == "closed",
              "v1 shows a reopened ticket as closed: the bug v2 fixes");

        step(2, "deploy tickets_v2 beside it: manual kick-off, so it stays dormant");
        ticket_life(store, 2000);
        deployment.catch_up();
        print_status(deployment);
        check(deployment.status()[1].dormant && !storage.has_table("tickets_v2"),
              "v2 created nothing, processed nothing");

        step(3, "init tickets_v2, then backfill it while traffic goes on");
        deployment.init("tickets_v2");
        std::atomic<bool> done{false};
        std::thread traffic([&] {  // the application keeps writing and v1 keeps following
            pj::sqlite_event_store app_store(path);
            for (int i = 2001; i < 2400; ++i) ticket_life(app_store, i);
            done = true;
        });
        std::thread serving([&] {
            while (!done) deployment.get<tickets<1>>().catch_up();
        });
        const auto started = std::chrono::steady_clock::now();
        const auto backfilled = deployment.backfill("tickets_v2");
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        traffic.join();
        serving.join();
        deployment.catch_up();
        fmt::print("   backfilled {} events in {:.2f} s while {} new events arrived\n", backfilled, seconds,
                   store.head() - backfilled);
        print_status(deployment);
        const auto s = deployment.status();
        check(s[0].lag == 0 && s[1].lag == 0, "both versions are caught up");
        check(s[1].dropped > 0 && board_events(store) == s[0].emitted,
              "v2's emitted events were dropped: it is not live, downstream saw only v1's");

        step(4, "verify tickets_v2 against tickets_v1");
        auto v1_table = storage.find_table<tickets<1>::table>("tickets_v1");
        auto v2_table = storage.find_table<tickets<2>::table>("tickets_v2");
        pj::verify::diff_options expected;
        expected.expected_changes = {"status"};  // the fix; the new column is reported, not failed
        const auto diff = pj::verify::structural_diff(*v1_table, *v2_table, expected);
        const auto samples = pj::verify::sample(*v1_table, *v2_table,
                                                [](const ticket_v2& t) { return t.reopened > 0 && t.status == "open"; },
                                                20, expected, {.name = "reopened tickets"});
        const auto spots = pj::verify::spot_check(*v1_table, *v2_table, {"T-00002", "T-00004"}, expected);
        fmt::print("{}\n", pj::verify::to_text(diff));
        check(diff.pass, "the structural diff shows the expected difference and no other");
        check(samples.differs > 0 && pj::verify::exit_status(samples) == 0,
              "reopened tickets: v2 differs from v1 exactly where the fix applies");
        check(pj::verify::exit_status(spots) == 0, "tickets never reopened are identical in both versions");
        pj::verify::diff_options strict;  // without saying status changed, the same diff fails
        check(!pj::verify::structural_diff(*v1_table, *v2_table, strict).pass,
              "without --expect-change status, the diff fails: it gates a deploy script");

        step(5, "switch 10% of the users to tickets_v2, then everyone");
        pj::controller control(deployment, router);  // the rules of blue-green, whoever calls
        deployment.catch_up();
        control.rollout("tickets_v2", 10);
        int on_v2 = 0;
        for (int u = 0; u < 1000; ++u) on_v2 += router.route(fmt::format("user-{}", u)) == "tickets_v2";
        fmt::print("   routing: {}; {} of 1000 users now see tickets_v2\n", router.status().to_string(), on_v2);
        check(on_v2 > 60 && on_v2 < 140, "about 10% of users are on v2, each always on the same version");
        const std::string refused = refusal([&] { control.remove("tickets_v2"); });
        fmt::print("   delete tickets_v2 now? {}\n", refused);
        check(refused.find("the router sends it queries (the candidate, for 10% of them)") != std::string::npos &&
                  storage.has_table("tickets_v2"),
              "the controller refuses to delete a version that gets queries");
        control.switch_to("tickets_v2");  // the catalog records it serving, then the router switches
        fmt::print("   the agent asks again: {}\n", ticket_status(router, storage, "agent-7", reopened_ticket));
        check(ticket_status(router, storage, "agent-7", reopened_ticket) == "open", "v2 answers: the ticket is open");
        print_status(deployment);

        step(6, "make tickets_v2 live: from now on its events reach the board, and v1's no longer do");
        const auto board_before = board_events(store);
        control.make_live("tickets_v2");
        ticket_life(store, 5002);  // registered and closed: two board events, once each
        deployment.catch_up();
        check(board_events(store) == board_before + 2, "downstream hears each change once, from v2");
        check(!deployment.status()[0].live && deployment.status()[1].live, "one live version at a time");

        step(7, "delete tickets_v1 (kept until now for an instant rollback)");
        router.remove("tickets_v1");   // no rollback to it from now on: its tables are going
        control.remove("tickets_v1");  // waits for queries still running on it, then drops its table
        check(!storage.has_table("tickets_v1") && storage.has_table("tickets_v2"), "only v1's table was dropped");
        print_status(deployment);
    } catch (const pj::error& e) {
        fmt::print(stderr, "tickets_blue_green: {}\n", e.what());
        return 1;
    }

    if (own_file && !keep)
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
    fmt::print("\n{}\n", failures == 0 ? "blue-green deployment of tickets: done, zero downtime"
                                       : "blue-green deployment of tickets: FAILED");
    return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
