// The event store's contract, on the backend the executable was built for (backend_fixture.hpp):
// optimistic appends that write nothing when refused, atomic multi-event appends (also when the
// database fails one part-way, and inside a transaction of the caller's), global and
// per-aggregate reads, interned type ids and aggregate numbers, several store objects and a
// second process on one log, reopening, both codecs, schema versions, bad payloads, and the
// refusal of a database that is not projectionist's or is newer. On memory, the cases that need
// SQL, a database to reopen, another process or a codec are skipped with a WARN naming the
// fixture's flag (backend_fixture.hpp); the others run there too.

#include <backend_suite.hpp>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/hana/define_struct.hpp>

using namespace backend_test;
using Catch::Contains;

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

}  // namespace

// The events of the codec and schema cases, which a backend without a codec (memory) does not
// compile: in a named namespace, so that they are not unused there.
namespace codec_cases {

enum class priority : std::uint8_t { low = 1, high = 2 };
struct line_item {
    BOOST_HANA_DEFINE_STRUCT(line_item, (std::string, sku), (std::optional<std::string>, note), (std::int32_t, qty));
    friend bool operator==(const line_item&, const line_item&) = default;
};
/// Every field type a codec supports.
struct everything {
    BOOST_HANA_DEFINE_STRUCT(everything, (std::string, id), (std::int64_t, big), (std::uint64_t, unsigned_big),
                             (std::int8_t, tiny), (double, ratio), (float, approx), (bool, flag), (priority, prio),
                             (std::vector<line_item>, items), (std::chrono::system_clock::time_point, at),
                             (std::optional<int>, maybe), (std::vector<std::string>, tags));
    static constexpr std::string_view event_name = "everything.happened";
    friend bool operator==(const everything&, const everything&) = default;
};
using everything_stream = pj::stream<"misc", everything>;

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

}  // namespace codec_cases

using namespace codec_cases;

namespace {

/// Every record of the log, as (position, aggregate version) pairs.
template <class Store>
std::vector<std::pair<std::uint64_t, std::uint64_t>> positions_and_versions(Store& store) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
    typename Store::batch batch;
    store.read(0, 1000, batch);
    for (const auto& r : batch) out.emplace_back(record_of(r).position(), record_of(r).aggregate_version());
    return out;
}

/// Whether the store's own connection has a transaction open; memory has neither.
template <class Store, class Backend = backend>
bool store_in_transaction(Store& store) {
    if constexpr (Backend::speaks_sql) return Backend::in_transaction(store.connection());
    return false;
}

/// A second store object over the database the fixture's place names.
template <class Store>
struct second_store {
    explicit second_store(backend& fx) : store(fx.make<Store>(fx.at())) {}
    Store store;
};

}  // namespace

