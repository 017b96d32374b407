// The tickets projection on a SQLite file: the embedded default.
//
// One file holds the event log, both projection versions' tables, their checkpoints and the
// projection catalog. v1 serves; v2 (which fixes reopened tickets and counts reopenings) is
// deployed beside it with manual kick-off, initialized and backfilled by hand while events keep
// arriving, compared with v1, made live, and v1 is deleted. Afterwards the file can be inspected:
//
//     sqlite3 tickets.db "select type, payload from events limit 5"
//     sqlite3 tickets.db "select * from projectionist_catalog"
//
// Usage: tickets_sqlite [--keep] [DATABASE]   (default: a fresh tickets-demo.db in the current
// directory, removed at the end unless --keep)

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>

#include <projectionist/sqlite.hpp>

#include "../common/tickets_events.hpp"

namespace pj = projectionist;

struct ticket_row {
    BOOST_HANA_DEFINE_STRUCT(ticket_row, (std::string, ticket_id), (std::string, type), (std::string, status),
                             (int, reopened));
};

template <unsigned V>
struct tickets : pj::projection<"tickets", V, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open", 0}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
    }
    void on(const ticket_reopened& e, auto& ctx) requires(V >= 2)  // v1 ignored reopenings: the bug v2 fixes
    {
        ctx.table().update(e.ticket_id, [](ticket_row& r) {
            r.status = "open";
            ++r.reopened;
        });
    }
};

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
    fmt::print("  {:<11} state={:<12} live={:<5} position={:<5} head={:<5} lag={:<5} applied={}{}\n", s.name,
               pj::to_string(s.state), s.live, s.position, s.head, s.lag, s.events_applied,
               s.note.empty() ? "" : "  (" + s.note + ")");
}

void traffic(pj::sqlite_event_store& store, int from, int to) {
    for (int i = from; i < to; ++i) {
        const std::string id = fmt::format("t-{:04}", i);
        auto v = store.append(ticket_stream{}, id, 0, ticket_registered{id, i % 4 ? "bug" : "incident"}).version;
        if (i % 3 != 0) v = store.append(ticket_stream{}, id, v, ticket_closed{id}).version;
        if (i % 6 == 1) store.append(ticket_stream{}, id, v, ticket_reopened{id});
    }
}

int usage(std::string_view problem) {
    fmt::print(stderr, "tickets_sqlite: {}\nusage: tickets_sqlite [--keep] [DATABASE]\n", problem);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    bool keep = false;
    std::string path = "tickets-demo.db";
    bool path_given = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--keep") {
            keep = true;
        } else if (arg == "--help" || arg == "-h") {
            fmt::print("usage: tickets_sqlite [--keep] [DATABASE]\n");
            return 0;
        } else if (arg.starts_with("-")) {
            return usage(fmt::format("unknown option '{}'", arg));
        } else if (path_given) {
            return usage(fmt::format("one database path only (got '{}' and '{}')", path, arg));
        } else {
            path = std::string(arg);
            path_given = true;
        }
    }
    if (!path_given) {
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
    }

    try {
        pj::sqlite_event_store store(path);
        pj::sqlite_storage storage(path);
        fmt::print("event log and read models: {}\n", path);

        step("v1 is in production: it serves the tickets_v1 table");
        traffic(store, 0, 300);
        pj::runner<tickets<1>, pj::sqlite_storage> v1(store, storage);
        v1.catch_up();
        v1.make_live();
        print_status(v1.status());

        step("deploy v2 beside v1 (manual kick-off): it stays dormant");
        pj::runner<tickets<2>, pj::sqlite_storage, pj::per_aggregate, pj::manual_kickoff> v2(store, storage);
        traffic(store, 300, 320);
        v1.catch_up();
        v2.catch_up();
        print_status(v2.status());
        check(v2.status().dormant && !storage.has_table("tickets_v2"), "v2 created nothing, processed nothing");

        step("init tickets_v2 and backfill it, while v1 keeps serving");
        v2.init();
        traffic(store, 320, 340);
        v1.catch_up();
        v2.backfill();
        print_status(v1.status());
        print_status(v2.status());
        check(v2.status().lag == 0, "v2 caught up (per aggregate, global v1 beside it)");

        step("compare v2 with v1");
        auto t1 = storage.find_table<tickets<1>::table>("tickets_v1");
        auto t2 = storage.find_table<tickets<2>::table>("tickets_v2");
        int same = 0, fixed = 0, other = 0;
        t1->for_each([&](const ticket_row& r1) {
            const auto r2 = t2->find(r1.ticket_id);
            if (!r2)
                ++other;
            else if (r1.status == r2->status)
                ++same;
            else if (r1.status == "closed" && r2->status == "open" && r2->reopened > 0)
                ++fixed;
            else
                ++other;
        });
        fmt::print("  rows v1={} v2={}: identical={}, reopened tickets fixed={}, unexpected={}\n", t1->size(),
                   t2->size(), same, fixed, other);
        check(t1->size() == t2->size() && fixed > 0 && other == 0, "the only differences are the fixed tickets");

        step("make v2 live, delete v1");
        v2.make_live();
        v1.remove();
        check(!storage.has_table("tickets_v1") && storage.has_table("tickets_v2"), "only v1's table was dropped");
        traffic(store, 340, 345);
        v2.catch_up();
        print_status(v2.status());
        check(storage.find_catalog("tickets_v2")->live, "v2 is live in the catalog");
    } catch (const pj::error& e) {
        fmt::print(stderr, "tickets_sqlite: {}\n", e.what());
        return 1;
    }

    if (!keep && !path_given)
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
    fmt::print("\n{}\n", failures == 0 ? "tickets on SQLite: done" : "tickets on SQLite: FAILED");
    return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
