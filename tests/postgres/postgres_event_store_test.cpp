// The PostgreSQL event log, against a real server: optimistic appends, global and per-aggregate
// reads, interning, several store objects and a second process on one log, the JSON log as
// jsonb, refusal of schemas that are not ours (without touching them), quoted identifiers,
// options, the payload size limit, corruption, schema versions, and the runner reading it.

#include <catch2/catch.hpp>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/hana/define_struct.hpp>

#include <postgres_test_support.hpp>
#include <projectionist/projectionist.hpp>
#include <projectionist/store/postgres_event_store.hpp>
#include <tickets_domain.hpp>

namespace pj = projectionist;
using namespace tickets_domain;
using Catch::Contains;
using postgres_test::pg_url;
using postgres_test::scoped_schema;

namespace {

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

/// One integer from SQL on a store's own connection (search_path is the store's schema).
std::int64_t scalar(pj::detail::pg::connection& db, const std::string& sql) {
    return postgres_test::scalar(db, sql);
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

/// Every table, view and sequence of a schema with its row count where it has rows, and the
/// marker's content: a fingerprint that a refused open must leave as it was.
std::string fingerprint(pj::detail::pg::connection& db, const std::string& schema) {
    pj::detail::pg::params p;
    p.add(schema);
    auto r = db.query(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 ORDER BY c.relname",
        p);
    std::string out;
    for (int i = 0; i < r.rows(); ++i) {
        const std::string name(r.text(i, 0));
        out += name + ":" + std::string(r.text(i, 1));
        if (r.text(i, 1) == "r")
            out +=
                "=" + std::to_string(postgres_test::scalar(db, "SELECT count(*) FROM " + pj::detail::pg::quote(schema) +
                                                                   "." + pj::detail::pg::quote(name)));
        out += ";";
    }
    return out;
}

}  // namespace

TEMPLATE_TEST_CASE("an append checks the expected version, and a conflict writes nothing", "[postgres][store]",
                   pj::postgres_event_store, pj::postgres_json_event_store) {
    scoped_schema schema;
    TestType store(pg_url(), schema.options());
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
    CHECK_FALSE(store.connection().in_transaction());  // the refused appends were rolled back

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
    const auto r5 = store.append(ticket_stream{}, "t-3", pj::expected_version::any(), ticket_registered{"t-3", "x"});
    CHECK(r5.first_position == 6);
    CHECK(r5.version == 1);
    CHECK(store.append(ticket_stream{}, "t-1", 4, ticket_reopened{"t-1"}).version == 5);
    CHECK(store.head() == 7);
}

TEMPLATE_TEST_CASE("a multi-event append is atomic and gets consecutive positions", "[postgres][store]",
                   pj::postgres_event_store, pj::postgres_json_event_store) {
    scoped_schema schema;
    TestType store(pg_url(), schema.options());
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    // The second event of the next append (aggregate version 3) is refused by the database.
    store.connection().exec(
        "CREATE FUNCTION refuse_version_3() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.aggregate_version = 3 THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$; "
        "CREATE TRIGGER refuse_version_3 BEFORE INSERT ON projectionist_events FOR EACH ROW "
        "EXECUTE FUNCTION refuse_version_3()");
    CHECK_THROWS_WITH(
        store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}, ticket_reopened{"t-1"}, ticket_closed{"t-1"}),
        Contains("refused by the test"));
    CHECK_FALSE(store.connection().in_transaction());
    CHECK(store.head() == 1);
    CHECK(store.version_of(ticket_stream{}, "t-1") == 1);
    CHECK(store.type_count() == 1);  // the types of the failed append were rolled back too
    CHECK(scalar(store.connection(), "SELECT count(*) FROM projectionist_events") == 1);
    CHECK(scalar(store.connection(), "SELECT count(*) FROM projectionist_event_types") == 1);

    // The store is still usable after the failure, and the rollback left no hole in positions.
    store.connection().exec("DROP TRIGGER refuse_version_3 ON projectionist_events");
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

