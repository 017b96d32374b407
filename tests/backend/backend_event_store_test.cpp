// The event store's contract, on the backend the executable was built for (backend_fixture.hpp):
// optimistic appends that write nothing when refused, atomic multi-event appends, global and
// per-aggregate reads, interned type ids and aggregate numbers, both codecs, schema versions,
// bad payloads, and the refusal of a database that is not projectionist's or is newer.

#include <backend_suite.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
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

std::chrono::system_clock::time_point at_ns(std::int64_t ns) {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(ns)));
}

}  // namespace

TEMPLATE_TEST_CASE("an append checks the expected version, and a refused append writes nothing", "[backend][store]",
                   backend::event_store_type, backend::json_event_store_type) {
    backend fx;
    auto store = fx.make<TestType>(fx.at());
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
    CHECK(store.head() == 2);
    CHECK(store.version_of(ticket_stream{}, "t-1") == 2);
    CHECK(store.version_of(ticket_stream{}, "t-9") == 0);
    CHECK_FALSE(store.aggregate_number(ticket_stream{}, "t-9").has_value());
    CHECK(store.type_count() == 2);
    CHECK(fx.scalar("SELECT count(*) FROM projectionist_event_types") == 2);
    CHECK(fx.scalar("SELECT count(*) FROM projectionist_aggregates") == 1);
    CHECK(fx.scalar("SELECT count(*) FROM projectionist_events") == 2);

    // any() skips the check.
    r = store.append(ticket_stream{}, "t-1", pj::expected_version::any(), ticket_reopened{"t-1"});
    CHECK(r.first_position == 3);
    CHECK(r.version == 3);

    // Another store object on the same database: the check holds across connections.
    auto other = fx.make<TestType>(fx.at());
    CHECK_THROWS_AS(other.append(ticket_stream{}, "t-1", 2, ticket_closed{"t-1"}), pj::version_conflict);
    CHECK(other.append(ticket_stream{}, "t-1", 3, ticket_closed{"t-1"}).first_position == 4);
    CHECK(store.head() == 4);
    CHECK(store.version_of(ticket_stream{}, "t-1") == 4);
    CHECK(log_consistent(fx));
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
        positions.push_back(rec.position());
        versions.push_back(rec.aggregate_version());
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
        for (const auto& rec : batch) seen.push_back(rec.position());
        after_position = batch[batch.size() - 1].position();
    }
    CHECK(seen == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
    store.read(5, 10, batch);
    CHECK(batch.empty());
    store.read(0, 0, batch);
    CHECK(batch.empty());

    store.read(0, 10, batch);
    REQUIRE(batch.size() == 5);
    const auto& first = batch[0];
    CHECK(first.position() == 1);
    CHECK(first.stream() == "ticket");
    CHECK(first.type_name() == "ticket.registered");
    CHECK(first.aggregate_id() == "t-1");
    CHECK(first.aggregate_version() == 1);
    CHECK(first.aggregate_number() == 0);
    CHECK(first.schema_version() == 1);
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

    CHECK(batch[1].stream() == "comment");
    CHECK(store.event_of<comment_added>(batch[1]) == comment_added{"t-1", "first", 3});
    CHECK(batch[3].aggregate_version() == 2);
    CHECK(batch[3].aggregate_number() == 0);
    // Aggregate numbers are dense, per (stream, aggregate id), in order of first append.
    CHECK(batch[1].aggregate_number() == 1);
    CHECK(batch[2].aggregate_number() == 2);
    CHECK(batch[4].aggregate_number() == 3);
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
    // Reopened, and with another object appending meanwhile: the same ids; new ones are seen.
    auto reader = fx.store();
    auto writer = fx.store();
    CHECK(reader.type_count() == 3);
    writer.append(comment_stream{}, "c-1", 0, comment_added{"t-1", "x", 0});
    backend::event_store_type::batch batch;
    reader.read(0, 10, batch);
    REQUIRE(batch.size() == 5);
    std::vector<std::uint32_t> ids;
    for (const auto& rec : batch) ids.push_back(rec.type_id());
    CHECK(ids == std::vector<std::uint32_t>{0, 0, 1, 2, 3});
    CHECK(batch[4].type_name() == "comment.added");
    CHECK(batch[4].stream() == "comment");
    CHECK(reader.type_count() == 4);
    CHECK(reader.type_info(3).name == "comment.added");
    CHECK(fx.scalar("SELECT count(*) FROM projectionist_event_types") == 4);
}

TEMPLATE_TEST_CASE("both codecs round-trip every supported field type through the log", "[backend][store][codec]",
                   backend::event_store_type, backend::json_event_store_type) {
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
        auto store = fx.make<TestType>(fx.at());
        store.append(everything_stream{}, "e-1", 0, full, empty, extreme);
    }
    auto store = fx.make<TestType>(fx.at());
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
    for (const auto& rec : batch) out.push_back(store.template event_of<everything>(rec).ratio);
    return out;
}
}  // namespace

