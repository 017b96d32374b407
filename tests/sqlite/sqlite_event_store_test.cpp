// The SQLite event log: optimistic appends, global and per-aggregate reads, interning, the file
// across connections and processes, the readable JSON log, refusal of files that are not ours
// (without touching them), options, the payload size limit, corruption and schema versions.

#include <catch2/catch.hpp>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/hana/define_struct.hpp>

#include <projectionist/sqlite.hpp>
#include <sqlite_test_support.hpp>
#include <tickets_domain.hpp>

namespace pj = projectionist;
using namespace tickets_domain;
using Catch::Contains;
using sqlite_test::temp_dir;

namespace {

/// These tests are not about durability: their files live on tmpfs when there is one
/// (fast_temp_base), and synchronous NORMAL spares an fsync per commit where there is not. The
/// options tests check the FULL default.
const pj::sqlite_options fast{pj::sqlite_synchronous::normal};

struct comment_added {
    BOOST_HANA_DEFINE_STRUCT(comment_added, (std::string, ticket_id), (std::string, text), (std::int32_t, votes));
    static constexpr std::string_view event_name = "comment.added";
    friend bool operator==(const comment_added&, const comment_added&) = default;
};
using comment_stream = pj::stream<"comment", comment_added>;

// The same stored name as ticket_registered, in another stream: a type of its own.
struct legacy_registered {
    BOOST_HANA_DEFINE_STRUCT(legacy_registered, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.registered";
};
using legacy_stream = pj::stream<"legacy", legacy_registered>;

// A later build's ticket stream, with one more event.
struct ticket_archived {
    BOOST_HANA_DEFINE_STRUCT(ticket_archived, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.archived";
};
using newer_ticket_stream = pj::stream<"ticket", ticket_registered, ticket_closed, ticket_reopened, ticket_archived>;

// Schema evolution of one stored event: v1 had no priority, v2 derives it, v3 is from the future.
struct noted_v1 {
    BOOST_HANA_DEFINE_STRUCT(noted_v1, (std::string, ticket_id), (std::string, text));
    static constexpr std::string_view event_name = "ticket.noted";
};
struct noted {
    BOOST_HANA_DEFINE_STRUCT(noted, (std::string, ticket_id), (std::string, text), (std::int32_t, priority));
    static constexpr std::string_view event_name = "ticket.noted";
    static constexpr unsigned schema_version = 2;
    using previous_schema = noted_v1;
    static noted upcast(noted_v1 old) {
        const std::int32_t priority = old.text.find('!') != std::string::npos ? 1 : 0;
        return {std::move(old.ticket_id), std::move(old.text), priority};
    }
    friend bool operator==(const noted&, const noted&) = default;
};
struct noted_v3 {
    BOOST_HANA_DEFINE_STRUCT(noted_v3, (std::string, ticket_id), (std::vector<std::string>, lines));
    static constexpr std::string_view event_name = "ticket.noted";
    static constexpr unsigned schema_version = 3;
};
using notes_v1 = pj::stream<"notes", noted_v1>;
using notes_v2 = pj::stream<"notes", noted>;
using notes_v3 = pj::stream<"notes", noted_v3>;
static_assert(pj::schema_version_of<noted_v1> == 1 && pj::schema_version_of<noted> == 2);
static_assert(pj::detail::has_previous_schema<noted> && !pj::detail::has_previous_schema<noted_v3>);

/// One integer from SQL run on a store's own connection.
std::int64_t scalar(pj::detail::sqlite::connection& db, const std::string& sql) {
    pj::detail::sqlite::statement s(db, sql);
    REQUIRE(s.step());
    return s.int64(0);
}

/// The message of the projectionist::error that `f` throws ("<no error>" / "<other exception>").
template <class F>
std::string error_of(F&& f) {
    try {
        std::forward<F>(f)();
    } catch (const pj::error& e) {
        return e.what();
    } catch (...) {
        return "<other exception>";
    }
    return "<no error>";
}

/// Every record of the log, as (position, aggregate version) pairs.
template <class Store>
std::vector<std::pair<std::uint64_t, std::uint64_t>> positions_and_versions(Store& store) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
    typename Store::batch batch;
    store.read(0, 1000, batch);
    for (const auto& r : batch) out.emplace_back(r.position(), r.aggregate_version());
    return out;
}

}  // namespace

TEMPLATE_TEST_CASE("an append checks the expected version, and a conflict writes nothing", "[sqlite][store]",
                   pj::sqlite_event_store, pj::sqlite_json_event_store) {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("log.db");
    {
        TestType store(file, fast);
        CHECK(store.head() == 0);
        CHECK(store.version_of(ticket_stream{}, "t-1") == 0);
        CHECK(store.type_count() == 0);

        const auto r1 = store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        CHECK(r1.first_position == 1);
        CHECK(r1.last_position == 1);
        CHECK(r1.version == 1);
        const auto r2 = store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}, ticket_reopened{"t-1"});
        CHECK(r2.first_position == 2);
        CHECK(r2.last_position == 3);
        CHECK(r2.version == 3);
        const auto r3 =
            store.append(ticket_stream{}, "t-2", pj::expected_version::no_events(), ticket_registered{"t-2", "task"});
        CHECK(r3.first_position == 4);
        CHECK(r3.version == 1);
        CHECK(store.head() == 4);
        CHECK(store.version_of(ticket_stream{}, "t-1") == 3);
        CHECK(store.version_of(ticket_stream{}, "t-2") == 1);
        CHECK(store.type_count() == 3);

