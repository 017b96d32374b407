// The hand-over of downstream emission between two versions, on the backend the executable was
// built for: making v2 live records a position p in the same transaction (the larger of the two
// versions' committed positions); v1 emits for the source positions up to p, v2 only after p, so
// that every position is emitted exactly once whichever version lags. Each version's runner has a
// session of its own, as it would in a process of its own.

#include <backend_suite.hpp>

#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <projectionist/deploy/deployment.hpp>

using namespace backend_test;

namespace handoff_test {

/// Tells downstream about every registration and close: the version and the source position.
template <unsigned V>
struct announced : pj::projection<"announced", V, ticket_stream, pj::emits_to<ticket_summary_stream>> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) {
        ctx.table().upsert({e.ticket_id, e.type, "open", 0});
        tell(ctx);
    }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
        tell(ctx);
    }
    static void tell(auto& ctx) {
        ctx.emit(ticket_status_changed{std::string(pj::name_of<announced>), std::to_string(ctx.envelope().position)});
    }
};
using handoff_v1 = pj::runner<announced<1>, backend::storage_type>;
using handoff_v2 = pj::runner<announced<2>, backend::storage_type>;
static_assert(handoff_v1::hands_over_emission && handoff_v2::hands_over_emission);
static_assert(!pj::runner<announced<1>, backend::storage_type, pj::emit_always>::hands_over_emission);

/// The log's emitting source positions after `after` (registrations and closes), and who
/// emitted each (one entry per emission).
struct downstream {
    std::map<std::uint64_t, std::vector<std::string>> by_position;

    template <class Store>
    static downstream of(Store& store, std::uint64_t after) {
        downstream d;
        typename Store::batch batch;
        store.read(0, 1000000, batch);
        for (const auto& item : batch) {
            const auto& rec = record_of(item);
            if (rec.stream() == "ticket" && rec.position() > after &&
                (rec.type_name() == "ticket.registered" || rec.type_name() == "ticket.closed"))
                d.by_position[rec.position()];
        }
        for (const auto& item : batch) {
            const auto& rec = record_of(item);
            if (rec.stream() != "ticket_summary") continue;
            const auto e = store.template event_of<ticket_status_changed>(rec);
            const std::uint64_t source = std::stoull(e.status);
            if (source > after) d.by_position[source].push_back(e.ticket_id);
        }
        return d;
    }
    /// Every position emitted exactly once, by the version of its segment: `segments` are (last
    /// position, version), in order; positions after the last segment are nobody's.
    [[nodiscard]] bool exactly_once(const std::vector<std::pair<std::uint64_t, std::string_view>>& segments) const {
        for (const auto& [position, by] : by_position) {
            if (by.size() != 1) {
                UNSCOPED_INFO("position " << position << " emitted " << by.size() << " times");
                return false;
            }
            std::string_view owner;
            for (const auto& [last, version] : segments) {
                if (position <= last) {
                    owner = version;
                    break;
                }
            }
            if (by.front() != owner) {
                UNSCOPED_INFO("position " << position << " emitted by " << by.front() << ", not " << owner);
                return false;
            }
        }
        return true;
    }
    /// Every position emitted exactly once, by `first` up to `p` and by `second` after it.
    [[nodiscard]] bool exactly_once(std::uint64_t p, std::string_view first, std::string_view second) const {
        return exactly_once({{p, first}, {std::numeric_limits<std::uint64_t>::max(), second}});
    }
};

/// Two "processes" on the test's database, each with its own store and storage (memory has no
/// database to open twice: there both are the first's).
struct two_processes {
    explicit two_processes(backend& fx)
        : a(fx), second(backend::speaks_sql ? std::make_unique<connections>(fx) : nullptr) {}
    connections a;
    std::unique_ptr<connections> second;
    connections& b() { return second ? *second : a; }
};

/// Two processes, v1 in the first: live once it applied `tickets` tickets of history.
struct v1_live {
    v1_live(int tickets, std::size_t batch_size)
        : processes(fx), a(processes.a), b(processes.b()), v1(a.store, a.storage, {.batch_size = batch_size}) {
        history(a.store, tickets);
        v1.catch_up();
        v1.make_live();
        live_from = v1.position();
    }
    backend fx;
    two_processes processes;
    connections& a;
    connections& b;
    handoff_v1 v1;
    std::uint64_t live_from = 0;
};

}  // namespace handoff_test

using namespace handoff_test;

TEST_CASE("a hand-over emits each position once when the previous version lags", "[backend][emission][handoff]") {
    v1_live setup(10, 7);
    connections& a = setup.a;  // v1's process
    connections& b = setup.b;  // v2's
    handoff_v1& v1 = setup.v1;
    const std::uint64_t live_from = setup.live_from;
    REQUIRE(v1.emission_share() == pj::emission_window{live_from, std::nullopt});

    history(a.store, 10, 10);
    v1.catch_up();
    history(a.store, 10, 20);  // v1 lags by these
    handoff_v2 v2(b.store, b.storage, {.batch_size = 5});
    v2.catch_up();  // replays everything without emitting: not live
    CHECK(v2.status().emitted == 0);
    const std::uint64_t p = v2.position();
    REQUIRE(v1.position() < p);
    v2.make_live();
    CHECK(v2.emission_share() == pj::emission_window{p, std::nullopt});
    CHECK(v2.status().live);
    CHECK(v2.state() == pj::projection_state::caught_up);  // live is a flag beside the state

    // v1, in its own process, has not looked yet: it still owes the positions up to p.
    history(a.store, 10, 30);
    v1.catch_up();
    CHECK_FALSE(v1.status().live);
    CHECK(v1.emission_share() == pj::emission_window{live_from, p});
    v2.catch_up();
    v1.catch_up();
    const auto d = downstream::of(a.store, live_from);
    CHECK(d.exactly_once(p, "announced_v1", "announced_v2"));
    CHECK(d.by_position.rbegin()->first > p);
    CHECK(d.by_position.begin()->first <= p);

    // Its share is over: it may be deleted.
    v1.remove({.by = "test"});
    CHECK(b.storage.find_setting("projectionist.emission.announced") == fmt::format("announced_v2 {} -\n", p));
}

