// The storage session's contract, on the backend the executable was built for: a batch commits
// or rolls back as a whole (rows, tables, checkpoint, positions, catalog, dead letters); the
// checkpoint's compare-and-set refuses a stale session's batch; per-aggregate positions (only
// those a batch changed are written), the catalog, settings and dead letters round-trip;
// has_table and drop_table. Memory runs it too: its session writes the checkpoint, catalog and
// dead letters in place (no has_persisted_checkpoint), so the cases about a batch's transaction and
// about another session's view are skipped there, naming the trait.

#include <backend_suite.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

using namespace backend_test;
using Catch::Contains;

namespace {

using ticket_table = pj::table<ticket_row, &ticket_row::ticket_id>;

/// A session whose batch commits or rolls back the checkpoint, the catalog, the dead letters and
/// the tables as one transaction, and another session that sees only what is committed.
constexpr bool transactional_sessions = pj::has_persisted_checkpoint<backend::storage_type>;

/// backend::sees_table on the session's own connection; compiled only for a backend with one.
template <class Backend = backend, class Session>
bool sees_table_in_session(Session& s, std::string_view name) {
    if constexpr (requires { s.connection(); })
        return Backend::sees_table(s.connection(), name);
    else
        return true;
}
constexpr const char* transactional_sessions_needs =
    "a session that commits or rolls back checkpoint, catalog, dead letters and tables as one transaction";

void check_same(const std::optional<pj::catalog_entry>& got, const pj::catalog_entry& want) {
    REQUIRE(got.has_value());
    CHECK(got->name == want.name);
    CHECK(got->base_name == want.base_name);
    CHECK(got->version == want.version);
    CHECK(got->state == want.state);
    CHECK(got->live == want.live);
    CHECK(got->partitioning == want.partitioning);
    CHECK(got->tables == want.tables);
    CHECK(got->generation == want.generation);
    CHECK(got->fingerprint == want.fingerprint);
    CHECK(got->definition == want.definition);
    CHECK(got->deleted_at == want.deleted_at);
    CHECK(got->deleted_by == want.deleted_by);
    CHECK(got->retain_until == want.retain_until);
}

}  // namespace

TEST_CASE("a session's rollback undoes the batch; commit makes it permanent", "[backend][session]") {
    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>, transactional_sessions_needs);
    backend fx;
    auto storage = fx.storage();
    auto s = storage.open("x_v1");
    CHECK(s.projection() == "x_v1");
    CHECK(s.open_table<ticket_table>("x_v1") == nullptr);

    s.begin();
    auto& t = s.create_table<ticket_table>("x_v1");
    t.insert({"a", "bug", "open", 0});
    t.insert({"b", "bug", "open", 0});
    s.commit(s.load_checkpoint(), {});
    CHECK(storage.has_table("x_v1"));
    auto view = storage.find_table<ticket_table>("x_v1");  // another connection
    REQUIRE(view.has_value());

    s.begin();
    t.insert({"c", "bug", "open", 0});
    CHECK(t.update("a", [](ticket_row& r) { r.status = "closed"; }));
    CHECK(t.erase("b"));
    // The session sees its own writes; others see what is committed.
    CHECK(t.size() == 2);
    CHECK(t.find("a")->status == "closed");
    CHECK_FALSE(t.contains("b"));
    CHECK(view->size() == 2);
    CHECK(view->find("a")->status == "open");
    CHECK_FALSE(view->contains("c"));
    CHECK(s.rollback());

    CHECK(view->size() == 2);
    CHECK(view->find("a") == ticket_row{"a", "bug", "open", 0});
    CHECK(view->contains("b"));
    CHECK_FALSE(view->contains("c"));
    CHECK(t.size() == 2);  // the session's handle sees the rollback too
    CHECK(t.find("a")->status == "open");

    // Table creation and clear are undone too.
    s.begin();
    s.create_table<ticket_table>("x_v1_extra");
    CHECK(sees_table_in_session(s, "x_v1_extra"));  // DDL in the batch's transaction
    t.clear();
    CHECK(t.empty());
    s.rollback();
    CHECK_FALSE(storage.has_table("x_v1_extra"));
    CHECK(view->size() == 2);
    CHECK(s.rollback());  // no batch open: nothing to do

    // The handles keep working after a rollback.
    s.begin();
    t.insert({"c", "task", "open", 0});
    auto& cp = s.load_checkpoint();
    cp.position = 7;
    s.commit(cp, {});
    CHECK(view->find("c") == ticket_row{"c", "task", "open", 0});
    CHECK(fx.scalar("SELECT position FROM projectionist_checkpoints WHERE projection = 'x_v1'") == 7);

    // A session destroyed in the middle of a batch rolls it back.
    {
        auto other = storage.open("x_v1");
        other.begin();
        auto* h = other.open_table<ticket_table>("x_v1");
        REQUIRE(h != nullptr);
        h->insert({"d", "bug", "open", 0});
        h->clear();
        auto& ocp = other.load_checkpoint();
        ocp.position = 99;
    }
    CHECK(view->size() == 3);
    CHECK_FALSE(view->contains("d"));
    CHECK(storage.open("x_v1").load_checkpoint().position == 7);
    CHECK(fx.integrity_ok());
}

