// The program both package consumers build (find_package_consumer/ and add_subdirectory_consumer/):
// a small domain, events appended to a memory_event_store, a runner projecting them into a
// memory_storage table. Exits non-zero unless the table holds exactly the expected rows.

#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <string>
#include <string_view>

#include <boost/hana/define_struct.hpp>

#include <projectionist/projectionist.hpp>

namespace inventory {

struct item_added {
    BOOST_HANA_DEFINE_STRUCT(item_added, (std::string, sku), (int, quantity));
    static constexpr std::string_view event_name = "item.added";
};
struct item_removed {
    BOOST_HANA_DEFINE_STRUCT(item_removed, (std::string, sku), (int, quantity));
    static constexpr std::string_view event_name = "item.removed";
};
using item_stream = projectionist::stream<"item", item_added, item_removed>;

struct stock_row {
    BOOST_HANA_DEFINE_STRUCT(stock_row, (std::string, sku), (int, quantity));
    friend bool operator==(const stock_row&, const stock_row&) = default;
};

/// Quantity on hand per SKU; a SKU whose stock drops to zero leaves the table.
struct stock : projectionist::projection<"stock", 1, item_stream, projectionist::exhaustive> {
    using table = projectionist::table<stock_row, &stock_row::sku>;

    void on(const item_added& e, auto& ctx) {
        if (!ctx.table().update(e.sku, [&](stock_row& r) { r.quantity += e.quantity; }))
            ctx.table().insert({e.sku, e.quantity});
    }
    void on(const item_removed& e, auto& ctx) {
        const std::optional<stock_row> row = ctx.table().find(e.sku);
        if (row && row->quantity <= e.quantity)
            ctx.table().erase(e.sku);
        else
            ctx.table().update(e.sku, [&](stock_row& r) { r.quantity -= e.quantity; });
    }
};

}  // namespace inventory

int main() {
    using namespace inventory;
    static_assert(projectionist::name_of<stock> == "stock_v1");

    try {
        projectionist::memory_event_store store;
        store.append(item_stream{}, "apple", 0, item_added{"apple", 5}, item_added{"apple", 1});
        store.append(item_stream{}, "pear", 0, item_added{"pear", 7});
        store.append(item_stream{}, "apple", 2, item_removed{"apple", 2});
        store.append(item_stream{}, "plum", 0, item_added{"plum", 1}, item_removed{"plum", 1});

        projectionist::memory_storage storage;
        projectionist::runner<stock> runner(store, storage);
        const std::uint64_t applied = runner.catch_up();
        if (applied != 6 || runner.position() != store.head()) {
            std::fprintf(stderr, "consumer: runner applied %llu events up to position %llu; expected 6 up to %llu\n",
                         static_cast<unsigned long long>(applied), static_cast<unsigned long long>(runner.position()),
                         static_cast<unsigned long long>(store.head()));
            return 1;
        }

        const auto table = storage.find_table<stock::table>(projectionist::name_of<stock>);
        if (!table) {
            std::fprintf(stderr, "consumer: memory_storage has no table 'stock_v1'\n");
            return 1;
        }
        std::map<std::string, int> actual;
        table->for_each([&](const stock_row& r) { actual.emplace(r.sku, r.quantity); });
        const std::map<std::string, int> expected{{"apple", 4}, {"pear", 7}};
        if (actual != expected) {
            const auto print = [](const std::map<std::string, int>& rows) {
                for (const auto& [sku, quantity] : rows) std::fprintf(stderr, " (%s, %d)", sku.c_str(), quantity);
            };
            std::fprintf(stderr, "consumer: table 'stock_v1' holds %zu rows:", actual.size());
            print(actual);
            std::fprintf(stderr, "; expected %zu rows:", expected.size());
            print(expected);
            std::fprintf(stderr, "\n");
            return 1;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "consumer: unexpected exception: %s\n", e.what());
        return 1;
    }
    std::puts("consumer: ok");
    return 0;
}
