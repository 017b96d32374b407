#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/hana/define_struct.hpp>
#include <catch2/catch.hpp>

#include <projectionist/detail/value_text.hpp>

namespace value_text_test {

namespace {
enum class kind : std::uint8_t { bug = 2 };
struct point {
    BOOST_HANA_DEFINE_STRUCT(point, (std::string, name), (std::optional<int>, x));
};
struct opaque {};
}  // namespace

namespace pd = projectionist::detail;
using namespace std::chrono_literals;

TEST_CASE("value_text: the canonical text verification compares by", "[value_text]") {
    CHECK(pd::value_text(std::optional<int>{}) == std::nullopt);
    CHECK(pd::value_text(std::optional<int>{3}) == "3");
    CHECK(pd::value_text(3) == pd::value_text(std::int64_t{3}));
    CHECK(pd::value_text(2.5) == "2.5");
    CHECK(pd::value_text(0.1) == "0.1");  // shortest round-trip
    CHECK(pd::value_text(std::numeric_limits<double>::quiet_NaN()) == pd::value_text(std::nan("")));
    CHECK(pd::value_text(true) == "true");
    CHECK(pd::value_text(kind::bug) == "2");
    CHECK(pd::value_text(std::string("null")) == "null");  // a string, kept apart by optional
    CHECK(pd::value_text(std::chrono::sys_seconds{86400s}) == "1970-01-02T00:00:00Z");
    CHECK(pd::value_text(std::chrono::sys_time<std::chrono::milliseconds>{1714564800250ms}) ==
          "2024-05-01T12:00:00.250Z");
    CHECK(pd::value_text(std::vector<std::optional<int>>{1, std::nullopt}) == "[1, null]");
    CHECK(pd::value_text(point{"p", std::nullopt}) == "{name=p, x=null}");
    CHECK(pd::value_text(std::vector<int>(20, 7))->size() == 2 + 20 + 19 * 2);  // every element
    CHECK(pd::present_text(std::pair{1, std::string("a")}) == "(1, a)");
}

TEST_CASE("answer_text: a shadow read's answer in words", "[value_text]") {
    CHECK(pd::answer_text(std::string("tickets_v1")) == "\"tickets_v1\"");
    CHECK(pd::answer_text(std::optional<int>{}) == "(none)");
    CHECK(pd::answer_text(std::pair{std::string("x"), 1.5}) == "(\"x\", 1.5)");
    CHECK(pd::answer_text(point{"p", 4}) == "{name: \"p\", x: 4}");
    CHECK(pd::answer_text(std::vector<int>{4, 1}) == "[4, 1]");
    CHECK(pd::answer_text(std::vector<int>(100, 7)) ==
          "[7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, ...] (100 elements)");
    CHECK(pd::answer_text(std::map<std::string, int>{{"a", 1}}) == "[(\"a\", 1)]");
    CHECK(pd::answer_text(opaque{}) == "(unformattable)");
    const auto long_answer = pd::answer_text(std::string(5000, 'x'));
    CHECK(long_answer.size() == pd::max_answer_length + 3);
    CHECK(long_answer.ends_with("..."));
}

}  // namespace value_text_test