TEST_CASE("the committed checkpoint is what a new session loads", "[backend][session]") {
    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>, transactional_sessions_needs);
    backend fx;
    auto storage = fx.storage();
    {
        auto s = storage.open("x_v1");
        auto& cp = s.load_checkpoint();
        CHECK(cp.position == 0);
        CHECK(cp.aggregate_versions.empty());
        CHECK(cp.aggregates_tracked == 0);
        s.begin();
        cp.position = 10;
        s.commit(cp, {});
        s.begin();
        cp.position = 20;
        s.rollback();  // never committed
        CHECK(s.reload_checkpoint().position == 10);
    }
    auto a = storage.open("x_v1");
    auto b = storage.open("x_v1");
    CHECK(a.load_checkpoint().position == 10);
    CHECK(b.load_checkpoint().position == 10);
    CHECK(storage.open("y_v1").load_checkpoint().position == 0);  // each projection has its own

    auto& cp = a.load_checkpoint();
    a.begin();
    cp.position = 15;
    a.commit(cp, {});
    CHECK(b.load_checkpoint().position == 10);    // cached until asked to look again
    CHECK(b.reload_checkpoint().position == 15);  // another session's commit
    CHECK(fx.scalar("SELECT position FROM projectionist_checkpoints WHERE projection = 'x_v1'") == 15);
    CHECK(fx.scalar("SELECT count(*) FROM projectionist_checkpoints") == 1);
}

TEST_CASE("a checkpoint is loaded once per session; a batch writes the positions of the aggregates it changed only",
          "[backend][session]") {
    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>, transactional_sessions_needs);
    backend fx;
    auto storage = fx.storage();
    {
        auto s = storage.open("x_v1");
        const pj::checkpoint& fresh = s.load_checkpoint();
        CHECK(fresh.position == 0);
        CHECK(fresh.aggregate_versions.empty());
        CHECK(fresh.aggregates_tracked == 0);

        pj::checkpoint cp;
        cp.position = 7;
        cp.aggregate_versions = {3, 0, 5};
        cp.aggregates_tracked = 2;
        const std::vector<std::uint64_t> changed{0, 2, 0, 2, 2};  // duplicates, as a batch may list them
        s.begin();
        s.commit(cp, changed);
    }
    {
        auto s = storage.open("x_v1");
        const pj::checkpoint& cp = s.load_checkpoint();
        CHECK(cp.position == 7);
        CHECK(cp.version_of(0) == 3);
        CHECK(cp.version_of(1) == 0);
        CHECK(cp.version_of(2) == 5);
        CHECK(cp.version_of(99) == 0);
        CHECK(cp.aggregates_tracked == 2);
        CHECK(&s.load_checkpoint() == &cp);  // loaded once, then kept

        // Only the aggregates a batch changed are written.
        pj::checkpoint next = cp;
        next.position = 12;
        next.aggregate_versions = {4, 0, 999, 0, 1};
        next.aggregates_tracked = 3;
        const std::vector<std::uint64_t> changed{0, 4};
        s.begin();
        s.commit(next, changed);
    }
    {
        auto s = storage.open("x_v1");
        const pj::checkpoint& cp = s.load_checkpoint();
        CHECK(cp.position == 12);
        CHECK(cp.version_of(0) == 4);
        CHECK(cp.version_of(2) == 5);  // not changed by the batch: not written
        CHECK(cp.version_of(4) == 1);
        CHECK(cp.aggregates_tracked == 3);
    }
    const std::string positions_of_x =
        "SELECT count(*) FROM " + std::string(backend::aggregate_positions) + " WHERE projection = 'x_v1'";
    CHECK(fx.scalar(positions_of_x) == 3);
    {
        // A rolled-back reset leaves the stored checkpoint alone.
        auto s = storage.open("x_v1");
        s.begin();
        s.reset_checkpoint();
        s.rollback();
        CHECK(s.load_checkpoint().position == 12);
        auto t = storage.open("x_v1");
        CHECK(t.load_checkpoint().position == 12);
    }
    {
        auto s = storage.open("x_v1");
        CHECK(s.load_checkpoint().position == 12);
        s.begin();
        s.reset_checkpoint();
        CHECK(s.load_checkpoint().position == 0);
        CHECK(s.load_checkpoint().aggregate_versions.empty());
        s.commit(s.load_checkpoint(), {});
    }
    auto s = storage.open("x_v1");
    CHECK(s.load_checkpoint().position == 0);
    CHECK(s.load_checkpoint().aggregates_tracked == 0);
    CHECK(s.load_checkpoint().aggregate_versions.empty());
    CHECK(fx.scalar(positions_of_x) == 0);
    CHECK(fx.integrity_ok());
}

