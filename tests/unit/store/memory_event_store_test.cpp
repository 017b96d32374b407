// memory_event_store: appends with optimistic concurrency, global order, aggregates, interned
// event types, typed records, waiting for new events and concurrent reading.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include <boost/hana/define_struct.hpp>

#include <projectionist/store/memory_event_store.hpp>

#include <tickets_domain.hpp>

namespace memory_event_store_test {

namespace pj = projectionist;
using namespace tickets_domain;
using namespace std::chrono_literals;
using store_t = pj::memory_event_store;

namespace {

/// A second stream that uses the same aggregate ids as tickets.
struct comment_added {
    BOOST_HANA_DEFINE_STRUCT(comment_added, (std::string, ticket_id), (std::string, text));
    static constexpr std::string_view event_name = "comment.added";
};
using comment_stream = pj::stream<"comment", comment_added>;

/// Another stream named "ticket" whose event reuses the stored name "ticket.registered" for a
/// different C++ type: the store must refuse to mix them.
struct impostor_registered {
    BOOST_HANA_DEFINE_STRUCT(impostor_registered, (int, n));
    static constexpr std::string_view event_name = "ticket.registered";
};
using impostor_stream = pj::stream<"ticket", impostor_registered>;

/// One event type in two streams: two interned types, one C++ type.
struct note {
    BOOST_HANA_DEFINE_STRUCT(note, (int, n));
    static constexpr std::string_view event_name = "note";
};
using left_stream = pj::stream<"left", note>;
using right_stream = pj::stream<"right", note>;

std::vector<std::uint64_t> positions_of(const store_t::batch& b) {
    std::vector<std::uint64_t> out;
    for (const auto* r : b) out.push_back(r->position());
    return out;
}

std::vector<std::uint64_t> iota(std::uint64_t from, std::uint64_t to) {
    std::vector<std::uint64_t> out;
    for (std::uint64_t p = from; p <= to; ++p) out.push_back(p);
    return out;
}

/// Everything after `after`, read in batches of `batch_size`.
std::vector<std::uint64_t> read_all(const store_t& store, std::uint64_t after, std::size_t batch_size) {
    std::vector<std::uint64_t> out;
    store_t::batch b;
    for (;;) {
        store.read(after, batch_size, b);
        if (b.empty()) return out;
        REQUIRE(b.size() <= batch_size);
        for (const auto* r : b) out.push_back(r->position());
        after = b.back()->position();
    }
}

}  // namespace

static_assert(pj::expected_version(0).value() == 0);
static_assert(!pj::expected_version(0).is_any());
static_assert(pj::expected_version::no_events().value() == 0);
static_assert(pj::expected_version::any().is_any());
static_assert(pj::expected_version::any().accepts(0));
static_assert(pj::expected_version::any().accepts(12345));
static_assert(pj::expected_version(3).accepts(3));
static_assert(!pj::expected_version(3).accepts(2));
static_assert(!pj::expected_version(3).accepts(4));
static_assert(std::is_convertible_v<std::uint64_t, pj::expected_version>);
static_assert(std::is_same_v<store_t::event_store_category, pj::detail::event_store_category>);
static_assert(!std::is_copy_constructible_v<store_t>);

TEST_CASE("an empty store has no events", "[store]") {
    store_t store;
    CHECK(store.head() == 0);
    CHECK(store.type_count() == 0);
    CHECK(store.aggregate_count() == 0);
    store_t::batch b{nullptr};  // read clears what was there
    store.read(0, 10, b);
    CHECK(b.empty());
    CHECK(store.read_aggregate(ticket_stream{}, "t-1").empty());
    CHECK(store.version_of(ticket_stream{}, "t-1") == 0);
    CHECK_FALSE(store.aggregate_number(ticket_stream{}, "t-1").has_value());
    CHECK_THROWS_AS(store.type_info(0), std::out_of_range);
}

TEST_CASE("append with expected version 0, then with the current version", "[store][append]") {
    store_t store;
    const auto first = store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    CHECK(first.first_position == 1);  // global positions start at 1
    CHECK(first.last_position == 1);
    CHECK(first.version == 1);
    CHECK(store.head() == 1);
    CHECK(store.version_of(ticket_stream{}, "t-1") == 1);

    const auto second = store.append(ticket_stream{}, "t-1", first.version, ticket_closed{"t-1"});
    CHECK(second.first_position == 2);
    CHECK(second.last_position == 2);
    CHECK(second.version == 2);

    const auto third = store.append(ticket_stream{}, "t-1", 2, ticket_reopened{"t-1"});
    CHECK(third.first_position == 3);
    CHECK(third.version == 3);
    CHECK(store.head() == 3);
    CHECK(store.version_of(ticket_stream{}, "t-1") == 3);

    // expected_version::no_events() is the same as 0.
    const auto other =
        store.append(ticket_stream{}, "t-2", pj::expected_version::no_events(), ticket_registered{"t-2", "task"});
    CHECK(other.first_position == 4);
    CHECK(other.version == 1);
}

TEST_CASE("a version conflict throws and appends nothing", "[store][append][conflict]") {
    store_t store;
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});
    store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "task"});
    const auto head = store.head();
    const auto aggregates = store.aggregate_count();
    REQUIRE(head == 3);

    SECTION("creating an aggregate that exists") {
        try {
            store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "again"});
            FAIL("expected a version_conflict");
        } catch (const pj::version_conflict& e) {
            CHECK(e.expected() == 0);
            CHECK(e.actual() == 2);
            const std::string what = e.what();
            CHECK_THAT(what, Catch::Contains("'ticket'"));
            CHECK_THAT(what, Catch::Contains("'t-1'"));
            CHECK_THAT(what, Catch::Contains("expected version 0"));
            CHECK_THAT(what, Catch::Contains("at version 2"));
            CHECK(e.context().stream == "ticket");
            CHECK(e.context().aggregate_id == "t-1");
            CHECK_FALSE(e.context().position.has_value());
        }
    }
    SECTION("a stale version") {
        try {
            store.append(ticket_stream{}, "t-1", 1, ticket_reopened{"t-1"});
            FAIL("expected a version_conflict");
        } catch (const pj::version_conflict& e) {
            CHECK(e.expected() == 1);
            CHECK(e.actual() == 2);
        }
    }
    SECTION("a version from the future") {
        try {
            store.append(ticket_stream{}, "t-1", 7, ticket_reopened{"t-1"});
            FAIL("expected a version_conflict");
        } catch (const pj::version_conflict& e) {
            CHECK(e.expected() == 7);
            CHECK(e.actual() == 2);
        }
    }
    SECTION("updating an aggregate that has no events") {
        try {
            store.append(ticket_stream{}, "t-9", 1, ticket_closed{"t-9"});
            FAIL("expected a version_conflict");
        } catch (const pj::version_conflict& e) {
            CHECK(e.expected() == 1);
            CHECK(e.actual() == 0);
            CHECK_THAT(std::string(e.what()), Catch::Contains("'t-9'"));
        }
        // The failed append did not create the aggregate.
        CHECK_FALSE(store.aggregate_number(ticket_stream{}, "t-9").has_value());
        CHECK(store.read_aggregate(ticket_stream{}, "t-9").empty());
    }
    SECTION("several events at once: none of them is appended") {
        CHECK_THROWS_AS(store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "x"}, ticket_closed{"t-1"},
                                     ticket_reopened{"t-1"}),
                        pj::version_conflict);
    }
    SECTION("caught as the common base class") {
        CHECK_THROWS_AS(store.append(ticket_stream{}, "t-2", 5, ticket_closed{"t-2"}), pj::error);
        CHECK_THROWS_AS(store.append(ticket_stream{}, "t-2", 5, ticket_closed{"t-2"}), std::runtime_error);
    }

    CHECK(store.head() == head);
    CHECK(store.aggregate_count() == aggregates);
    CHECK(store.version_of(ticket_stream{}, "t-1") == 2);
    CHECK(store.version_of(ticket_stream{}, "t-2") == 1);
    CHECK(store.read_aggregate(ticket_stream{}, "t-1").size() == 2);
    store_t::batch b;
    store.read(0, 100, b);
    CHECK(positions_of(b) == iota(1, 3));

    // The store still works after the conflict and positions stay dense.
    const auto next = store.append(ticket_stream{}, "t-1", 2, ticket_reopened{"t-1"});
    CHECK(next.first_position == head + 1);
    CHECK(next.version == 3);
}

