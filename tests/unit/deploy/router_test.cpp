// The query router: toggles (all traffic, percentage rollout, predicate), persistence through the
// storage's settings, stable routing across router objects, clear errors, queries in flight
// during flips, and shadow reads. Queries read the real tickets_v1 / tickets_v2 tables built by
// runners over memory storage: v1 ignores reopenings, v2 counts them, so their answers differ.

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <projectionist/deploy/router.hpp>
#include <projectionist/meta/fnv1a.hpp>
#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

namespace router_test {

namespace pj = projectionist;
using namespace tickets_domain;
using namespace std::chrono_literals;

namespace {

using tickets_router = pj::router<tickets<1>, tickets<2>>;
const std::string setting_key = "projectionist.router.tickets";

/// t-1 open in both versions; t-2 closed then reopened (v1: "closed", v2: "open", reopened 1);
/// t-3 closed in both.
struct fixture {
    pj::memory_event_store store;
    pj::memory_storage storage;
    pj::runner<tickets<1>> v1{store, storage};
    pj::runner<tickets<2>> v2{store, storage};

    fixture() {
        append_ticket(store, "t-1", "bug", 0, false);
        append_ticket(store, "t-2", "bug", 1, false);
        append_ticket(store, "t-3", "task", 0, true);
        v1.catch_up();
        v2.catch_up();
    }
};

/// A query over either version's table: the row of one ticket, read from "tickets_v<N>".
auto ticket_query(pj::memory_storage& storage, std::string id) {
    return [&storage, id = std::move(id)]<class P>(std::type_identity<P>) -> std::optional<ticket_row> {
        const std::string name(pj::name_of<P>);
        auto lock = storage.lock_shared(name);
        auto table = storage.find_table<typename P::table>(name);
        if (!table) throw std::runtime_error("no table " + name);
        return table->find(id);
    };
}

/// A query that answers with the name of the version it ran on.
const auto version_query = []<class P>(std::type_identity<P>) { return std::string(pj::name_of<P>); };

std::string user(int i) {
    return "user-" + std::to_string(i);
}

}  // namespace

// ---- compile-time properties -------------------------------------------------------------------

static_assert(pj::settings_store<pj::memory_storage>);
static_assert(!pj::settings_store<const pj::memory_storage>);  // a router saves its state
static_assert(!pj::settings_store<int>);
static_assert(tickets_router::projection_name == "tickets");
static_assert(tickets_router::version_count == 2);
static_assert(tickets_router::version_names[0] == "tickets_v1" && tickets_router::version_names[1] == "tickets_v2");
static_assert(std::is_same_v<tickets_router::query_result<decltype(version_query)>, std::string>);
static_assert(!std::is_copy_constructible_v<tickets_router> && !std::is_move_constructible_v<tickets_router>);
// FNV-1a 64 reference values (the published test vectors), and buckets frozen forever: changing
// them would move users between versions on upgrade.
static_assert(projectionist::detail::fnv1a_64("") == 0xcbf29ce484222325ULL);
static_assert(projectionist::detail::fnv1a_64("a") == 0xaf63dc4c8601ec8cULL);
static_assert(projectionist::detail::fnv1a_64("foobar") == 0x85944171f73967e8ULL);
static_assert(pj::routing_bucket("user-42") == 1453);

TEST_CASE("routing buckets are stable values", "[router]") {
    CHECK(projectionist::detail::fnv1a_64("user-1") == 0xf84ba2aa754a4bd4ULL);
    CHECK(projectionist::detail::fnv1a_64("internal-alice") == 0x80a1cb7066136ef1ULL);
    CHECK(pj::routing_bucket("") == 4342);
    CHECK(pj::routing_bucket("a") == 8315);
    CHECK(pj::routing_bucket("foobar") == 7275);
    CHECK(pj::routing_bucket("user-1") == 5477);
    CHECK(pj::routing_bucket("user-42") == 1453);
    CHECK(pj::routing_bucket("internal-alice") == 8379);
    CHECK(tickets_router::setting_key() == setting_key);
}

// ---- toggles -----------------------------------------------------------------------------------

TEST_CASE("the first version is primary until told otherwise, and queries read its table", "[router]") {
    fixture f;
    tickets_router router(f.storage);
    CHECK(router.route("anyone") == "tickets_v1");
    auto row = router.query("anyone", ticket_query(f.storage, "t-2"));
    REQUIRE(row);
    CHECK(row->status == "closed");  // v1 does not see the reopening
    CHECK(router.query("anyone", ticket_query(f.storage, "t-9")) == std::nullopt);
    CHECK_FALSE(f.storage.find_setting(setting_key));  // nothing changed, nothing saved

    const auto status = router.status();
    CHECK(status.projection == "tickets");
    CHECK(status.setting_key == setting_key);
    CHECK(status.versions == std::vector<std::string>{"tickets_v1", "tickets_v2"});
    CHECK(status.primary == "tickets_v1");
    CHECK_FALSE(status.candidate);
    CHECK(status.basis_points == 0);
    CHECK_FALSE(status.previous);
    CHECK_FALSE(status.predicate);
    CHECK(status.to_string() == "tickets: primary tickets_v1; nothing to roll back");
}

TEST_CASE("switch_to sends all traffic to one version, persisted at once", "[router]") {
    fixture f;
    tickets_router router(f.storage);
    router.switch_to<tickets<2>>();
    CHECK(f.storage.find_setting(setting_key) == "format=1 primary=tickets_v2 previous=tickets_v1");
    for (int i = 0; i < 100; ++i) CHECK(router.route(user(i)) == "tickets_v2");
    auto row = router.query("anyone", ticket_query(f.storage, "t-2"));
    REQUIRE(row);
    CHECK(row->status == "open");
    CHECK(row->reopened == 1);
    CHECK(router.status().to_string() == "tickets: primary tickets_v2; rollback to tickets_v1");

    // By name, as typed on a command line.
    router.switch_to("tickets_v1");
    CHECK(router.route("anyone") == "tickets_v1");
    CHECK(f.storage.find_setting(setting_key) == "format=1 primary=tickets_v1 previous=tickets_v2");

    // make_router deduces the settings type.
    auto other = pj::make_router<tickets<1>, tickets<2>>(f.storage);
    CHECK(other.route("anyone") == "tickets_v1");
    CHECK(other.status().previous == "tickets_v2");
}

TEST_CASE("a percentage rollout splits keys by their stable bucket", "[router]") {
    fixture f;
    tickets_router router(f.storage);
    router.rollout<tickets<2>>(10);
    CHECK(f.storage.find_setting(setting_key) == "format=1 primary=tickets_v1 candidate=tickets_v2 basis_points=1000");
    CHECK(router.status().to_string() ==
          "tickets: primary tickets_v1, candidate tickets_v2 at 10%; rollback cancels the candidate");

    constexpr int keys = 10000;
    std::vector<bool> at_ten(keys);
    int on_candidate = 0;
    for (int i = 0; i < keys; ++i) {
        const auto k = user(i);
        const bool candidate = router.route(k) == "tickets_v2";
        CHECK(candidate == (pj::routing_bucket(k) < 1000));
        at_ten[static_cast<std::size_t>(i)] = candidate;
        on_candidate += candidate ? 1 : 0;
    }
    CHECK(on_candidate >= 800);
    CHECK(on_candidate <= 1200);

    // The query runs on the version its key is routed to.
    CHECK(router.query("user-42", version_query) == "tickets_v1");  // bucket 1453
    router.rollout("tickets_v2", 15);                               // by name
    CHECK(router.query("user-42", version_query) == "tickets_v2");
    CHECK(router.query("user-42", ticket_query(f.storage, "t-2"))->reopened == 1);

    // Raising the share only adds keys.
    router.rollout<tickets<2>>(50);
    on_candidate = 0;
    for (int i = 0; i < keys; ++i) {
        const bool candidate = router.route(user(i)) == "tickets_v2";
        if (at_ten[static_cast<std::size_t>(i)]) CHECK(candidate);
        on_candidate += candidate ? 1 : 0;
    }
    CHECK(on_candidate >= 4800);
    CHECK(on_candidate <= 5200);

    // 0% and 100%.
    router.rollout<tickets<2>>(0);
    for (int i = 0; i < 200; ++i) CHECK(router.route(user(i)) == "tickets_v1");
    router.rollout<tickets<2>>(100);
    for (int i = 0; i < 200; ++i) CHECK(router.route(user(i)) == "tickets_v2");
    CHECK(router.status().primary == "tickets_v1");  // still the primary: a rollout is not a switch

    // Basis points: 0.25%.
    router.rollout_basis_points<tickets<2>>(25);
    CHECK(router.status().basis_points == 25);
    CHECK(router.status().percent() == Approx(0.25));
    CHECK(router.status().to_string() ==
          "tickets: primary tickets_v1, candidate tickets_v2 at 0.25%; rollback cancels the candidate");
    router.rollout_basis_points("tickets_v2", 1250);
    CHECK(router.status().to_string().find("at 12.5%") != std::string::npos);
}

TEST_CASE("the same key gets the same version in every router object and after reload", "[router]") {
    fixture f;
    tickets_router stale(f.storage);
    tickets_router first(f.storage);
    first.rollout<tickets<2>>(25);
    tickets_router second(f.storage);  // loads the persisted state
    CHECK(stale.route("user-3") == "tickets_v1");
    CHECK(stale.refresh());  // picks up the change made by `first`
    CHECK_FALSE(stale.refresh());
    int on_candidate = 0;
    for (int i = 0; i < 2000; ++i) {
        const auto k = user(i);
        const auto v = first.route(k);
        CHECK(second.route(k) == v);
        CHECK(stale.route(k) == v);
        CHECK(first.route(k) == v);  // and again: routing is a function of the key
        on_candidate += v == "tickets_v2" ? 1 : 0;
    }
    CHECK(on_candidate > 0);
    CHECK(on_candidate < 2000);
}

TEST_CASE("the predicate sends matching keys to the candidate, whatever the share", "[router]") {
    fixture f;
    tickets_router router(f.storage);
    router.prefer_candidate_when([](std::string_view key) { return key.starts_with("internal-"); });
    CHECK(router.status().predicate);

    // No candidate: the predicate does nothing.
    CHECK(router.route("internal-alice") == "tickets_v1");
    CHECK(router.status().to_string() ==
          "tickets: primary tickets_v1, predicate set (no candidate); nothing to roll back");

    // Internal users first: 0% plus the predicate.
    router.rollout<tickets<2>>(0);
    CHECK(router.route("internal-alice") == "tickets_v2");  // bucket 8379
    CHECK(router.query("internal-alice", ticket_query(f.storage, "t-2"))->reopened == 1);
    CHECK(router.route("user-42") == "tickets_v1");
    for (int i = 0; i < 500; ++i) {
        CHECK(router.route("internal-" + std::to_string(i)) == "tickets_v2");
        CHECK(router.route(user(i)) == "tickets_v1");
    }

    // With a share, both apply.
    router.rollout<tickets<2>>(10);
    CHECK(router.status().to_string() ==
          "tickets: primary tickets_v1, candidate tickets_v2 at 10% (+ predicate); rollback cancels "
          "the candidate");
    CHECK(router.route("internal-alice") == "tickets_v2");
    CHECK(router.route("user-42") == "tickets_v1");  // bucket 1453 >= 1000
    int on_candidate = 0;
    for (int i = 0; i < 1000; ++i) on_candidate += router.route(user(i)) == "tickets_v2" ? 1 : 0;
    CHECK(on_candidate > 0);

    // The predicate is code, not state: another router object does not have it.
    tickets_router other(f.storage);
    CHECK(other.route("internal-alice") == "tickets_v1");
    CHECK_FALSE(other.status().predicate);

    // A refresh keeps the predicate.
    other.switch_to<tickets<1>>();  // clears the candidate
    CHECK(router.refresh());
    CHECK(router.status().predicate);
    CHECK(router.route("internal-alice") == "tickets_v1");

    router.rollout<tickets<2>>(0);
    router.clear_candidate_preference();
    CHECK_FALSE(router.status().predicate);
    CHECK(router.route("internal-alice") == "tickets_v1");
}

TEST_CASE("a named predicate and a prefer_candidate_when predicate route side by side", "[router]") {
    // Keys outside the 5% share used below: only a predicate sends them to the candidate.
    static_assert(pj::routing_bucket("staff-1") >= 500 && pj::routing_bucket("beta-1") >= 500 &&
                  pj::routing_bucket("user-1") >= 500);
    fixture f;
    tickets_router router(f.storage);
    router.register_predicate("internal-users", [](std::string_view key) { return key.starts_with("staff-"); });
    router.rollout<tickets<2>>(0);
    router.enable_predicate("internal-users");
    router.prefer_candidate_when([](std::string_view key) { return key.starts_with("beta-"); });
    // Both apply: the one set last does not replace the other.
    CHECK(router.route("staff-1") == "tickets_v2");
    CHECK(router.route("beta-1") == "tickets_v2");
    CHECK(router.route("user-1") == "tickets_v1");
    CHECK(router.enabled_predicate() == "internal-users");
    CHECK(router.status().predicate);

    // Switching the named one on again, or a refresh, keeps the unnamed one.
    router.enable_predicate("internal-users");
    CHECK(router.route("beta-1") == "tickets_v2");
    tickets_router other(f.storage);
    other.rollout<tickets<2>>(5);
    CHECK(router.refresh());
    CHECK(router.route("beta-1") == "tickets_v2");
    CHECK(router.route("staff-1") == "tickets_v2");

    // Each goes off on its own.
    router.disable_predicate();
    CHECK(router.route("staff-1") == "tickets_v1");
    CHECK(router.route("beta-1") == "tickets_v2");
    router.enable_predicate("internal-users");
    router.clear_candidate_preference();
    CHECK(router.route("staff-1") == "tickets_v2");
    CHECK(router.route("beta-1") == "tickets_v1");
    CHECK(router.status().predicate);
    router.disable_predicate();
    CHECK_FALSE(router.status().predicate);
}

TEST_CASE("a router refuses to send queries to a version initialized with another definition", "[router]") {
    fixture f;
    // Both versions were initialized by this build: the router routes to either.
    tickets_router router(f.storage);
    router.rollout<tickets<2>>(10);
    router.switch_to<tickets<2>>();
    router.switch_to<tickets<1>>();

    // tickets_v2 as another build recorded it: without the column 'reopened'.
    auto entry = *f.storage.find_catalog("tickets_v2");
    const std::string line = "column tickets_v2 reopened int32\n";
    REQUIRE(entry.definition.find(line) != std::string::npos);
    entry.definition.erase(entry.definition.find(line), line.size());
    entry.fingerprint = pj::fingerprint_text(pj::detail::fnv1a_64(entry.definition));
    f.storage.save_catalog(entry);

    const std::string refused =
        "projectionist: router 'tickets': cannot send queries to tickets_v2: tickets_v2 changed since it was "
        "initialized: column 'reopened' is new; deploy it as tickets_v3, or reset tickets_v2 to rebuild it";
    CHECK_THROWS_AS(router.switch_to<tickets<2>>(), pj::state_error);
    CHECK_THROWS_WITH(router.switch_to<tickets<2>>(), Catch::Contains(refused));
    CHECK_THROWS_WITH(router.rollout<tickets<2>>(10), Catch::Contains(refused));
    CHECK_THROWS_WITH(router.rollback(), Catch::Contains(refused));  // back to tickets_v2
    CHECK(f.storage.find_setting(setting_key) == "format=1 primary=tickets_v1 previous=tickets_v2");
    CHECK(router.route("anyone") == "tickets_v1");
    CHECK(router.query("anyone", ticket_query(f.storage, "t-1"))->status == "open");

    // A saved setting that routes to it: the router starts (its process may reset the version),
    // and every query that would go there is refused, shadow runs included.
    f.storage.save_setting(setting_key, "format=1 primary=tickets_v2");
    tickets_router to_changed(f.storage);
    CHECK_THROWS_WITH((void)to_changed.route("anyone"), Catch::Contains(refused));
    CHECK_THROWS_AS(to_changed.query("anyone", ticket_query(f.storage, "t-1")), pj::state_error);
    CHECK(to_changed.in_flight("tickets_v2") == 0);
    f.storage.save_setting(setting_key, "format=1 primary=tickets_v1 candidate=tickets_v2 basis_points=1");
    CHECK(router.refresh());
    CHECK_THROWS_WITH(router.shadow_query("anyone", ticket_query(f.storage, "t-1")), Catch::Contains(refused));

    // Rebuilt with this build's definition (reset): routed to again once the router reloads.
    f.storage.save_setting(setting_key, "format=1 primary=tickets_v2");
    f.v2.refresh();
    f.v2.reset();
    f.v2.catch_up();
    CHECK(to_changed.refresh());
    CHECK(to_changed.route("anyone") == "tickets_v2");
    CHECK(to_changed.query("anyone", ticket_query(f.storage, "t-1"))->status == "open");
}

TEST_CASE("a router refuses only the changes it can see: an event it finds no handler for is the runner's to judge",
          "[router]") {
    using pj::detail::routing::only_events_unseen;
    const std::string recorded =
        "projection t_v1\npartitioning global\nevent s a\nevent s b\ntable t_v1 key id\ncolumn t_v1 id string\n";
    // b's handler takes a runner's own context type: a router sees no handler for it.
    CHECK(only_events_unseen(
        recorded, "projection t_v1\npartitioning global\nevent s a\ntable t_v1 key id\ncolumn t_v1 id string\n"));
    CHECK_FALSE(only_events_unseen(recorded,
                                   "projection t_v1\npartitioning global\nevent s a\nevent s b\nevent s c\ntable "
                                   "t_v1 key id\ncolumn t_v1 id string\n"));
    CHECK_FALSE(only_events_unseen(
        recorded, "projection t_v1\npartitioning global\nevent s a\ntable t_v1 key id\ncolumn t_v1 id int32\n"));
    CHECK_FALSE(only_events_unseen(recorded,
                                   "projection t_v1\npartitioning global\nevent s a\nevent s b\ntable t_v1 key "
                                   "id\ncolumn t_v1 id string\ncolumn t_v1 n int32\n"));
}

TEST_CASE("rollback undoes the last change and is persisted", "[router]") {
    fixture f;
    tickets_router router(f.storage);
    tickets_router observer(f.storage);

    // Nothing to roll back yet.
    CHECK_THROWS_AS(router.rollback(), pj::state_error);
    CHECK_THROWS_WITH(router.rollback(), Catch::Contains("nothing to roll back") && Catch::Contains("tickets_v1"));

    // Cancel a rollout.
    router.rollout<tickets<2>>(30);
    router.rollback();
    CHECK(f.storage.find_setting(setting_key) == "format=1 primary=tickets_v1");
    for (int i = 0; i < 200; ++i) CHECK(router.route(user(i)) == "tickets_v1");

    // Undo a switch.
    router.switch_to<tickets<2>>();
    CHECK(observer.refresh());
    CHECK(observer.route("anyone") == "tickets_v2");
    router.rollback();
    CHECK(f.storage.find_setting(setting_key) == "format=1 primary=tickets_v1");
    CHECK(router.route("anyone") == "tickets_v1");
    CHECK(router.query("anyone", ticket_query(f.storage, "t-2"))->status == "closed");
    CHECK(observer.refresh());
    CHECK(observer.route("anyone") == "tickets_v1");
    CHECK(tickets_router(f.storage).route("anyone") == "tickets_v1");

    // The earlier primary is forgotten: a second rollback does not flip forward again.
    CHECK_THROWS_AS(router.rollback(), pj::state_error);
    CHECK(router.route("anyone") == "tickets_v1");

    // A candidate is cancelled first, then the switch is undone.
    router.switch_to<tickets<2>>();
    router.rollout<tickets<1>>(20);
    CHECK(f.storage.find_setting(setting_key) ==
          "format=1 primary=tickets_v2 candidate=tickets_v1 basis_points=2000 previous=tickets_v1");
    router.rollback();
    CHECK(f.storage.find_setting(setting_key) == "format=1 primary=tickets_v2 previous=tickets_v1");
    router.rollback();
    CHECK(f.storage.find_setting(setting_key) == "format=1 primary=tickets_v1");

    // Switching to the primary only clears the candidate; the rollback target stays.
    router.switch_to<tickets<2>>();
    router.rollout<tickets<1>>(50);
    router.switch_to<tickets<2>>();
    CHECK(f.storage.find_setting(setting_key) == "format=1 primary=tickets_v2 previous=tickets_v1");
}

TEST_CASE("changes start from the persisted state, not from a stale snapshot", "[router]") {
    fixture f;
    tickets_router cli(f.storage);
    tickets_router app(f.storage);
    cli.switch_to<tickets<2>>();
    // The app has not refreshed (it still routes to v1), but its rollback acts on what is saved.
    CHECK(app.route("anyone") == "tickets_v1");
    app.rollback();
    CHECK(f.storage.find_setting(setting_key) == "format=1 primary=tickets_v1");
    CHECK(app.route("anyone") == "tickets_v1");
    // And a change by the app publishes the latest state in the app too.
    cli.rollout<tickets<2>>(40);
    app.rollout<tickets<2>>(50);
    CHECK(app.status().basis_points == 5000);
    CHECK(f.storage.find_setting(setting_key) == "format=1 primary=tickets_v1 candidate=tickets_v2 basis_points=5000");
}

namespace {

/// The settings of a router in a second process that writes between this router's read of the
/// state and its write (once).
struct racing_settings {
    pj::memory_storage& inner;
    std::function<void()> first;