TEMPLATE_TEST_CASE("an append checks the expected version, and a refused append writes nothing", "[backend][store]",
                   backend::event_store_type, backend::json_event_store_type) {
    backend fx;
    auto store = fx.make<TestType>(fx.at());
    CHECK(store.head() == 0);
    CHECK(store.version_of(ticket_stream{}, "t-1") == 0);
    CHECK(store.type_count() == 0);
    auto r = store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    CHECK(r.first_position == 1);
    CHECK(r.last_position == 1);
    CHECK(r.version == 1);
    r = store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});
    CHECK(r.first_position == 2);
    CHECK(r.version == 2);

    // At version 2, not 1: refused, and the new event type is not even interned.
    try {
        store.append(ticket_stream{}, "t-1", 1, ticket_reopened{"t-1"});
        FAIL("a stale append went through");
    } catch (const pj::version_conflict& e) {
        CHECK(e.expected() == 1);
        CHECK(e.actual() == 2);
        CHECK(e.context().stream == "ticket");
        CHECK(e.context().aggregate_id == "t-1");
        CHECK_THAT(e.what(), Contains("stream 'ticket'") && Contains("aggregate 't-1'") &&
                                 Contains("expected version 1") && Contains("at version 2") &&
                                 Contains("nothing was appended"));
    }
    // A new aggregate expected at version 3: refused, and not created.
    CHECK_THROWS_AS(store.append(ticket_stream{}, "t-9", 3, ticket_registered{"t-9", "bug"}), pj::version_conflict);
    CHECK_FALSE(store_in_transaction(store));  // the refused appends were rolled back
    CHECK(store.head() == 2);
    CHECK(store.version_of(ticket_stream{}, "t-1") == 2);
    CHECK(store.version_of(ticket_stream{}, "t-9") == 0);
    CHECK_FALSE(store.aggregate_number(ticket_stream{}, "t-9").has_value());
    CHECK(store.type_count() == 2);
    if (backend::speaks_sql) {
        CHECK(fx.scalar("SELECT count(*) FROM projectionist_event_types") == 2);
        CHECK(fx.scalar("SELECT count(*) FROM projectionist_aggregates") == 1);
        CHECK(fx.scalar("SELECT count(*) FROM projectionist_events") == 2);
    }

    // any() skips the check.
    r = store.append(ticket_stream{}, "t-1", pj::expected_version::any(), ticket_reopened{"t-1"});
    CHECK(r.first_position == 3);
    CHECK(r.version == 3);

    // Another store object on the same database: the check holds across connections (memory has
    // no database to open twice: the same store).
    std::optional<second_store<TestType>> second;
    TestType& other = backend::reopens ? second.emplace(fx).store : store;
    CHECK_THROWS_AS(other.append(ticket_stream{}, "t-1", 2, ticket_closed{"t-1"}), pj::version_conflict);
    CHECK(other.append(ticket_stream{}, "t-1", 3, ticket_closed{"t-1"}).first_position == 4);
    CHECK(store.head() == 4);
    CHECK(store.version_of(ticket_stream{}, "t-1") == 4);

    // no_events() for a new aggregate; any() for a new one too; several events at once.
    r = store.append(ticket_stream{}, "t-2", pj::expected_version::no_events(), ticket_registered{"t-2", "task"});
    CHECK(r.first_position == 5);
    CHECK(r.version == 1);
    r = store.append(ticket_stream{}, "t-3", pj::expected_version::any(), ticket_registered{"t-3", "x"});
    CHECK(r.first_position == 6);
    CHECK(r.version == 1);
    r = store.append(ticket_stream{}, "t-2", 1, ticket_closed{"t-2"}, ticket_reopened{"t-2"});
    CHECK(r.first_position == 7);
    CHECK(r.last_position == 8);
    CHECK(r.version == 3);
    CHECK(store.head() == 8);
    CHECK(store.version_of(ticket_stream{}, "t-2") == 3);
    CHECK(store.type_count() == 3);
    CHECK(log_consistent(fx));
    CHECK(fx.integrity_ok());
}

BACKEND_TEMPLATE_TEST_CASE_IF(backend::speaks_sql, "a database that refuses a row part-way",
                              "a multi-event append that fails part-way writes none of it, and the store goes on",
                              "[backend][store]", backend::event_store_type, backend::json_event_store_type) {
    backend fx;
    auto store = fx.template make<TestType>(fx.at());
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    // The second event of the next append (aggregate version 3) is refused by the database.
    fx.refuse("refuse_version_3", "INSERT", "projectionist_events", "NEW.aggregate_version = 3", "refused by the test");
    CHECK_THROWS_WITH(
        store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}, ticket_reopened{"t-1"}, ticket_closed{"t-1"}),
        Contains("refused by the test"));
    CHECK_FALSE(backend::in_transaction(store.connection()));
    CHECK(store.head() == 1);
    CHECK(store.version_of(ticket_stream{}, "t-1") == 1);
    CHECK(store.type_count() == 1);  // the types of the failed append were rolled back too
    CHECK(fx.scalar("SELECT count(*) FROM projectionist_events") == 1);
    CHECK(fx.scalar("SELECT count(*) FROM projectionist_event_types") == 1);

    // The store is still usable after the failure, and the rollback left no hole in positions
    // (with concurrent appends, the failed append's three positions stay unused).
    fx.allow("refuse_version_3", "projectionist_events");
    const auto r =
        store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}, ticket_reopened{"t-1"}, ticket_closed{"t-1"});
    const std::uint64_t first = backend::concurrent_appends ? 5 : 2;
    CHECK(r.first_position == first);
    CHECK(r.last_position == first + 2);
    CHECK(r.version == 4);
    typename TestType::batch batch;
    store.read(1, 10, batch);
    REQUIRE(batch.size() == 3);
    const char* names[] = {"ticket.closed", "ticket.reopened", "ticket.closed"};
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(batch[i].position() == first + i);
        CHECK(batch[i].aggregate_version() == 2 + i);
        CHECK(batch[i].type_name() == names[i]);
    }
    CHECK(batch[0].recorded_at() == batch[2].recorded_at());  // one append, one timestamp
    CHECK(log_consistent(fx));
    CHECK(fx.integrity_ok());
}