TEST_CASE("expected_version::any() appends whatever the aggregate's version", "[store][append]") {
    store_t store;
    const auto a = store.append(ticket_stream{}, "t-1", pj::expected_version::any(), ticket_registered{"t-1", "bug"});
    CHECK(a.version == 1);
    const auto b = store.append(ticket_stream{}, "t-1", pj::expected_version::any(), ticket_closed{"t-1"});
    CHECK(b.version == 2);
    const auto c =
        store.append(ticket_stream{}, "t-1", pj::expected_version::any(), ticket_reopened{"t-1"}, ticket_closed{"t-1"});
    CHECK(c.first_position == 3);
    CHECK(c.last_position == 4);
    CHECK(c.version == 4);
    CHECK(store.version_of(ticket_stream{}, "t-1") == 4);
}

TEST_CASE("a multi-event append is atomic and gets consecutive positions", "[store][append]") {
    store_t store;
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    store.append(comment_stream{}, "t-1", 0, comment_added{"t-1", "hello"});

    const auto r = store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "task"}, ticket_closed{"t-2"},
                                ticket_reopened{"t-2"});
    CHECK(r.first_position == 3);
    CHECK(r.last_position == 5);
    CHECK(r.version == 3);
    CHECK(store.head() == 5);

    const auto events = store.read_aggregate(ticket_stream{}, "t-2");
    REQUIRE(events.size() == 3);
    CHECK(positions_of(events) == iota(3, 5));
    for (std::size_t i = 0; i < events.size(); ++i) {
        CHECK(events[i]->aggregate_version() == i + 1);
        CHECK(events[i]->aggregate_id() == "t-2");
        CHECK(events[i]->recorded_at() == events[0]->recorded_at());  // one append, one timestamp
    }
    CHECK(events[0]->type_name() == "ticket.registered");
    CHECK(events[1]->type_name() == "ticket.closed");
    CHECK(events[2]->type_name() == "ticket.reopened");

    // Appending on to the aggregate continues its versions.
    const auto more = store.append(ticket_stream{}, "t-2", 3, ticket_closed{"t-2"}, ticket_reopened{"t-2"});
    CHECK(more.first_position == 6);
    CHECK(more.last_position == 7);
    CHECK(more.version == 5);
}