TEMPLATE_TEST_CASE("doubles keep every bit through the log with both codecs", "[backend][store][codec]",
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
TEST_CASE("the largest doubles keep their value in a JSON log", "[backend][store][codec]") {
    backend fx;
    const std::vector<double> values{std::numeric_limits<double>::max(), -1e308, 1.2345678901234567e300,
                                     -1.2345678901234567e-300, std::numeric_limits<double>::denorm_min()};
    CHECK(doubles_through<backend::json_event_store_type>(fx, values) == values);
}

TEMPLATE_TEST_CASE("an older schema version is upcast; a newer one is a codec_error naming it",
                   "[backend][store][schema]", backend::event_store_type, backend::json_event_store_type) {
    backend fx;
    {
        auto store = fx.make<TestType>(fx.at());
        store.append(notes_v1{}, "t-1", 0, noted_v1{"t-1", "urgent!"});   // stored at schema version 1
        store.append(notes_v2{}, "t-1", 1, noted{"t-1", "calm", 5});      // version 2
        store.append(notes_v3{}, "t-1", 2, noted_v3{"t-1", {"a", "b"}});  // version 3, from a newer build
    }
    auto store = fx.make<TestType>(fx.at());
    typename TestType::batch batch;
    store.read(0, 10, batch);
    REQUIRE(batch.size() == 3);
    CHECK(batch[0].schema_version() == 1);
    CHECK(batch[1].schema_version() == 2);
    CHECK(batch[2].schema_version() == 3);
    CHECK(batch[0].type_id() == batch[2].type_id());  // one stored name, one type
    CHECK(store.type_count() == 1);
    CHECK(store.template event_of<noted>(batch[0]) == noted{"t-1", "urgent!", 1});  // upcast
    CHECK(store.template event_of<noted>(batch[1]) == noted{"t-1", "calm", 5});
    CHECK(store.template event_of<noted_v1>(batch[0]).text == "urgent!");
    CHECK_THROWS_AS(store.template event_of<noted>(batch[2]), pj::codec_error);
    CHECK_THROWS_WITH(store.template event_of<noted>(batch[2]), Contains("unsupported schema version 3"));
    CHECK_THROWS_WITH(store.template event_of<noted_v1>(batch[1]), Contains("unsupported schema version 2"));
}

TEMPLATE_TEST_CASE("a payload over the size limit, truncated or corrupt is a codec_error saying why",
                   "[backend][store][codec]", backend::event_store_type, backend::json_event_store_type) {
    backend fx;
    auto writer = fx.make<TestType>(fx.at());
    writer.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    writer.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", std::string(200, 'x')});
    writer.append(ticket_stream{}, "t-3", 0, ticket_registered{"t-3", "task"}, ticket_closed{"t-3"});

    auto small = fx.at();
    small.options.max_payload_bytes = 64;
    auto limited = fx.make<TestType>(small);
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
    const std::string column = backend::payload_column<TestType>();
    if constexpr (TestType::codec::text) {
        fx.exec("UPDATE projectionist_events SET " + column + " = '{\"ticket_id\": \"t-3\"}' WHERE position = 3");
        fx.exec("UPDATE projectionist_events SET " + column + " = '[1, 2]' WHERE position = 4");
    } else {
        fx.exec("UPDATE projectionist_events SET payload = substr(payload, 1, 3) WHERE position = 3");
        fx.exec("UPDATE projectionist_events SET payload = substr(payload, 1, 4) || payload WHERE position = 4");
    }
    writer.read(0, 10, batch);
    REQUIRE(batch.size() == 4);
    CHECK_THROWS_AS(writer.template event_of<ticket_registered>(batch[2]), pj::codec_error);
    CHECK_THROWS_WITH(writer.template event_of<ticket_registered>(batch[2]),
                      Contains(TestType::codec::text ? "is missing" : "truncated payload"));
    CHECK_THROWS_AS(writer.template event_of<ticket_closed>(batch[3]), pj::codec_error);
    CHECK_THROWS_WITH(writer.template event_of<ticket_closed>(batch[3]), Contains("corrupt payload"));
    CHECK(writer.template event_of<ticket_registered>(batch[0]).ticket_id == "t-1");  // the rest are fine
}

TEMPLATE_TEST_CASE("someone else's database, or a newer projectionist schema, is refused and left untouched",
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
    const std::string message = error_of([&] { auto refused = fx.make<TestType>(fx.at()); });
    CHECK_THAT(message, Contains(why) && Contains(fx.describe(db::primary)) && Contains("nothing was changed"));
    CHECK(fx.fingerprint(db::primary) == before);
}

TEST_CASE("a log written with one codec is refused by a store of the other, and left as it was",
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
}