BACKEND_TEMPLATE_TEST_CASE_IF(backend::speaks_sql, "a transaction of the caller's on the store's connection",
                              "inside an open transaction an append is a savepoint of it", "[backend][store]",
                              backend::event_store_type, backend::json_event_store_type) {
    backend fx;
    {
        auto store = fx.template make<TestType>(fx.at());
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        store.connection().exec("BEGIN");
        CHECK(store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}).first_position == 2);
        CHECK_THROWS_AS(store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}), pj::version_conflict);
        CHECK(backend::in_transaction(store.connection()));  // the outer transaction is still open, and usable
        CHECK(store.head() == (backend::concurrent_appends ? 1 : 2));  // not its own open transaction's
        store.connection().exec("ROLLBACK");
        CHECK(store.head() == 1);
        CHECK(store.version_of(ticket_stream{}, "t-1") == 1);
        store.connection().exec("BEGIN");
        store.append(ticket_stream{}, "t-1", 1, ticket_reopened{"t-1"});
        store.connection().exec("COMMIT");
    }
    auto reopened = fx.template make<TestType>(fx.at());
    CHECK(reopened.head() == (backend::concurrent_appends ? 3 : 2));  // position 2 rolled back
    CHECK(reopened.version_of(ticket_stream{}, "t-1") == 2);
    CHECK(fx.integrity_ok());
}

TEST_CASE("several events in one append are atomic, at consecutive positions", "[backend][store]") {
    backend fx;
    auto store = fx.store();
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    store.append(comment_stream{}, "t-1", 0, comment_added{"t-1", "hello", 0});
    auto r =
        store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}, ticket_reopened{"t-1"}, ticket_closed{"t-1"});
    CHECK(r.first_position == 3);
    CHECK(r.last_position == 5);
    CHECK(r.version == 4);

    // A refused multi-event append writes none of its events.
    CHECK_THROWS_AS(store.append(ticket_stream{}, "t-1", 1, ticket_reopened{"t-1"}, ticket_closed{"t-1"}),
                    pj::version_conflict);
    CHECK(store.head() == 5);
    CHECK(store.version_of(ticket_stream{}, "t-1") == 4);

    r = store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "task"}, ticket_closed{"t-2"});
    CHECK(r.first_position == 6);
    CHECK(r.last_position == 7);
    CHECK(r.version == 2);

    const auto t1 = store.read_aggregate(ticket_stream{}, "t-1");
    REQUIRE(t1.size() == 4);
    std::vector<std::uint64_t> positions, versions;
    for (const auto& rec : t1) {
        positions.push_back(record_of(rec).position());
        versions.push_back(record_of(rec).aggregate_version());
    }
    CHECK(positions == std::vector<std::uint64_t>{1, 3, 4, 5});
    CHECK(versions == std::vector<std::uint64_t>{1, 2, 3, 4});
    CHECK(store.read_aggregate(comment_stream{}, "t-1").size() == 1);  // the same id in another stream
    CHECK(store.read_aggregate(ticket_stream{}, "nobody").empty());
    CHECK(log_consistent(fx));
}