TEST_CASE("the checkpoint's compare-and-set refuses a stale session's batch, which writes nothing",
          "[backend][session]") {
    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>, transactional_sessions_needs);
    backend fx;
    auto storage = fx.storage();
    auto a = storage.open("x_v1");
    auto b = storage.open("x_v1");
    auto& ta = a.create_table<ticket_table>("x_v1");
    auto& tb = *b.open_table<ticket_table>("x_v1");
    auto& cpa = a.load_checkpoint();
    auto& cpb = b.load_checkpoint();
    auto view = storage.find_table<ticket_table>("x_v1");
    REQUIRE(view.has_value());

    // b commits the first checkpoint; a, which saw none, is stale.
    b.begin();
    tb.insert({"from-b", "bug", "open", 0});
    cpb.position = 5;
    cpb.aggregate_versions = {2};
    cpb.aggregates_tracked = 1;
    b.commit(cpb, std::vector<std::uint64_t>{0});

    a.begin();
    ta.insert({"from-a", "bug", "open", 0});
    cpa.position = 4;
    cpa.aggregate_versions = {9};
    cpa.aggregates_tracked = 1;
    try {
        a.commit(cpa, std::vector<std::uint64_t>{0});
        FAIL("a stale batch committed");
    } catch (const pj::checkpoint_conflict& e) {
        CHECK_THAT(e.what(), Contains("'x_v1'") && Contains("moved by another runner") &&
                                 Contains("expected position 0") && Contains("not written"));
    }
    a.rollback();
    CHECK_FALSE(view->contains("from-a"));
    CHECK(view->contains("from-b"));
    CHECK(fx.scalar("SELECT position FROM projectionist_checkpoints WHERE projection = 'x_v1'") == 5);
    CHECK(storage.open("x_v1").load_checkpoint().version_of(0) == 2);

    // Once it has looked again, a goes on; now b is stale.
    CHECK(a.reload_checkpoint().position == 5);
    a.begin();
    ta.insert({"from-a", "bug", "open", 0});
    cpa.position = 6;
    a.commit(cpa, {});
    b.begin();
    tb.insert({"late-b", "bug", "open", 0});
    cpb.position = 8;
    CHECK_THROWS_WITH(b.commit(cpb, {}), Contains("expected position 5"));
    b.rollback();
    CHECK(view->contains("from-a"));
    CHECK_FALSE(view->contains("late-b"));
    CHECK(fx.scalar("SELECT position FROM projectionist_checkpoints WHERE projection = 'x_v1'") == 6);
    CHECK(b.reload_checkpoint().position == 6);
}