TEMPLATE_TEST_CASE("inside an open transaction an append is a savepoint of it", "[postgres][store]",
                   pj::postgres_event_store, pj::postgres_json_event_store) {
    scoped_schema schema;
    {
        TestType store(pg_url(), schema.options());
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        store.connection().exec("BEGIN");
        CHECK(store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}).first_position == 2);
        CHECK_THROWS_AS(store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}), pj::version_conflict);
        CHECK(store.connection().in_transaction());  // the outer transaction is still open, and usable
        CHECK(store.head() == 2);
        store.connection().exec("ROLLBACK");
        CHECK(store.head() == 1);
        CHECK(store.version_of(ticket_stream{}, "t-1") == 1);
        store.connection().exec("BEGIN");
        store.append(ticket_stream{}, "t-1", 1, ticket_reopened{"t-1"});
        store.connection().exec("COMMIT");
    }
    TestType reopened(pg_url(), schema.options());
    CHECK(reopened.head() == 2);
    CHECK(reopened.version_of(ticket_stream{}, "t-1") == 2);
}

TEMPLATE_TEST_CASE("read returns records in global order, in batches, with every accessor", "[postgres][store]",
                   pj::postgres_event_store, pj::postgres_json_event_store) {
    scoped_schema schema;
    TestType store(pg_url(), schema.options());
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
    store.read(0, static_cast<std::size_t>(-1), batch);  // "everything": no overflow in LIMIT
    CHECK(batch.size() == 6);

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

TEMPLATE_TEST_CASE("read_aggregate, version_of and dense aggregate numbers per (stream, aggregate id)",
                   "[postgres][store]", pj::postgres_event_store, pj::postgres_json_event_store) {
    scoped_schema schema;
    TestType store(pg_url(), schema.options());
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

TEMPLATE_TEST_CASE("two store objects on one log see and interleave each other's appends", "[postgres][store]",
                   pj::postgres_event_store, pj::postgres_json_event_store) {
    scoped_schema schema;
    TestType a(pg_url(), schema.options());
    TestType b(pg_url(), schema.options());
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

    const std::vector<std::pair<std::uint64_t, std::uint64_t>> expected{{1, 1}, {2, 2}, {3, 3}, {4, 1}, {5, 2}, {6, 4}};
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

    // A conflict across connections: the second writer at the same version fails.
    const std::uint64_t va = a.version_of(ticket_stream{}, "t-2");
    const std::uint64_t vb = b.version_of(ticket_stream{}, "t-2");
    REQUIRE(va == 2);
    REQUIRE(vb == 2);
    CHECK(a.append(ticket_stream{}, "t-2", va, ticket_reopened{"t-2"}).version == 3);
    try {
        b.append(ticket_stream{}, "t-2", vb, ticket_reopened{"t-2"});
        FAIL("the second writer's append was accepted");
    } catch (const pj::version_conflict& e) {
        CHECK(e.expected() == 2);
        CHECK(e.actual() == 3);
    }
    CHECK(b.head() == 7);
    CHECK(b.append(ticket_stream{}, "t-5", 0, ticket_registered{"t-5", "bug"}).version == 1);
    CHECK_THROWS_AS(a.append(ticket_stream{}, "t-5", 0, ticket_registered{"t-5", "bug"}), pj::version_conflict);
    CHECK(a.head() == 8);
}

TEMPLATE_TEST_CASE("a second process appends through its own store; the parent reads every event", "[postgres][store]",
                   pj::postgres_event_store, pj::postgres_json_event_store) {
    scoped_schema schema;
    constexpr int child_tickets = 20;  // the child appends two events per ticket
    {
        TestType store(pg_url(), schema.options());
        store.append(ticket_stream{}, "parent", 0, ticket_registered{"parent", "bug"});
    }
    const std::string url = pg_url();
    const pid_t pid = fork();  // the child opens its own connections; it never uses the parent's
    REQUIRE(pid >= 0);
    if (pid == 0) {
        alarm(20);  // a stuck child dies instead of hanging the test
        int status = 0;
        try {
            TestType store(url, schema.options());
            for (int i = 0; i < child_tickets; ++i) {
                const std::string id = "child-" + std::to_string(i);
                store.append(ticket_stream{}, id, 0, ticket_registered{id, "task"}, ticket_closed{id});
            }
            store.append(ticket_stream{}, "parent", 1, ticket_closed{"parent"});
        } catch (...) {
            status = 1;
        }
        _exit(status);  // no destructors: the parent's connection (inherited socket) stays untouched
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);

    TestType store(pg_url(), schema.options());
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
    }
    CHECK(store.append(ticket_stream{}, "parent", 2, ticket_reopened{"parent"}).version == 3);
}

TEST_CASE("with the JSON codec the log is jsonb, queryable through the events view", "[postgres][store][json]") {
    scoped_schema schema;
    pj::postgres_json_event_store store(pg_url(), schema.options());
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "incident"});
    store.append(comment_stream{}, "t-1", 0, comment_added{"t-1", "looks \"bad\"", 3});

    // Through a separate connection, as psql would see it.
    auto& raw = schema.connection();
    auto rows = raw.query(
        "SELECT type, payload_json->>'type', pg_typeof(payload_json)::text, payload IS NULL, stream, "
        "aggregate_id, aggregate_version, to_char(recorded_at, 'YYYY') FROM " +
        schema.quoted() + ".events ORDER BY position");
    REQUIRE(rows.rows() == 2);
    CHECK(rows.text(0, 0) == "ticket.registered");
    CHECK(rows.text(0, 1) == "incident");
    CHECK(rows.text(0, 2) == "jsonb");
    CHECK(rows.text(0, 3) == "t");  // stored once: not also as bytea
    CHECK(rows.text(0, 4) == "ticket");
    CHECK(rows.text(0, 5) == "t-1");
    CHECK(rows.text(0, 6) == "1");
    CHECK(rows.int64(0, 7) >= 2024);
    CHECK(rows.text(1, 0) == "comment.added");
    CHECK(postgres_test::scalar(raw, "SELECT (payload_json->>'votes')::int FROM " + schema.quoted() +
                                         ".events WHERE type = 'comment.added'") == 3);
    CHECK(postgres_test::scalar(raw, "SELECT count(*) FROM " + schema.quoted() +
                                         ".events WHERE payload_json @> '{\"text\": \"looks \\\"bad\\\"\"}'") == 1);
}

