// fixed_string: a string usable as a non-type template parameter (stream and projection names).

#include <catch2/catch.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

#include <projectionist/meta/fixed_string.hpp>

namespace fixed_string_test {

namespace pj = projectionist;

namespace {

// ---- size and view: the terminating null is not part of the string ---------------------------
static_assert(pj::fixed_string{"tickets"}.size() == 7);
static_assert(pj::fixed_string{"tickets"}.view() == "tickets");
static_assert(pj::fixed_string{"a"}.size() == 1);
static_assert(pj::fixed_string{""}.size() == 0);
static_assert(pj::fixed_string{""}.view().empty());
static_assert(decltype(pj::fixed_string{"abc"})::size() == 3);  // size() is static

// The stored array still ends in a null, so `data` is a C string.
static_assert(pj::fixed_string{"ab"}.data[0] == 'a');
static_assert(pj::fixed_string{"ab"}.data[1] == 'b');
static_assert(pj::fixed_string{"ab"}.data[2] == '\0');
static_assert(sizeof(pj::fixed_string<5>::data) == 6);

// An embedded null is kept: the size comes from the array, not from strlen.
static_assert(pj::fixed_string{"a\0b"}.size() == 3);
static_assert(pj::fixed_string{"a\0b"}.view() == std::string_view("a\0b", 3));

// ---- CTAD: the deduction guide drops the terminating null -------------------------------------
static_assert(std::is_same_v<decltype(pj::fixed_string{"abc"}), pj::fixed_string<3>>);
static_assert(std::is_same_v<decltype(pj::fixed_string{""}), pj::fixed_string<0>>);
static_assert(std::is_same_v<decltype(pj::fixed_string("tickets")), pj::fixed_string<7>>);

// ---- from a string_view of exactly N characters ------------------------------------------------
static_assert(pj::fixed_string<3>(std::string_view("abcdef").substr(0, 3)).view() == "abc");
static_assert(pj::fixed_string<3>(std::string_view("abcdef").substr(3)).view() == "def");
static_assert(pj::fixed_string<3>(std::string_view("xyz")).data[3] == '\0');
// explicit: a view does not silently become a fixed_string
static_assert(!std::is_convertible_v<std::string_view, pj::fixed_string<3>>);
static_assert(std::is_constructible_v<pj::fixed_string<3>, std::string_view>);

// ---- conversion to string_view ------------------------------------------------------------------
constexpr pj::fixed_string xyz{"xyz"};
constexpr std::string_view converted = xyz;  // views the static object's storage
static_assert(converted == "xyz");
static_assert(converted.data() == xyz.data);
static_assert(std::is_nothrow_convertible_v<pj::fixed_string<3>, std::string_view>);

// ---- use as a non-type template parameter -------------------------------------------------------
template <pj::fixed_string Name>
struct named {
    static constexpr std::string_view value = Name.view();
    static constexpr std::size_t length = Name.size();
};

static_assert(named<"hello">::value == "hello");
static_assert(named<"hello">::length == 5);
static_assert(named<"">::length == 0);
// Equal strings name the same specialization; different ones do not.
static_assert(std::is_same_v<named<"a">, named<"a">>);
static_assert(!std::is_same_v<named<"a">, named<"b">>);
static_assert(!std::is_same_v<named<"ab">, named<"abc">>);
static_assert(!std::is_same_v<named<"ab">, named<"ba">>);
// A fixed_string computed at compile time is accepted as well.
static_assert(std::is_same_v<named<pj::fixed_string<2>(std::string_view("abc").substr(1))>, named<"bc">>);

template <pj::fixed_string A, pj::fixed_string B>
constexpr bool same_text = A.view() == B.view();
static_assert(same_text<"x", "x">);
static_assert(!same_text<"x", "y">);

}  // namespace

TEST_CASE("fixed_string keeps its characters and size at run time", "[meta][fixed_string]") {
    constexpr pj::fixed_string name{"ticket_summary"};
    STATIC_REQUIRE(name.size() == 14);
    CHECK(name.view() == "ticket_summary");
    CHECK(std::string(name.view()) == "ticket_summary");
    CHECK(std::string(name.data) == "ticket_summary");

    const std::string_view as_view = name;
    CHECK(as_view.data() == name.data);  // a view of the object's own storage, not a copy
    CHECK(as_view.size() == 14);
}

TEST_CASE("a copied fixed_string is equal and independent", "[meta][fixed_string]") {
    pj::fixed_string original{"abc"};
    pj::fixed_string copy = original;
    CHECK(copy.view() == original.view());
    copy.data[0] = 'z';
    CHECK(copy.view() == "zbc");
    CHECK(original.view() == "abc");
}

TEST_CASE("fixed_string built from a runtime string_view copies exactly N characters", "[meta][fixed_string]") {
    const std::string source = "projection_name_and_more";
    const pj::fixed_string<15> s(std::string_view(source).substr(0, 15));
    CHECK(s.view() == "projection_name");
    CHECK(s.data[15] == '\0');
    CHECK(s.view().data() != source.data());
}

TEST_CASE("fixed_string template arguments select distinct specializations", "[meta][fixed_string]") {
    CHECK(named<"tickets">::value == "tickets");
    CHECK(named<"orders">::value == "orders");
    CHECK(named<"tickets">::value != named<"orders">::value);
    CHECK(same_text<"a", "a">);
    CHECK_FALSE(same_text<"a", "b">);
}

}  // namespace fixed_string_test