TEST_CASE("per-aggregate positions round-trip, duplicates in the changed lists included", "[backend][session]") {
    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>, transactional_sessions_needs);
    backend fx;
    auto storage = fx.storage();
    {
        auto s = storage.open("x_v1");
        auto& cp = s.load_checkpoint();
        cp.position = 11;
        cp.aggregate_versions = {3, 0, 7, 1};
        cp.aggregates_tracked = 3;
        s.begin();
        s.commit(cp, std::vector<std::uint64_t>{2, 0, 2, 3, 0});
        // The next batch moves aggregate 2 on and starts aggregate 5 (listed twice each).
        cp.position = 15;
        cp.aggregate_versions.resize(6, 0);
        cp.aggregate_versions[2] = 9;
        cp.aggregate_versions[5] = 2;
        cp.aggregates_tracked = 4;
        s.begin();
        s.commit(cp, std::vector<std::uint64_t>{5, 2, 5, 2});
        // A batch that rolls back moves nothing.
        s.begin();
        cp.aggregate_versions[0] = 100;
        s.rollback();
    }
    auto fresh = storage.open("x_v1");
    const auto& loaded = fresh.load_checkpoint();
    CHECK(loaded.position == 15);
    CHECK(loaded.version_of(0) == 3);
    CHECK(loaded.version_of(1) == 0);
    CHECK(loaded.version_of(2) == 9);
    CHECK(loaded.version_of(3) == 1);
    CHECK(loaded.version_of(4) == 0);
    CHECK(loaded.version_of(5) == 2);
    CHECK(loaded.version_of(6) == 0);
    CHECK(loaded.aggregates_tracked == 4);
    CHECK(storage.open("y_v1").load_checkpoint().aggregates_tracked == 0);

    // A far aggregate number, and a reset that forgets every position.
    auto& cp = fresh.load_checkpoint();
    cp.aggregate_versions.resize(100'001, 0);
    cp.aggregate_versions[100'000] = 1;
    cp.aggregates_tracked = 5;
    cp.position = 16;
    fresh.begin();
    fresh.commit(cp, std::vector<std::uint64_t>{100'000});
    CHECK(storage.open("x_v1").load_checkpoint().version_of(100'000) == 1);
    CHECK(storage.open("x_v1").load_checkpoint().aggregates_tracked == 5);
    fresh.begin();
    fresh.reset_checkpoint();
    fresh.commit(fresh.load_checkpoint(), {});
    auto later = storage.open("x_v1");
    const auto& after_reset = later.load_checkpoint();
    CHECK(after_reset.position == 0);
    CHECK(after_reset.aggregates_tracked == 0);
    CHECK(after_reset.version_of(2) == 0);
}

TEST_CASE("the catalog round-trips through sessions and the storage", "[backend][session][catalog]") {
    backend fx;
    auto storage = fx.storage();
    auto s = storage.open("tickets_v2");
    CHECK_FALSE(s.find_catalog().has_value());
    CHECK(storage.catalog().empty());

    pj::catalog_entry e;
    e.name = "tickets_v2";
    e.base_name = "tickets";
    e.version = 2;
    e.state = pj::projection_state::backfilling;
    e.live = true;
    e.partitioning = "per_aggregate";
    e.tables = {"tickets_v2", "tickets_v2_odd \"name\"", "tickets_v2 ünï"};
    e.generation = (std::uint64_t{1} << 40) + 7;
    s.save_catalog(e);
    check_same(s.find_catalog(), e);
    check_same(storage.find_catalog("tickets_v2"), e);
    // The definition, the tombstone and the retention round-trip, quotes and newlines included.
    e.fingerprint = "0123456789abcdef";
    e.definition = "projection tickets_v2\ncolumn 'it''s' \"std::string\"";
    e.deleted_at = "2026-12-04T16:20:05Z";
    e.deleted_by = "delete";
    e.retain_until = "2027-01-31";
    s.save_catalog(e);
    check_same(storage.find_catalog("tickets_v2"), e);

    // Every state and both live flags; no tables at all.
    for (auto state : {pj::projection_state::declared, pj::projection_state::initialized,
                       pj::projection_state::backfilling, pj::projection_state::caught_up,
                       pj::projection_state::serving, pj::projection_state::retired, pj::projection_state::deleted}) {
        INFO(pj::to_string(state));
        e.state = state;
        e.live = !e.live;
        s.save_catalog(e);
        check_same(storage.find_catalog("tickets_v2"), e);
    }
    e.tables.clear();
    s.save_catalog(e);
    check_same(storage.find_catalog("tickets_v2"), e);

    // Other versions' rows; catalog() lists them by name.
    auto v10 = storage.open("tickets_v10");
    pj::catalog_entry f = e;
    f.name = "tickets_v10";
    f.version = 10;
    f.tables = {"tickets_v10"};
    v10.save_catalog(f);
    auto alpha = storage.open("alpha_v1");
    pj::catalog_entry g = f;
    g.name = "alpha_v1";
    g.base_name = "alpha";
    g.version = 1;
    g.partitioning = "global";
    alpha.save_catalog(g);
    check_same(storage.find_catalog("alpha_v1"), g);
    std::vector<std::string> names;
    for (const auto& entry : storage.catalog()) names.push_back(entry.name);
    CHECK(names == std::vector<std::string>{"alpha_v1", "tickets_v10", "tickets_v2"});

    if (transactional_sessions) {
        // In a batch: rolled back with it.
        s.begin();
        pj::catalog_entry changed = e;
        changed.state = pj::projection_state::serving;
        s.save_catalog(changed);
        check_same(s.find_catalog(), changed);
        s.rollback();
        check_same(storage.find_catalog("tickets_v2"), e);

        // Saved in a batch that commits: kept.
        s.begin();
        s.save_catalog(changed);
        s.commit(s.load_checkpoint(), {});
        check_same(storage.find_catalog("tickets_v2"), changed);
        s.save_catalog(e);  // outside a batch: at once
        check_same(storage.find_catalog("tickets_v2"), e);

        // A rolled-back erase keeps the row.
        v10.begin();
        v10.erase_catalog();
        CHECK_FALSE(v10.find_catalog().has_value());
        v10.rollback();
        check_same(storage.find_catalog("tickets_v10"), f);
    } else {
        WARN("batch rollback of the catalog skipped on " << backend::name << ": needs " << transactional_sessions_needs
                                                         << " (pj::has_persisted_checkpoint)");
    }

    // erase_catalog removes the session's own row only.
    v10.erase_catalog();
    CHECK_FALSE(storage.find_catalog("tickets_v10").has_value());
    check_same(storage.find_catalog("tickets_v2"), e);
    CHECK(storage.catalog().size() == 2);
    if (!backend::speaks_sql) return;
    CHECK(fx.scalar("SELECT count(*) FROM projectionist_catalog") == 2);
    CHECK(fx.scalar("SELECT count(*) FROM projectionist_catalog WHERE live") == (e.live ? 1 : 0) + (g.live ? 1 : 0));

    // A row this build cannot read is an error naming what is wrong, not a guess.
    fx.exec("UPDATE projectionist_catalog SET state = 'bogus' WHERE name = 'alpha_v1'");
    CHECK_THROWS_AS(storage.find_catalog("alpha_v1"), pj::error);
    CHECK_THROWS_WITH(storage.find_catalog("alpha_v1"), Contains("alpha_v1") && Contains("'bogus'"));
    check_same(storage.find_catalog("tickets_v2"), e);
    CHECK(fx.integrity_ok());
}

TEST_CASE("has_table and drop_table, in and out of a batch", "[backend][session]") {
    backend fx;
    auto storage = fx.storage();
    auto s = storage.open("x_v1");
    CHECK_FALSE(storage.has_table("x_v1"));
    s.create_table<ticket_table>("x_v1").insert({"a", "bug", "open", 0});
    s.create_table<ticket_table>("x_v1_other");
    CHECK(storage.has_table("x_v1"));
    CHECK(storage.has_table("x_v1_other"));
    CHECK_FALSE(fx.storage(db::secondary).has_table("x_v1"));  // tables are per database
    CHECK(s.open_table<ticket_table>("x_v1") != nullptr);
    CHECK(s.open_table<ticket_table>("x_v1")->size() == 1);

    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>, transactional_sessions_needs);
    s.begin();
    CHECK(s.drop_table("x_v1"));
    s.rollback();
    CHECK(storage.has_table("x_v1"));  // a rolled-back drop keeps the table and its rows
    CHECK(storage.find_table<ticket_table>("x_v1")->size() == 1);

    // Writes to a table dropped later in the same batch do not stop it from committing.
    auto* h = s.open_table<ticket_table>("x_v1");
    REQUIRE(h != nullptr);
    s.begin();
    h->insert({"b", "bug", "open", 0});
    CHECK(s.drop_table("x_v1"));
    s.commit(pj::checkpoint{}, {});
    CHECK_FALSE(s.drop_table("x_v1"));
    CHECK_FALSE(storage.has_table("x_v1"));
    CHECK(storage.has_table("x_v1_other"));  // only the named table
    CHECK(s.open_table<ticket_table>("x_v1") == nullptr);
    CHECK_FALSE(s.drop_table("never_was"));
    CHECK(fx.integrity_ok());
}

TEST_CASE("settings persist in the database, shared by every connection", "[backend][session][settings]") {
    backend fx;
    auto storage = fx.storage();
    CHECK_FALSE(storage.find_setting("router.tickets").has_value());
    storage.save_setting("router.tickets", "v1");
    CHECK(storage.find_setting("router.tickets") == "v1");
    const std::string odd = "it's \"quoted\"\nsecond line, ünïcødé; DROP TABLE x; --";
    storage.save_setting("router.tickets", odd);
    CHECK(storage.find_setting("router.tickets") == odd);

    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>,
                        "a second storage object over one database");
    auto other = fx.storage();
    CHECK(other.find_setting("router.tickets") == odd);
    other.save_setting("", "");
    CHECK(storage.find_setting("") == std::string());
    CHECK(fx.scalar("SELECT count(*) FROM projectionist_settings WHERE key = 'router.tickets'") == 1);
    CHECK_FALSE(fx.storage(db::secondary).find_setting("router.tickets").has_value());  // another database
    CHECK(fx.integrity_ok());
}

TEST_CASE("dead letters commit with their batch, per projection, until a reset", "[backend][session]") {
    BACKEND_SKIP_UNLESS(pj::has_persisted_checkpoint<backend::storage_type>, transactional_sessions_needs);
    backend fx;
    auto storage = fx.storage();
    auto s = storage.open("x_v1");
    auto y = storage.open("y_v1");
    const pj::dead_letter d1{4, "ticket", "t-1", 0, "ticket.closed", "truncated payload: 'quoted' \"reason\"", false};
    const pj::dead_letter d2{9, "ticket", "t-1", 0, "ticket.reopened", "aggregate parked at position 4", true};
    const pj::dead_letter d3{(std::uint64_t{1} << 40), "comment", "c ü", 12345, "comment.added", "", false};

    s.begin();
    s.record_dead_letter(d1);
    CHECK(s.dead_letters() == std::vector<pj::dead_letter>{d1});
    s.rollback();
    CHECK(s.dead_letters().empty());

    s.begin();
    s.record_dead_letter(d1);
    s.record_dead_letter(d2);
    auto& cp = s.load_checkpoint();
    cp.position = 9;
    cp.aggregate_versions = {3};
    cp.aggregates_tracked = 1;
    s.commit(cp, std::vector<std::uint64_t>{0});
    y.record_dead_letter(d3);  // outside a batch: at once
    CHECK(s.dead_letters() == std::vector<pj::dead_letter>{d1, d2});
    CHECK(y.dead_letters() == std::vector<pj::dead_letter>{d3});
    CHECK(storage.open("x_v1").dead_letters() == std::vector<pj::dead_letter>{d1, d2});
    CHECK(fx.scalar("SELECT count(*) FROM projectionist_dead_letters WHERE parked") == 1);

    // A reset in a batch that rolls back forgets nothing; a committed one forgets the
    // checkpoint, the positions and the dead letters of its projection only.
    s.begin();
    s.reset_checkpoint();
    CHECK(s.load_checkpoint().position == 0);
    s.rollback();
    CHECK(s.load_checkpoint().position == 9);
    CHECK(s.dead_letters().size() == 2);
    s.begin();
    s.reset_checkpoint();
    s.commit(s.load_checkpoint(), {});
    CHECK(s.dead_letters().empty());
    CHECK(y.dead_letters() == std::vector<pj::dead_letter>{d3});
    auto later = storage.open("x_v1");
    const auto& reloaded = later.load_checkpoint();
    CHECK(reloaded.position == 0);
    CHECK(reloaded.aggregates_tracked == 0);
    CHECK(fx.scalar("SELECT count(*) FROM projectionist_dead_letters") == 1);
}
