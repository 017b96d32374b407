// A backend written against the contract alone (storage/concepts.hpp, storage/abilities.hpp), the
// way a third party would: std::map tables, a snapshot per batch for rollback, and a session that
// keeps its committed checkpoint apart from the one the runner moves. It uses no storage of the
// library (the events come from a memory_event_store); a runner accepts it and runs projections
// through it, a failing batch included, and a deployment switches between two versions on it.

#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <projectionist/deploy/deployment.hpp>
#include <projectionist/storage/abilities.hpp>
#include <projectionist/storage/concepts.hpp>

#include <tickets_domain.hpp>

namespace acme {

namespace pj = projectionist;

/// One table: rows by key in a std::map, and a copy of them while a batch is open. A handle:
/// copies share the rows, so `find_table` hands out one by value.
template <class Table>
class map_table {
public:
    using row_type = typename Table::row_type;
    using key_type = typename Table::key_type;

    explicit map_table(std::string name) : rows_(std::make_shared<rows>(std::move(name))) {}

    [[nodiscard]] std::string_view name() const noexcept { return rows_->name; }
    void insert(const row_type& row) {
        if (!rows_->live.emplace(Table::key_of(row), row).second) throw std::runtime_error("acme: duplicate key");
    }
    void upsert(const row_type& row) { rows_->live.insert_or_assign(Table::key_of(row), row); }
    template <class F>
    bool update(const key_type& key, F&& fn) {
        auto it = rows_->live.find(key);
        if (it == rows_->live.end()) return false;
        std::forward<F>(fn)(it->second);
        return true;
    }
    bool erase(const key_type& key) { return rows_->live.erase(key) != 0; }
    void clear() { rows_->live.clear(); }
    [[nodiscard]] std::optional<row_type> find(const key_type& key) const {
        auto it = rows_->live.find(key);
        if (it == rows_->live.end()) return std::nullopt;
        return it->second;
    }
    [[nodiscard]] bool contains(const key_type& key) const { return rows_->live.contains(key); }
    [[nodiscard]] std::size_t size() const noexcept { return rows_->live.size(); }
    template <class F>
    void for_each(F&& fn) const {
        for (const auto& [key, row] : rows_->live) fn(row);
    }

    void snapshot() { rows_->saved = rows_->live; }
    void restore() { rows_->live = rows_->saved; }

private:
    struct rows {
        explicit rows(std::string n) : name(std::move(n)) {}
        std::string name;
        std::map<key_type, row_type> live;
        std::map<key_type, row_type> saved;
    };
    std::shared_ptr<rows> rows_;
};

/// The storage: tables, catalog rows, checkpoints, dead letters and settings, all in maps.
class map_storage {
public:
    using storage_category = pj::detail::storage_category;
    using default_event_store = pj::memory_event_store;
    template <class Table>
    using table_handle = map_table<Table>;

    class session;

    session open(std::string_view projection);

    [[nodiscard]] std::optional<std::string> find_setting(std::string_view key) const {
        auto it = settings_.find(std::string(key));
        if (it == settings_.end()) return std::nullopt;
        return it->second;
    }
    void save_setting(std::string_view key, std::string_view value) {
        settings_.insert_or_assign(std::string(key), std::string(value));
    }

    /// Called before each catalog write; a test's way to make one fail.
    std::function<void(const pj::catalog_entry&)> before_catalog_write;

    template <class Table>
    [[nodiscard]] std::optional<map_table<Table>> find_table(std::string_view name) {
        auto it = tables_.find(std::string(name));
        if (it == tables_.end()) return std::nullopt;
        return *static_cast<map_table<Table>*>(it->second.get());
    }

private:
    struct space {
        pj::checkpoint committed;
        std::optional<pj::catalog_entry> entry;
        std::vector<pj::dead_letter> dead;
    };
    std::map<std::string, std::shared_ptr<void>> tables_;
    std::map<std::string, space> spaces_;
    std::map<std::string, std::string> settings_;
};

class map_storage::session {
public:
    /// The checkpoint read back after a rollback is the committed one (has_persisted_checkpoint).
    static constexpr bool persists_checkpoint = true;