TEST_CASE("the binary codec stores bytea, byte for byte", "[postgres][store]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "incident"});
    std::string encoded;
    pj::binary_codec::encode(ticket_registered{"t-1", "incident"}, encoded);
    auto rows = schema.connection().query("SELECT type, pg_typeof(payload)::text, payload, payload_json IS NULL FROM " +
                                          schema.quoted() + ".events");
    REQUIRE(rows.rows() == 1);
    CHECK(rows.text(0, 0) == "ticket.registered");
    CHECK(rows.text(0, 1) == "bytea");
    CHECK(rows.bytea(0, 2) == encoded);
    CHECK(rows.text(0, 3) == "t");
}

TEST_CASE("every string reads back byte for byte with the binary codec; jsonb refuses what it cannot hold",
          "[postgres][store][codec]") {
    scoped_schema schema;
    // Latin-1, a stray continuation byte, a truncated sequence, an embedded NUL, control bytes.
    const std::vector<std::string> texts{"caf\xe9",
                                         "\x80",
                                         "euro \xe2\x82",
                                         std::string("a\0b", 3),
                                         "\x01\x1f\x7f",
                                         "\xff\xfe\xfd",
                                         "\xc3\xa9t\xc3\xa9 \xf0\x9f\x8e\x9f"};
    {
        pj::postgres_event_store store(pg_url(), schema.options());
        for (std::size_t i = 0; i < texts.size(); ++i) {
            const std::string id = "t-" + std::to_string(i);
            store.append(ticket_stream{}, id, 0, ticket_registered{id, texts[i]});
        }
        pj::postgres_event_store::batch batch;
        store.read(0, 100, batch);
        REQUIRE(batch.size() == texts.size());
        for (std::size_t i = 0; i < texts.size(); ++i) {
            INFO("text " << i);
            CHECK(store.event_of<ticket_registered>(batch[i]).type == texts[i]);
        }
    }
    scoped_schema json_schema;
    pj::postgres_json_event_store json(pg_url(), json_schema.options());
    // Valid UTF-8 and control characters round-trip through jsonb.
    json.append(ticket_stream{}, "ok-1", 0, ticket_registered{"ok-1", texts[6]});
    json.append(ticket_stream{}, "ok-2", 0, ticket_registered{"ok-2", texts[4]});
    // Invalid UTF-8 and NUL cannot be jsonb: the append fails, naming the event, and writes nothing.
    for (const std::size_t i : {std::size_t{0}, std::size_t{3}, std::size_t{5}}) {
        INFO("text " << i);
        CHECK_THAT(error_of([&] {
                       json.append(ticket_stream{}, "bad", 0, ticket_registered{"bad", texts[i]});
                   }),
                   Contains("event 'ticket.registered'") && Contains("aggregate 'bad'") && Contains("json codec") &&
                       Contains("nothing was appended"));
        CHECK_FALSE(json.connection().in_transaction());
    }
    CHECK(json.head() == 2);
    CHECK(json.version_of(ticket_stream{}, "bad") == 0);
    pj::postgres_json_event_store::batch batch;
    json.read(0, 10, batch);
    REQUIRE(batch.size() == 2);
    CHECK(json.event_of<ticket_registered>(batch[0]).type == texts[6]);
    CHECK(json.event_of<ticket_registered>(batch[1]).type == texts[4]);
}

