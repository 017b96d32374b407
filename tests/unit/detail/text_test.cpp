#include <array>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include <projectionist/detail/text.hpp>

namespace text_test {

namespace pd = projectionist::detail;

TEST_CASE("join puts the separator between items of any string range", "[text]") {
    CHECK(pd::join(std::vector<std::string>{}) == "");
    CHECK(pd::join(std::vector<std::string>{"v1"}) == "v1");
    CHECK(pd::join(std::vector<std::string>{"v1", "v2", "v3"}) == "v1, v2, v3");
    CHECK(pd::join(std::array<std::string_view, 2>{"a", "b"}, "; ") == "a; b");
}

TEST_CASE("utf8_length accepts valid sequences only", "[text]") {
    CHECK(pd::utf8_length("a", 0) == 1);
    CHECK(pd::utf8_length("\xc3\xa9", 0) == 2);
    CHECK(pd::utf8_length("\xe2\x82\xac", 0) == 3);
    CHECK(pd::utf8_length("\xf0\x9f\x98\x80", 0) == 4);
    CHECK(pd::utf8_length("\xc0\xaf", 0) == 0);      // overlong
    CHECK(pd::utf8_length("\xed\xa0\x80", 0) == 0);  // surrogate
    CHECK(pd::utf8_length("\xe2\x82", 0) == 0);      // cut short
    CHECK(pd::utf8_length("\xff", 0) == 0);
}

TEST_CASE("printable keeps UTF-8 and escapes control characters and invalid bytes", "[text]") {
    CHECK(pd::printable("caf\xc3\xa9") == "caf\xc3\xa9");
    CHECK(pd::printable("a\nb\tc\rd") == "a\\nb\\tc\\rd");
    CHECK(pd::printable(std::string_view("\x01\x7f\xff", 3)) == "\\x01\\x7f\\xff");
}

TEST_CASE("valid_utf8 replaces each invalid byte with U+FFFD and keeps the rest", "[text]") {
    CHECK(pd::valid_utf8("caf\xc3\xa9 \xe2\x82\xac") == "caf\xc3\xa9 \xe2\x82\xac");
    CHECK(pd::valid_utf8(std::string_view("a\0b", 3)) == std::string_view("a\0b", 3));
    CHECK(pd::valid_utf8("a\xff") == "a\xef\xbf\xbd");
    CHECK(pd::valid_utf8("\xc0\xaf") == "\xef\xbf\xbd\xef\xbf\xbd");
    CHECK(pd::valid_utf8("\xe2\x82") == "\xef\xbf\xbd\xef\xbf\xbd");
}

TEST_CASE("shown escapes everything but printable ASCII and cuts long text", "[text]") {
    CHECK(pd::shown("tickets_v2") == "tickets_v2");
    CHECK(pd::shown("v\n\\2") == "v\\x0a\\x5c2");
    CHECK(pd::shown("caf\xc3\xa9") == "caf\\xc3\\xa9");
    const std::string long_text(250, 'x');
    CHECK(pd::shown(long_text) == std::string(200, 'x') + "...");
}

TEST_CASE("display_width counts code points", "[text]") {
    CHECK(pd::display_width("") == 0);
    CHECK(pd::display_width("abc") == 3);
    CHECK(pd::display_width("caf\xc3\xa9") == 4);
}

TEST_CASE("numbers and durations as text", "[text]") {
    CHECK(pd::group_digits(0) == "0");
    CHECK(pd::group_digits(999) == "999");
    CHECK(pd::group_digits(1000) == "1,000");
    CHECK(pd::group_digits(1234567) == "1,234,567");
    CHECK(pd::clock_text(4) == "0:04");
    CHECK(pd::clock_text(754) == "12:34");
    CHECK(pd::clock_text(3723) == "1:02:03");
    CHECK(pd::clock_text(-1) == "0:00");
    CHECK(pd::elapsed_text(0.042) == "0.042 s");
    CHECK(pd::elapsed_text(3.21) == "3.2 s");
    CHECK(pd::elapsed_text(125) == "2:05");
    CHECK(pd::bytes_text(0) == "0 B");
    CHECK(pd::bytes_text(1023) == "1023 B");
    CHECK(pd::bytes_text(1024) == "1 KiB");
    CHECK(pd::bytes_text(65536) == "64 KiB");
    CHECK(pd::bytes_text(std::uint64_t{256} << 20) == "256 MiB");
    CHECK(pd::bytes_text(std::uint64_t{3} << 29) == "1.5 GiB");
    CHECK(pd::bytes_text(1'000'000'000) == "953.7 MiB");
    CHECK(pd::bytes_text(std::uint64_t{5} << 40) == "5 TiB");
}

TEST_CASE("text_table aligns by display width, right-aligns numbers, trims trailing blanks", "[text]") {
    pd::text_table t({"name", "rows", "note"}, {false, true, false});
    t.add({"caf\xc3\xa9", "7", ""});
    t.add({"tickets_v2", "1,234"});  // a missing cell is empty
    CHECK(t.size() == 2);
    CHECK(t.render("  ") ==
          "  name         rows  note\n"
          "  ----------  -----  ----\n"
          "  caf\xc3\xa9            7\n"
          "  tickets_v2  1,234\n");
}

TEST_CASE("text_table shows its header ruled, plain or not at all", "[text]") {
    pd::text_table plain({"version", "lag"}, {false, true}, pd::table_header::plain);
    plain.add({"tickets_v2", "12"});
    CHECK(plain.render("") == "version     lag\ntickets_v2   12\n");

    pd::text_table hidden({"a long header", ""}, {false, false}, pd::table_header::hidden);
    hidden.add({"--help", "show this text"});
    hidden.add({"--to v", "the version"});
    CHECK(hidden.render("  ") == "  --help  show this text\n  --to v  the version\n");
}

}  // namespace text_test