TEST_CASE("read returns global order in batches and respects after and max", "[store][read]") {
    store_t store;
    // Interleave three aggregates of two streams.
    std::uint64_t v1 = 0, v2 = 0, v3 = 0;
    for (int i = 0; i < 4; ++i) {
        v1 = store.append(ticket_stream{}, "t-1", pj::expected_version::any(), ticket_closed{"t-1"}).version;
        v2 = store.append(comment_stream{}, "t-1", v2, comment_added{"t-1", std::to_string(i)}).version;
        if (i % 2 == 0)
            v3 = store.append(ticket_stream{}, "t-3", pj::expected_version::any(), ticket_closed{"t-3"}).version;
    }
    REQUIRE(store.head() == 10);
    CHECK(v1 == 4);
    CHECK(v2 == 4);
    CHECK(v3 == 2);

    store_t::batch b;
    SECTION("batches of every size cover the log exactly once, in order") {
        for (std::size_t size : {1u, 2u, 3u, 4u, 9u, 10u, 11u, 1000u}) {
            INFO("batch size " << size);
            CHECK(read_all(store, 0, size) == iota(1, 10));
        }
    }
    SECTION("max bounds the batch") {
        store.read(0, 3, b);
        CHECK(positions_of(b) == iota(1, 3));
        store.read(3, 3, b);
        CHECK(positions_of(b) == iota(4, 6));
        store.read(9, 3, b);
        CHECK(positions_of(b) == std::vector<std::uint64_t>{10});
    }
    SECTION("after excludes its own position") {
        store.read(4, 100, b);
        CHECK(positions_of(b) == iota(5, 10));
        store.read(9, 100, b);
        CHECK(positions_of(b) == std::vector<std::uint64_t>{10});
    }
    SECTION("nothing after the head, nothing for max 0") {
        b.push_back(nullptr);
        store.read(10, 100, b);
        CHECK(b.empty());
        b.push_back(nullptr);
        store.read(11, 100, b);
        CHECK(b.empty());
        store.read(std::numeric_limits<std::uint64_t>::max(), 100, b);
        CHECK(b.empty());
        store.read(0, 0, b);
        CHECK(b.empty());
        store.read(5, 0, b);
        CHECK(b.empty());
    }
    SECTION("an unbounded max reads to the head") {
        const auto unbounded = std::numeric_limits<std::size_t>::max();
        store.read(0, unbounded, b);
        CHECK(positions_of(b) == iota(1, 10));
        store.read(6, unbounded, b);
        CHECK(positions_of(b) == iota(7, 10));
        store.read(6, unbounded - 3, b);
        CHECK(positions_of(b) == iota(7, 10));
    }
    SECTION("records carry their stream, aggregate and version") {
        store.read(0, 3, b);
        REQUIRE(b.size() == 3);
        CHECK(b[0]->stream() == "ticket");
        CHECK(b[0]->aggregate_id() == "t-1");
        CHECK(b[1]->stream() == "comment");
        CHECK(b[1]->aggregate_id() == "t-1");
        CHECK(b[2]->stream() == "ticket");
        CHECK(b[2]->aggregate_id() == "t-3");
        CHECK(b[0]->aggregate_version() == 1);
        CHECK(b[1]->aggregate_version() == 1);
        CHECK(b[2]->aggregate_version() == 1);
    }
    SECTION("pointers from earlier reads stay valid as the log grows") {
        store.read(0, 1, b);
        const auto* first = b.front();
        for (int i = 0; i < 1000; ++i)
            store.append(ticket_stream{}, "grow", pj::expected_version::any(), ticket_closed{"grow"});
        CHECK(first->position() == 1);
        CHECK(first->aggregate_id() == "t-1");
        CHECK(first->get_if<ticket_closed>()->ticket_id == "t-1");
        CHECK(read_all(store, 0, 64) == iota(1, 1010));
    }
}