TEST_CASE("a log written with one codec is refused by a store of the other", "[postgres][store]") {
    scoped_schema binary_schema;
    scoped_schema json_schema;
    {
        pj::postgres_event_store store(pg_url(), binary_schema.options());
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        pj::postgres_json_event_store json(pg_url(), json_schema.options());
        json.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    }
    CHECK_THAT(
        error_of([&] { pj::postgres_json_event_store s(pg_url(), binary_schema.options()); }),
        Contains("encoded with the binary codec") && Contains("uses the json codec") && Contains(binary_schema.name()));
    CHECK_THAT(error_of([&] { pj::postgres_event_store s(pg_url(), json_schema.options()); }),
               Contains("encoded with the json codec") && Contains("uses the binary codec"));
    pj::postgres_event_store binary(pg_url(), binary_schema.options());
    CHECK(binary.head() == 1);
    pj::postgres_json_event_store json(pg_url(), json_schema.options());
    CHECK(json.head() == 1);
}

TEST_CASE("a schema projectionist did not create, or of a newer version, is refused and left untouched",
          "[postgres][store][refusal]") {
    scoped_schema schema;
    auto& raw = schema.connection();
    const std::vector<std::pair<std::string, std::function<void()>>> openers{
        {"postgres_event_store", [&] { pj::postgres_event_store s(pg_url(), schema.options()); }},
        {"postgres_json_event_store", [&] { pj::postgres_json_event_store s(pg_url(), schema.options()); }},
        {"open_database", [&] { pj::detail::pg::open_database(pg_url(), schema.options()); }},
    };
    auto check_refused = [&](const std::string& why) {
        const std::string before = fingerprint(raw, schema.name());
        REQUIRE_FALSE(before.empty());
        for (const auto& opener : openers) {
            INFO("opened as " << opener.first);
            CHECK_THAT(error_of(opener.second),
                       Contains(why) && Contains(schema.quoted()) && Contains("nothing was changed"));
            CHECK(fingerprint(raw, schema.name()) == before);
        }
    };
    SECTION("a schema of someone else's tables") {
        raw.exec("CREATE TABLE " + schema.quoted() + ".foo(x integer); INSERT INTO " + schema.quoted() +
                 ".foo VALUES (42)");
        check_refused("not created by projectionist");
        CHECK(postgres_test::scalar(raw, "SELECT x FROM " + schema.quoted() + ".foo") == 42);
    }
    SECTION("a schema of someone else's view or sequence") {
        raw.exec("CREATE SEQUENCE " + schema.quoted() + ".ids");
        check_refused("not created by projectionist");
    }
    SECTION("a projectionist schema of a newer version") {
        {
            pj::postgres_event_store store(pg_url(), schema.options());
            store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        }
        raw.exec("UPDATE " + schema.quoted() + ".projectionist_schema SET version = 99");
        check_refused("projectionist schema version 99");
        CHECK(postgres_test::scalar(raw, "SELECT version FROM " + schema.quoted() + ".projectionist_schema") == 99);
        CHECK(postgres_test::scalar(raw, "SELECT count(*) FROM " + schema.quoted() + ".projectionist_events") == 1);
    }
    SECTION("a marker of another application") {
        raw.exec("CREATE TABLE " + schema.quoted() +
                 ".projectionist_schema(application text, version int); INSERT "
                 "INTO " +
                 schema.quoted() + ".projectionist_schema VALUES ('someone-else', 1)");
        check_refused("belongs to another application");
    }
}

