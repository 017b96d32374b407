#include <string_view>
#include <type_traits>

#include <catch2/catch.hpp>

#include <projectionist/deploy/rollout/plan.hpp>
#include <projectionist/deploy/verify/report.hpp>
#include <projectionist/detail/enum_text.hpp>
#include <projectionist/observe/metrics.hpp>
#include <projectionist/storage/projection_state.hpp>

namespace enum_text_test {

namespace pj = projectionist;
namespace pd = projectionist::detail;

namespace {

enum class colour { red, green, blue };
enum class unnamed { a, b };

}  // namespace

}  // namespace enum_text_test

template <>
inline constexpr auto projectionist::detail::enum_names_of<enum_text_test::colour> =
    projectionist::detail::enum_names<enum_text_test::colour::blue>{{"red", "green", "blue"}, "?"};

namespace enum_text_test {

// The table has exactly one name per enumerator up to the last: a shorter or longer list is refused.
static_assert(std::is_constructible_v<pd::enum_names<colour::blue>, const std::string_view (&)[3], std::string_view>);
static_assert(!std::is_constructible_v<pd::enum_names<colour::blue>, const std::string_view (&)[2], std::string_view>);
static_assert(!std::is_constructible_v<pd::enum_names<colour::blue>, const std::string_view (&)[4], std::string_view>);

static_assert(pd::named_enum<colour>);
static_assert(!pd::named_enum<unnamed>);
static_assert(pj::to_string(colour::green) == "green");
static_assert(pj::to_string(static_cast<colour>(7)) == "?");
static_assert(pd::enum_names_of<colour>.parse("blue") == colour::blue);
static_assert(!pd::enum_names_of<colour>.parse("Blue"));

TEST_CASE("every enum with a names table reads back what to_string writes", "[enum_text]") {
    auto round_trip = []<class Enum>(Enum last) {
        for (int i = 0; i <= static_cast<int>(last); ++i) {
            const auto e = static_cast<Enum>(i);
            INFO(pj::to_string(e));
            CHECK(pd::enum_names_of<Enum>.parse(pj::to_string(e)) == e);
        }
    };
    round_trip(pj::projection_state::stopped);
    round_trip(pj::rollout_state::aborted);
    round_trip(pj::metric_type::histogram);
    round_trip(pj::verify::column_presence::only_in_b);
    round_trip(pj::verify::row_outcome::missing_in_both);
    round_trip(pj::verify::sample_expectation::report_only);
}

TEST_CASE("the names are the texts the catalog, reports and metrics have always used", "[enum_text]") {
    CHECK(pj::to_string(pj::rollout_state::rolled_back) == "rolled_back");
    CHECK(pj::to_string(static_cast<pj::rollout_state>(99)) == "unknown");
    CHECK(pj::to_string(pj::metric_type::gauge) == "gauge");
    CHECK(pj::to_string(static_cast<pj::metric_type>(9)) == "untyped");
    // Found by argument-dependent lookup in verify, and by name there, as before.
    using pj::verify::row_outcome;
    CHECK(to_string(row_outcome::missing_in_a) == "missing_in_a");
    CHECK(pj::verify::to_string(pj::verify::column_presence::only_in_b) == "only_in_b");
    CHECK(pj::verify::to_string(pj::verify::sample_expectation::report_only) == "report_only");
    CHECK(pj::verify::to_string(static_cast<row_outcome>(42)) == "?");
}

}  // namespace enum_text_test