TEST_CASE("read_aggregate returns one aggregate's events in version order", "[store][aggregate]") {
    store_t store;
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "task"});
    store.append(comment_stream{}, "t-1", 0, comment_added{"t-1", "first"});
    store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});
    store.append(ticket_stream{}, "t-2", 1, ticket_closed{"t-2"});
    store.append(ticket_stream{}, "t-1", 2, ticket_reopened{"t-1"});

    const auto t1 = store.read_aggregate(ticket_stream{}, "t-1");
    CHECK(positions_of(t1) == std::vector<std::uint64_t>{1, 4, 6});
    REQUIRE(t1.size() == 3);
    CHECK(t1[0]->get_if<ticket_registered>() != nullptr);
    CHECK(t1[1]->get_if<ticket_closed>() != nullptr);
    CHECK(t1[2]->get_if<ticket_reopened>() != nullptr);
    for (const auto* r : t1) {
        CHECK(r->stream() == "ticket");
        CHECK(r->aggregate_id() == "t-1");
    }

    // The comment on t-1 is another aggregate: same id, other stream.
    const auto c1 = store.read_aggregate(comment_stream{}, "t-1");
    CHECK(positions_of(c1) == std::vector<std::uint64_t>{3});
    CHECK(positions_of(store.read_aggregate(ticket_stream{}, "t-2")) == std::vector<std::uint64_t>{2, 5});
    CHECK(store.read_aggregate(ticket_stream{}, "t-3").empty());
    CHECK(store.read_aggregate(comment_stream{}, "t-2").empty());

    // version_of follows the same per-(stream, id) rule.
    CHECK(store.version_of(ticket_stream{}, "t-1") == 3);
    CHECK(store.version_of(comment_stream{}, "t-1") == 1);
    CHECK(store.version_of(ticket_stream{}, "t-2") == 2);
    CHECK(store.version_of(comment_stream{}, "t-2") == 0);
    CHECK(store.version_of(ticket_stream{}, "") == 0);
}