    [[nodiscard]] std::optional<std::string> find_setting(std::string_view key) const {
        return inner.find_setting(key);
    }
    void save_setting(std::string_view key, std::string_view value) { inner.save_setting(key, value); }
    bool replace_setting(std::string_view key, std::optional<std::string_view> expected, std::string_view value) {
        if (first) std::exchange(first, {})();
        return inner.replace_setting(key, expected, value);
    }
};

}  // namespace

TEST_CASE("a change is a compare-and-set: another process's change between the read and the write is kept",
          "[router]") {
    fixture f;
    tickets_router other(f.storage);
    racing_settings settings{f.storage, [&] { other.switch_to<tickets<2>>(); }};
    tickets_router app(settings);
    // The app reads v1 as the primary and would roll v2 out to 20%; the other process switches to
    // v2 before the app writes. The app's change runs again on what was saved, and is refused.
    CHECK_THROWS_WITH(app.rollout<tickets<2>>(20), Catch::Contains("tickets_v2 is the primary already"));
    CHECK(f.storage.find_setting(setting_key) == "format=1 primary=tickets_v2 previous=tickets_v1");
    // A rollout's cancel leaves a switch alone: there is no candidate to cancel.
    CHECK_FALSE(app.cancel_rollout("tickets_v2"));
    CHECK(app.status().primary == "tickets_v2");
    app.rollout<tickets<1>>(10);
    CHECK(app.cancel_rollout("tickets_v1"));
    CHECK_FALSE(app.status().candidate);
    CHECK_THROWS_WITH(app.cancel_rollout("tickets_v9"), Catch::Contains("tickets_v9"));
}

TEST_CASE("three versions: rollout of v3 on top of v2, then back step by step", "[router]") {
    pj::memory_storage storage;
    pj::router<tickets<1>, tickets<2>, tickets<3>> router(storage);
    router.switch_to<tickets<2>>();
    router.rollout<tickets<3>>(5);
    CHECK(storage.find_setting(setting_key) ==
          "format=1 primary=tickets_v2 candidate=tickets_v3 basis_points=500 previous=tickets_v1");
    CHECK(router.query("user-42", version_query) == "tickets_v2");
    router.rollback();
    CHECK_FALSE(router.status().candidate);
    router.rollback();
    CHECK(router.status().primary == "tickets_v1");

    // An older binary that knows only v1 and v2 refuses a state that names v3.
    router.rollout<tickets<3>>(5);
    CHECK_THROWS_WITH(tickets_router(storage), Catch::Contains("candidate 'tickets_v3' is not a version this router "
                                                               "knows") &&
                                                   Catch::Contains("tickets_v1, tickets_v2"));
}

// ---- errors --------------------------------------------------------------------------------------

TEST_CASE("unknown version names and bad shares are clear errors", "[router]") {
    fixture f;
    tickets_router router(f.storage);
    CHECK_THROWS_AS(router.switch_to("tickets_v9"), pj::error);
    CHECK_THROWS_WITH(router.switch_to("tickets_v9"),
                      Catch::Contains("unknown version 'tickets_v9'") && Catch::Contains("tickets_v1, tickets_v2"));
    CHECK_THROWS_WITH(router.switch_to("v2"), Catch::Contains("unknown version 'v2'"));
    CHECK_THROWS_WITH(router.rollout("tickets", 10), Catch::Contains("unknown version 'tickets'"));
    CHECK_THROWS_WITH(router.in_flight("tickets_v3"), Catch::Contains("unknown version 'tickets_v3'"));
    CHECK_THROWS_WITH(router.rollout<tickets<2>>(101), Catch::Contains("0 to 100 percent"));
    CHECK_THROWS_WITH(router.rollout_basis_points<tickets<2>>(10001), Catch::Contains("0 to 10000 basis points"));
    CHECK_THROWS_AS(router.rollout<tickets<1>>(10), pj::state_error);
    CHECK_THROWS_WITH(router.rollout<tickets<1>>(10), Catch::Contains("tickets_v1 is the primary already"));
    try {
        router.switch_to("tickets_v9");
    } catch (const pj::error& e) {
        CHECK(e.context().projection == "tickets");
    }
    // Nothing was changed or saved by the failed calls.
    CHECK_FALSE(f.storage.find_setting(setting_key));
    CHECK(router.route("anyone") == "tickets_v1");
}

TEST_CASE("a corrupt saved state is an error that says what and where", "[router]") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"garbage", "'garbage' is not a key=value pair"},
        {"", "it does not start with format=1"},
        {"primary=tickets_v1", "it does not start with format=1"},
        {"format=2 primary=tickets_v1", "format 2 is not known"},
        {"format=1", "it names no primary"},
        {"format=1 primary=tickets_v9", "primary 'tickets_v9' is not a version this router knows"},
        {"format=1 primary=", "primary '' is not a version this router knows"},
        {"format=1 primary=tickets_v1 candidate=tickets_v2", "the candidate has no basis_points"},
        {"format=1 primary=tickets_v1 candidate=tickets_v2 basis_points=10001", "not a number from 0 to 10000"},
        {"format=1 primary=tickets_v1 candidate=tickets_v2 basis_points=ten", "'ten' is not a number"},
        {"format=1 primary=tickets_v1 candidate=tickets_v2 basis_points=-1", "'-1' is not a number"},
        {"format=1 primary=tickets_v1 candidate=tickets_v2 basis_points=", "'' is not a number"},
        {"format=1 primary=tickets_v1 candidate=tickets_v2 basis_points=5x", "'5x' is not a number"},
        {"format=1 primary=tickets_v1 candidate=tickets_v1 basis_points=5", "the candidate is the primary"},
        {"format=1 primary=tickets_v1 basis_points=5", "basis_points without a candidate"},
        {"format=1 primary=tickets_v1 colour=red", "unknown key 'colour'"},
        {"format=1 primary=tickets_v1 primary=tickets_v2", "the key 'primary' appears twice"},
        {"format=1 primary=tickets_v1 previous=tickets_v1", "the previous primary is the primary"},
        {"format=1 primary=tickets_v1 previous=tickets_v7", "previous 'tickets_v7' is not a version"},
    };
    for (const auto& [value, reason] : cases) {
        INFO("saved value: '" << value << "'");
        pj::memory_storage storage;
        storage.save_setting(setting_key, value);
        CHECK_THROWS_AS(tickets_router(storage), pj::error);
        CHECK_THROWS_WITH(tickets_router(storage), Catch::Contains(reason) &&
                                                       Catch::Contains("'" + setting_key + "'") &&
                                                       Catch::Contains("its value is '" + value + "'") &&
                                                       Catch::Contains("format=1 primary=tickets_v1"));
    }

    // Extra spaces are fine; order after format does not matter.
    pj::memory_storage storage;
    storage.save_setting(setting_key,
                         "  format=1  previous=tickets_v1 basis_points=7 candidate=tickets_v1 "
                         "primary=tickets_v2 ");
    tickets_router router(storage);
    CHECK(router.status().primary == "tickets_v2");
    CHECK(router.status().candidate == "tickets_v1");
    CHECK(router.status().basis_points == 7);
    CHECK(router.status().previous == "tickets_v1");
}

