// clang-format off
// clang-format on
//
// The twin of column_type_without_spelling.fail.cpp, with the mistake corrected: the type says
// how it is spelled (a type one cannot change is given one by specializing
// projectionist::column_spelling<T> instead).
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/hana/define_struct.hpp>

#include <projectionist/projectionist.hpp>

namespace app {

/// Cents, wrapped: not reflected, so the fingerprint cannot see inside it.
class money {
public:
    static constexpr std::string_view column_spelling = "money(cents int64)";
    std::int64_t cents = 0;
};

struct order_placed {
    BOOST_HANA_DEFINE_STRUCT(order_placed, (std::string, order_id));
    static constexpr std::string_view event_name = "order.placed";
};
using order_stream = projectionist::stream<"order", order_placed>;

struct order_row {
    BOOST_HANA_DEFINE_STRUCT(order_row, (std::string, order_id), (money, total));
};

struct orders : projectionist::projection<"orders", 1, order_stream> {
    using table = projectionist::table<order_row, &order_row::order_id>;
    void on(const order_placed& e, auto& ctx) { ctx.table().upsert({e.order_id, {}}); }
};

}  // namespace app

std::uint64_t print() {
    return projectionist::runner<app::orders>::fingerprint;
}
