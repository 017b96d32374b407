#include <string>
#include <type_traits>

#include <boost/hana/define_struct.hpp>
#include <catch2/catch.hpp>

#include <projectionist/meta/fnv1a.hpp>
#include <projectionist/meta/reflection.hpp>

namespace reflection_test {

namespace {
struct reflected_row {
    BOOST_HANA_DEFINE_STRUCT(reflected_row, (std::string, id), (int, count));
};
}  // namespace

namespace pd = projectionist::detail;

static_assert(pd::is_reflected<reflected_row>);
static_assert(!pd::is_reflected<int>);
static_assert(pd::field_count<reflected_row> == 2);
static_assert(pd::field_name<reflected_row, 0>() == "id");
static_assert(pd::field_name<reflected_row, 1>() == "count");
static_assert(std::is_same_v<pd::field_t<reflected_row, 1>, int>);

// The published FNV-1a test vectors: the hash must never change, partitions and buckets depend on it.
static_assert(pd::fnv1a_64("") == 0xcbf29ce484222325ULL);
static_assert(pd::fnv1a_64("a") == 0xaf63dc4c8601ec8cULL);
static_assert(pd::fnv1a_64("foobar") == 0x85944171f73967e8ULL);
static_assert(pd::fnv1a_64("bar", pd::fnv1a_64("foo")) == pd::fnv1a_64("foobar"));

TEST_CASE("for_each_field visits every field in declaration order, by reference") {
    reflected_row row{"t-1", 2};
    std::string seen;
    pd::for_each_field(row, [&](std::string_view name, auto& value) {
        seen += std::string(name) + ";";
        if constexpr (std::is_same_v<std::remove_cvref_t<decltype(value)>, int>) value = 7;
    });
    CHECK(seen == "id;count;");
    CHECK(row.count == 7);
    CHECK(pd::field<0>(row) == "t-1");
    CHECK(pd::field_names<reflected_row>() == std::vector<std::string>{"id", "count"});
}

}  // namespace reflection_test
