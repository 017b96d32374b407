// Bad input in a SQLite log: an unknown event type, a corrupt or truncated payload, a payload
// over the size limit. With stop_on_error the projection stops at its last committed position
// with the position, aggregate, type and reason; with skip_to_dead_letter the event is recorded
// in the dead-letter table and the projection goes on. Nothing committed is lost either way.

#include <catch2/catch.hpp>

#include <string>

#include <projectionist/sqlite.hpp>
#include <sqlite_test_support.hpp>
#include <tickets_domain.hpp>

namespace pj = projectionist;
using namespace tickets_domain;
using sqlite_test::temp_dir;

namespace {

struct ticket_archived {
    BOOST_HANA_DEFINE_STRUCT(ticket_archived, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.archived";
};
using newer_ticket_stream = pj::stream<"ticket", ticket_registered, ticket_closed, ticket_reopened, ticket_archived>;

/// Positions: 1 t-1 registered, 2 t-1 closed (corrupted below), 3 t-2 registered,
/// 4 t-2 archived (unknown to this build), 5 t-3 registered (oversized type), 6 t-1 reopened.
void bad_history(const std::string& file) {
    pj::sqlite_event_store store(file);
    append_ticket(store, "t-1", "bug", 0, true);
    append_ticket(store, "t-2", "bug", 0, false);
    store.append(newer_ticket_stream{}, "t-2", 1, ticket_archived{"t-2"});
    append_ticket(store, "t-3", std::string(4000, 'x'), 0, false);
    store.append(ticket_stream{}, "t-1", 2, ticket_reopened{"t-1"});
    // Truncate the payload of position 2 behind the store's back.
    store.connection().exec("UPDATE projectionist_events SET payload = substr(payload, 1, 3) WHERE position = 2");
}

pj::sqlite_options small_payloads() {
    pj::sqlite_options o;
    o.max_payload_bytes = 1024;
    return o;
}

}  // namespace

TEST_CASE("bad input stops a stop_on_error projection at its last committed position", "[sqlite][bad_input]") {
    temp_dir dir;
    const auto file = dir.file("app.db");
    bad_history(file);
    pj::sqlite_event_store store(file, small_payloads());
    pj::sqlite_storage storage(file);
    pj::runner<tickets<2>, pj::sqlite_storage> r(store, storage, pj::runner_options{1});
    try {
        r.catch_up();
        FAIL("expected a projection_error");
    } catch (const pj::projection_error& e) {
        CHECK(e.context().position == 2);
        CHECK(e.context().aggregate_id == "t-1");
        CHECK(e.context().event_type == "ticket.closed");
        CHECK_THAT(e.reason(), Catch::Contains("truncated payload"));
    }
    CHECK(r.position() == 1);  // batch size 1: the first event stays committed
    CHECK(storage.find_table<tickets<2>::table>("tickets_v2")->find("t-1")->status == "open");
    // Restarting does not skip it: the same error at the same place.
    pj::runner<tickets<2>, pj::sqlite_storage> again(store, storage, pj::runner_options{1});
    CHECK(again.position() == 1);
    CHECK_THROWS_WITH(again.catch_up(), Catch::Contains("position 2"));
    CHECK(sqlite_test::integrity_ok(file));
}

TEMPLATE_TEST_CASE("skip_to_dead_letter records every kind of bad input and goes on",
                   "[sqlite][bad_input][dead_letter]", pj::global, pj::per_aggregate) {
    temp_dir dir;
    const auto file = dir.file("app.db");
    bad_history(file);
    {
        pj::sqlite_event_store store(file, small_payloads());
        pj::sqlite_storage storage(file);
        pj::runner<tickets<2>, pj::sqlite_storage, pj::skip_to_dead_letter, TestType> r(store, storage,
                                                                                        pj::runner_options{100});
        r.catch_up();
        CHECK(r.position() == 6);
        const auto letters = r.dead_letters();
        if constexpr (TestType::partitioned) {
            // t-1 is parked after its corrupt close, so its reopen (6) is parked too.
            REQUIRE(letters.size() == 4);
            CHECK(letters[3].position == 6);
            CHECK(letters[3].parked);
            CHECK(r.status().parked_aggregates == 3);
        } else {
            REQUIRE(letters.size() == 3);
        }
        CHECK(letters[0].position == 2);
        CHECK_THAT(letters[0].reason, Catch::Contains("truncated payload"));
        CHECK(letters[1].position == 4);
        CHECK(letters[1].event_type == "ticket.archived");
        CHECK_THAT(letters[1].reason, Catch::Contains("unknown event type"));
        CHECK(letters[2].position == 5);
        CHECK(letters[2].aggregate_id == "t-3");
        CHECK_THAT(letters[2].reason, Catch::Contains("exceeds the limit of 1024 bytes"));

        auto table = storage.find_table<tickets<2>::table>("tickets_v2");
        CHECK(table->find("t-2")->status == "open");
        CHECK_FALSE(table->contains("t-3"));
        if constexpr (TestType::partitioned)
            CHECK(table->find("t-1")->reopened == 0);  // parked
        else
            CHECK(table->find("t-1")->reopened == 1);  // global: only the bad event itself is skipped
    }
    // The dead letters are in the file, readable with the sqlite3 command line too.
    pj::sqlite_storage storage(file);
    pj::detail::sqlite::statement s(storage.connection(),
                                    "SELECT count(*) FROM projectionist_dead_letters WHERE projection = 'tickets_v2'");
    REQUIRE(s.step());
    CHECK(s.int64(0) == (TestType::partitioned ? 4 : 3));
    CHECK(sqlite_test::integrity_ok(file));
}