        try {
            store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});
            FAIL("a stale expected version was accepted");
        } catch (const pj::version_conflict& e) {
            CHECK(e.expected() == 1);
            CHECK(e.actual() == 3);
            CHECK(e.context().stream == "ticket");
            CHECK(e.context().aggregate_id == "t-1");
            CHECK_THAT(e.what(), Contains("stream 'ticket'") && Contains("aggregate 't-1'") &&
                                     Contains("expected version 1") && Contains("at version 3"));
        }
        // A refused append of a type the log has never seen interns nothing.
        CHECK_THROWS_AS(store.append(newer_ticket_stream{}, "t-1", 2, ticket_archived{"t-1"}), pj::version_conflict);
        // A refused first append of an aggregate leaves no aggregate behind.
        CHECK_THROWS_AS(store.append(ticket_stream{}, "t-9", 3, ticket_registered{"t-9", "bug"}), pj::version_conflict);

        CHECK(store.head() == 4);
        CHECK(store.version_of(ticket_stream{}, "t-1") == 3);
        CHECK(store.type_count() == 3);
        CHECK_FALSE(store.aggregate_number(ticket_stream{}, "t-9").has_value());
        CHECK(scalar(store.connection(), "SELECT count(*) FROM projectionist_events") == 4);
        CHECK(scalar(store.connection(), "SELECT count(*) FROM projectionist_event_types") == 3);
        CHECK(scalar(store.connection(), "SELECT count(*) FROM projectionist_aggregates") == 2);

        // expected_version::any() skips the check, for new and existing aggregates.
        const auto r4 = store.append(ticket_stream{}, "t-1", pj::expected_version::any(), ticket_closed{"t-1"});
        CHECK(r4.first_position == 5);
        CHECK(r4.version == 4);
        const auto r5 =
            store.append(ticket_stream{}, "t-3", pj::expected_version::any(), ticket_registered{"t-3", "x"});
        CHECK(r5.first_position == 6);
        CHECK(r5.version == 1);
        CHECK(store.append(ticket_stream{}, "t-1", 4, ticket_reopened{"t-1"}).version == 5);
        CHECK(store.head() == 7);
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEMPLATE_TEST_CASE("a multi-event append is atomic and gets consecutive positions", "[sqlite][store]",
                   pj::sqlite_event_store, pj::sqlite_json_event_store) {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("log.db");
    {
        TestType store(file, fast);
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        // The second event of the next append (aggregate version 3) is refused by the database.
        store.connection().exec(
            "CREATE TEMP TRIGGER refuse_version_3 BEFORE INSERT ON projectionist_events "
            "WHEN NEW.aggregate_version = 3 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
        CHECK_THROWS_WITH(
            store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}, ticket_reopened{"t-1"}, ticket_closed{"t-1"}),
            Contains("refused by the test"));
        CHECK(store.head() == 1);
        CHECK(store.version_of(ticket_stream{}, "t-1") == 1);
        CHECK(store.type_count() == 1);  // the types of the failed append were rolled back too
        CHECK(scalar(store.connection(), "SELECT count(*) FROM projectionist_events") == 1);
        CHECK(scalar(store.connection(), "SELECT count(*) FROM projectionist_event_types") == 1);

        // The store is still usable after the failure (its statements were reset).
        store.connection().exec("DROP TRIGGER refuse_version_3");
        const auto r =
            store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}, ticket_reopened{"t-1"}, ticket_closed{"t-1"});
        CHECK(r.first_position == 2);
        CHECK(r.last_position == 4);
        CHECK(r.version == 4);
        typename TestType::batch batch;
        store.read(1, 10, batch);
        REQUIRE(batch.size() == 3);
        const char* names[] = {"ticket.closed", "ticket.reopened", "ticket.closed"};
        for (std::size_t i = 0; i < 3; ++i) {
            CHECK(batch[i].position() == 2 + i);
            CHECK(batch[i].aggregate_version() == 2 + i);
            CHECK(batch[i].type_name() == names[i]);
        }
        CHECK(batch[0].recorded_at() == batch[2].recorded_at());  // one append, one timestamp
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEMPLATE_TEST_CASE("inside an open transaction an append is a savepoint of it", "[sqlite][store]",
                   pj::sqlite_event_store, pj::sqlite_json_event_store) {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("log.db");
    {
        TestType store(file, fast);
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        store.connection().exec("BEGIN");
        CHECK(store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}).first_position == 2);
        CHECK_THROWS_AS(store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}), pj::version_conflict);
        CHECK(sqlite3_get_autocommit(store.connection().get()) == 0);  // the outer transaction is still open
        CHECK(store.head() == 2);
        store.connection().exec("ROLLBACK");
        CHECK(store.head() == 1);
        CHECK(store.version_of(ticket_stream{}, "t-1") == 1);
        store.connection().exec("BEGIN");
        store.append(ticket_stream{}, "t-1", 1, ticket_reopened{"t-1"});
        store.connection().exec("COMMIT");
    }
    TestType reopened(file, fast);
    CHECK(reopened.head() == 2);
    CHECK(reopened.version_of(ticket_stream{}, "t-1") == 2);
    CHECK(sqlite_test::integrity_ok(file));
}