TEST_CASE("read gives every record in global order, in batches, with every accessor", "[backend][store]") {
    backend fx;
    auto store = fx.store();
    CHECK(store.head() == 0);
    const auto before = std::chrono::system_clock::now();
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});    // 1
    store.append(comment_stream{}, "c-1", 0, comment_added{"t-1", "first", 3});  // 2
    store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "task"});   // 3
    store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});               // 4
    store.append(legacy_stream{}, "t-1", 0, legacy_registered{"t-1"});           // 5
    const auto after = std::chrono::system_clock::now();
    CHECK(store.head() == 5);

    backend::event_store_type::batch batch;
    std::vector<std::uint64_t> seen;
    std::uint64_t after_position = 0;
    for (;;) {
        store.read(after_position, 2, batch);
        if (batch.empty()) break;
        CHECK(batch.size() <= 2);
        for (const auto& rec : batch) seen.push_back(record_of(rec).position());
        after_position = record_of(batch[batch.size() - 1]).position();
    }
    CHECK(seen == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
    store.read(5, 10, batch);
    CHECK(batch.empty());
    store.read(0, 0, batch);
    CHECK(batch.empty());

    store.read(0, 10, batch);
    REQUIRE(batch.size() == 5);
    const auto& first = record_of(batch[0]);
    CHECK(first.position() == 1);
    CHECK(first.stream() == "ticket");
    CHECK(first.type_name() == "ticket.registered");
    CHECK(first.aggregate_id() == "t-1");
    CHECK(first.aggregate_version() == 1);
    CHECK(first.aggregate_number() == 0);
    CHECK(first.recorded_at() >= before - std::chrono::milliseconds(1));
    CHECK(first.recorded_at() <= after + std::chrono::milliseconds(1));
    CHECK(store.event_of<ticket_registered>(first).type == "bug");
    const pj::envelope env = first.envelope_of();
    CHECK(env.position == 1);
    CHECK(env.stream == "ticket");
    CHECK(env.aggregate_id == "t-1");
    CHECK(env.aggregate_version == 1);
    CHECK(env.event_type == "ticket.registered");
    CHECK(env.recorded_at == first.recorded_at());

    CHECK(record_of(batch[1]).stream() == "comment");
    CHECK(store.event_of<comment_added>(record_of(batch[1])) == comment_added{"t-1", "first", 3});
    CHECK(record_of(batch[3]).aggregate_version() == 2);
    CHECK(record_of(batch[3]).aggregate_number() == 0);
    // Aggregate numbers are dense, per (stream, aggregate id), in order of first append.
    CHECK(record_of(batch[1]).aggregate_number() == 1);
    CHECK(record_of(batch[2]).aggregate_number() == 2);
    CHECK(record_of(batch[4]).aggregate_number() == 3);
    CHECK(store.aggregate_number(ticket_stream{}, "t-2") == 2u);
    CHECK(store.aggregate_number(legacy_stream{}, "t-1") == 3u);
    CHECK(store.version_of(comment_stream{}, "c-1") == 1);
}

TEST_CASE("type ids are interned per (stream, stored name), dense, and shared by every store object",
          "[backend][store]") {
    backend fx;
    {
        auto store = fx.store();
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"});  // no new type
        store.append(legacy_stream{}, "t-1", 0, legacy_registered{"t-1"});         // same name, other stream
        store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});
        CHECK(store.type_count() == 3);
        const auto a = store.type_info(0);
        CHECK(a.id == 0);
        CHECK(a.stream == "ticket");
        CHECK(a.name == "ticket.registered");
        CHECK(store.type_info(1).stream == "legacy");
        CHECK(store.type_info(1).name == "ticket.registered");
        CHECK(store.type_info(2).name == "ticket.closed");
    }
    BACKEND_SKIP_UNLESS(backend::reopens, "a database to reopen, and two store objects over it");
    // Reopened, and with another object appending meanwhile: the same ids; new ones are seen.
    auto reader = fx.store();
    auto writer = fx.store();
    CHECK(reader.type_count() == 3);
    writer.append(comment_stream{}, "c-1", 0, comment_added{"t-1", "x", 0});
    backend::event_store_type::batch batch;
    reader.read(0, 10, batch);
    REQUIRE(batch.size() == 5);
    std::vector<std::uint32_t> ids;
    for (const auto& rec : batch) ids.push_back(record_of(rec).type_id());
    CHECK(ids == std::vector<std::uint32_t>{0, 0, 1, 2, 3});
    CHECK(record_of(batch[4]).type_name() == "comment.added");
    CHECK(record_of(batch[4]).stream() == "comment");
    CHECK(reader.type_count() == 4);
    CHECK(reader.type_info(3).name == "comment.added");
    if (backend::speaks_sql) CHECK(fx.scalar("SELECT count(*) FROM projectionist_event_types") == 4);
}