TEST_CASE("refresh of a corrupted state throws and keeps routing as before; saving a valid value repairs it",
          "[router]") {
    fixture f;
    tickets_router router(f.storage);
    router.switch_to<tickets<2>>();
    f.storage.save_setting(setting_key, "format=1 primary=tickets_v5");
    CHECK_THROWS_WITH(router.refresh(), Catch::Contains("primary 'tickets_v5' is not a version"));
    CHECK(router.route("anyone") == "tickets_v2");
    // Changes read the saved state first, so they refuse to overwrite what they cannot read.
    CHECK_THROWS_WITH(router.switch_to<tickets<1>>(), Catch::Contains("primary 'tickets_v5'"));
    CHECK(f.storage.find_setting(setting_key) == "format=1 primary=tickets_v5");
    // The repair the message suggests.
    f.storage.save_setting(setting_key, "format=1 primary=tickets_v1");
    CHECK(router.refresh());
    CHECK(router.route("anyone") == "tickets_v1");
}

// ---- queries in flight -------------------------------------------------------------------------

TEST_CASE("a flip during a query does not move it, and the old version drains", "[router]") {
    fixture f;
    tickets_router router(f.storage);
    std::atomic<bool> query_started{false};
    std::atomic<bool> flipped{false};
    bool drained_while_running = true;
    bool drained_after = false;

    std::thread flipper([&] {
        while (!query_started) std::this_thread::yield();
        router.switch_to<tickets<2>>();
        drained_while_running = router.wait_for_drain("tickets_v1", 5ms);
        flipped = true;
        drained_after = router.wait_for_drain("tickets_v1", 2000ms);
    });

    std::size_t in_flight_inside = 0;
    std::string route_inside;
    auto answer = router.query("user-1", [&]<class P>(std::type_identity<P> tag) {
        auto before = ticket_query(f.storage, "t-2")(tag);
        query_started = true;
        const auto deadline = std::chrono::steady_clock::now() + 2s;
        while (!flipped && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(100us);
        in_flight_inside = router.in_flight<P>();
        route_inside = std::string(router.route("user-1"));
        auto after = ticket_query(f.storage, "t-2")(tag);
        return std::tuple{std::string(pj::name_of<P>), before, after};
    });
    flipper.join();

    const auto& [version, before, after] = answer;
    CHECK(version == "tickets_v1");
    CHECK(route_inside == "tickets_v2");  // the flip was visible while the query ran...
    REQUIRE(before);
    REQUIRE(after);
    CHECK(before->status == "closed");  // ...and the query stayed on v1 from start to end
    CHECK(after->status == "closed");
    CHECK(in_flight_inside == 1);
    CHECK_FALSE(drained_while_running);
    CHECK(drained_after);
    CHECK(router.in_flight<tickets<1>>() == 0);
    CHECK(router.in_flight("tickets_v2") == 0);
    CHECK(router.route("user-1") == "tickets_v2");

    // Waiting for a version that still serves is a mistake.
    CHECK_THROWS_AS(router.wait_for_drain("tickets_v2", 1ms), pj::state_error);
    router.rollout<tickets<1>>(10);
    CHECK_THROWS_WITH(router.wait_for_drain("tickets_v1", 1ms), Catch::Contains("it is the candidate"));
}

TEST_CASE("flips from another thread never move queries in flight", "[router][threads]") {
    fixture f;
    tickets_router router(f.storage);
    std::atomic<bool> stop{false};
    std::atomic<int> flips{0};
    std::atomic<int> wrong_answers{0};
    std::atomic<int> flipped_during_query{0};
    std::array<std::atomic<int>, 2> served{};

    std::thread flipper([&] {
        bool to_two = true;
        while (!stop) {
            if (to_two)
                router.switch_to<tickets<2>>();
            else
                router.switch_to("tickets_v1");
            to_two = !to_two;
            ++flips;
            std::this_thread::sleep_for(50us);
        }
    });

    auto worker = [&](int id) {
        const auto end = std::chrono::steady_clock::now() + 250ms;
        for (int i = 0; std::chrono::steady_clock::now() < end; ++i) {
            const std::string key = user(id * 100000 + i);
            auto [version, first, second] = router.query(key, [&]<class P>(std::type_identity<P> tag) {
                auto a = ticket_query(f.storage, "t-2")(tag);
                const std::string_view started_on = router.route(key);
                std::this_thread::sleep_for(100us);
                auto b = ticket_query(f.storage, "t-2")(tag);
                if (router.route(key) != started_on) ++flipped_during_query;
                return std::tuple{std::string(pj::name_of<P>), a, b};
            });
            // Catch2 assertions are not thread-safe: count here, check in the main thread.
            const bool v2 = version == "tickets_v2";
            const std::string expected_status = v2 ? "open" : "closed";
            const int expected_reopened = v2 ? 1 : 0;
            if (!first || !second || first->status != expected_status || second->status != expected_status ||
                first->reopened != expected_reopened || second->reopened != expected_reopened)
                ++wrong_answers;
            ++served[v2 ? 1 : 0];
        }
    };
    std::thread a(worker, 1);
    std::thread b(worker, 2);
    a.join();
    b.join();
    stop = true;
    flipper.join();

    INFO("flips " << flips << ", v1 " << served[0] << ", v2 " << served[1] << ", flipped during a query "
                  << flipped_during_query);
    CHECK(wrong_answers == 0);
    CHECK(flips > 10);
    CHECK(served[0] > 0);
    CHECK(served[1] > 0);
    CHECK(flipped_during_query > 0);
    CHECK(router.in_flight<tickets<1>>() == 0);
    CHECK(router.in_flight<tickets<2>>() == 0);
}

// ---- shadow reads ------------------------------------------------------------------------------

TEST_CASE("shadow reads without a candidate run on the primary only", "[router][shadow]") {
    fixture f;
    tickets_router router(f.storage);
    int runs = 0;
    auto row = router.shadow_query("user-1", [&]<class P>(std::type_identity<P> tag) {
        ++runs;
        return ticket_query(f.storage, "t-2")(tag);
    });
    CHECK(runs == 1);
    REQUIRE(row);
    CHECK(row->status == "closed");
    const auto stats = router.shadow_stats();
    CHECK(stats.queries == 1);
    CHECK(stats.compared == 0);
    CHECK(stats.discrepancies == 0);
    CHECK(router.discrepancies().empty());
}

TEST_CASE("shadow reads return the primary's answer and record every discrepancy", "[router][shadow]") {
    fixture f;
    tickets_router router(f.storage);
    router.rollout<tickets<2>>(0);  // the candidate serves nobody: shadowing only

    // Equal answers: nothing recorded.
    auto same = router.shadow_query("user-1", ticket_query(f.storage, "t-1"));
    REQUIRE(same);
    CHECK(same->status == "open");
    CHECK(router.shadow_stats().compared == 1);
    CHECK(router.shadow_stats().discrepancies == 0);

    // Different answers: the primary's is returned, both are recorded.
    auto differing = router.shadow_query("user-1", ticket_query(f.storage, "t-2"));
    REQUIRE(differing);
    CHECK(differing->status == "closed");
    auto stats = router.shadow_stats();
    CHECK(stats.queries == 2);
    CHECK(stats.compared == 2);
    CHECK(stats.discrepancies == 1);
    CHECK(stats.errors == 0);
    auto list = router.discrepancies();
    REQUIRE(list.size() == 1);
    CHECK(list[0].routing_key == "user-1");
    CHECK(list[0].primary == "tickets_v1");
    CHECK(list[0].candidate == "tickets_v2");
    CHECK(list[0].primary_value == R"({ticket_id: "t-2", type: "bug", status: "closed", reopened: 0})");
    CHECK(list[0].candidate_value == R"({ticket_id: "t-2", type: "bug", status: "open", reopened: 1})");
    CHECK(list[0].error.empty());

    // A custom comparison: only the status matters.
    const auto same_status = [](const std::optional<ticket_row>& a, const std::optional<ticket_row>& b) {
        return a.has_value() == b.has_value() && (!a || a->status == b->status);
    };
    router.shadow_query("user-2", ticket_query(f.storage, "t-3"), same_status);
    CHECK(router.shadow_stats().discrepancies == 1);
    router.shadow_query("user-2", ticket_query(f.storage, "t-2"), same_status);
    CHECK(router.shadow_stats().discrepancies == 2);

    // A missing row on both sides is equal; formatted as (none) when it differs.
    router.shadow_query("user-3", ticket_query(f.storage, "t-404"));
    CHECK(router.shadow_stats().discrepancies == 2);

    router.clear_discrepancies();
    CHECK(router.discrepancies().empty());
    CHECK(router.shadow_stats().queries == 0);
    CHECK(router.shadow_stats().discrepancies == 0);
    // The totals, which a running rollout counts from, and the discrepancies' numbers go on.
    CHECK(router.shadow_totals().discrepancies == 2);
    router.shadow_query("user-2", ticket_query(f.storage, "t-2"), same_status);
    CHECK(router.shadow_stats().discrepancies == 1);
    CHECK(router.shadow_totals().discrepancies == 3);
    REQUIRE(router.discrepancies().size() == 1);
    CHECK(router.discrepancies().back().sequence == 3);
}

TEST_CASE("an exception in the candidate never reaches the caller", "[router][shadow]") {
    fixture f;
    tickets_router router(f.storage);
    router.rollout<tickets<2>>(0);
    const auto v2_throws = [&]<class P>(std::type_identity<P> tag) -> std::optional<ticket_row> {
        if constexpr (P::version == 2) throw std::runtime_error("v2 is broken");
        return ticket_query(f.storage, "t-1")(tag);
    };
    auto row = router.shadow_query("user-7", v2_throws);
    REQUIRE(row);
    CHECK(row->ticket_id == "t-1");
    auto stats = router.shadow_stats();
    CHECK(stats.compared == 1);
    CHECK(stats.discrepancies == 1);
    CHECK(stats.errors == 1);
    auto list = router.discrepancies();
    REQUIRE(list.size() == 1);
    CHECK(list[0].routing_key == "user-7");
    CHECK(list[0].error == "tickets_v2 threw: v2 is broken");
    CHECK(list[0].primary_value == R"({ticket_id: "t-1", type: "bug", status: "open", reopened: 0})");
    CHECK(list[0].candidate_value.empty());

    // Something that is not a std::exception.
    router.shadow_query("user-8", [&]<class P>(std::type_identity<P>) {
        if constexpr (P::version == 2) throw 42;
        return 1;
    });
    CHECK(router.discrepancies().back().error == "tickets_v2 threw: an exception that is not a std::exception");

    // A throwing comparison is recorded too.
    router.shadow_query("user-9", version_query,
                        [](const std::string&, const std::string&) -> bool { throw std::logic_error("bad compare"); });
    CHECK(router.discrepancies().back().error == "the comparison threw: bad compare");
    CHECK(router.discrepancies().back().primary_value == "\"tickets_v1\"");
    CHECK(router.discrepancies().back().candidate_value == "\"tickets_v2\"");
    CHECK(router.shadow_stats().errors == 3);

    // An exception in the serving version is the caller's, as with query(); the shadow is not run.
    int shadow_runs = 0;
    CHECK_THROWS_WITH(router.shadow_query("user-10",
                                          [&]<class P>(std::type_identity<P>) -> int {
                                              if constexpr (P::version == 1) throw std::runtime_error("v1 down");
                                              ++shadow_runs;
                                              return 2;
                                          }),
                      "v1 down");
    CHECK(shadow_runs == 0);
    CHECK(router.in_flight<tickets<1>>() == 0);
    CHECK(router.in_flight<tickets<2>>() == 0);
}

TEST_CASE("a read that differs only until the other version applies the event is settled, not a discrepancy",
          "[router][shadow]") {
    pj::memory_storage storage;
    tickets_router router(storage,
                          pj::router_options{.shadow_rereads = 2, .shadow_reread_delay = std::chrono::milliseconds(1)});
    router.rollout<tickets<2>>(0);

    // v2 lags: its first `stale` reads miss the change v1 already shows.
    int v1_reads = 0, v2_reads = 0, stale = 2;
    const auto lagging = [&]<class P>(std::type_identity<P>) {
        if constexpr (P::version == 1) {
            ++v1_reads;
            return std::string("closed");
        } else {
            return ++v2_reads <= stale ? std::string("open") : std::string("closed");
        }
    };
    CHECK(router.shadow_query("user-1", lagging) == "closed");
    CHECK(v1_reads == 3);  // the query, then two re-reads; the second agrees
    CHECK(v2_reads == 3);
    auto stats = router.shadow_stats();
    CHECK(stats.compared == 1);
    CHECK(stats.discrepancies == 0);
    CHECK(stats.settled == 1);
    CHECK(router.discrepancies().empty());

    // One that never catches up is a discrepancy, recorded with the answers of the last re-read.
    v1_reads = v2_reads = 0;
    stale = 1000;
    router.shadow_query("user-2", lagging);
    CHECK(v2_reads == 3);
    stats = router.shadow_stats();
    CHECK(stats.discrepancies == 1);
    CHECK(stats.settled == 1);
    REQUIRE(router.discrepancies().size() == 1);
    CHECK(router.discrepancies()[0].primary_value == "\"closed\"");
    CHECK(router.discrepancies()[0].candidate_value == "\"open\"");

    // A re-read that throws is recorded as a first read that throws would be.
    v2_reads = 0;
    router.shadow_query("user-3", [&]<class P>(std::type_identity<P>) {
        if constexpr (P::version == 2)
            if (++v2_reads > 1) throw std::runtime_error("v2 gone");
        return int(P::version);
    });
    CHECK(router.discrepancies().back().error == "tickets_v2 threw: v2 gone");
    CHECK(router.discrepancies().back().primary_value == "1");
    CHECK(router.shadow_stats().errors == 1);

    // Without re-reads, the first difference counts.
    tickets_router eager(storage, pj::router_options{.shadow_rereads = 0});
    v2_reads = 0;
    stale = 1;
    eager.shadow_query("user-1", lagging);
    CHECK(v2_reads == 1);
    CHECK(eager.shadow_stats().discrepancies == 1);
    CHECK(eager.shadow_stats().settled == 0);
}

TEST_CASE("a key rolled out to the candidate keeps getting the candidate's answer under shadow reads",
          "[router][shadow]") {
    fixture f;
    tickets_router router(f.storage);
    router.rollout<tickets<2>>(0);
    router.prefer_candidate_when([](std::string_view key) { return key.starts_with("internal-"); });
    auto row = router.shadow_query("internal-bob", ticket_query(f.storage, "t-2"));
    REQUIRE(row);
    CHECK(row->status == "open");  // v2 serves internal users
    auto list = router.discrepancies();
    REQUIRE(list.size() == 1);
    CHECK(list[0].primary == "tickets_v1");  // still recorded as primary vs candidate
    CHECK(list[0].primary_value.find("\"closed\"") != std::string::npos);
    CHECK(list[0].candidate_value.find("\"open\"") != std::string::npos);

    // A key served by the candidate whose shadow (the primary) throws.
    router.shadow_query("internal-bob", [&]<class P>(std::type_identity<P>) {
        if constexpr (P::version == 1) throw std::runtime_error("v1 gone");
        return 0;
    });
    CHECK(router.discrepancies().back().error == "tickets_v1 threw: v1 gone");
    CHECK(router.discrepancies().back().primary_value.empty());
    CHECK(router.discrepancies().back().candidate_value == "0");
}

TEST_CASE("the discrepancy list keeps the most recent ones; values are formatted when possible", "[router][shadow]") {
    pj::memory_storage storage;
    tickets_router router(storage, pj::router_options{.max_discrepancies = 3});
    router.rollout<tickets<2>>(0);
    for (int i = 0; i < 5; ++i)
        router.shadow_query(user(i), [&]<class P>(std::type_identity<P>) {
            return std::vector<int>{i, int(P::version)};
        });
    CHECK(router.shadow_stats().discrepancies == 5);
    auto list = router.discrepancies();
    REQUIRE(list.size() == 3);
    CHECK(list[0].routing_key == "user-2");
    CHECK(list[2].routing_key == "user-4");
    CHECK(list[2].primary_value == "[4, 1]");
    CHECK(list[2].candidate_value == "[4, 2]");

    struct opaque {
        int v;
        bool operator==(const opaque&) const = default;
    };
    router.shadow_query("user-9", [&]<class P>(std::type_identity<P>) { return opaque{int(P::version)}; });
    CHECK(router.discrepancies().back().primary_value == "(unformattable)");

    router.shadow_query("user-9", [&]<class P>(std::type_identity<P>) {
        return P::version == 1 ? std::optional<std::pair<std::string, double>>{}
                               : std::pair<std::string, double>{"x", 1.5};
    });
    CHECK(router.discrepancies().back().primary_value == "(none)");
    CHECK(router.discrepancies().back().candidate_value == "(\"x\", 1.5)");

    std::vector<int> big(100, 7);
    router.shadow_query("user-9",
                        [&]<class P>(std::type_identity<P>) { return P::version == 1 ? big : std::vector<int>{}; });
    CHECK(router.discrepancies().back().primary_value ==
          "[7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, ...] (100 elements)");
    CHECK(router.discrepancies().back().candidate_value == "[]");

    tickets_router silent(storage, pj::router_options{.max_discrepancies = 0});
    silent.shadow_query("user-1", version_query);
    CHECK(silent.shadow_stats().discrepancies == 1);
    CHECK(silent.discrepancies().empty());
}

TEST_CASE("a deleted version is forgotten: no rollback to dropped tables", "[router]") {
    projectionist::memory_storage storage;
    projectionist::router<tickets_domain::tickets<1>, tickets_domain::tickets<2>> router(storage);
    router.switch_to<tickets_domain::tickets<2>>();
    CHECK(router.status().previous == "tickets_v1");
    CHECK_THROWS_AS(router.remove("tickets_v2"), projectionist::state_error);  // it serves
    router.remove("tickets_v1");
    CHECK_FALSE(router.status().previous.has_value());
    CHECK_THROWS_AS(router.rollback(), projectionist::state_error);  // nothing left to roll back to
    CHECK(router.route("anyone") == "tickets_v2");
}

TEST_CASE("router state: the persisted text round-trips and a corrupt one names what is wrong", "[router]") {
    namespace routing = projectionist::detail::routing;
    constexpr std::array<std::string_view, 3> names{"tickets_v1", "tickets_v2", "tickets_v3"};
    const routing::routing_names where{"tickets", "projectionist.router.tickets", names};

    const routing::routing_state s{.primary = 1, .candidate = 2, .basis_points = 1250, .previous = 0};
    const std::string text = routing::format_routing_state(s, names);
    CHECK(text == "format=1 primary=tickets_v2 candidate=tickets_v3 basis_points=1250 previous=tickets_v1");
    CHECK(routing::parse_routing_state(text, where) == s);
    CHECK(routing::format_routing_state({}, names) == "format=1 primary=tickets_v1");
    CHECK(routing::parse_routing_state("  format=1   primary=tickets_v3 ", where) ==
          routing::routing_state{.primary = 2});

    CHECK_THROWS_WITH(routing::parse_routing_state("format=1 primary=tickets_v9", where),
                      Catch::Contains("primary 'tickets_v9' is not a version this router knows") &&
                          Catch::Contains("tickets_v1, tickets_v2, tickets_v3") &&
                          Catch::Contains("'projectionist.router.tickets'"));
    CHECK_THROWS_WITH(routing::parse_routing_state("primary=tickets_v1 format=1", where),
                      Catch::Contains("it does not start with format=1"));
    CHECK_THROWS_WITH(routing::parse_routing_state("format=1 primary=tickets_v1 candidate=tickets_v2", where),
                      Catch::Contains("the candidate has no basis_points"));
    CHECK_THROWS_WITH(
        routing::parse_routing_state("format=1 primary=tickets_v1 candidate=tickets_v2 basis_points=10001", where),
        Catch::Contains("basis_points '10001' is not a number from 0 to 10000"));
}

TEST_CASE("a counted discrepancy is already kept: counters, then recent, never miss it", "[router][shadow]") {
    // A rollout publishes the step's count and its first discrepant keys, read in that order; a
    // discrepancy counted before it was kept would be published without its key, for good.
    pj::detail::routing::shadow_log log(100'000);
    const std::vector<std::string> long_answer(64, std::string(40, 'x'));  // slow to format
    std::atomic<bool> done{false};
    std::thread writer([&] {
        for (int i = 0; i < 2000; ++i)
            log.record("key-" + std::to_string(i), "tickets_v1", "tickets_v2", &long_answer, &long_answer, {});
        done = true;
    });
    std::size_t missing = 0;
    std::size_t looks = 0;
    while (!done) {
        const std::uint64_t counted = log.counters().discrepancies;
        if (log.recent().size() < counted) ++missing;
        ++looks;
    }
    writer.join();
    INFO(looks << " looks");
    CHECK(missing == 0);
    CHECK(log.counters().discrepancies == 2000);
    CHECK(log.recent().size() == 2000);
}

}  // namespace router_test
