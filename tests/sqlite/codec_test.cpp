// Codecs: binary (the default) and JSON round-trip every supported field type; bad payloads
// are errors that say what and where; older schema versions are upcast.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <boost/hana/define_struct.hpp>

#include <projectionist/event/codec.hpp>
#include <projectionist/event/event.hpp>
#include <projectionist/event/json_codec.hpp>
#include <projectionist/event/schema.hpp>

namespace codec_test {

namespace pj = projectionist;

namespace {

enum class priority : std::uint8_t { low = 1, high = 2 };

struct line_item {
    BOOST_HANA_DEFINE_STRUCT(line_item, (std::string, sku), (std::optional<std::string>, note), (std::int32_t, qty));
    friend bool operator==(const line_item&, const line_item&) = default;
};

struct everything {
    BOOST_HANA_DEFINE_STRUCT(everything, (std::string, id), (std::int64_t, big), (std::uint64_t, unsigned_big),
                             (std::int8_t, tiny), (double, ratio), (float, approx), (bool, flag), (priority, prio),
                             (std::vector<line_item>, items), (std::chrono::system_clock::time_point, at),
                             (std::optional<int>, maybe), (std::vector<std::string>, tags));
    static constexpr std::string_view event_name = "everything.happened";
    friend bool operator==(const everything&, const everything&) = default;
};

everything sample() {
    return everything{"id-1",
                      std::numeric_limits<std::int64_t>::min(),
                      std::numeric_limits<std::uint64_t>::max(),
                      -7,
                      0.125,
                      1.5f,
                      true,
                      priority::high,
                      {{"a", "gift", 2}, {"b", std::nullopt, -1}},
                      std::chrono::system_clock::time_point(std::chrono::microseconds(1'700'000'000'123'456)),
                      std::nullopt,
                      {"x", "", "z"}};
}

// Schema evolution: v1 had no type; v2 added it; v3 renamed status codes to a bool.
struct registered_v1 {
    BOOST_HANA_DEFINE_STRUCT(registered_v1, (std::string, ticket_id));
};
struct registered_v2 {
    BOOST_HANA_DEFINE_STRUCT(registered_v2, (std::string, ticket_id), (std::string, type));
    static constexpr unsigned schema_version = 2;
    using previous_schema = registered_v1;
    static registered_v2 upcast(registered_v1 old) { return {old.ticket_id, "unknown"}; }
};
struct registered {
    BOOST_HANA_DEFINE_STRUCT(registered, (std::string, ticket_id), (std::string, type), (bool, urgent));
    static constexpr std::string_view event_name = "ticket.registered";
    static constexpr unsigned schema_version = 3;
    using previous_schema = registered_v2;
    static registered upcast(registered_v2 old) { return {old.ticket_id, old.type, old.type == "incident"}; }
};
static_assert(pj::event_name_of<everything> == "everything.happened");
static_assert(pj::event_name_of<registered> == "ticket.registered");
static_assert(pj::schema_version_of<registered> == 3);
static_assert(pj::schema_version_of<registered_v1> == 1);
static_assert(pj::detail::has_previous_schema<registered>);
static_assert(!pj::detail::has_previous_schema<registered_v1>);

}  // namespace

TEMPLATE_TEST_CASE("a codec round-trips every supported field type", "[codec]", pj::binary_codec, pj::json_codec) {
    std::string payload;
    TestType::encode(sample(), payload);
    CHECK(TestType::template decode<everything>(payload) == sample());
    everything empty{};
    payload.clear();
    TestType::encode(empty, payload);
    CHECK(TestType::template decode<everything>(payload) == empty);
}

TEST_CASE("binary: every truncation of a payload is an error naming the field, never a crash", "[codec]") {
    std::string payload;
    pj::binary_codec::encode(sample(), payload);
    for (std::size_t n = 0; n < payload.size(); ++n) {
        const std::string cut = payload.substr(0, n);
        CHECK_THROWS_AS(pj::binary_codec::decode<everything>(cut), pj::codec_error);
    }
    CHECK_THROWS_WITH(pj::binary_codec::decode<everything>(payload.substr(0, 3)),
                      Catch::Contains("truncated payload") && Catch::Contains("field 'id'"));
}

TEST_CASE("binary: trailing bytes and impossible values are corruption", "[codec]") {
    std::string payload;
    pj::binary_codec::encode(sample(), payload);
    CHECK_THROWS_WITH(pj::binary_codec::decode<everything>(payload + "!"), Catch::Contains("unexpected bytes"));
    line_item item{"a", std::nullopt, 1};
    std::string p2;
    pj::binary_codec::encode(item, p2);
    p2[5] = 7;  // the optional's presence flag: only 0 or 1 are valid
    CHECK_THROWS_WITH(pj::binary_codec::decode<line_item>(p2), Catch::Contains("field 'note'"));
    // A vector count far beyond the payload is refused before anything is reserved.
    everything e{};
    std::string p4;
    pj::binary_codec::encode(e, p4);
    // items count sits after id(4) big(8) unsigned_big(8) tiny(1) ratio(8) approx(4) flag(1) prio(1)
    const std::size_t items_at = 4 + 8 + 8 + 1 + 8 + 4 + 1 + 1;
    p4[items_at + 3] = '\x7f';
    CHECK_THROWS_WITH(pj::binary_codec::decode<everything>(p4), Catch::Contains("claims") && Catch::Contains("items"));
}

TEST_CASE("binary: random corruption never crashes", "[codec]") {
    std::string payload;
    pj::binary_codec::encode(sample(), payload);
    std::uint32_t state = 12345;
    for (int round = 0; round < 2000; ++round) {
        std::string bad = payload;
        for (int k = 0; k < 3; ++k) {
            state = state * 1664525u + 1013904223u;
            bad[state % bad.size()] = static_cast<char>(state >> 24);
        }
        try {
            (void)pj::binary_codec::decode<everything>(bad);
        } catch (const pj::codec_error&) {
        }
    }
    SUCCEED("2000 corrupted payloads decoded or were refused without a crash");
}

TEST_CASE("json: type mismatches, missing fields and bad JSON are errors naming the field", "[codec]") {
    CHECK_THROWS_WITH(pj::json_codec::decode<line_item>("{"), Catch::Contains("not valid JSON"));
    CHECK_THROWS_WITH(pj::json_codec::decode<line_item>(R"({"sku": 5, "qty": 1})"),
                      Catch::Contains("field 'sku'") && Catch::Contains("should be a string"));
    CHECK_THROWS_WITH(pj::json_codec::decode<line_item>(R"({"sku": "a"})"), Catch::Contains("field 'qty' is missing"));
    CHECK_THROWS_WITH(pj::json_codec::decode<everything>(R"({"tiny": 300})"), Catch::Contains("field"));
    CHECK_THROWS_WITH(pj::json_codec::decode<line_item>(R"([1,2])"), Catch::Contains("should be an object"));
    // Optional fields may be absent, unknown fields are ignored: adding optional fields stays compatible.
    const auto item = pj::json_codec::decode<line_item>(R"({"sku": "a", "qty": 2, "added_later": true})");
    CHECK(item == line_item{"a", std::nullopt, 2});
}

TEST_CASE("json: every double is read back exactly, however it is spelled", "[codec]") {
    struct number {
        BOOST_HANA_DEFINE_STRUCT(number, (double, x));
    };
    auto read = [](const std::string& text) { return pj::json_codec::decode<number>(R"({"x":)" + text + "}").x; };
    // What the codec writes, round-tripped: Boost.JSON 1.81's own parser is an ulp off on this one.
    for (const double x : {-1.2345678901234567e-300, 1.7976931348623157e308, 4.9406564584124654e-324, 0.1, -0.0}) {
        std::string payload;
        pj::json_codec::encode(number{x}, payload);
        CHECK(pj::json_codec::decode<number>(payload).x == x);
    }
    // PostgreSQL's jsonb prints numbers as plain decimals: the largest double has 309 digits.
    CHECK(read("17976931348623157" + std::string(292, '0')) == std::numeric_limits<double>::max());
    CHECK(read("0.000000000000000000000000000001") == 1e-30);
    CHECK(read("1E2") == 100.0);
    // A number too large for a double stays an error-free infinity, as Boost.JSON reads it.
    CHECK(read("1e400") == std::numeric_limits<double>::infinity());
    // Text after the document is corruption.
    CHECK_THROWS_WITH(pj::json_codec::decode<number>(R"({"x":1} {})"), Catch::Contains("not valid JSON"));
}

TEST_CASE("json: the payload is readable text keyed by field name", "[codec]") {
    std::string payload;
    pj::json_codec::encode(line_item{"sku-1", "gift", 3}, payload);
    CHECK(payload == R"({"sku":"sku-1","note":"gift","qty":3})");
}

TEMPLATE_TEST_CASE("older schema versions are upcast through the chain", "[codec][schema]", pj::binary_codec,
                   pj::json_codec) {
    std::string v1, v2, v3;
    TestType::encode(registered_v1{"t-1"}, v1);
    TestType::encode(registered_v2{"t-2", "incident"}, v2);
    TestType::encode(registered{"t-3", "bug", false}, v3);
    const auto a = pj::decode_event<registered, TestType>(1, v1);
    CHECK(a.ticket_id == "t-1");
    CHECK(a.type == "unknown");
    CHECK_FALSE(a.urgent);
    const auto b = pj::decode_event<registered, TestType>(2, v2);
    CHECK(b.type == "incident");
    CHECK(b.urgent);
    const auto c = pj::decode_event<registered, TestType>(3, v3);
    CHECK(c.ticket_id == "t-3");
    CHECK_THROWS_WITH((pj::decode_event<registered, TestType>(4, v3)), Catch::Contains("unsupported schema version 4"));
    CHECK_THROWS_WITH((pj::decode_event<registered_v1, TestType>(2, v1)),
                      Catch::Contains("unsupported schema version 2"));
}

}  // namespace codec_test
