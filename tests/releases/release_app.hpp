#pragma once
// What the three releases of the notified-tickets application share: the projection (the
// tickets of tests/support/tickets_domain.hpp, v1 and v2, each emitting a notice per ticket event
// it handles, naming the event's position and the version), the database given on the command
// line, and the application's own commands the release test reads its answers from:
//
//   <release> sqlite:<file> <command> ...      or      <release> postgres:<schema>@<url> <command> ...
//
//   append N            the writer: N more ticket events (a ticket registered, closed, reopened...)
//   route USER...       per user, a line: the version the router sends the user's queries to, and
//                       ticket t-1 there
//   tables              the projectionist tables of the versions that exist, one a line
//   downstream          the notices emitted so far: per version, how many, how many positions
//                       twice or more, and the first and last position
//
// Each release's entry point is `return release::main<deployment, router>(argc, argv);` over its
// versions (release_1.hpp, release_2.hpp, release_2_changed.hpp, release_3.hpp; releases.cpp).

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>

#include <projectionist/cli.hpp>
#include <projectionist/deploy.hpp>
#ifdef RELEASE_WITH_POSTGRES
#include <projectionist/postgres.hpp>
#endif
#include <projectionist/sqlite.hpp>
#include <tickets_domain.hpp>

namespace release {

namespace pj = projectionist;
using namespace tickets_domain;

/// What a version tells downstream consumers about each ticket event it handles.
struct ticket_notice {
    BOOST_HANA_DEFINE_STRUCT(ticket_notice, (std::string, ticket_id), (std::string, status),
                             (std::uint64_t, source_position), (std::string, version));
    static constexpr std::string_view event_name = "ticket.notice";
};
using notice_stream = pj::stream<"ticket_notice", ticket_notice>;

/// v1 tracks the status and ignores reopenings; v2 also counts them. Both notify every event.
template <unsigned V>
struct notified : pj::projection<"notified", V, ticket_stream, pj::emits_to<notice_stream>> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;

    void on(const ticket_registered& e, auto& ctx) {
        ctx.table().insert({e.ticket_id, e.type, "open", 0});
        notify(e.ticket_id, "open", ctx);
    }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
        notify(e.ticket_id, "closed", ctx);
    }
    void on(const ticket_reopened& e, auto& ctx) {
        if constexpr (V >= 2) {
            ctx.table().update(e.ticket_id, [](ticket_row& r) {
                r.status = "open";
                ++r.reopened;
            });
            notify(e.ticket_id, "open", ctx);
        } else {
            notify(e.ticket_id, "unchanged", ctx);
        }
    }

private:
    static void notify(const std::string& id, std::string status, auto& ctx) {
        ctx.emit(ticket_notice{id, std::move(status), ctx.envelope().position, std::string(pj::name_of<notified>)});
    }
};

/// Calls `fn(record)` for every record of the log, in order.
template <class Store, class F>
void for_each_record(Store& store, F&& fn) {
    pj::detail::stored_batch batch;
    for (std::uint64_t after = 0;;) {
        store.read(after, 1000, batch);
        if (batch.empty()) return;
        for (const auto& r : batch) {
            after = r.position();
            fn(r);
        }
    }
}

/// Appends `count` ticket events after what the log holds: tickets registered, then closed and
/// reopened in turn, a few tickets at a time.
template <class Store>
void append_events(Store& store, int count) {
    std::map<std::string, std::uint64_t> versions;  // the tickets so far, and their versions
    for_each_record(store, [&](const pj::detail::stored_record& r) {
        if (r.type_name() != ticket_notice::event_name)  // a notice is another stream's
            versions[std::string(r.aggregate_id())] = r.aggregate_version();
    });
    const std::uint64_t turn = store.head();
    for (int i = 0; i < count; ++i) {
        const std::string id = versions.empty() || i % 3 == 0
                                   ? fmt::format("t-{}", versions.size() + 1)
                                   : fmt::format("t-{}", 1 + (turn + static_cast<std::uint64_t>(i)) % versions.size());
        auto it = versions.find(id);
        if (it == versions.end())
            versions[id] =
                store.append(ticket_stream{}, id, 0, ticket_registered{id, i % 2 ? "bug" : "question"}).version;
        else if (it->second % 2 == 1)  // open: close it
            it->second = store.append(ticket_stream{}, id, it->second, ticket_closed{id}).version;
        else  // closed: reopen it
            it->second = store.append(ticket_stream{}, id, it->second, ticket_reopened{id}).version;
    }
}

/// The notices in the log: per version, the source positions notified and how often.
template <class Store>
std::map<std::string, std::map<std::uint64_t, int>> notices(Store& store) {
    std::map<std::string, std::map<std::uint64_t, int>> out;
    for_each_record(store, [&](const pj::detail::stored_record& r) {
        if (r.type_name() != ticket_notice::event_name) return;
        const auto n = store.template event_of<ticket_notice>(r);
        ++out[n.version][n.source_position];
    });
    return out;
}