TEST_CASE("aggregate numbers are dense from 0, one per (stream, id)", "[store][aggregate]") {
    store_t store;
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"});
    store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"});  // not a new aggregate
    store.append(comment_stream{}, "t-1", 0, comment_added{"t-1", "x"});
    store.append(ticket_stream{}, "", 0, ticket_registered{"", "empty id"});  // the empty id is an id too

    CHECK(store.aggregate_number(ticket_stream{}, "t-1") == std::optional<std::uint64_t>(0));
    CHECK(store.aggregate_number(ticket_stream{}, "t-2") == std::optional<std::uint64_t>(1));
    CHECK(store.aggregate_number(comment_stream{}, "t-1") == std::optional<std::uint64_t>(2));
    CHECK(store.aggregate_number(ticket_stream{}, "") == std::optional<std::uint64_t>(3));
    CHECK_FALSE(store.aggregate_number(comment_stream{}, "t-2").has_value());
    CHECK_FALSE(store.aggregate_number(ticket_stream{}, "t-3").has_value());
    CHECK(store.aggregate_count() == 4);

    // Records know their aggregate's number.
    store_t::batch b;
    store.read(0, 10, b);
    REQUIRE(b.size() == 5);
    CHECK(b[0]->aggregate_number() == 0);
    CHECK(b[1]->aggregate_number() == 1);
    CHECK(b[2]->aggregate_number() == 0);
    CHECK(b[3]->aggregate_number() == 2);
    CHECK(b[4]->aggregate_number() == 3);
}

TEST_CASE("event types are interned per (stream, stored name)", "[store][types]") {
    store_t store;
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    CHECK(store.type_count() == 1);
    store.append(ticket_stream{}, "t-2", 0, ticket_registered{"t-2", "bug"});
    CHECK(store.type_count() == 1);  // the same type again
    store.append(ticket_stream{}, "t-1", 1, ticket_closed{"t-1"}, ticket_reopened{"t-1"}, ticket_closed{"t-1"});
    CHECK(store.type_count() == 3);
    store.append(comment_stream{}, "t-1", 0, comment_added{"t-1", "x"});
    CHECK(store.type_count() == 4);

    const auto registered = store.type_info(0);
    CHECK(registered.id == 0);
    CHECK(registered.stream == "ticket");
    CHECK(registered.name == "ticket.registered");
    CHECK(registered.cpp_type == pj::detail::type_identity<ticket_registered>());
    CHECK(registered.cpp_type != pj::detail::type_identity<ticket_closed>());

    const auto closed = store.type_info(1);
    CHECK(closed.id == 1);
    CHECK(closed.name == "ticket.closed");
    CHECK(closed.cpp_type == pj::detail::type_identity<ticket_closed>());
    CHECK(store.type_info(2).name == "ticket.reopened");
    CHECK(store.type_info(2).cpp_type == pj::detail::type_identity<ticket_reopened>());

    const auto comment = store.type_info(3);
    CHECK(comment.stream == "comment");
    CHECK(comment.name == "comment.added");
    CHECK(comment.cpp_type == pj::detail::type_identity<comment_added>());
    CHECK_THROWS_AS(store.type_info(4), std::out_of_range);

    // Records point at their type's id.
    store_t::batch b;
    store.read(0, 100, b);
    REQUIRE(b.size() == 6);
    const std::vector<std::uint32_t> expected_ids{0, 0, 1, 2, 1, 3};
    for (std::size_t i = 0; i < b.size(); ++i) {
        CHECK(b[i]->type_id() == expected_ids[i]);
        CHECK(store.type_info(b[i]->type_id()).name == b[i]->type_name());
        CHECK(store.type_info(b[i]->type_id()).stream == b[i]->stream());
    }

    // The views of a type_info stay valid while more types are interned.
    const auto early = store.type_info(0);
    for (int i = 0; i < 50; ++i) store.append(left_stream{}, std::to_string(i), 0, note{i});
    CHECK(early.name == "ticket.registered");
    CHECK(early.stream == "ticket");
}

TEST_CASE("one event type in two streams is two interned types", "[store][types]") {
    store_t store;
    store.append(left_stream{}, "a", 0, note{1});
    store.append(right_stream{}, "a", 0, note{2});
    REQUIRE(store.type_count() == 2);
    CHECK(store.type_info(0).stream == "left");
    CHECK(store.type_info(1).stream == "right");
    CHECK(store.type_info(0).name == store.type_info(1).name);
    CHECK(store.type_info(0).cpp_type == store.type_info(1).cpp_type);
    CHECK(store.aggregate_count() == 2);
}

