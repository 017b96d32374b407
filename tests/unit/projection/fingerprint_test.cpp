// The fingerprint of a projection version's definition: computed at compile time, equal for
// equal definitions, different when a handled event, a table, a column's name or C++ type, a key,
// the partitioning or the revision changes; and the words that name what changed. Every column
// type is spelled the same by every compiler: by kind, or as the type or a trait says.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/hana/define_struct.hpp>
#include <boost/mp11/list.hpp>

#include <projectionist/policy/policies.hpp>
#include <projectionist/projection/fingerprint.hpp>

namespace fingerprint_test {

namespace pj = projectionist;

namespace spelled {
/// A type one cannot change (a library's): spelled by specializing the trait below.
struct uuid_like {
    unsigned char bytes[16];
};
/// A type of one's own: it says how it is spelled.
struct money {
    static constexpr std::string_view column_spelling = "money(cents int64)";
    std::int64_t cents = 0;
};
struct money_in_euros {  // another meaning of the stored values: another spelling
    static constexpr std::string_view column_spelling = "money(euros float64)";
    double euros = 0;
};
enum class shade : std::uint8_t { light, dark };
enum class tone : std::uint8_t { soft, loud };  // renamed: the same stored values
enum class wide_shade : std::uint32_t { light, dark };
}  // namespace spelled

}  // namespace fingerprint_test

template <>
struct projectionist::column_spelling<fingerprint_test::spelled::uuid_like> {
    static constexpr std::string_view name = "uuid";
};