    session(map_storage& storage, std::string_view projection)
        : storage_(&storage), space_(&storage.spaces_[std::string(projection)]), live_(space_->committed) {}

    pj::checkpoint& load_checkpoint() { return live_; }
    pj::checkpoint& reload_checkpoint() { return live_ = space_->committed; }
    void reset_checkpoint() {
        space_->committed = {};
        live_ = {};
        space_->dead.clear();
    }

    template <class Table>
    map_table<Table>& create_table(std::string_view name) {
        auto& slot = storage_->tables_[std::string(name)];
        if (!slot) slot = std::make_shared<map_table<Table>>(std::string(name));
        auto* t = static_cast<map_table<Table>*>(slot.get());
        bound_.push_back({t, [](void* p) { static_cast<map_table<Table>*>(p)->snapshot(); },
                          [](void* p) { static_cast<map_table<Table>*>(p)->restore(); }});
        return *t;
    }
    template <class Table>
    map_table<Table>* open_table(std::string_view name) {
        if (!storage_->find_table<Table>(name)) return nullptr;
        return &create_table<Table>(name);
    }
    bool drop_table(std::string_view name) {
        auto it = storage_->tables_.find(std::string(name));
        if (it == storage_->tables_.end()) return false;
        std::erase_if(bound_, [&](const bound& b) { return b.table == it->second.get(); });
        storage_->tables_.erase(it);
        return true;
    }

    [[nodiscard]] std::optional<pj::catalog_entry> find_catalog() const { return space_->entry; }
    void save_catalog(const pj::catalog_entry& e) {
        if (storage_->before_catalog_write) storage_->before_catalog_write(e);
        space_->entry = e;
    }
    void erase_catalog() { space_->entry.reset(); }

    void record_dead_letter(pj::dead_letter d) { pending_dead_.push_back(std::move(d)); }
    [[nodiscard]] std::vector<pj::dead_letter> dead_letters() const { return space_->dead; }

    void begin() {
        for (auto& b : bound_) b.snapshot(b.table);
    }
    void commit(const pj::checkpoint& cp, std::span<const std::uint64_t> /*changed_aggregates*/) {
        space_->committed = cp;
        for (auto& d : pending_dead_) space_->dead.push_back(std::move(d));
        pending_dead_.clear();
        ++commits;
    }
    bool rollback() {
        for (auto& b : bound_) b.restore(b.table);
        pending_dead_.clear();
        return true;
    }

    int commits = 0;

private:
    struct bound {
        void* table;
        void (*snapshot)(void*);
        void (*restore)(void*);
    };
    map_storage* storage_;
    map_storage::space* space_;
    pj::checkpoint live_;
    std::vector<pj::dead_letter> pending_dead_;
    std::vector<bound> bound_;
};

inline map_storage::session map_storage::open(std::string_view projection) {
    return session(*this, projection);
}

}  // namespace acme

namespace {

namespace pj = projectionist;
using namespace tickets_domain;
using ticket_table = tickets<1>::table;

static_assert(pj::storage<acme::map_storage>);
static_assert(pj::storage_for<acme::map_storage, ticket_table>);
static_assert(pj::detail::require_storage<acme::map_storage, ticket_table>());
static_assert(pj::has_persisted_checkpoint<acme::map_storage>);
static_assert(!pj::has_slices<acme::map_storage> && !pj::has_lifecycle_transactions<acme::map_storage> &&
              !pj::has_journal_rollback<acme::map_storage>);
static_assert(std::is_same_v<pj::runner<tickets<1>, acme::map_storage>::event_store_type, pj::memory_event_store>);
static_assert(!pj::has_serving_switch<acme::map_storage>);  // a switch writes one catalog row at a time

/// v2 with a close that fails for one ticket: the batch rolls back, the event is dead-lettered.
struct picky_tickets : pj::projection<"picky_tickets", 1, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, e.type, "open", 0}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
        if (e.ticket_id == "t-2") throw std::runtime_error("t-2 cannot close");
    }
};

}  // namespace