TEST_CASE("a stored name cannot mean two C++ types in one stream", "[store][types]") {
    store_t store;
    store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
    try {
        store.append(impostor_stream{}, "t-2", 0, impostor_registered{1});
        FAIL("expected projectionist::error");
    } catch (const pj::version_conflict&) {
        FAIL("not a version conflict");
    } catch (const pj::error& e) {
        CHECK_THAT(std::string(e.what()), Catch::Contains("'ticket.registered'"));
        CHECK_THAT(std::string(e.what()), Catch::Contains("'ticket'"));
    }
    CHECK(store.head() == 1);
    CHECK(store.type_count() == 1);
    CHECK(store.aggregate_count() == 1);
    CHECK_FALSE(store.aggregate_number(impostor_stream{}, "t-2").has_value());
}

TEST_CASE("record accessors describe the stored event", "[store][record]") {
    store_t store;
    store.append(ticket_stream{}, "t-0", 0, ticket_registered{"t-0", "noise"});
    const auto before = std::chrono::system_clock::now();
    const ticket_registered lvalue{"t-1", "bug"};  // appended by copy
    store.append(ticket_stream{}, "t-1", 0, lvalue);
    ticket_closed closed{"t-1"};
    store.append(ticket_stream{}, "t-1", 1, std::move(closed));
    const auto after = std::chrono::system_clock::now();

    store_t::batch b;
    store.read(1, 2, b);
    REQUIRE(b.size() == 2);
    const auto& r = *b[0];
    CHECK(r.position() == 2);
    CHECK(r.type_name() == "ticket.registered");
    CHECK(r.stream() == "ticket");
    CHECK(r.aggregate_id() == "t-1");
    CHECK(r.aggregate_version() == 1);
    CHECK(r.aggregate_number() == 1);
    CHECK(r.recorded_at() >= before);
    CHECK(r.recorded_at() <= after);

    const pj::envelope env = r.envelope_of();
    CHECK(env.position == 2);
    CHECK(env.stream == "ticket");
    CHECK(env.aggregate_id == "t-1");
    CHECK(env.aggregate_version == 1);
    CHECK(env.event_type == "ticket.registered");
    CHECK(env.recorded_at == r.recorded_at());

    const auto* payload = r.get_if<ticket_registered>();
    REQUIRE(payload != nullptr);
    CHECK(payload->ticket_id == "t-1");
    CHECK(payload->type == "bug");
    CHECK(payload != &lvalue);  // the store owns a copy
    CHECK(r.get_if<ticket_closed>() == nullptr);
    CHECK(r.get_if<ticket_reopened>() == nullptr);
    CHECK(r.get_if<comment_added>() == nullptr);
    CHECK(r.get_if<impostor_registered>() == nullptr);  // same stored name, other C++ type
    CHECK(&store_t::event_of<ticket_registered>(r) == payload);

    const auto& second = *b[1];
    CHECK(second.position() == 3);
    CHECK(second.type_name() == "ticket.closed");
    CHECK(second.aggregate_version() == 2);
    REQUIRE(second.get_if<ticket_closed>() != nullptr);
    CHECK(second.get_if<ticket_closed>()->ticket_id == "t-1");
    CHECK(second.get_if<ticket_registered>() == nullptr);
    CHECK(second.envelope_of().aggregate_version == 2);
    CHECK(second.envelope_of().position == 3);
}

