// Immutable versions, on the backend the executable was built for: init records the version's
// definition (its fingerprint and text) in the catalog; a build whose code defines the same
// version differently is refused, naming what changed, until the version is reset (which
// rebuilds it with the new definition); a catalog row written before definitions were recorded
// takes the definition of the first build that opens it.

#include <backend_suite.hpp>

#include <string>
#include <string_view>

#include <projectionist/deploy/controller.hpp>
#include <projectionist/deploy/deployment.hpp>
#include <projectionist/deploy/router.hpp>

using namespace backend_test;
using Catch::Contains;

namespace {

struct merged_ticket_row {
    BOOST_HANA_DEFINE_STRUCT(merged_ticket_row, (std::string, ticket_id), (std::string, type), (std::string, status),
                             (int, reopened), (int, merged));
};

/// tickets<2> as a later build changed it without a new version number: one more column.
struct changed_tickets_v2 : pj::projection<"tickets", 2, ticket_stream> {
    using table = pj::table<merged_ticket_row, &merged_ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open", 0, 0}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](merged_ticket_row& r) { r.status = "closed"; });
    }
    void on(const ticket_reopened& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](merged_ticket_row& r) {
            r.status = "open";
            ++r.reopened;
        });
    }
};

using v2_runner = pj::runner<tickets<2>, backend::storage_type, pj::per_aggregate>;
using changed_runner = pj::runner<changed_tickets_v2, backend::storage_type, pj::per_aggregate>;

const std::string refusal =
    "tickets_v2 changed since it was initialized: column 'merged' is new; deploy it as tickets_v3, or reset "
    "tickets_v2 to rebuild it";

}  // namespace

TEST_CASE("init records the version's definition; the status shows its fingerprint", "[backend][definition]") {
    static_assert(v2_runner::fingerprint != changed_runner::fingerprint);
    backend fx;
    connections c(fx);
    history(c.store, 5);
    v2_runner v2(c.store, c.storage);
    v2.init();
    const auto entry = c.storage.find_catalog("tickets_v2");
    REQUIRE(entry.has_value());
    CHECK(entry->fingerprint == pj::fingerprint_text(v2_runner::fingerprint));
    CHECK(entry->fingerprint.size() == 16);
    CHECK(entry->definition == v2_runner::definition());
    CHECK_THAT(entry->definition, Contains("column tickets_v2 reopened int32\n"));
    CHECK(v2.status().fingerprint == entry->fingerprint);
    CHECK_FALSE(v2.status().error.has_value());
}

TEST_CASE("a build that changed an initialized version is refused until it is reset", "[backend][definition]") {
    backend fx;
    connections first(fx);
    history(first.store, 8);
    v2_runner v2(first.store, first.storage);
    CHECK(v2.catch_up() > 0);
    const auto rows_before = rows_of<tickets<2>::table>(first.storage, "tickets_v2");
    REQUIRE(rows_before.size() == 8);

    std::optional<connections> own;
    connections& later = backend::speaks_sql ? own.emplace(fx) : first;
    changed_runner changed(later.store, later.storage);
    CHECK_THAT(changed.status().error.value_or(""), Contains(refusal));
    CHECK_THROWS_AS(changed.catch_up(), pj::state_error);
    CHECK_THROWS_WITH(changed.catch_up(), Contains(refusal));
    CHECK_THROWS_WITH(changed.backfill(), Contains(refusal));
    CHECK_THROWS_WITH(changed.init(), Contains(refusal));
    CHECK_THROWS_WITH(changed.make_live(), Contains(refusal));
    CHECK_THROWS_WITH(changed.mark(pj::projection_state::serving), Contains(refusal));
    // The deployment and the controller refuse to serve it or send it queries.
    pj::deployment<changed_runner> deployment(later.store, later.storage);
    pj::router<changed_tickets_v2> router(later.storage);
    pj::controller control(deployment, router);
    CHECK_THROWS_WITH(control.switch_to("tickets_v2"), Contains(refusal));
    CHECK_THROWS_WITH(deployment.catch_up(), Contains(refusal));
    // Nothing was written: the recorded definition and the rows are the first build's.
    CHECK(later.storage.find_catalog("tickets_v2")->fingerprint == pj::fingerprint_text(v2_runner::fingerprint));
    CHECK(rows_of<tickets<2>::table>(first.storage, "tickets_v2") == rows_before);

    // reset rebuilds it with the new definition, which it records.
    changed.reset();
    CHECK_FALSE(changed.status().error.has_value());
    CHECK(later.storage.find_catalog("tickets_v2")->fingerprint == pj::fingerprint_text(changed_runner::fingerprint));
    CHECK(changed.catch_up() > 0);
    CHECK(rows_of<changed_tickets_v2::table>(later.storage, "tickets_v2").size() == 8);
    // Now the first build's code is the changed one.
    v2_runner again(later.store, later.storage);
    CHECK_THROWS_WITH(again.catch_up(),
                      Contains("tickets_v2 changed since it was initialized: column 'merged' was removed"));
}

TEST_CASE("a catalog written before definitions were recorded is upgraded when opened", "[backend][definition]") {
    BACKEND_SKIP_UNLESS(backend::speaks_sql, "a schema of an earlier version, made with SQL");
    backend fx;
    {
        connections c(fx);
        history(c.store, 4);
        v2_runner v2(c.store, c.storage);
        v2.catch_up();
    }
    // The catalog as the previous schema version had it: no definition columns.
    const bool sqlite = std::string_view(backend::name) == "sqlite";
    fx.exec(sqlite ? "ALTER TABLE projectionist_catalog DROP COLUMN fingerprint; ALTER TABLE projectionist_catalog "
                     "DROP COLUMN definition; ALTER TABLE projectionist_catalog DROP COLUMN deleted_at; ALTER TABLE "
                     "projectionist_catalog DROP COLUMN deleted_by; ALTER TABLE projectionist_catalog DROP COLUMN "
                     "retain_until; PRAGMA user_version = 2"
                   : "ALTER TABLE projectionist_catalog DROP COLUMN fingerprint, DROP COLUMN definition, DROP COLUMN "
                     "deleted_at, DROP COLUMN deleted_by, DROP COLUMN retain_until; UPDATE projectionist_schema SET "
                     "version = 2");
    connections c(fx);
    CHECK(c.storage.find_catalog("tickets_v2")->fingerprint.empty());
    v2_runner v2(c.store, c.storage);
    CHECK(c.storage.find_catalog("tickets_v2")->fingerprint == pj::fingerprint_text(v2_runner::fingerprint));
    CHECK(c.storage.find_catalog("tickets_v2")->state == pj::projection_state::caught_up);
    history(c.store, 1, 50);
    CHECK(v2.catch_up() > 0);
    CHECK(v2.position() == c.store.head());
}