TEMPLATE_TEST_CASE("read returns records in global order, in batches, with every accessor", "[sqlite][store]",
                   pj::sqlite_event_store, pj::sqlite_json_event_store) {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("log.db");
    {
        TestType store(file, fast);
        const auto before = std::chrono::system_clock::now();
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});               // 1
        store.append(comment_stream{}, "t-1", 0, comment_added{"t-1", "first \"look\"", -2});   // 2
        store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "task"});              // 3
        store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}, ticket_reopened{"t-1"});  // 4, 5
        store.append(legacy_stream{}, "t-1", 0, legacy_registered{"t-1"});                      // 6
        const auto after = std::chrono::system_clock::now();

        struct expected_record {
            std::uint64_t position;
            std::string_view stream;
            std::string_view type;
            std::uint32_t type_id;
            std::string_view aggregate;
            std::uint64_t version;
            std::uint64_t number;
        };
        const std::vector<expected_record> expected{
            {1, "ticket", "ticket.registered", 0, "t-1", 1, 0}, {2, "comment", "comment.added", 1, "t-1", 1, 1},
            {3, "ticket", "ticket.registered", 0, "t-2", 1, 2}, {4, "ticket", "ticket.closed", 2, "t-1", 2, 0},
            {5, "ticket", "ticket.reopened", 3, "t-1", 3, 0},   {6, "legacy", "ticket.registered", 4, "t-1", 1, 3},
        };

        // Batches of 4: the batch object is reused and shrinks to what the last read found.
        typename TestType::batch batch;
        std::vector<std::uint64_t> seen;
        std::vector<std::size_t> sizes;
        std::uint64_t after_position = 0;
        for (;;) {
            store.read(after_position, 4, batch);
            sizes.push_back(batch.size());
            if (batch.empty()) break;
            for (const auto& r : batch) {
                seen.push_back(r.position());
                REQUIRE(r.position() >= 1);
                REQUIRE(r.position() <= expected.size());
                const expected_record& x = expected[r.position() - 1];
                INFO("position " << r.position());
                CHECK(r.stream() == x.stream);
                CHECK(r.type_name() == x.type);
                CHECK(r.type_id() == x.type_id);
                CHECK(r.aggregate_id() == x.aggregate);
                CHECK(r.aggregate_version() == x.version);
                CHECK(r.aggregate_number() == x.number);
                CHECK(r.schema_version() == 1);
                CHECK_FALSE(r.payload().empty());
                CHECK(r.recorded_at() >= before);
                CHECK(r.recorded_at() <= after);
                const pj::envelope env = r.envelope_of();
                CHECK(env.position == r.position());
                CHECK(env.stream == x.stream);
                CHECK(env.aggregate_id == x.aggregate);
                CHECK(env.aggregate_version == x.version);
                CHECK(env.recorded_at == r.recorded_at());
                CHECK(env.event_type == x.type);
            }
            after_position = batch[batch.size() - 1].position();
        }
        CHECK(seen == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6});
        CHECK(sizes == std::vector<std::size_t>{4, 2, 0});

        store.read(2, 2, batch);
        REQUIRE(batch.size() == 2);
        CHECK(batch[0].position() == 3);
        CHECK(batch[1].position() == 4);
        store.read(6, 10, batch);
        CHECK(batch.empty());
        CHECK(batch.begin() == batch.end());

        // Payloads decode into the appended values.
        store.read(0, 10, batch);
        REQUIRE(batch.size() == 6);
        const auto registered = store.template event_of<ticket_registered>(batch[0]);
        CHECK(registered.ticket_id == "t-1");
        CHECK(registered.type == "bug");
        CHECK(store.template event_of<comment_added>(batch[1]) == comment_added{"t-1", "first \"look\"", -2});
        CHECK(store.template event_of<ticket_registered>(batch[2]).type == "task");
        CHECK(store.template event_of<ticket_closed>(batch[3]).ticket_id == "t-1");
        CHECK(store.template event_of<legacy_registered>(batch[5]).ticket_id == "t-1");

        // Interning: one dense id per (stream, stored name), in order of first use.
        CHECK(store.type_count() == 5);
        const char* streams[] = {"ticket", "comment", "ticket", "ticket", "legacy"};
        const char* names[] = {"ticket.registered", "comment.added", "ticket.closed", "ticket.reopened",
                               "ticket.registered"};
        for (std::uint32_t id = 0; id < 5; ++id) {
            const pj::event_type_info info = store.type_info(id);
            CHECK(info.id == id);
            CHECK(info.stream == streams[id]);
            CHECK(info.name == names[id]);
            CHECK(info.cpp_type == nullptr);  // the codec decides, not a C++ type
        }
        CHECK_THROWS(store.type_info(5));
        store.append(ticket_stream{}, "t-3", 0, ticket_registered{"t-3", "bug"});
        CHECK(store.type_count() == 5);  // an interned type is reused
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEMPLATE_TEST_CASE("read_aggregate, version_of and dense aggregate numbers per (stream, aggregate id)",
                   "[sqlite][store]", pj::sqlite_event_store, pj::sqlite_json_event_store) {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("log.db");
    {
        TestType store(file, fast);
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"});
        store.append(comment_stream{}, "t-1", 0, comment_added{"t-1", "hi", 1});
        store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}, ticket_reopened{"t-1"});
        store.append(comment_stream{}, "t-1", 1, comment_added{"t-1", "again", 2});
        store.append(ticket_stream{}, "t-3", 0, ticket_registered{"t-3", "bug"});

        CHECK(store.aggregate_number(ticket_stream{}, "t-1") == 0u);
        CHECK(store.aggregate_number(ticket_stream{}, "t-2") == 1u);
        CHECK(store.aggregate_number(comment_stream{}, "t-1") == 2u);
        CHECK(store.aggregate_number(ticket_stream{}, "t-3") == 3u);
        CHECK_FALSE(store.aggregate_number(ticket_stream{}, "t-4").has_value());
        CHECK_FALSE(store.aggregate_number(legacy_stream{}, "t-1").has_value());

        CHECK(store.version_of(ticket_stream{}, "t-1") == 3);
        CHECK(store.version_of(comment_stream{}, "t-1") == 2);
        CHECK(store.version_of(ticket_stream{}, "t-2") == 1);
        CHECK(store.version_of(ticket_stream{}, "nobody") == 0);

        const auto t1 = store.read_aggregate(ticket_stream{}, "t-1");
        REQUIRE(t1.size() == 3);
        std::vector<std::uint64_t> positions, versions;
        for (const auto& r : t1) {
            positions.push_back(r.position());
            versions.push_back(r.aggregate_version());
            CHECK(r.stream() == "ticket");
            CHECK(r.aggregate_id() == "t-1");
            CHECK(r.aggregate_number() == 0);
        }
        CHECK(positions == std::vector<std::uint64_t>{1, 4, 5});
        CHECK(versions == std::vector<std::uint64_t>{1, 2, 3});
        CHECK(t1[2].type_name() == "ticket.reopened");

        const auto c1 = store.read_aggregate(comment_stream{}, "t-1");
        REQUIRE(c1.size() == 2);
        CHECK(c1[0].position() == 3);
        CHECK(c1[1].position() == 6);
        CHECK(store.template event_of<comment_added>(c1[1]).text == "again");
        CHECK(store.read_aggregate(ticket_stream{}, "t-4").empty());

        // Numbers are kept by later appends and stay dense for new aggregates.
        store.append(ticket_stream{}, "t-1", 3, ticket_closed{"t-1"});
        store.append(legacy_stream{}, "t-1", 0, legacy_registered{"t-1"});
        CHECK(store.aggregate_number(ticket_stream{}, "t-1") == 0u);
        CHECK(store.aggregate_number(legacy_stream{}, "t-1") == 4u);
        CHECK(store.read_aggregate(ticket_stream{}, "t-1")[3].aggregate_number() == 0);
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEMPLATE_TEST_CASE("the log survives closing and reopening the file", "[sqlite][store][persistence]",
                   pj::sqlite_event_store, pj::sqlite_json_event_store) {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("log.db");
    {
        TestType store(file, fast);
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"}, ticket_closed{"t-1"});
        store.append(comment_stream{}, "t-1", 0, comment_added{"t-1", "kept", 7});
    }
    {
        TestType store(file, fast);
        CHECK(store.head() == 3);
        CHECK(store.version_of(ticket_stream{}, "t-1") == 2);
        CHECK(store.version_of(comment_stream{}, "t-1") == 1);
        CHECK(store.aggregate_number(comment_stream{}, "t-1") == 1u);
        CHECK(store.type_count() == 3);
        CHECK(store.type_info(2).name == "comment.added");
        typename TestType::batch batch;
        store.read(0, 10, batch);
        REQUIRE(batch.size() == 3);
        CHECK(batch[1].type_name() == "ticket.closed");
        CHECK(store.template event_of<ticket_registered>(batch[0]).type == "bug");
        CHECK(store.template event_of<comment_added>(batch[2]) == comment_added{"t-1", "kept", 7});
        // Versions carry on from the file.
        CHECK_THROWS_AS(store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"}), pj::version_conflict);
        const auto r = store.append(ticket_stream{}, "t-1", 2, ticket_reopened{"t-1"});
        CHECK(r.first_position == 4);
        CHECK(r.version == 3);
    }
    {
        TestType store(file, fast);
        CHECK(store.head() == 4);
        CHECK(store.type_count() == 4);
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEMPLATE_TEST_CASE("two store objects on one file see and interleave each other's appends",
                   "[sqlite][store][persistence]", pj::sqlite_event_store, pj::sqlite_json_event_store) {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("log.db");
    {
        TestType a(file, fast);
        TestType b(file, fast);
        CHECK(a.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"}).first_position == 1);
        CHECK(b.head() == 1);
        CHECK(b.version_of(ticket_stream{}, "t-1") == 1);
        CHECK(b.type_count() == 1);
        {
            typename TestType::batch batch;
            b.read(0, 10, batch);
            REQUIRE(batch.size() == 1);
            CHECK(batch[0].type_name() == "ticket.registered");  // a type interned by the other connection
            CHECK(b.template event_of<ticket_registered>(batch[0]).type == "bug");
        }
        CHECK(b.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}).first_position == 2);
        CHECK(a.version_of(ticket_stream{}, "t-1") == 2);
        CHECK(a.append(ticket_stream{}, "t-1", 2, ticket_reopened{"t-1"}).version == 3);
        CHECK(b.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "task"}).first_position == 4);
        CHECK(a.append(ticket_stream{}, "t-2", 1, ticket_closed{"t-2"}).version == 2);
        CHECK(b.append(ticket_stream{}, "t-1", 3, ticket_closed{"t-1"}).version == 4);

        const std::vector<std::pair<std::uint64_t, std::uint64_t>> expected{{1, 1}, {2, 2}, {3, 3},
                                                                            {4, 1}, {5, 2}, {6, 4}};
        CHECK(positions_and_versions(a) == expected);
        CHECK(positions_and_versions(b) == expected);
        CHECK(a.type_count() == 3);
        CHECK(b.type_count() == 3);
        CHECK(a.aggregate_number(ticket_stream{}, "t-2") == b.aggregate_number(ticket_stream{}, "t-2"));
        typename TestType::batch batch;
        a.read(0, 10, batch);
        REQUIRE(batch.size() == 6);
        CHECK(batch[1].type_name() == "ticket.closed");  // interned by b, read by a
        CHECK(batch[1].type_id() == 1);
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEMPLATE_TEST_CASE("a conflict across connections: the second writer at the same version fails",
                   "[sqlite][store][persistence]", pj::sqlite_event_store, pj::sqlite_json_event_store) {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("log.db");
    {
        TestType a(file, fast);
        TestType b(file, fast);
        a.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"}, ticket_closed{"t-1"});
        const std::uint64_t va = a.version_of(ticket_stream{}, "t-1");
        const std::uint64_t vb = b.version_of(ticket_stream{}, "t-1");
        REQUIRE(va == 2);
        REQUIRE(vb == 2);
        CHECK(a.append(ticket_stream{}, "t-1", va, ticket_reopened{"t-1"}).version == 3);
        try {
            b.append(ticket_stream{}, "t-1", vb, ticket_reopened{"t-1"});
            FAIL("the second writer's append was accepted");
        } catch (const pj::version_conflict& e) {
            CHECK(e.expected() == 2);
            CHECK(e.actual() == 3);
        }
        CHECK(a.head() == 3);
        CHECK(b.head() == 3);
        CHECK(scalar(b.connection(), "SELECT count(*) FROM projectionist_events") == 3);
        // A new first append of one aggregate from both: the second is refused.
        CHECK(b.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"}).version == 1);
        CHECK_THROWS_AS(a.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"}), pj::version_conflict);
        CHECK(a.head() == 4);
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEMPLATE_TEST_CASE("a second process appends through its own store; the parent reads every event",
                   "[sqlite][store][persistence]", pj::sqlite_event_store, pj::sqlite_json_event_store) {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("log.db");
    constexpr int child_tickets = 20;  // the child appends two events per ticket
    {
        TestType store(file, fast);
        store.append(ticket_stream{}, "parent", 0, ticket_registered{"parent", "bug"});
    }  // no connection is open across fork()

    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        alarm(20);  // a stuck child dies instead of hanging the test
        int status = 0;
        try {
            TestType store(file, fast);
            for (int i = 0; i < child_tickets; ++i) {
                const std::string id = "child-" + std::to_string(i);
                store.append(ticket_stream{}, id, 0, ticket_registered{id, "task"}, ticket_closed{id});
            }
            store.append(ticket_stream{}, "parent", 1, ticket_closed{"parent"});
        } catch (...) {
            status = 1;
        }
        _exit(status);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);

    {
        TestType store(file, fast);
        CHECK(store.head() == 1 + 2 * child_tickets + 1);
        CHECK(store.version_of(ticket_stream{}, "parent") == 2);
        typename TestType::batch batch;
        store.read(1, 1000, batch);
        REQUIRE(batch.size() == 2 * child_tickets + 1);
        for (int i = 0; i < child_tickets; ++i) {
            const auto& reg = batch[static_cast<std::size_t>(2 * i)];
            const auto& close = batch[static_cast<std::size_t>(2 * i + 1)];
            const std::string id = "child-" + std::to_string(i);
            CHECK(reg.position() == static_cast<std::uint64_t>(2 + 2 * i));
            CHECK(reg.aggregate_id() == id);
            CHECK(reg.aggregate_version() == 1);
            CHECK(store.template event_of<ticket_registered>(reg).ticket_id == id);
            CHECK(close.type_name() == "ticket.closed");
            CHECK(close.aggregate_version() == 2);
            CHECK(store.version_of(ticket_stream{}, id) == 2);
        }
        // The parent carries on from the versions the child wrote.
        CHECK(store.append(ticket_stream{}, "parent", 2, ticket_reopened{"parent"}).version == 3);
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEST_CASE("with the JSON codec the events view is a readable log", "[sqlite][store][json]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("log.db");
    pj::sqlite_json_event_store store(file, fast);
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "incident"});
    store.append(comment_stream{}, "t-1", 0, comment_added{"t-1", "looks \"bad\"", 3});

    // Through a separate sqlite3 handle, as `sqlite3 app.db` would see it.
    sqlite_test::raw_db raw(file, SQLITE_OPEN_READONLY);
    const auto rows = raw.rows(
        "SELECT type, payload, typeof(payload), stream, aggregate_id, aggregate_version, recorded_at "
        "FROM events ORDER BY position");
    REQUIRE(rows.size() == 2);
    CHECK(rows[0][0] == "ticket.registered");
    CHECK(rows[0][1] == R"({"ticket_id":"t-1","type":"incident"})");
    CHECK(rows[0][2] == "text");
    CHECK(rows[0][3] == "ticket");
    CHECK(rows[0][4] == "t-1");
    CHECK(rows[0][5] == "1");
    const std::string recorded = rows[0][6].value_or("");
    CHECK(recorded.size() == 24);  // 2024-01-02T03:04:05.678Z
    CHECK(recorded.find('T') == 10);
    CHECK(recorded.back() == 'Z');
    CHECK(rows[1][0] == "comment.added");
    CHECK_THAT(rows[1][1].value_or(""), Contains(R"("text":"looks \"bad\"")") && Contains(R"("votes":3)"));

    // The store's own connection reads the same.
    pj::detail::sqlite::statement s(store.connection(), "SELECT type, payload FROM events WHERE position = 1");
    REQUIRE(s.step());
    CHECK(s.text(0) == "ticket.registered");
    CHECK_THAT(std::string(s.text(1)), Contains(R"("type":"incident")"));
    CHECK(sqlite_test::integrity_ok(file));
}

TEST_CASE("the binary codec stores a BLOB", "[sqlite][store]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("log.db");
    pj::sqlite_event_store store(file, fast);
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "incident"});
    std::string encoded;
    pj::binary_codec::encode(ticket_registered{"t-1", "incident"}, encoded);
    sqlite_test::raw_db raw(file, SQLITE_OPEN_READONLY);
    const auto rows = raw.rows("SELECT type, typeof(payload), payload FROM events");
    REQUIRE(rows.size() == 1);
    CHECK(rows[0][0] == "ticket.registered");
    CHECK(rows[0][1] == "blob");
    CHECK(rows[0][2] == encoded);
    CHECK(sqlite_test::integrity_ok(file));
}

TEMPLATE_TEST_CASE("every string an append accepts reads back byte for byte, UTF-8 or not", "[sqlite][store][codec]",
                   pj::sqlite_event_store, pj::sqlite_json_event_store) {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("log.db");
    // Latin-1, a stray continuation byte, a truncated sequence, an embedded NUL, control bytes.
    const std::vector<std::string> texts{"caf\xe9",
                                         "\x80",
                                         "euro \xe2\x82",
                                         std::string("a\0b", 3),
                                         "\x01\x1f\x7f",
                                         "\xff\xfe\xfd",
                                         "\xc3\xa9t\xc3\xa9 \xf0\x9f\x8e\x9f"};
    {
        TestType store(file, fast);
        for (std::size_t i = 0; i < texts.size(); ++i) {
            const std::string id = "t-" + std::to_string(i);
            store.append(ticket_stream{}, id, 0, ticket_registered{id, texts[i]});
        }
    }
    {
        TestType store(file, fast);
        typename TestType::batch batch;
        store.read(0, 100, batch);
        REQUIRE(batch.size() == texts.size());
        for (std::size_t i = 0; i < texts.size(); ++i) {
            INFO("text " << i);
            std::string type;
            CHECK_NOTHROW(type = store.template event_of<ticket_registered>(batch[i]).type);
            CHECK(type == texts[i]);
        }
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEST_CASE("a log written with one codec is refused by a store of the other", "[sqlite][store]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string binary_file = dir.file("binary.db");
    const std::string json_file = dir.file("json.db");
    {
        pj::sqlite_event_store store(binary_file, fast);
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        pj::sqlite_json_event_store json(json_file, fast);
        json.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    }
    CHECK_THAT(error_of([&] { pj::sqlite_json_event_store s(binary_file, fast); }),
               Contains("encoded with the binary codec") && Contains("uses the json codec") && Contains(binary_file));
    CHECK_THAT(error_of([&] { pj::sqlite_event_store s(json_file, fast); }),
               Contains("encoded with the json codec") && Contains("uses the binary codec"));
    // Both logs still open with their own codec.
    pj::sqlite_event_store binary(binary_file, fast);
    CHECK(binary.head() == 1);
    pj::sqlite_json_event_store json(json_file, fast);
    CHECK(json.head() == 1);
    CHECK(sqlite_test::integrity_ok(binary_file));
    CHECK(sqlite_test::integrity_ok(json_file));
}

namespace {

/// Every way to open a file with projectionist: both stores and the storage.
const std::vector<std::pair<std::string, std::function<void(const std::string&)>>>& openers() {
    static const std::vector<std::pair<std::string, std::function<void(const std::string&)>>> all{
        {"sqlite_event_store", [](const std::string& f) { pj::sqlite_event_store s(f); }},
        {"sqlite_json_event_store", [](const std::string& f) { pj::sqlite_json_event_store s(f); }},
        {"sqlite_storage", [](const std::string& f) { pj::sqlite_storage s(f); }},
    };
    return all;
}

bool exists(const std::string& file) {
    return std::filesystem::exists(file);
}

/// Opens `file` every way and checks each refusal says `why` and leaves the file as it was.
void check_refused(const std::string& file, const std::string& why, bool no_side_files) {
    const std::string before = sqlite_test::file_bytes(file);
    REQUIRE_FALSE(before.empty());
    for (const auto& opener : openers()) {
        INFO("opened as " << opener.first);
        const auto& open = opener.second;  // not a structured binding: clang 14 cannot capture those
        CHECK_THAT(error_of([&] { open(file); }), Contains(why) && Contains("nothing was changed"));
        CHECK(sqlite_test::file_bytes(file) == before);
        if (no_side_files) {
            CHECK_FALSE(exists(file + "-wal"));
            CHECK_FALSE(exists(file + "-shm"));
            CHECK_FALSE(exists(file + "-journal"));
        }
    }
}

}  // namespace

TEST_CASE("a file projectionist did not create is refused and left untouched", "[sqlite][store][refusal]") {
    temp_dir dir(sqlite_test::fast_temp_base());
    SECTION("a SQLite database of someone else") {
        const std::string file = dir.file("foreign.db");
        {
            sqlite_test::raw_db raw(file);
            raw.exec("CREATE TABLE foo(x INTEGER); INSERT INTO foo VALUES (42);");
        }
        check_refused(file, "projectionist did not create", true);
        sqlite_test::raw_db raw(file, SQLITE_OPEN_READONLY);
        CHECK(raw.int64("SELECT x FROM foo") == 42);
        CHECK(raw.int64("SELECT count(*) FROM sqlite_schema") == 1);
        CHECK(raw.int64("PRAGMA application_id") == 0);
        CHECK(sqlite_test::integrity_ok(file));
    }
    SECTION("a projectionist file of a newer schema version") {
        const std::string file = dir.file("newer.db");
        {
            pj::sqlite_event_store store(file, fast);
            store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        }
        {
            sqlite_test::raw_db raw(file);
            raw.exec("PRAGMA user_version = 99");
        }
        check_refused(file, "schema version 99", false);
        sqlite_test::raw_db raw(file, SQLITE_OPEN_READONLY);
        CHECK(raw.int64("PRAGMA user_version") == 99);
        CHECK(sqlite_test::integrity_ok(file));
    }
    SECTION("a file that is not SQLite at all") {
        const std::string file = dir.file("notes.txt");
        {
            std::ofstream out(file, std::ios::binary);
            for (int i = 0; i < 40; ++i) out << "line " << i << ": this is a text file, not a database\n";
        }
        check_refused(file, "not a SQLite database", true);
    }
    SECTION("a SQLite database of another application") {
        const std::string file = dir.file("other.db");
        {
            sqlite_test::raw_db raw(file);
            raw.exec("PRAGMA application_id = 305419896");  // 0x12345678, and no tables
        }
        check_refused(file, "belongs to another application", true);
        CHECK_THAT(error_of([&] { pj::sqlite_storage s(file); }), Contains("0x12345678"));
        sqlite_test::raw_db raw(file, SQLITE_OPEN_READONLY);
        CHECK(raw.int64("SELECT count(*) FROM sqlite_schema") == 0);
        CHECK(sqlite_test::integrity_ok(file));
    }
}

TEMPLATE_TEST_CASE("options: WAL always, synchronous FULL by default and NORMAL on request", "[sqlite][store]",
                   pj::sqlite_event_store, pj::sqlite_json_event_store) {
    temp_dir dir(sqlite_test::fast_temp_base());
    {
        TestType store(dir.file("full.db"));
        pj::detail::sqlite::statement mode(store.connection(), "PRAGMA journal_mode");
        REQUIRE(mode.step());
        CHECK(mode.text(0) == "wal");
        CHECK(pj::detail::sqlite::pragma_int(store.connection(), "synchronous") == 2);
        CHECK(pj::detail::sqlite::pragma_int(store.connection(), "busy_timeout") == 5000);
        CHECK(store.options().synchronous == pj::sqlite_synchronous::full);
    }
    {
        pj::sqlite_options options{pj::sqlite_synchronous::normal, std::chrono::milliseconds(250)};
        TestType store(dir.file("normal.db"), options);
        {
            pj::detail::sqlite::statement mode(store.connection(), "PRAGMA journal_mode");
            REQUIRE(mode.step());
            CHECK(mode.text(0) == "wal");
        }
        CHECK(pj::detail::sqlite::pragma_int(store.connection(), "synchronous") == 1);
        CHECK(pj::detail::sqlite::pragma_int(store.connection(), "busy_timeout") == 250);
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    }
    // The file is projectionist's: application id and schema version are set.
    sqlite_test::raw_db raw(dir.file("normal.db"), SQLITE_OPEN_READONLY);
    CHECK(raw.int64("PRAGMA application_id") == pj::detail::sqlite::application_id);
    CHECK(raw.int64("PRAGMA user_version") == pj::detail::sqlite::schema_version);
    CHECK(raw.text("PRAGMA journal_mode") == "wal");
    CHECK(sqlite_test::integrity_ok(dir.file("full.db")));
    CHECK(sqlite_test::integrity_ok(dir.file("normal.db")));
}

TEMPLATE_TEST_CASE("a payload beyond max_payload_bytes, or corrupt, is a codec_error", "[sqlite][store][codec]",
                   pj::sqlite_event_store, pj::sqlite_json_event_store) {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("log.db");
    {
        TestType writer(file, fast);
        writer.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        writer.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", std::string(200, 'x')});
        writer.append(ticket_stream{}, "t-3", 0, ticket_registered{"t-3", "task"}, ticket_closed{"t-3"});

        pj::sqlite_options small = fast;
        small.max_payload_bytes = 64;
        TestType limited(file, small);
        typename TestType::batch batch;
        limited.read(0, 10, batch);
        REQUIRE(batch.size() == 4);
        CHECK(limited.template event_of<ticket_registered>(batch[0]).type == "bug");
        const std::size_t size = batch[1].payload().size();
        CHECK(size > 200);
        CHECK_THROWS_AS(limited.template event_of<ticket_registered>(batch[1]), pj::codec_error);
        CHECK_THROWS_WITH(limited.template event_of<ticket_registered>(batch[1]),
                          Contains("payload of " + std::to_string(size) + " bytes") && Contains("limit of 64 bytes"));
        // The default limit (16 MiB) lets it through.
        CHECK(writer.template event_of<ticket_registered>(batch[1]).type == std::string(200, 'x'));

        // A truncated payload, written behind the store's back.
        writer.connection().exec("UPDATE projectionist_events SET payload = substr(payload, 1, 3) WHERE position = 3");
        writer.read(0, 10, batch);
        REQUIRE(batch.size() == 4);
        CHECK(batch[2].payload().size() == 3);
        CHECK_THROWS_AS(writer.template event_of<ticket_registered>(batch[2]), pj::codec_error);
        CHECK_THROWS_WITH(writer.template event_of<ticket_registered>(batch[2]), Contains("payload"));
        CHECK(writer.template event_of<ticket_closed>(batch[3]).ticket_id == "t-3");  // its neighbour is fine
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEMPLATE_TEST_CASE("a payload the runner cannot decode stops the projection at its last committed position",
                   "[sqlite][store][runner]", pj::sqlite_event_store, pj::sqlite_json_event_store) {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("app.db");
    {
        TestType writer(file, fast);
        for (int i = 1; i <= 3; ++i) {
            const std::string id = "t-" + std::to_string(i);
            writer.append(ticket_stream{}, id, 0, ticket_registered{id, "bug"});
        }
        writer.append(ticket_stream{}, "t-4", 0, ticket_registered{"t-4", std::string(300, 'y')});  // 4
        writer.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});                             // 5
    }
    std::string reason_part;
    pj::sqlite_options options = fast;
    SECTION("a payload over the size limit") {
        options.max_payload_bytes = 100;
        reason_part = "exceeds the limit of 100 bytes";
    }
    SECTION("a truncated payload") {
        sqlite_test::raw_db raw(file);
        raw.exec("UPDATE projectionist_events SET payload = substr(payload, 1, 5) WHERE position = 4");
        reason_part = "payload";
    }
    {
        TestType store(file, options);
        pj::sqlite_storage storage(file, fast);
        // Batches of 2: {1, 2} commits; {3, 4} inserts t-3, then fails on 4 and is rolled back.
        pj::runner<tickets<2>, pj::sqlite_storage, TestType> r(store, storage, pj::runner_options{2});
        try {
            r.catch_up();
            FAIL("the undecodable payload was applied");
        } catch (const pj::projection_error& e) {
            CHECK_THAT(e.what(), Contains("tickets_v2") && Contains("position 4") && Contains("aggregate 't-4'") &&
                                     Contains("ticket.registered") && Contains(reason_part));
            CHECK(e.context().position == 4u);
            CHECK(e.context().aggregate_id == "t-4");
            CHECK(e.context().event_type == "ticket.registered");
            CHECK_THAT(e.reason(), Contains(reason_part));
        }
        CHECK(r.position() == 2);
        auto table = storage.find_table<tickets<2>::table>("tickets_v2");
        REQUIRE(table.has_value());
        CHECK(table->size() == 2);
        CHECK(table->contains("t-1"));
        CHECK(table->contains("t-2"));
        CHECK_FALSE(table->contains("t-3"));
        CHECK_FALSE(table->contains("t-4"));
        sqlite_test::raw_db raw(file, SQLITE_OPEN_READONLY);
        CHECK(raw.int64("SELECT position FROM projectionist_checkpoints WHERE projection = 'tickets_v2'") == 2);
        CHECK(r.status().error.has_value());
    }
    CHECK(sqlite_test::integrity_ok(file));
}

TEMPLATE_TEST_CASE("an older schema version is upcast; a newer one is a codec_error naming it",
                   "[sqlite][store][schema]", pj::sqlite_event_store, pj::sqlite_json_event_store) {
    temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("log.db");
    {
        TestType store(file, fast);
        store.append(notes_v1{}, "t-1", 0, noted_v1{"t-1", "urgent!"});   // stored at schema version 1
        store.append(notes_v2{}, "t-1", 1, noted{"t-1", "calm", 5});      // version 2
        store.append(notes_v3{}, "t-1", 2, noted_v3{"t-1", {"a", "b"}});  // version 3, from a newer build
    }
    {
        TestType store(file, fast);
        typename TestType::batch batch;
        store.read(0, 10, batch);
        REQUIRE(batch.size() == 3);
        CHECK(batch[0].schema_version() == 1);
        CHECK(batch[1].schema_version() == 2);
        CHECK(batch[2].schema_version() == 3);
        CHECK(batch[0].type_id() == batch[1].type_id());  // one stored name, one type
        CHECK(batch[1].type_id() == batch[2].type_id());
        CHECK(store.type_count() == 1);
        CHECK(batch[0].type_name() == "ticket.noted");

        CHECK(store.template event_of<noted>(batch[0]) == noted{"t-1", "urgent!", 1});  // upcast
        CHECK(store.template event_of<noted>(batch[1]) == noted{"t-1", "calm", 5});
        CHECK(store.template event_of<noted_v1>(batch[0]).text == "urgent!");
        CHECK_THROWS_AS(store.template event_of<noted>(batch[2]), pj::codec_error);
        CHECK_THROWS_WITH(store.template event_of<noted>(batch[2]), Contains("unsupported schema version 3"));
        CHECK_THROWS_WITH(store.template event_of<noted_v1>(batch[1]), Contains("unsupported schema version 2"));
    }
    CHECK(sqlite_test::integrity_ok(file));
}