TEST_CASE("a hand-over emits each position once when the new version lags", "[backend][emission][handoff]") {
    v1_live setup(10, 6);
    connections& a = setup.a;
    connections& b = setup.b;
    handoff_v1& v1 = setup.v1;
    const std::uint64_t live_from = setup.live_from;
    handoff_v2 v2(b.store, b.storage, {.batch_size = 4});
    v2.catch_up();
    history(a.store, 12, 10);  // v2 lags by these
    v1.catch_up();
    const std::uint64_t p = v1.position();
    REQUIRE(v2.position() < p);
    v2.make_live();
    CHECK(v2.emission_share() == pj::emission_window{p, std::nullopt});
    history(a.store, 10, 22);
    v2.catch_up();  // the positions up to p were v1's: dropped, not emitted again
    v1.catch_up();  // nothing after p
    CHECK(v1.emission_share() == pj::emission_window{live_from, p});
    const auto d = downstream::of(a.store, live_from);
    CHECK(d.exactly_once(p, "announced_v1", "announced_v2"));
    CHECK(v2.status().dropped > 0);
}

TEST_CASE("a version that still owes a hand-over's positions is not deleted, reset nor made live again",
          "[backend][emission][handoff]") {
    v1_live setup(5, 8);
    connections& a = setup.a;
    connections& b = setup.b;
    handoff_v1& v1 = setup.v1;
    const std::uint64_t live_from = setup.live_from;
    history(a.store, 5, 5);
    handoff_v2 v2(b.store, b.storage);
    v2.catch_up();
    v2.make_live();
    const std::uint64_t p = v2.position();

    v1.refresh();
    const std::string owes = error_of([&] { v1.remove({.by = "test"}); });
    CHECK_THAT(owes, Catch::Contains(fmt::format("cannot delete announced_v1: it still emits downstream for the "
                                                 "source positions up to {} (its hand-over to the live version) "
                                                 "and is at {}; let it catch up first",
                                                 p, live_from)));
    CHECK(v1.state() != pj::projection_state::deleted);
    // Nor reset: its replay emits nothing, so the positions it owes would never reach downstream.
    const pj::projection_state before_reset = v1.state();
    const std::string reset = error_of([&] { v1.reset(); });
    CHECK_THAT(reset, Catch::Contains(fmt::format("cannot reset announced_v1: it still emits downstream for the "
                                                  "source positions up to {} (its hand-over to the live version) "
                                                  "and is at {}; let it catch up first",
                                                  p, live_from)));
    CHECK(v1.emission_share() == pj::emission_window{live_from, p});
    CHECK(v1.position() == live_from);
    CHECK(v1.state() == before_reset);
    const std::string again = error_of([&] { v1.make_live(); });
    CHECK_THAT(again, Catch::Contains("cannot make announced_v1 live: it still emits downstream for the source "
                                      "positions up to"));
    CHECK(v2.status().live);

    // Rolled back to v1 once it caught up: v1 emits after the new position, v2 up to it.
    v1.catch_up();
    v1.make_live();
    const std::uint64_t q = v1.emission_share()->after;
    CHECK(q >= p);
    history(a.store, 5, 10);
    v1.catch_up();
    v2.catch_up();
    // v1 up to p, v2 after p up to q, v1 again after q
    const std::uint64_t end = std::numeric_limits<std::uint64_t>::max();
    CHECK(downstream::of(a.store, live_from)
              .exactly_once({{p, "announced_v1"}, {q, "announced_v2"}, {end, "announced_v1"}}));

    // reset forgets the version's share: its replay emits nothing.
    v2.refresh();
    v2.reset();
    CHECK_FALSE(v2.emission_share().has_value());
    v2.catch_up();
    CHECK(v2.status().emitted == 0);
    CHECK(downstream::of(a.store, live_from)
              .exactly_once({{p, "announced_v1"}, {q, "announced_v2"}, {end, "announced_v1"}}));
}

TEST_CASE("a deployment hands emission over in one step", "[backend][emission][handoff]") {
    backend fx;
    connections a(fx);
    pj::deployment<handoff_v1, pj::runner<announced<2>, backend::storage_type, pj::manual_kickoff>> d(a.store,
                                                                                                      a.storage);
    history(a.store, 8);
    d.catch_up();
    d.make_live("announced_v1");
    const std::uint64_t live_from = d.get<announced<1>>().position();
    d.init("announced_v2");
    d.backfill("announced_v2");
    history(a.store, 8, 8);
    d.catch_up();
    d.make_live("announced_v2");
    const std::uint64_t p = d.get<announced<2>>().emission_share()->after;
    CHECK_FALSE(d.status("announced_v1").live);
    CHECK(d.status("announced_v2").live);
    CHECK(d.get<announced<1>>().emission_share() == pj::emission_window{live_from, p});
    history(a.store, 8, 16);
    d.catch_up();
    CHECK(downstream::of(a.store, live_from).exactly_once(p, "announced_v1", "announced_v2"));
}