TEST_CASE("a runner runs a projection through a backend written against the concepts", "[backend][contract]") {
    pj::memory_event_store store;
    append_ticket(store, "t-1", "bug", 1, true);
    append_ticket(store, "t-2", "task", 0, false);
    acme::map_storage storage;

    pj::runner<tickets<2>, acme::map_storage, pj::per_aggregate> v2(store, storage);
    CHECK(v2.catch_up() == 5);
    CHECK(v2.state() == pj::projection_state::caught_up);
    auto table = storage.find_table<ticket_table>("tickets_v2");
    REQUIRE(table.has_value());
    CHECK(table->size() == 2);
    CHECK(*table->find("t-1") == ticket_row{"t-1", "bug", "closed", 1});

    // A second runner over the same storage object starts where the first one committed.
    append_ticket(store, "t-3", "bug", 0, true);
    pj::runner<tickets<2>, acme::map_storage, pj::per_aggregate> again(store, storage);
    CHECK(again.position() == 5);
    CHECK(again.catch_up() == 2);
    CHECK(table->size() == 3);

    v2.remove();
    CHECK_FALSE(storage.find_table<ticket_table>("tickets_v2").has_value());
}

TEST_CASE("a failing batch on a third-party backend rolls back and dead-letters the event", "[backend][contract]") {
    pj::memory_event_store store;
    append_ticket(store, "t-1", "bug", 0, true);
    append_ticket(store, "t-2", "bug", 0, true);
    acme::map_storage storage;

    pj::runner<picky_tickets, acme::map_storage, pj::skip_to_dead_letter> r(store, storage);
    CHECK(r.catch_up() == 3);
    const auto dead = r.dead_letters();
    REQUIRE(dead.size() == 1);
    CHECK(dead[0].aggregate_id == "t-2");
    CHECK(dead[0].position == 4);
    auto table = storage.find_table<ticket_table>("picky_tickets_v1");
    REQUIRE(table.has_value());
    // The rolled-back batch's writes are gone; the replay applied everything but the dead letter.
    CHECK(table->find("t-1")->status == "closed");
    CHECK(table->find("t-2")->status == "open");
    CHECK(r.position() == 4);
}

TEST_CASE("a switch on a backend that writes one catalog row at a time leaves two versions serving, never none",
          "[backend][contract][blue_green]") {
    pj::memory_event_store store;
    append_ticket(store, "t-1", "bug", 0, true);
    acme::map_storage storage;
    pj::deployment<pj::runner<tickets<1>, acme::map_storage>,
                   pj::runner<tickets<2>, acme::map_storage, pj::per_aggregate>>
        d(store, storage);
    d.catch_up();
    d.serve("tickets_v1");
    auto& v1 = d.get<tickets<1>>();
    auto& v2 = d.get<tickets<2>>();
    using enum pj::projection_state;
    const auto refuse = [&](std::string_view name, pj::projection_state state) {
        storage.before_catalog_write = [=](const pj::catalog_entry& e) {
            if (e.name == name && e.state == state) throw pj::storage_error("acme: the disk is full", 28);
        };
    };

    // The new version's own write fails: nothing changed, v1 still serves.
    refuse("tickets_v2", serving);
    CHECK_THROWS_WITH(d.serve("tickets_v2"), "acme: the disk is full");
    CHECK(v1.state() == serving);
    CHECK(v2.state() == caught_up);

    // The write that retires v1 fails after v2's went through: two serve, and the error says so
    // after its cause, still a storage_error with its code.
    refuse("tickets_v1", retired);
    try {
        d.serve("tickets_v2");
        FAIL("the switch went through");
    } catch (const pj::storage_error& e) {
        CHECK(std::string(e.what()) ==
              "acme: the disk is full; tickets_v2 serves now, but tickets_v1 could not be retired: both serve in the "
              "catalog until this switch is made again");
        CHECK(e.code() == 28);
    }
    CHECK(v1.state() == serving);
    CHECK(v2.state() == serving);
    CHECK(storage.open("tickets_v1").find_catalog()->state == serving);

    // The same switch again retires v1.
    storage.before_catalog_write = nullptr;
    d.serve("tickets_v2");
    CHECK(v1.state() == retired);
    CHECK(v2.state() == serving);
    CHECK(storage.open("tickets_v1").find_catalog()->state == retired);
}