TEST_CASE("wait_for_events", "[store][wait]") {
    store_t store;
    store.append(ticket_stream{}, "t-0", 0, ticket_registered{"t-0", "x"});

    SECTION("returns true at once when events are already there") {
        const auto start = std::chrono::steady_clock::now();
        CHECK(store.wait_for_events(0, 5s, std::stop_token{}));
        CHECK(std::chrono::steady_clock::now() - start < 1s);
    }
    SECTION("returns true when another thread appends") {
        std::jthread writer([&] {
            std::this_thread::sleep_for(30ms);
            store.append(ticket_stream{}, "t-1", 0, ticket_registered{"t-1", "bug"});
        });
        const auto start = std::chrono::steady_clock::now();
        CHECK(store.wait_for_events(1, 10s, std::stop_token{}));
        CHECK(std::chrono::steady_clock::now() - start < 5s);
        CHECK(store.head() == 2);
    }
    SECTION("returns false on timeout") {
        const auto start = std::chrono::steady_clock::now();
        CHECK_FALSE(store.wait_for_events(1, 50ms, std::stop_token{}));
        const auto waited = std::chrono::steady_clock::now() - start;
        CHECK(waited >= 45ms);
        CHECK(waited < 1500ms);
    }
    SECTION("returns promptly when stop is requested") {
        std::stop_source stop;
        std::jthread stopper([&] {
            std::this_thread::sleep_for(30ms);
            stop.request_stop();
        });
        const auto start = std::chrono::steady_clock::now();
        CHECK_FALSE(store.wait_for_events(1, 30s, stop.get_token()));
        CHECK(std::chrono::steady_clock::now() - start < 1500ms);
    }
    SECTION("returns at once when stop was requested before") {
        std::stop_source stop;
        stop.request_stop();
        const auto start = std::chrono::steady_clock::now();
        CHECK_FALSE(store.wait_for_events(1, 30s, stop.get_token()));
        CHECK(std::chrono::steady_clock::now() - start < 1s);
    }
}

TEST_CASE("a reader follows a concurrent writer in global order", "[store][concurrency]") {
    constexpr std::uint64_t total = 20000;
    constexpr int aggregates = 50;
    store_t store;

    std::thread writer([&] {
        std::vector<std::uint64_t> versions(aggregates, 0);
        for (std::uint64_t i = 0; i < total; ++i) {
            const int a = static_cast<int>(i % aggregates);
            const std::string id = "t-" + std::to_string(a);
            versions[a] = store.append(ticket_stream{}, id, versions[a], ticket_closed{id}).version;
        }
    });

    std::uint64_t seen = 0;
    bool contiguous = true;
    bool payloads_ok = true;
    std::vector<std::uint64_t> versions(aggregates, 0);
    bool versions_ok = true;
    store_t::batch b;
    std::uint64_t empty_reads = 0;
    const auto deadline = std::chrono::steady_clock::now() + 20s;  // a safety net, not a budget
    while (seen < total && std::chrono::steady_clock::now() < deadline) {
        store.read(seen, 257, b);
        if (b.empty()) {
            ++empty_reads;
            store.wait_for_events(seen, 10ms, std::stop_token{});
            continue;
        }
        for (const auto* r : b) {
            if (r->position() != seen + 1) contiguous = false;
            seen = r->position();
            const auto* e = r->get_if<ticket_closed>();
            if (e == nullptr || e->ticket_id != r->aggregate_id()) payloads_ok = false;
            const auto n = r->aggregate_number();
            if (n >= static_cast<std::uint64_t>(aggregates) || r->aggregate_version() != versions[n] + 1)
                versions_ok = false;
            else
                versions[n] = r->aggregate_version();
        }
    }
    writer.join();

    CHECK(seen == total);
    CHECK(contiguous);
    CHECK(payloads_ok);
    CHECK(versions_ok);
    CHECK(store.head() == total);
    CHECK(store.aggregate_count() == static_cast<std::uint64_t>(aggregates));
    CHECK(store.version_of(ticket_stream{}, "t-0") == total / aggregates);
    CHECK(read_all(store, 0, 4096) == iota(1, total));
    INFO("empty reads while following: " << empty_reads);
    CHECK(store.type_count() == 1);
}

TEST_CASE("a refused append interns no new event type", "[store]") {
    projectionist::memory_event_store store;
    store.append(tickets_domain::ticket_stream{}, "t-1", 0, tickets_domain::ticket_registered{"t-1", "bug"});
    const auto types_before = store.type_count();
    CHECK_THROWS_AS(store.append(tickets_domain::ticket_stream{}, "t-1", 0, tickets_domain::ticket_closed{"t-1"}),
                    projectionist::version_conflict);
    CHECK(store.type_count() == types_before);
    CHECK(store.head() == 1);
}

}  // namespace memory_event_store_test