TEMPLATE_TEST_CASE("with both codecs, read reuses its batch and every record decodes with its interned type",
                   "[backend][store]", backend::event_store_type, backend::json_event_store_type) {
    backend fx;
    auto store = fx.make<TestType>(fx.at());
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
        for (const auto& element : batch) {
            const auto& r = record_of(element);
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
            if constexpr (backend::encodes_payloads) {
                CHECK(r.schema_version() == 1);
                CHECK_FALSE(r.payload().empty());
            }
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
        after_position = record_of(batch[batch.size() - 1]).position();
    }
    CHECK(seen == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6});
    CHECK(sizes == std::vector<std::size_t>{4, 2, 0});

    store.read(2, 2, batch);
    REQUIRE(batch.size() == 2);
    CHECK(record_of(batch[0]).position() == 3);
    CHECK(record_of(batch[1]).position() == 4);
    store.read(6, 10, batch);
    CHECK(batch.empty());
    CHECK(batch.begin() == batch.end());
    store.read(0, static_cast<std::size_t>(-1), batch);  // "everything": no overflow in LIMIT
    CHECK(batch.size() == 6);

    // Payloads decode into the appended values.
    store.read(0, 10, batch);
    REQUIRE(batch.size() == 6);
    const auto registered = store.template event_of<ticket_registered>(record_of(batch[0]));
    CHECK(registered.ticket_id == "t-1");
    CHECK(registered.type == "bug");
    CHECK(store.template event_of<comment_added>(record_of(batch[1])) == comment_added{"t-1", "first \"look\"", -2});
    CHECK(store.template event_of<ticket_registered>(record_of(batch[2])).type == "task");
    CHECK(store.template event_of<ticket_closed>(record_of(batch[3])).ticket_id == "t-1");
    CHECK(store.template event_of<legacy_registered>(record_of(batch[5])).ticket_id == "t-1");

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
        // With a codec, the codec decides, not a C++ type; memory keeps the typed event.
        CHECK((info.cpp_type == nullptr) == backend::encodes_payloads);
    }
    CHECK_THROWS(store.type_info(5));
    store.append(ticket_stream{}, "t-3", 0, ticket_registered{"t-3", "bug"});
    CHECK(store.type_count() == 5);  // an interned type is reused
    CHECK(fx.integrity_ok());
}

TEMPLATE_TEST_CASE("read_aggregate, version_of and dense aggregate numbers per (stream, aggregate id)",
                   "[backend][store]", backend::event_store_type, backend::json_event_store_type) {
    backend fx;
    auto store = fx.make<TestType>(fx.at());
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
    for (const auto& element : t1) {
        const auto& r = record_of(element);
        positions.push_back(r.position());
        versions.push_back(r.aggregate_version());
        CHECK(r.stream() == "ticket");
        CHECK(r.aggregate_id() == "t-1");
        CHECK(r.aggregate_number() == 0);
    }
    CHECK(positions == std::vector<std::uint64_t>{1, 4, 5});
    CHECK(versions == std::vector<std::uint64_t>{1, 2, 3});
    CHECK(record_of(t1[2]).type_name() == "ticket.reopened");

    const auto c1 = store.read_aggregate(comment_stream{}, "t-1");
    REQUIRE(c1.size() == 2);
    CHECK(record_of(c1[0]).position() == 3);
    CHECK(record_of(c1[1]).position() == 6);
    CHECK(store.template event_of<comment_added>(record_of(c1[1])).text == "again");
    CHECK(store.read_aggregate(ticket_stream{}, "t-4").empty());

    // Numbers are kept by later appends and stay dense for new aggregates.
    store.append(ticket_stream{}, "t-1", 3, ticket_closed{"t-1"});
    store.append(legacy_stream{}, "t-1", 0, legacy_registered{"t-1"});
    CHECK(store.aggregate_number(ticket_stream{}, "t-1") == 0u);
    CHECK(store.aggregate_number(legacy_stream{}, "t-1") == 4u);
    CHECK(record_of(store.read_aggregate(ticket_stream{}, "t-1")[3]).aggregate_number() == 0);
    CHECK(fx.integrity_ok());
}