/// The positions of the ticket events in the log (not the notices).
template <class Store>
std::vector<std::uint64_t> ticket_positions(Store& store) {
    std::vector<std::uint64_t> out;
    for_each_record(store, [&](const pj::detail::stored_record& r) {
        if (r.type_name() != ticket_notice::event_name) out.push_back(r.position());
    });
    return out;
}

/// The application over one database: its store, storage, deployment, router and command line.
template <class Deployment, class Router, class Store, class Storage>
int run_app(Store& store, Storage& storage, int argc, const char* const* argv) {
    Deployment deployment(store, storage, {.batch_size = 50});
    Router router(storage);
    router.register_predicate("internal-users", [](std::string_view user) { return user.starts_with("staff-"); });
    pj::command_line cli;
    cli.add(deployment, router, {.options = {.expected_changes = {"status", "reopened"}}});

    cli.add_command({.name = "append",
                     .synopsis = "<count>",
                     .min_args = 1,
                     .max_args = 1,
                     .summary = "append ticket events (the writer)",
                     .run = [&](pj::command_call& call) {
                         append_events(store, std::stoi(call.args()[0]));
                         call.out() << fmt::format("head {}\n", store.head());
                         return 0;
                     }});
    cli.add_command({.name = "route",
                     .synopsis = "<user>...",
                     .min_args = 1,
                     .max_args = 1000,
                     .summary = "per user, the version the user's queries go to, and ticket t-1 there",
                     .run = [&](pj::command_call& call) {
                         router.refresh();
                         for (const auto& user : call.args()) {
                             const std::string answer = router.query(user, [&]<class P>(std::type_identity<P>) {
                                 const auto row = storage.template table<P>().find("t-1");
                                 return fmt::format("{} t-1 {}", pj::name_of<P>, row ? row->status : "(none)");
                             });
                             call.out() << answer << '\n';
                         }
                         return 0;
                     }});
    cli.add_command(
        {.name = "tables", .summary = "the versions' tables that exist", .run = [&](pj::command_call& call) {
             for (auto v : {"notified_v1", "notified_v2", "notified_v3"})
                 if (storage.has_table(v)) call.out() << v << '\n';
             return 0;
         }});
    cli.add_command(
        {.name = "downstream",
         .synopsis = "[--after POSITION]",
         .summary = "the notices emitted so far, per version",
         .options = {{"after", "POSITION", false, "count the ticket events after it left unnotified"}},
         .run = [&](pj::command_call& call) {
             const auto all = notices(store);
             const std::uint64_t after = std::stoull(call.value("after").value_or("0"));
             std::set<std::uint64_t> seen;
             int twice = 0;
             for (const auto& [version, positions] : all) {
                 int repeated = 0;
                 for (const auto& [position, times] : positions) {
                     if (times > 1) ++repeated;
                     if (!seen.insert(position).second) ++twice;
                 }
                 call.out() << fmt::format("{} notices {} repeated {} first {} last {}\n", version, positions.size(),
                                           repeated, positions.begin()->first, positions.rbegin()->first);
             }
             std::uint64_t missing = 0;
             for (const auto p : ticket_positions(store))
                 if (p > after && !seen.contains(p)) ++missing;
             call.out() << fmt::format("positions {} by-two-versions {} missing {}\n", seen.size(), twice, missing);
             return 0;
         }});
    return cli.main(argc, argv);
}

/// main(): the database from argv[1], then the command line over the rest.
template <template <class> class Deployment, class Router>
int main(int argc, const char* const* argv) {
    const std::string db = argc > 1 ? argv[1] : "";
    std::vector<const char*> rest{argv[0]};
    for (int i = 2; i < argc; ++i) rest.push_back(argv[i]);
    const int n = static_cast<int>(rest.size());
    try {
        if (db.starts_with("sqlite:")) {
            pj::sqlite_event_store store(db.substr(7));
            pj::sqlite_storage storage(db.substr(7));
            return run_app<Deployment<pj::sqlite_storage>, Router>(store, storage, n, rest.data());
        }
#ifdef RELEASE_WITH_POSTGRES
        if (db.starts_with("postgres:") && db.find('@') != std::string::npos) {
            const std::size_t at = db.find('@');
            const pj::postgres_options options{.schema = db.substr(9, at - 9)};
            pj::postgres_event_store store(db.substr(at + 1), options);
            pj::postgres_storage storage(db.substr(at + 1), options);
            return run_app<Deployment<pj::postgres_storage>, Router>(store, storage, n, rest.data());
        }
#endif
    } catch (const std::exception& e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
    std::cerr << "usage: " << argv[0] << " sqlite:<file> | postgres:<schema>@<url>  <command> ...\n";
    return 2;
}

}  // namespace release