TEST_CASE("an empty schema is created on first use, once, even by processes that start together", "[postgres][store]") {
    scoped_schema schema;  // created by the test support, empty
    schema.connection().exec("DROP SCHEMA " + schema.quoted());
    constexpr int openers = 6;
    std::vector<std::jthread> threads;
    std::mutex failures_mutex;
    std::vector<std::string> failures;  // Catch's macros are not for other threads: collected here
    for (int i = 0; i < openers; ++i)
        threads.emplace_back([&] {
            try {
                pj::postgres_event_store store(pg_url(), schema.options());
            } catch (const std::exception& e) {
                std::lock_guard lock(failures_mutex);
                failures.emplace_back(e.what());
            }
        });
    threads.clear();
    for (const auto& f : failures) UNSCOPED_INFO(f);
    CHECK(failures.empty());
    auto& raw = schema.connection();
    CHECK(postgres_test::scalar(raw, "SELECT count(*) FROM " + schema.quoted() + ".projectionist_schema") == 1);
    CHECK(postgres_test::scalar(raw, "SELECT version FROM " + schema.quoted() + ".projectionist_schema") ==
          pj::detail::pg::schema_version);
    CHECK(postgres_test::scalar(raw, "SELECT count(*) FROM " + schema.quoted() + ".projectionist_settings") == 1);
}

TEST_CASE("identifiers are quoted: schema names with quotes, capitals, spaces and dots work",
          "[postgres][store][quoting]") {
    for (const std::string stem : {"Tickets", "o\"brien", "a b.c", "select"}) {
        INFO("schema stem " << stem);
        scoped_schema schema(stem);
        REQUIRE(schema.name().starts_with(stem));
        {
            pj::postgres_event_store store(pg_url(), schema.options());
            store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
            store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});
            CHECK(store.head() == 2);
            CHECK(store.version_of(ticket_stream{}, "t-1") == 2);
            pj::postgres_event_store::batch batch;
            store.read(0, 10, batch);
            REQUIRE(batch.size() == 2);
            CHECK(store.event_of<ticket_registered>(batch[0]).type == "bug");
            // The schema's search_path is set too: handlers' own SQL finds the tables unqualified.
            CHECK(scalar(store.connection(), "SELECT count(*) FROM projectionist_events") == 2);
            CHECK(store.same_database(schema.connection()));
        }
        CHECK(postgres_test::scalar(schema.connection(),
                                    "SELECT count(*) FROM " + schema.quoted() + ".projectionist_events") == 2);
        pj::postgres_event_store reopened(pg_url(), schema.options());
        CHECK(reopened.head() == 2);
    }
}