namespace fingerprint_test {

namespace {

struct opened {
    BOOST_HANA_DEFINE_STRUCT(opened, (std::string, id));
    static constexpr std::string_view event_name = "case.opened";
};
struct closed {
    BOOST_HANA_DEFINE_STRUCT(closed, (std::string, id));
    static constexpr std::string_view event_name = "case.closed";
};
using case_stream = pj::stream<"case", opened, closed>;
using opened_only = boost::mp11::mp_list<pj::detail::subscription<case_stream, opened>>;
using both =
    boost::mp11::mp_list<pj::detail::subscription<case_stream, opened>, pj::detail::subscription<case_stream, closed>>;

struct row {
    BOOST_HANA_DEFINE_STRUCT(row, (std::string, id), (int, count));
};
struct same_row {  // another type, the same columns
    BOOST_HANA_DEFINE_STRUCT(same_row, (std::string, id), (int, count));
};
struct renamed_row {
    BOOST_HANA_DEFINE_STRUCT(renamed_row, (std::string, id), (int, total));
};
struct retyped_row {
    BOOST_HANA_DEFINE_STRUCT(retyped_row, (std::string, id), (std::int64_t, count));
};
struct wider_row {
    BOOST_HANA_DEFINE_STRUCT(wider_row, (std::string, id), (int, count), (std::optional<bool>, reopened));
};
struct two_keys_row {
    BOOST_HANA_DEFINE_STRUCT(two_keys_row, (std::string, id), (std::string, other), (int, count));
};
struct typed_row {
    BOOST_HANA_DEFINE_STRUCT(typed_row, (std::string, id), (std::vector<double>, samples),
                             (std::chrono::system_clock::time_point, at), (std::uint8_t, flags));
};

template <class Money, class Shade>
struct spelled_row {
    BOOST_HANA_DEFINE_STRUCT(spelled_row, (std::string, id), (spelled::uuid_like, ref), (std::optional<Money>, price),
                             (Shade, shade));
};

template <class Row, auto Key, unsigned V = 1>
struct cases : pj::projection<"cases", V, case_stream> {
    using table = pj::table<Row, Key>;
};
template <unsigned V = 1>
struct revised : pj::projection<"cases", V, case_stream> {
    using table = pj::table<row, &row::id>;
    static constexpr std::string_view revision = "counts reopenings";
};
struct with_index : pj::projection<"cases", 1, case_stream> {
    using tables = pj::tables<pj::table<row, &row::id>, pj::table<same_row, &same_row::id, "by_id">>;
};

template <class P, class Entries = both, class Partitioning = pj::global>
constexpr std::uint64_t fp = pj::fingerprint_of<P, Entries, Partitioning>;

using base = cases<row, &row::id>;

// The same definition gives the same value, whatever the row type is called.
static_assert(fp<base> == fp<cases<row, &row::id>>);
static_assert(fp<base> == fp<cases<same_row, &same_row::id>>);
// Each part of the definition changes it.
static_assert(fp<base> != fp<cases<renamed_row, &renamed_row::id>>);  // a column's name
static_assert(fp<base> != fp<cases<retyped_row, &retyped_row::id>>);  // a column's C++ type
static_assert(fp<base> != fp<cases<wider_row, &wider_row::id>>);      // a new column
static_assert(fp<cases<two_keys_row, &two_keys_row::id>> !=
              fp<cases<two_keys_row, &two_keys_row::other>>);  // the key, of the same type
static_assert(fp<base> != fp<base, opened_only>);              // the events handled
static_assert(fp<base> != fp<base, both, pj::per_aggregate>);  // the partitioning
static_assert(fp<base> != fp<revised<>>);                      // the revision
static_assert(fp<base> != fp<cases<row, &row::id, 2>>);        // the version (its table names)
static_assert(fp<base> != fp<with_index>);                     // a further table

// Types spelled by the user or by their underlying type: no compiler's name for a type is part
// of the definition, so binaries built by different compilers agree.
template <class Money, class Shade>
using spelled_cases = cases<spelled_row<Money, Shade>, &spelled_row<Money, Shade>::id>;
static_assert(fp<spelled_cases<spelled::money, spelled::shade>> == fp<spelled_cases<spelled::money, spelled::tone>>);
static_assert(fp<spelled_cases<spelled::money, spelled::shade>> !=
              fp<spelled_cases<spelled::money_in_euros, spelled::shade>>);
static_assert(fp<spelled_cases<spelled::money, spelled::shade>> !=
              fp<spelled_cases<spelled::money, spelled::wide_shade>>);
static_assert(fp<spelled_cases<spelled::money, spelled::shade>> ==
              0xb36d341e6fc00bfaULL);  // every compiler, every platform

}  // namespace

TEST_CASE("a column type is spelled by kind, by its underlying type, or as the user says", "[fingerprint]") {
    const std::string text = pj::definition_of<spelled_cases<spelled::money, spelled::shade>, both, pj::global>();
    CHECK(text.find("column cases_v1 ref uuid\n"
                    "column cases_v1 price optional<money(cents int64)>\n"
                    "column cases_v1 shade enum<uint8>\n") != std::string::npos);
    CHECK(pj::detail::fnv1a_64(text) == fp<spelled_cases<spelled::money, spelled::shade>>);
}

TEST_CASE("a definition is spelled one fact per line, and hashed into its fingerprint", "[fingerprint]") {
    const std::string text = pj::definition_of<revised<>, both, pj::per_aggregate>();
    CHECK(text ==
          "projection cases_v1\n"
          "revision counts reopenings\n"
          "partitioning per_aggregate\n"
          "event case case.opened\n"
          "event case case.closed\n"
          "table cases_v1 key id\n"
          "column cases_v1 id string\n"
          "column cases_v1 count int32\n");
    CHECK(pj::detail::fnv1a_64(text) == fp<revised<>, both, pj::per_aggregate>);
    CHECK(pj::fingerprint_text(0x0123456789abcdefULL) == "0123456789abcdef");
    CHECK(pj::definition_of<cases<typed_row, &typed_row::id>, both, pj::global>().find(
              "column cases_v1 samples vector<float64>\n"
              "column cases_v1 at time_point<duration<int64,1/1000000000>>\n"
              "column cases_v1 flags uint8\n") != std::string::npos);
}

TEST_CASE("what changed between two definitions, in words", "[fingerprint]") {
    const std::string before = pj::definition_of<base, both, pj::global>();
    CHECK(pj::definition_changes(before, before).empty());
    CHECK(pj::definition_changes(before, pj::definition_of<cases<wider_row, &wider_row::id>, both, pj::global>()) ==
          "column 'reopened' is new");
    CHECK(pj::definition_changes(before, pj::definition_of<cases<retyped_row, &retyped_row::id>, both, pj::global>()) ==
          "column 'count' changed type from int32 to int64");
    CHECK(pj::definition_changes(before, pj::definition_of<cases<renamed_row, &renamed_row::id>, both, pj::global>()) ==
          "column 'total' is new; column 'count' was removed");
    CHECK(pj::definition_changes(before, pj::definition_of<base, opened_only, pj::per_aggregate>()) ==
          "the partitioning changed from 'global' to 'per_aggregate'; event 'case.closed' is no longer handled");
    CHECK(pj::definition_changes(before, pj::definition_of<revised<>, both, pj::global>()) ==
          "the revision 'counts reopenings' is new");
    CHECK(pj::definition_changes(pj::definition_of<cases<two_keys_row, &two_keys_row::id>, both, pj::global>(),
                                 pj::definition_of<cases<two_keys_row, &two_keys_row::other>, both, pj::global>()) ==
          "the key of table cases_v1 changed from 'id' to 'other'");
    CHECK(pj::definition_changes(before, pj::definition_of<with_index, both, pj::global>()) ==
          "table cases_v1_by_id is new");
}

}  // namespace fingerprint_test
