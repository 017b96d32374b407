// Name validation (identifiers, stored event names) and compile-time versioned names.

#include <catch2/catch.hpp>

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include <projectionist/meta/name.hpp>

namespace name_test {

namespace pj = projectionist;
namespace d = projectionist::detail;

namespace {

/// A constant-expression string of `N` copies of `c`, for length limits.
template <std::size_t N>
struct repeated {
    std::array<char, N> chars{};
    constexpr explicit repeated(char c) {
        for (auto& ch : chars) ch = c;
    }
    [[nodiscard]] constexpr std::string_view view() const { return {chars.data(), N}; }
};
constexpr repeated<128> name_128('a');
constexpr repeated<129> name_129('a');

// ---- starts_with_lowercase_letter ----------------------------------------------------------------
static_assert(d::starts_with_lowercase_letter("a"));
static_assert(d::starts_with_lowercase_letter("z"));
static_assert(d::starts_with_lowercase_letter("ticket"));
static_assert(d::starts_with_lowercase_letter("aB-.!"));  // only the first character counts
static_assert(!d::starts_with_lowercase_letter(""));
static_assert(!d::starts_with_lowercase_letter("A"));
static_assert(!d::starts_with_lowercase_letter("Ticket"));
static_assert(!d::starts_with_lowercase_letter("_a"));
static_assert(!d::starts_with_lowercase_letter("0a"));
static_assert(!d::starts_with_lowercase_letter(".a"));
static_assert(!d::starts_with_lowercase_letter(" a"));
static_assert(!d::starts_with_lowercase_letter("`"));         // just below 'a'
static_assert(!d::starts_with_lowercase_letter("{"));         // just above 'z'
static_assert(!d::starts_with_lowercase_letter("\xc3\xa9"));  // UTF-8 e-acute

// ---- has_only_identifier_chars: [a-z0-9_]* ------------------------------------------------------
static_assert(d::has_only_identifier_chars(""));  // vacuously true; is_identifier adds the first letter
static_assert(d::has_only_identifier_chars("abc"));
static_assert(d::has_only_identifier_chars("a_1"));
static_assert(d::has_only_identifier_chars("_"));
static_assert(d::has_only_identifier_chars("0123456789"));
static_assert(d::has_only_identifier_chars("_leading_underscore_is_a_char_not_a_start"));
static_assert(!d::has_only_identifier_chars("aB"));
static_assert(!d::has_only_identifier_chars("a-b"));
static_assert(!d::has_only_identifier_chars("a.b"));
static_assert(!d::has_only_identifier_chars("a b"));
static_assert(!d::has_only_identifier_chars("a;"));
static_assert(!d::has_only_identifier_chars("a\""));
static_assert(!d::has_only_identifier_chars("a/"));  // just below '0'
static_assert(!d::has_only_identifier_chars("a:"));  // just above '9'
static_assert(!d::has_only_identifier_chars(std::string_view("a\0b", 3)));
static_assert(!d::has_only_identifier_chars("caf\xc3\xa9"));

// ---- is_identifier: [a-z][a-z0-9_]* ---------------------------------------------------------------
static_assert(d::is_identifier("a"));
static_assert(d::is_identifier("tickets"));
static_assert(d::is_identifier("ticket_summary"));
static_assert(d::is_identifier("tickets_v2"));
static_assert(d::is_identifier("a1"));
static_assert(d::is_identifier("a_"));
static_assert(d::is_identifier("a__b"));
static_assert(!d::is_identifier(""));
static_assert(!d::is_identifier("_a"));
static_assert(!d::is_identifier("1a"));
static_assert(!d::is_identifier("A"));
static_assert(!d::is_identifier("Tickets"));
static_assert(!d::is_identifier("ticketS"));
static_assert(!d::is_identifier("ticket-summary"));
static_assert(!d::is_identifier("ticket.registered"));  // a valid event name, but not an identifier
static_assert(!d::is_identifier("ticket summary"));
static_assert(!d::is_identifier("t\"; drop table x; --"));
static_assert(!d::is_identifier("tickets "));
static_assert(!d::is_identifier(" tickets"));

// ---- is_event_name: [a-z][a-z0-9_.-]*, at most 128 bytes ------------------------------------------
static_assert(d::is_event_name("ticket.registered"));
static_assert(d::is_event_name("ticket_summary.status_changed"));
static_assert(d::is_event_name("payment-paid"));
static_assert(d::is_event_name("a"));
static_assert(d::is_event_name("a."));
static_assert(d::is_event_name("a..b"));
static_assert(d::is_event_name("v2.order-placed_9"));
static_assert(!d::is_event_name(""));
static_assert(!d::is_event_name(".ticket"));
static_assert(!d::is_event_name("-ticket"));
static_assert(!d::is_event_name("_ticket"));
static_assert(!d::is_event_name("1ticket"));
static_assert(!d::is_event_name("Ticket.registered"));
static_assert(!d::is_event_name("ticket.Registered"));
static_assert(!d::is_event_name("ticket registered"));
static_assert(!d::is_event_name("ticket/registered"));
static_assert(!d::is_event_name("ticket:registered"));
static_assert(!d::is_event_name("ticket,registered"));  // ',' sits between '-' and '.'
static_assert(!d::is_event_name("ticket'registered"));
static_assert(d::has_only_event_name_chars("a.b-c_d9"));
static_assert(!d::has_only_event_name_chars("a+b"));
// The length limit: 128 bytes pass, 129 do not.
static_assert(name_128.view().size() == 128);
static_assert(d::is_event_name(name_128.view()));
static_assert(!d::is_event_name(name_129.view()));
static_assert(d::is_identifier(name_129.view()));  // identifiers have no limit of their own here

// ---- decimal_digits ------------------------------------------------------------------------------
static_assert(d::decimal_digits(0) == 1);
static_assert(d::decimal_digits(1) == 1);
static_assert(d::decimal_digits(9) == 1);
static_assert(d::decimal_digits(10) == 2);
static_assert(d::decimal_digits(99) == 2);
static_assert(d::decimal_digits(100) == 3);
static_assert(d::decimal_digits(123) == 3);
static_assert(d::decimal_digits(999999999) == 9);
static_assert(d::decimal_digits(1000000000) == 10);
static_assert(d::decimal_digits(4294967295u) == 10);

// ---- versioned_name: "<base>_v<version>[_<suffix>]" ----------------------------------------------
static_assert(d::versioned_name<"tickets", 1>::value == "tickets_v1");
static_assert(d::versioned_name<"tickets", 2>::value == "tickets_v2");
static_assert(d::versioned_name<"tickets", 10>::value == "tickets_v10");
static_assert(d::versioned_name<"tickets", 123>::value == "tickets_v123");
static_assert(d::versioned_name<"tickets", 4294967295u>::value == "tickets_v4294967295");
static_assert(d::versioned_name<"t", 0>::value == "t_v0");
static_assert(d::versioned_name<"tickets", 1>::size == 10);
static_assert(d::versioned_name<"tickets", 10>::size == 11);
static_assert(d::versioned_name<"tickets", 4294967295u>::size == 19);
static_assert(d::versioned_name<"tickets", 4294967295u>::value.size() == 19);
// With a suffix, for a projection's further tables.
static_assert(d::versioned_name<"orders", 2, "transactions">::value == "orders_v2_transactions");
static_assert(d::versioned_name<"orders", 10, "transactions">::value == "orders_v10_transactions");
static_assert(d::versioned_name<"orders", 123, "x">::value == "orders_v123_x");
static_assert(d::versioned_name<"orders", 4294967295u, "lines">::value == "orders_v4294967295_lines");
static_assert(d::versioned_name<"orders", 2, "transactions">::size == 22);
// An empty suffix is the same as none: no trailing '_'.
static_assert(d::versioned_name<"orders", 2, "">::value == "orders_v2");
static_assert(d::versioned_name<"orders", 2, "">::value == d::versioned_name<"orders", 2>::value);
// Versioned names of valid parts are identifiers themselves.
static_assert(d::is_identifier(d::versioned_name<"ticket_summary", 4294967295u, "by_type">::value));
// The view is null-terminated storage of exactly `size` characters.
static_assert(d::versioned_name<"tickets", 2>::storage.chars.size() == 11);
static_assert(d::versioned_name<"tickets", 2>::storage.chars[10] == '\0');

static_assert(pj::max_identifier_length == 63);

}  // namespace

TEST_CASE("name validation at run time agrees with the compile-time rules", "[meta][name]") {
    std::string name = "tickets";
    CHECK(d::is_identifier(name));
    name += "-v2";
    CHECK_FALSE(d::is_identifier(name));
    CHECK(d::is_event_name(name));

    name[0] = 'T';
    CHECK_FALSE(d::starts_with_lowercase_letter(name));
    CHECK_FALSE(d::is_event_name(name));

    CHECK_FALSE(d::is_identifier(std::string()));
    CHECK_FALSE(d::is_event_name(std::string()));

    std::string long_name(128, 'e');
    CHECK(d::is_event_name(long_name));
    long_name.push_back('e');
    CHECK_FALSE(d::is_event_name(long_name));
    CHECK(d::has_only_event_name_chars(long_name));
}

TEST_CASE("every single byte is classified as the grammar says", "[meta][name]") {
    for (int i = 0; i < 256; ++i) {
        const char c = static_cast<char>(i);
        const std::string_view one(&c, 1);
        const bool lower = c >= 'a' && c <= 'z';
        const bool digit = c >= '0' && c <= '9';
        INFO("byte " << i);
        CHECK(d::starts_with_lowercase_letter(one) == lower);
        CHECK(d::has_only_identifier_chars(one) == (lower || digit || c == '_'));
        CHECK(d::has_only_event_name_chars(one) == (lower || digit || c == '_' || c == '.' || c == '-'));
        CHECK(d::is_identifier(one) == lower);
        CHECK(d::is_event_name(one) == lower);
    }
}

TEST_CASE("versioned names are stable strings at run time", "[meta][name]") {
    CHECK(std::string(d::versioned_name<"tickets", 1>::value) == "tickets_v1");
    CHECK(std::string(d::versioned_name<"tickets", 10>::value) == "tickets_v10");
    CHECK(std::string(d::versioned_name<"tickets", 4294967295u>::value) == "tickets_v4294967295");
    CHECK(std::string(d::versioned_name<"orders", 2, "transactions">::value) == "orders_v2_transactions");
    // The same name, asked twice, is the same static storage.
    CHECK(d::versioned_name<"tickets", 2>::value.data() == d::versioned_name<"tickets", 2>::value.data());
    CHECK(d::versioned_name<"tickets", 2>::value.data() != d::versioned_name<"tickets", 3>::value.data());
    // Null-terminated, so usable as a C string.
    CHECK(std::string(d::versioned_name<"tickets", 123, "x">::value.data()) == "tickets_v123_x");
}

}  // namespace name_test