TEST_CASE("options: lock_timeout and synchronous_commit are set on the connection", "[postgres][store]") {
    scoped_schema schema;
    {
        pj::postgres_event_store store(pg_url(), schema.options());
        CHECK(store.connection().query("SHOW lock_timeout").text(0, 0) == "5s");
        CHECK(store.connection().query("SHOW synchronous_commit").text(0, 0) == "on");
        CHECK(store.connection().query("SELECT current_schema()").text(0, 0) == schema.name());
    }
    pj::postgres_options options = schema.options();
    options.lock_timeout = std::chrono::milliseconds(250);
    options.synchronous_commit = false;
    pj::postgres_event_store store(pg_url(), options);
    CHECK(store.connection().query("SHOW lock_timeout").text(0, 0) == "250ms");
    CHECK(store.connection().query("SHOW synchronous_commit").text(0, 0) == "off");
    CHECK(store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"}).version == 1);
}

TEMPLATE_TEST_CASE("a payload beyond max_payload_bytes, or corrupt, is a codec_error", "[postgres][store][codec]",
                   pj::postgres_event_store, pj::postgres_json_event_store) {
    scoped_schema schema;
    TestType writer(pg_url(), schema.options());
    writer.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    writer.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", std::string(200, 'x')});
    writer.append(ticket_stream{}, "t-3", 0, ticket_registered{"t-3", "task"}, ticket_closed{"t-3"});

    pj::postgres_options small = schema.options();
    small.max_payload_bytes = 64;
    TestType limited(pg_url(), small);
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

    // A truncated (binary) or incomplete (JSON) payload, written behind the store's back.
    if constexpr (TestType::codec::text)
        writer.connection().exec(
            "UPDATE projectionist_events SET payload_json = '{\"ticket_id\": \"t-3\"}' WHERE position = 3");
    else
        writer.connection().exec("UPDATE projectionist_events SET payload = substr(payload, 1, 3) WHERE position = 3");
    writer.read(0, 10, batch);
    REQUIRE(batch.size() == 4);
    CHECK_THROWS_AS(writer.template event_of<ticket_registered>(batch[2]), pj::codec_error);
    CHECK_THROWS_WITH(writer.template event_of<ticket_registered>(batch[2]), Contains("payload"));
    CHECK(writer.template event_of<ticket_closed>(batch[3]).ticket_id == "t-3");  // its neighbour is fine
}

TEMPLATE_TEST_CASE("a payload the runner cannot decode stops the projection at its last committed position",
                   "[postgres][store][runner]", pj::postgres_event_store, pj::postgres_json_event_store) {
    scoped_schema schema;
    {
        TestType writer(pg_url(), schema.options());
        for (int i = 1; i <= 3; ++i) {
            const std::string id = "t-" + std::to_string(i);
            writer.append(ticket_stream{}, id, 0, ticket_registered{id, "bug"});
        }
        writer.append(ticket_stream{}, "t-4", 0, ticket_registered{"t-4", std::string(300, 'y')});  // 4
        writer.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});                             // 5
    }
    std::string reason_part;
    pj::postgres_options options = schema.options();
    SECTION("a payload over the size limit") {
        options.max_payload_bytes = 100;
        reason_part = "exceeds the limit of 100 bytes";
    }
    SECTION("a corrupt payload") {
        schema.connection().exec(
            "UPDATE " + schema.quoted() + ".projectionist_events SET " +
            (TestType::codec::text ? "payload_json = '[1, 2]'" : "payload = substr(payload, 1, 5)") +
            " WHERE position = 4");
        reason_part = "payload";
    }
    TestType store(pg_url(), options);
    pj::memory_storage storage;
    // Batches of 2: {1, 2} commits; {3, 4} inserts t-3, then fails on 4 and is rolled back.
    pj::runner<tickets<2>, pj::memory_storage, TestType> r(store, storage, pj::runner_options{2});
    try {
        r.catch_up();
        FAIL("the undecodable payload was applied");
    } catch (const pj::projection_error& e) {
        CHECK_THAT(e.what(), Contains("tickets_v2") && Contains("position 4") && Contains("aggregate 't-4'") &&
                                 Contains("ticket.registered") && Contains(reason_part));
        CHECK(e.context().position == 4u);
        CHECK(e.context().aggregate_id == "t-4");
        CHECK(e.context().event_type == "ticket.registered");
    }
    CHECK(r.position() == 2);
    auto* table = storage.find_table<tickets<2>::table>("tickets_v2");
    REQUIRE(table != nullptr);
    CHECK(table->size() == 2);
    CHECK(table->contains("t-1"));
    CHECK(table->contains("t-2"));
    CHECK_FALSE(table->contains("t-3"));
    CHECK_FALSE(table->contains("t-4"));
}

