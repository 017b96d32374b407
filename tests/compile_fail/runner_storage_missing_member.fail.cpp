// clang-format off
// expect-error: error: static.assert(ion)? failed.*projectionist: this type is not a storage: it has no session::erase_catalog\(\)
// expect-error(GNU): In instantiation of .consteval bool projectionist::detail::require_storage\(\) \[with S = app::notebook_storage
// expect-error(Clang): note: in instantiation of function template specialization .projectionist::detail::require_storage<app::notebook_storage
// expect-error: /runner_storage_missing_member\.fail\.cpp:[0-9]+:[0-9]+: +(required from here|note: in instantiation of)
// clang-format on
//
// A storage of the application's own whose session has no erase_catalog(), which the runner's
// remove() calls: the runner names the concept (storage) and the missing member.
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/hana/define_struct.hpp>

#include <projectionist/projectionist.hpp>

namespace app {

struct ticket_registered {
    BOOST_HANA_DEFINE_STRUCT(ticket_registered, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.registered";
};
using ticket_stream = projectionist::stream<"ticket", ticket_registered>;

struct ticket_row {
    BOOST_HANA_DEFINE_STRUCT(ticket_row, (std::string, ticket_id), (std::string, status));
};

struct tickets : projectionist::projection<"tickets", 1, ticket_stream> {
    using table = projectionist::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, "open"}); }
};

/// A storage of the application's own that keeps its rows in a memory_storage.
class notebook_storage {
public:
    using storage_category = projectionist::detail::storage_category;
    template <class Table>
    using table_handle = projectionist::memory_table<Table>;

    class session {
    public:
        explicit session(projectionist::memory_storage::session s) : s_(std::move(s)) {}
        projectionist::checkpoint& load_checkpoint() { return s_.load_checkpoint(); }
        projectionist::checkpoint& reload_checkpoint() { return s_.reload_checkpoint(); }
        void reset_checkpoint() { s_.reset_checkpoint(); }
        template <class Table>
        table_handle<Table>& create_table(std::string_view name) {
            return s_.create_table<Table>(name);
        }
        template <class Table>
        table_handle<Table>* open_table(std::string_view name) {
            return s_.open_table<Table>(name);
        }
        bool drop_table(std::string_view name) { return s_.drop_table(name); }
        std::optional<projectionist::catalog_entry> find_catalog() const { return s_.find_catalog(); }
        void save_catalog(const projectionist::catalog_entry& e) { s_.save_catalog(e); }
        void record_dead_letter(projectionist::dead_letter d) { s_.record_dead_letter(std::move(d)); }
        std::vector<projectionist::dead_letter> dead_letters() const { return s_.dead_letters(); }
        void begin() { s_.begin(); }
        void commit(const projectionist::checkpoint& cp, std::span<const std::uint64_t> changed) {
            s_.commit(cp, changed);
        }
        bool rollback() { return s_.rollback(); }

    private:
        projectionist::memory_storage::session s_;
    };

    session open(std::string_view projection) { return session(rows_.open(projection)); }
    std::optional<std::string> find_setting(std::string_view key) const { return rows_.find_setting(key); }
    void save_setting(std::string_view key, std::string_view value) { rows_.save_setting(key, value); }
    template <class Table>
    auto find_table(std::string_view name) {
        return rows_.find_table<Table>(name);
    }

private:
    projectionist::memory_storage rows_;
};

}  // namespace app

int main() {
    projectionist::memory_event_store store;
    app::notebook_storage storage;
    projectionist::runner<app::tickets, app::notebook_storage> v1(store, storage);
    v1.catch_up();
    return 0;
}