BACKEND_TEMPLATE_TEST_CASE_IF(backend::reopens, "a database to reopen",
                              "the log survives closing and reopening the database", "[backend][store][persistence]",
                              backend::event_store_type, backend::json_event_store_type) {
    backend fx;
    {
        auto store = fx.template make<TestType>(fx.at());
        store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"}, ticket_closed{"t-1"});
        store.append(comment_stream{}, "t-1", 0, comment_added{"t-1", "kept", 7});
    }
    {
        auto store = fx.template make<TestType>(fx.at());
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
        // Versions carry on from the database.
        CHECK_THROWS_AS(store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"}), pj::version_conflict);
        const auto r = store.append(ticket_stream{}, "t-1", 2, ticket_reopened{"t-1"});
        CHECK(r.first_position == 4);
        CHECK(r.version == 3);
    }
    {
        auto store = fx.template make<TestType>(fx.at());
        CHECK(store.head() == 4);
        CHECK(store.type_count() == 4);
    }
    CHECK(fx.integrity_ok());
}

BACKEND_TEMPLATE_TEST_CASE_IF(
    backend::reopens, "two store objects over one database",
    "two store objects on one log see and interleave each other's appends; the second writer at "
    "a version fails",
    "[backend][store][persistence]", backend::event_store_type, backend::json_event_store_type) {
    backend fx;
    auto a = fx.template make<TestType>(fx.at());
    auto b = fx.template make<TestType>(fx.at());
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
    CHECK(a.head() == 7);
    CHECK(b.head() == 7);
    CHECK(fx.scalar("SELECT count(*) FROM projectionist_events") == 7);
    // A new first append of one aggregate from both: the second is refused.
    CHECK(b.append(ticket_stream{}, "t-5", 0, ticket_registered{"t-5", "bug"}).version == 1);
    CHECK_THROWS_AS(a.append(ticket_stream{}, "t-5", 0, ticket_registered{"t-5", "bug"}), pj::version_conflict);
    CHECK(a.head() == 8);
    CHECK(log_consistent(fx));
    CHECK(fx.integrity_ok());
}

BACKEND_TEMPLATE_TEST_CASE_IF(backend::shared_across_processes, "another process over one database",
                              "a second process appends through its own store; the parent reads every event",
                              "[backend][store][persistence]", backend::event_store_type,
                              backend::json_event_store_type) {
    backend fx;
    const auto place = fx.at();
    constexpr int child_tickets = 20;  // the child appends two events per ticket
    {
        auto store = fx.template make<TestType>(place);
        store.append(ticket_stream{}, "parent", 0, ticket_registered{"parent", "bug"});
    }  // no connection of a store is open across fork()

    const pid_t pid = fork();  // the child opens its own connections; it never uses the parent's
    REQUIRE(pid >= 0);
    if (pid == 0) {
        alarm(20);  // a stuck child dies instead of hanging the test
        int status = 0;
        try {
            TestType store(place.target, place.options);
            for (int i = 0; i < child_tickets; ++i) {
                const std::string id = "child-" + std::to_string(i);
                store.append(ticket_stream{}, id, 0, ticket_registered{id, "task"}, ticket_closed{id});
            }
            store.append(ticket_stream{}, "parent", 1, ticket_closed{"parent"});
        } catch (...) {
            status = 1;
        }
        _exit(status);  // no destructors: the parent's connections (inherited) stay untouched
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);

    auto store = fx.template make<TestType>(place);
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
    CHECK(log_consistent(fx));
    CHECK(fx.integrity_ok());
}

BACKEND_TEMPLATE_TEST_CASE_IF((backend::encodes_payloads && backend::reopens), "codecs, and a database to reopen",
                              "both codecs round-trip every supported field type through the log",
                              "[backend][store][codec]", backend::event_store_type, backend::json_event_store_type) {
    backend fx;
    const everything full{"O'Brien \"quoted\" back\\slash, {braces} [brackets] ünïcødé 🎫",
                          std::numeric_limits<std::int64_t>::min(),
                          std::numeric_limits<std::uint64_t>::max(),
                          -7,
                          0.1,
                          1.5f,
                          true,
                          priority::high,
                          {{"a", "gift", 2}, {"b", std::nullopt, -1}},
                          at_ns(1'700'000'000'123'456'789),
                          std::nullopt,
                          {"x", "", "NULL", "z"}};
    const everything empty{};
    everything extreme = full;
    extreme.id = "extreme";
    extreme.big = std::numeric_limits<std::int64_t>::max();
    extreme.ratio = -2.5e300;
    extreme.approx = -0.25f;
    extreme.maybe = 0;
    extreme.at = at_ns(-1'000);
    {
        auto store = fx.template make<TestType>(fx.at());
        store.append(everything_stream{}, "e-1", 0, full, empty, extreme);
    }
    auto store = fx.template make<TestType>(fx.at());
    typename TestType::batch batch;
    store.read(0, 10, batch);
    REQUIRE(batch.size() == 3);
    CHECK(store.template event_of<everything>(batch[0]) == full);
    CHECK(store.template event_of<everything>(batch[1]) == empty);
    CHECK(store.template event_of<everything>(batch[2]) == extreme);
}

namespace {
/// Appends one event per value and reads the values back.
template <class Store>
std::vector<double> doubles_through(backend& fx, const std::vector<double>& values) {
    auto store = fx.make<Store>(fx.at());
    for (std::size_t i = 0; i < values.size(); ++i) {
        everything e{};
        e.ratio = values[i];
        store.append(everything_stream{}, "e-" + std::to_string(i), 0, e);
    }
    typename Store::batch batch;
    store.read(0, 100, batch);
    std::vector<double> out;
    for (const auto& rec : batch) out.push_back(store.template event_of<everything>(record_of(rec)).ratio);
    return out;
}
}  // namespace

BACKEND_TEMPLATE_TEST_CASE_IF(backend::encodes_payloads, "codecs",
                              "doubles keep every bit through the log with both codecs", "[backend][store][codec]",
                              backend::event_store_type, backend::json_event_store_type) {
    backend fx;
    const std::vector<double> values{1.0 / 3.0,
                                     std::numeric_limits<double>::min(),
                                     std::numeric_limits<double>::denorm_min(),
                                     std::numeric_limits<double>::epsilon(),
                                     -2.5e300,
                                     6.02214076e23,
                                     0.30000000000000004,
                                     1e-5};
    CHECK(doubles_through<TestType>(fx, values) == values);
}

// PostgreSQL stores JSON payloads as jsonb, which spells 1.7976931348623157e308 as its 309 digits;
// json_codec reads every number with std::from_chars, so the spelling does not matter.
BACKEND_TEST_CASE_IF(backend::encodes_payloads, "a JSON codec", "the largest doubles keep their value in a JSON log",
                     "[backend][store][codec]") {
    backend fx;
    const std::vector<double> values{std::numeric_limits<double>::max(), -1e308, 1.2345678901234567e300,
                                     -1.2345678901234567e-300, std::numeric_limits<double>::denorm_min()};
    CHECK(doubles_through<typename backend::json_event_store_type>(fx, values) == values);
}

BACKEND_TEMPLATE_TEST_CASE_IF((backend::encodes_payloads && backend::reopens),
                              "payloads that record their schema version, and a database to reopen",
                              "an older schema version is upcast; a newer one is a codec_error naming it",
                              "[backend][store][schema]", backend::event_store_type, backend::json_event_store_type) {
    backend fx;
    {
        auto store = fx.template make<TestType>(fx.at());
        store.append(notes_v1{}, "t-1", 0, noted_v1{"t-1", "urgent!"});   // stored at schema version 1
        store.append(notes_v2{}, "t-1", 1, noted{"t-1", "calm", 5});      // version 2
        store.append(notes_v3{}, "t-1", 2, noted_v3{"t-1", {"a", "b"}});  // version 3, from a newer build
    }
    auto store = fx.template make<TestType>(fx.at());
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
    CHECK(fx.integrity_ok());
}

BACKEND_TEMPLATE_TEST_CASE_IF((backend::encodes_payloads && backend::speaks_sql),
                              "encoded payloads, and SQL to corrupt them",
                              "a payload over the size limit, truncated or corrupt is a codec_error saying why",
                              "[backend][store][codec]", backend::event_store_type, backend::json_event_store_type) {
    backend fx;
    auto writer = fx.template make<TestType>(fx.at());
    writer.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    writer.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", std::string(200, 'x')});
    writer.append(ticket_stream{}, "t-3", 0, ticket_registered{"t-3", "task"}, ticket_closed{"t-3"});

    auto small = fx.at();
    small.options.max_payload_bytes = 64;
    auto limited = fx.template make<TestType>(small);
    typename TestType::batch batch;
    limited.read(0, 10, batch);
    REQUIRE(batch.size() == 4);
    CHECK(limited.template event_of<ticket_registered>(batch[0]).type == "bug");
    const std::size_t size = batch[1].payload().size();
    CHECK(size > 200);
    CHECK_THROWS_AS(limited.template event_of<ticket_registered>(batch[1]), pj::codec_error);
    CHECK_THROWS_WITH(limited.template event_of<ticket_registered>(batch[1]),
                      Contains("payload of " + std::to_string(size) + " bytes") && Contains("limit of 64 bytes"));
    CHECK(writer.template event_of<ticket_registered>(batch[1]).type == std::string(200, 'x'));  // default limit

    // Behind the store's back: position 3 loses its second field (binary: cut after 3 bytes;
    // JSON: a document without it), position 4 becomes garbage.
    const std::string column = backend::template payload_column<TestType>();
    if constexpr (TestType::codec::text) {
        fx.exec("UPDATE projectionist_events SET " + column + " = '{\"ticket_id\": \"t-3\"}' WHERE position = 3");
        fx.exec("UPDATE projectionist_events SET " + column + " = '[1, 2]' WHERE position = 4");
    } else {
        fx.exec("UPDATE projectionist_events SET payload = substr(payload, 1, 3) WHERE position = 3");
        fx.exec("UPDATE projectionist_events SET payload = substr(payload, 1, 4) || payload WHERE position = 4");
    }
    writer.read(0, 10, batch);
    REQUIRE(batch.size() == 4);
    if constexpr (!TestType::codec::text) CHECK(batch[2].payload().size() == 3);
    CHECK_THROWS_AS(writer.template event_of<ticket_registered>(batch[2]), pj::codec_error);
    CHECK_THROWS_WITH(writer.template event_of<ticket_registered>(batch[2]),
                      Contains(TestType::codec::text ? "is missing" : "truncated payload"));
    CHECK_THROWS_AS(writer.template event_of<ticket_closed>(batch[3]), pj::codec_error);
    CHECK_THROWS_WITH(writer.template event_of<ticket_closed>(batch[3]), Contains("corrupt payload"));
    CHECK(writer.template event_of<ticket_registered>(batch[0]).ticket_id == "t-1");  // the rest are fine
    CHECK(fx.integrity_ok());
}

BACKEND_TEMPLATE_TEST_CASE_IF(backend::speaks_sql, "a database to plant someone else's tables or a newer schema in",
                              "someone else's database, or a newer projectionist schema, is refused and left untouched",
                              "[backend][store][refusal]", backend::event_store_type, backend::json_event_store_type,
                              backend::storage_type) {
    backend fx;
    std::string why;
    SECTION("someone else's database") {
        fx.make_foreign(db::primary);
        why = std::string(backend::foreign_phrase);
    }
    SECTION("a projectionist database of a newer schema version") {
        {
            auto store = fx.store();
            store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        }
        fx.make_newer(db::primary);
        why = "schema version 99, newer than this build's";
    }
    const std::string before = fx.fingerprint(db::primary);
    REQUIRE_FALSE(before.empty());
    const std::string message = error_of([&] { auto refused = fx.template make<TestType>(fx.at()); });
    CHECK_THAT(message, Contains(why) && Contains(fx.describe(db::primary)) && Contains("nothing was changed"));
    CHECK(fx.fingerprint(db::primary) == before);
}

BACKEND_TEST_CASE_IF((backend::encodes_payloads && backend::speaks_sql),
                     "two codecs, and SQL to read which one a log has",
                     "a log written with one codec is refused by a store of the other, and left as it was",
                     "[backend][store][refusal]") {
    backend fx;
    {
        auto binary = fx.store(db::primary);
        binary.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        auto json = fx.json_store(db::secondary);
        json.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    }
    CHECK_THAT(error_of([&] { auto s = fx.json_store(db::primary); }),
               Contains("encoded with the binary codec, but this store uses the json codec") &&
                   Contains(fx.describe(db::primary)));
    CHECK_THAT(error_of([&] { auto s = fx.store(db::secondary); }),
               Contains("encoded with the json codec, but this store uses the binary codec"));
    CHECK(fx.text("SELECT value FROM projectionist_settings WHERE key = 'codec'", db::primary) == "binary");
    CHECK(fx.text("SELECT value FROM projectionist_settings WHERE key = 'codec'", db::secondary) == "json");
    // Each still opens with its own codec.
    CHECK(fx.store(db::primary).head() == 1);
    CHECK(fx.json_store(db::secondary).head() == 1);
    CHECK(fx.integrity_ok(db::primary));
    CHECK(fx.integrity_ok(db::secondary));
}