TEMPLATE_TEST_CASE("an older schema version is upcast; a newer one is a codec_error naming it",
                   "[postgres][store][schema]", pj::postgres_event_store, pj::postgres_json_event_store) {
    scoped_schema schema;
    {
        TestType store(pg_url(), schema.options());
        store.append(notes_v1{}, "t-1", 0, noted_v1{"t-1", "urgent!"});   // stored at schema version 1
        store.append(notes_v2{}, "t-1", 1, noted{"t-1", "calm", 5});      // version 2
        store.append(notes_v3{}, "t-1", 2, noted_v3{"t-1", {"a", "b"}});  // version 3, from a newer build
    }
    TestType store(pg_url(), schema.options());
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

TEST_CASE("a writer on another connection appends in that connection's transaction", "[postgres][store]") {
    scoped_schema schema;
    scoped_schema other_schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    // The storage's connection: the same database, another schema, its own transaction.
    auto session = pj::detail::pg::open_database(pg_url(), other_schema.options());
    REQUIRE(store.same_database(session));
    auto writer = store.writer_on(session);
    session.exec("BEGIN");
    CHECK(writer.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"}).first_position == 1);
    CHECK(store.head() == 0);  // not committed yet
    session.exec("ROLLBACK");
    CHECK(store.head() == 0);
    session.exec("BEGIN");
    CHECK(writer.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"}).first_position == 1);
    session.exec("COMMIT");
    CHECK(store.head() == 1);
    CHECK(store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}).first_position == 2);
    CHECK(writer.append(ticket_stream{}, "t-1", 2, ticket_reopened{"t-1"}).first_position == 3);  // autocommit
    CHECK(positions_and_versions(store) ==
          std::vector<std::pair<std::uint64_t, std::uint64_t>>{{1, 1}, {2, 2}, {3, 3}});
    // Nothing landed in the session's own schema.
    CHECK(scalar(session, "SELECT count(*) FROM projectionist_events") == 0);
}

TEST_CASE("same_database tells another server or database apart", "[postgres][store]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    auto& raw = schema.connection();
    CHECK(store.same_database(raw));
    const std::string db = "pj_other_db_" + std::to_string(::getpid());
    raw.exec("DROP DATABASE IF EXISTS " + pj::detail::pg::quote(db));
    raw.exec("CREATE DATABASE " + pj::detail::pg::quote(db));
    {
        // The URL's database part replaced: postgresql://user@host:port/<db>.
        std::string url = pg_url();
        const auto slash = url.rfind('/');
        REQUIRE(slash != std::string::npos);
        url = url.substr(0, slash + 1) + db;
        pj::detail::pg::connection other(url);
        CHECK_FALSE(store.same_database(other));
    }
    raw.exec("DROP DATABASE " + pj::detail::pg::quote(db));
}

TEST_CASE("wait_for_events wakes on a commit from another connection, and times out without one",
          "[postgres][store][wait]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    pj::postgres_event_store other(pg_url(), schema.options());
    std::stop_source stop;
    auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(store.wait_for_events(0, std::chrono::milliseconds(200), stop.get_token()));
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(190));

    std::jthread appender([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        other.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    });
    t0 = std::chrono::steady_clock::now();
    CHECK(store.wait_for_events(0, std::chrono::seconds(10), stop.get_token()));
    const auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(waited >= std::chrono::milliseconds(250));
    CHECK(waited < std::chrono::seconds(5));
    appender.join();
    CHECK(store.wait_for_events(0, std::chrono::seconds(10), stop.get_token()));  // already there: at once

    // A stop request ends the wait early.
    std::jthread stopper([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        stop.request_stop();
    });
    t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(store.wait_for_events(1, std::chrono::seconds(10), stop.get_token()));
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}
