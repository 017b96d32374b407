#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/container_hash/hash.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include <projectionist/error.hpp>
#include <projectionist/storage/abilities.hpp>
#include <projectionist/storage/records.hpp>
#include <projectionist/storage/storage_base.hpp>
#include <projectionist/store/event_type.hpp>
#include <projectionist/store/memory_event_store.hpp>

namespace projectionist {

namespace detail {

/// Transparent hashing for string keys (find by string_view without a temporary string).
struct string_key_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <class Key>
struct key_lookup {
    using hash = boost::hash<Key>;
    using equal = std::equal_to<Key>;
};
template <>
struct key_lookup<std::string> {
    using hash = string_key_hash;
    using equal = std::equal_to<>;
};

/// What a memory session's open batch must undo on rollback: one entry per table written.
struct transaction_log {
    struct participant {
        void* table;
        void (*rollback)(void*);
        void (*commit)(void*);
    };
    bool active = false;
    std::vector<participant> participants;
};

}  // namespace detail

/// One typed table in memory: rows of `Table::row_type` keyed by `Table::key`, in a
/// boost::unordered_flat_map. While the owning runner's batch is open every change is journaled
/// (the old row, or the inserted key), so that a failed batch can be undone exactly.
template <class Table>
class memory_table {
public:
    using row_type = typename Table::row_type;
    using key_type = typename Table::key_type;
    using map_type = boost::unordered_flat_map<key_type, row_type, typename detail::key_lookup<key_type>::hash,
                                               typename detail::key_lookup<key_type>::equal>;

    explicit memory_table(std::string name) : name_(std::move(name)) {}

    [[nodiscard]] std::string_view name() const noexcept { return name_; }

    /// Adds a row; throws `table_error` if a row with its key exists.
    void insert(row_type row) {
        auto [it, inserted] = rows_.try_emplace(Table::key_of(row), std::move(row));
        if (!inserted)
            throw table_error(
                fmt::format("projectionist: insert into table '{}': a row with key {} already exists; "
                            "use upsert to replace it",
                            name_, detail::describe_key(it->first)));
        if (journaling()) journal_inserted(it->first);
    }

    /// Adds the row, or replaces the row with the same key.
    void upsert(row_type row) {
        auto it = rows_.find(Table::key_of(row));
        if (it == rows_.end()) {
            auto [pos, inserted] = rows_.try_emplace(Table::key_of(row), std::move(row));
            if (journaling()) journal_inserted(pos->first);
            return;
        }
        if (journaling()) {
            journal_.emplace_back(journal_entry::replaced, std::move(it->second));
            enlist();
        }
        it->second = std::move(row);
    }

    /// Calls `fn(row&)` on the row with `key`; returns false (and calls nothing) if there is none.
    /// `fn` must not change the key.
    template <class K, class F>
    bool update(const K& key, F&& fn) {
        auto it = rows_.find(key);
        if (it == rows_.end()) return false;
        if (journaling()) {
            journal_.emplace_back(journal_entry::replaced, it->second);
            enlist();
        }
        std::forward<F>(fn)(it->second);
        if (!(Table::key_of(it->second) == it->first)) {
            it->second.*Table::key = it->first;  // keep the row findable under the key it is stored at
            throw table_error(
                fmt::format("projectionist: update of table '{}' changed the key of row {}; "
                            "erase and insert instead",
                            name_, detail::describe_key(it->first)));
        }
        return true;
    }

    /// Removes the row with `key`; returns whether there was one.
    template <class K>
    bool erase(const K& key) {
        auto it = rows_.find(key);
        if (it == rows_.end()) return false;
        if (journaling()) {
            journal_.emplace_back(journal_entry::replaced, std::move(it->second));
            enlist();
        }
        rows_.erase(it);
        return true;
    }

    /// A copy of the row with `key`, or nullopt: the same shape as every backend's `find`.
    template <class K>
    [[nodiscard]] std::optional<row_type> find(const K& key) const {
        auto it = rows_.find(key);
        if (it == rows_.end()) return std::nullopt;
        return it->second;
    }
    template <class K>
    [[nodiscard]] bool contains(const K& key) const {
        return rows_.find(key) != rows_.end();
    }

    [[nodiscard]] std::size_t size() const noexcept { return rows_.size(); }
    [[nodiscard]] bool empty() const noexcept { return rows_.empty(); }

    /// Calls `fn(const row_type&)` for every row, in no particular order.
    template <class F>
    void for_each(F&& fn) const {
        for (const auto& [key, row] : rows_) fn(row);
    }

    /// Removes every row (journaled like any other change inside a batch).
    void clear() {
        if (journaling()) {
            for (auto& [key, row] : rows_) journal_.emplace_back(journal_entry::replaced, std::move(row));
            enlist();
        }
        rows_.clear();
    }

    /// Binds the table to a session's transaction log (null: no journaling).
    void attach(detail::transaction_log* log) noexcept { log_ = log; }

private:
    /// One undo step. Built in place in the journal (emplace_back): a temporary moved into the
    /// vector would cost a second construction of the row per write.
    struct journal_entry {
        static constexpr struct replaced_t {
        } replaced{};
        explicit journal_entry(const key_type& key) : inserted_key(key) {}
        template <class Row>
        journal_entry(replaced_t, Row&& row) : before(std::in_place, std::forward<Row>(row)) {}

        key_type inserted_key;           ///< set when the change inserted a new key
        std::optional<row_type> before;  ///< set when the change replaced or removed a row
    };

    [[nodiscard]] bool journaling() const noexcept { return log_ != nullptr && log_->active; }

    void journal_inserted(const key_type& key) {
        journal_.emplace_back(key);
        enlist();
    }

    void enlist() {
        if (enlisted_) return;
        log_->participants.push_back({this, &rollback_thunk, &commit_thunk});
        enlisted_ = true;
    }

    static void commit_thunk(void* self) noexcept {
        auto* t = static_cast<memory_table*>(self);
        t->journal_.clear();
        t->enlisted_ = false;
    }

    static void rollback_thunk(void* self) {
        auto* t = static_cast<memory_table*>(self);
        for (auto it = t->journal_.rbegin(); it != t->journal_.rend(); ++it) {
            if (it->before) {
                key_type key = Table::key_of(*it->before);
                t->rows_.insert_or_assign(std::move(key), std::move(*it->before));
            } else {
                t->rows_.erase(it->inserted_key);
            }
        }
        t->journal_.clear();
        t->enlisted_ = false;
    }

    std::string name_;
    map_type rows_;
    detail::transaction_log* log_ = nullptr;
    std::vector<journal_entry> journal_;
    bool enlisted_ = false;
};

/// A memory table found by name outside a runner (`memory_storage::find_table`): a copyable
/// handle that shares the table with the storage, so it stays valid after the table is dropped.
/// It has the table API of every backend's handle.
template <class Table>
class memory_table_ref {
public:
    using table_type = Table;
    using row_type = typename Table::row_type;
    using key_type = typename Table::key_type;

    explicit memory_table_ref(std::shared_ptr<memory_table<Table>> table) noexcept : table_(std::move(table)) {}

    [[nodiscard]] std::string_view name() const noexcept { return table_->name(); }
    void insert(row_type row) { table_->insert(std::move(row)); }
    void upsert(row_type row) { table_->upsert(std::move(row)); }
    template <class K, class F>
    bool update(const K& key, F&& fn) {
        return table_->update(key, std::forward<F>(fn));
    }
    template <class K>
    bool erase(const K& key) {
        return table_->erase(key);
    }
    void clear() { table_->clear(); }
    template <class K>
    [[nodiscard]] std::optional<row_type> find(const K& key) const {
        return table_->find(key);
    }
    template <class K>
    [[nodiscard]] bool contains(const K& key) const {
        return table_->contains(key);
    }
    [[nodiscard]] std::size_t size() const noexcept { return table_->size(); }
    [[nodiscard]] bool empty() const noexcept { return table_->empty(); }
    template <class F>
    void for_each(F&& fn) const {
        table_->for_each(std::forward<F>(fn));
    }

private:
    std::shared_ptr<memory_table<Table>> table_;
};

/// Read-model storage in memory: typed tables, checkpoints and the projection catalog of any
/// number of projection versions. The storage policy a runner uses by default.
///
/// Lifecycle operations (creating and dropping tables, the catalog) are thread-safe. A
/// projection's rows are written by its own runner only, under that projection's lock; readers
/// on other threads take `lock_shared(name)` while they look.
///
/// A runner over memory_storage reads a memory_event_store unless it names another store.
class memory_storage : public detail::storage_base<memory_storage, memory_event_store, memory_table> {
public:
    class session;

    /// How a failed batch's writes are undone; see `memory_rollback`.
    explicit memory_storage(memory_rollback rollback = memory_rollback::rebuild) noexcept : rollback_(rollback) {}
    [[nodiscard]] memory_rollback rollback_mode() const noexcept { return rollback_; }
    memory_storage(const memory_storage&) = delete;
    memory_storage& operator=(const memory_storage&) = delete;

    /// A handle on an existing table, or nullopt if there is no table of that name. Throws if
    /// the table exists with another row type.
    template <class Table>
    [[nodiscard]] std::optional<memory_table_ref<Table>> find_table(std::string_view name) {
        auto table = find_table_shared<Table>(name);
        if (!table) return std::nullopt;
        return memory_table_ref<Table>(std::move(table));
    }

    [[nodiscard]] bool has_table(std::string_view name) const {
        std::lock_guard lock(mutex_);
        return tables_.find(name) != tables_.end();
    }

    [[nodiscard]] std::vector<std::string> table_names() const {
        std::lock_guard lock(mutex_);
        std::vector<std::string> out;
        for (const auto& [name, t] : tables_) out.push_back(name);
        return out;
    }

    /// The catalog row of a projection version, if it has one.
    [[nodiscard]] std::optional<catalog_entry> find_catalog(std::string_view name) const {
        std::lock_guard lock(mutex_);
        auto it = catalog_.find(name);
        if (it == catalog_.end()) return std::nullopt;
        return it->second;
    }

    /// Every catalog row, ordered by name.
    [[nodiscard]] std::vector<catalog_entry> catalog() const {
        std::lock_guard lock(mutex_);
        std::vector<catalog_entry> out;
        for (const auto& [name, e] : catalog_) out.push_back(e);
        return out;
    }

    void save_catalog(const catalog_entry& entry) {
        std::lock_guard lock(mutex_);
        catalog_.insert_or_assign(entry.name, entry);
    }

    /// A persisted setting (e.g. a router's toggles), or nullopt.
    [[nodiscard]] std::optional<std::string> find_setting(std::string_view key) const {
        std::lock_guard lock(mutex_);
        auto it = settings_.find(key);
        if (it == settings_.end()) return std::nullopt;
        return it->second;
    }
    void save_setting(std::string_view key, std::string_view value) {
        std::lock_guard lock(mutex_);
        settings_.insert_or_assign(std::string(key), std::string(value));
    }
    /// Sets `key` to `value` only if its value is `expected` (nullopt: if it has none); returns
    /// whether it did.
    bool replace_setting(std::string_view key, std::optional<std::string_view> expected, std::string_view value) {
        std::lock_guard lock(mutex_);
        auto it = settings_.find(key);
        if (expected ? it == settings_.end() || it->second != *expected : it != settings_.end()) return false;
        if (it == settings_.end())
            settings_.emplace(std::string(key), std::string(value));
        else
            it->second = std::string(value);
        return true;
    }

    /// Blocks the projection's writer while the caller reads its tables.
    [[nodiscard]] std::shared_lock<std::shared_mutex> lock_shared(std::string_view projection) {
        return std::shared_lock(space(projection).rows_mutex);
    }

    /// Opens a runner's session on one projection version.
    [[nodiscard]] session open(std::string_view projection);

private:
    struct erased_table {
        const void* type = nullptr;
        std::shared_ptr<void> table;  // memory_table<T>, deleted through the shared_ptr's deleter
    };

    struct space_t {
        std::shared_mutex rows_mutex;
        checkpoint point;
        std::vector<dead_letter> dead_letters;
    };

    space_t& space(std::string_view projection) {
        std::lock_guard lock(mutex_);
        return space_locked(projection);
    }
    space_t& space_locked(std::string_view projection) {
        auto it = spaces_.find(projection);
        if (it == spaces_.end()) it = spaces_.emplace(std::string(projection), std::make_unique<space_t>()).first;
        return *it->second;
    }

    // Tables are shared with the sessions that bound them, so that a table dropped through one
    // session stays valid until every session holding a handle to it has let go.
    template <class Table>
    std::shared_ptr<memory_table<Table>> find_table_locked(std::string_view name) {
        auto it = tables_.find(name);
        if (it == tables_.end()) return nullptr;
        if (it->second.type != detail::type_identity<Table>())
            throw table_error(fmt::format("projectionist: table '{}' exists with another row type", name));
        return std::static_pointer_cast<memory_table<Table>>(it->second.table);
    }
    template <class Table>
    std::shared_ptr<memory_table<Table>> find_table_shared(std::string_view name) {
        std::lock_guard lock(mutex_);
        return find_table_locked<Table>(name);
    }

    template <class Table>
    std::shared_ptr<memory_table<Table>> create_table(std::string_view name) {
        std::lock_guard lock(mutex_);
        if (auto t = find_table_locked<Table>(name)) return t;
        auto table = std::make_shared<memory_table<Table>>(std::string(name));
        tables_.emplace(std::string(name), erased_table{detail::type_identity<Table>(), table});
        return table;
    }

    const void* table_address(std::string_view name) const {
        std::lock_guard lock(mutex_);
        auto it = tables_.find(name);
        return it == tables_.end() ? nullptr : it->second.table.get();
    }

    bool drop_table(std::string_view name) {
        std::lock_guard lock(mutex_);
        auto it = tables_.find(name);
        if (it == tables_.end()) return false;
        tables_.erase(it);
        return true;
    }

    void erase_catalog(std::string_view name) {
        std::lock_guard lock(mutex_);
        if (auto it = catalog_.find(name); it != catalog_.end()) catalog_.erase(it);
    }

    /// session::switch_serving, under the storage's lock.
    bool switch_serving(std::string_view name, std::string_view base_name) {
        std::lock_guard lock(mutex_);
        const auto self = catalog_.find(name);
        if (self == catalog_.end() || self->second.base_name != base_name ||
            !detail::caught_up_or_later(self->second.state))
            return false;
        for (auto& entry : catalog_) {
            catalog_entry& e = entry.second;
            if (e.base_name == base_name && e.state == projection_state::serving) e.state = projection_state::retired;
        }
        self->second.state = projection_state::serving;
        return true;
    }

    mutable std::mutex mutex_;
    std::mutex handoff_mutex_;  // one hand-over of emission at a time (session::lock_position)
    std::map<std::string, erased_table, std::less<>> tables_;
    std::map<std::string, catalog_entry, std::less<>> catalog_;
    std::map<std::string, std::string, std::less<>> settings_;
    std::map<std::string, std::unique_ptr<space_t>, std::less<>> spaces_;
    memory_rollback rollback_ = memory_rollback::rebuild;
};

/// One runner's connection to a memory_storage, for one projection version: typed table
/// handles bound to the session's transaction log, the checkpoint, and batch transactions.
class memory_storage::session {
public:
    session(memory_storage& storage, std::string_view projection)
        : storage_(&storage), projection_(projection), space_(&storage.space(projection)) {}

    session(const session&) = delete;
    session& operator=(const session&) = delete;
    session(session&&) = default;
    session& operator=(session&&) = default;

    ~session() {
        if (log_ && in_batch_) rollback();
        detach_all();
    }

    [[nodiscard]] memory_storage& storage() noexcept { return *storage_; }
    [[nodiscard]] std::string_view projection() const noexcept { return projection_; }

    /// The projection's checkpoint. Memory storage hands out the stored object itself: a change
    /// made inside a batch is undone by the runner if the batch rolls back.
    [[nodiscard]] checkpoint& load_checkpoint() { return space_->point; }
    /// The same object: within one process there is nothing to re-read.
    checkpoint& reload_checkpoint() { return space_->point; }

    /// Creates the table if needed (idempotent) and returns its handle, bound to this session.
    template <class Table>
    memory_table<Table>& create_table(std::string_view name) {
        auto t = storage_->create_table<Table>(name);
        bind(t);
        return *t;
    }

    /// The handle of an existing table, bound to this session; null if it does not exist.
    template <class Table>
    memory_table<Table>* open_table(std::string_view name) {
        auto t = storage_->find_table_shared<Table>(name);
        if (t) bind(t);
        return t.get();
    }

    /// Drops a table by name; returns whether it existed.
    bool drop_table(std::string_view name) {
        // Handles into the dropped table must not be touched again, so they are detached; the
        // session's other tables stay bound (and journaled). While a batch is open its journal
        // may still point at the dropped table, so the session keeps it alive until it ends.
        const void* dropped = storage_->table_address(name);
        std::erase_if(bound_, [&](const auto& b) {
            if (dropped == nullptr || b.first.get() != dropped) return false;
            b.second(b.first.get());
            return !log_->active;
        });
        return storage_->drop_table(name);
    }

    [[nodiscard]] std::optional<catalog_entry> find_catalog() const { return storage_->find_catalog(projection_); }
    void save_catalog(const catalog_entry& e) { storage_->save_catalog(e); }
    void erase_catalog() { storage_->erase_catalog(projection_); }
    /// Marks this version serving and every other serving version of `base_name` retired, at once
    /// (has_serving_switch); false, with nothing changed, if this version is not caught up, serving
    /// or retired.
    [[nodiscard]] bool switch_serving(std::string_view base_name) {
        return storage_->switch_serving(projection_, base_name);
    }
    /// The storage's settings (a delete forgets the version in its router's setting).
    [[nodiscard]] std::optional<std::string> find_setting(std::string_view key) const {
        return storage_->find_setting(key);
    }
    void save_setting(std::string_view key, std::string_view value) { storage_->save_setting(key, value); }

    // ---- the hand-over of emission (storage/emission_window.hpp), inside the open batch

    /// The other versions of `base_name` whose catalog rows are live.
    [[nodiscard]] std::vector<std::string> live_versions(std::string_view base_name) const {
        std::vector<std::string> out;
        for (const catalog_entry& e : storage_->catalog())
            if (e.base_name == base_name && e.name != projection_ && e.live) out.push_back(e.name);
        return out;
    }
    /// A version's committed position. Another version's rows stay locked until this batch ends:
    /// its runner's batch ends before, or begins after.
    ///
    /// The first call of a batch also takes the storage's hand-over turn, held until the batch
    /// ends: hand-overs run one at a time, each reading the settings and the live flags after the
    /// one before committed (the runner reads them after this call). The turn comes before any
    /// version's rows: this session's own are let go while it waits for the turn and taken again
    /// after, so that two hand-overs that each lock the other's version (each finding the other
    /// live) cannot hold one lock each and wait for the other's.
    [[nodiscard]] std::uint64_t lock_position(std::string_view version) {
        if (!handoff_turn_.owns_lock()) {
            const bool held = rows_lock_.owns_lock();
            if (held) rows_lock_.unlock();
            handoff_turn_ = std::unique_lock(storage_->handoff_mutex_);
            if (held) rows_lock_.lock();
        }
        if (version == projection_) return space_->point.position;
        space_t& other = storage_->space(version);
        held_.emplace_back(other.rows_mutex);
        return other.point.position;
    }
    /// Clears another version's live flag.
    void clear_live(std::string_view version) {
        if (auto e = storage_->find_catalog(version)) {
            e->live = false;
            storage_->save_catalog(*e);
        }
    }

    /// Drops every trace of the projection's checkpoint and dead letters.
    void reset_checkpoint() {
        space_->point = checkpoint{};
        space_->dead_letters.clear();
        pending_dead_letters_.clear();
    }

    /// Records a dead letter; inside a batch it becomes visible when the batch commits.
    void record_dead_letter(dead_letter letter) {
        if (in_batch_)
            pending_dead_letters_.push_back(std::move(letter));
        else
            space_->dead_letters.push_back(std::move(letter));
    }

    /// The projection's dead letters, oldest first.
    [[nodiscard]] std::vector<dead_letter> dead_letters() const { return space_->dead_letters; }

    /// Opens a batch: from here to commit or rollback, table changes are journaled and the
    /// projection's rows are locked against readers.
    void begin() {
        rows_lock_ = std::unique_lock(space_->rows_mutex);
        log_->active = storage_->rollback_ == memory_rollback::journal;
        in_batch_ = true;
    }

    /// Makes the batch's writes permanent. Memory storage keeps the checkpoint in place, so
    /// there is nothing to write for it here.
    void commit(const checkpoint&, std::span<const std::uint64_t> /*changed_aggregates*/) {
        for (auto& p : log_->participants) p.commit(p.table);
        for (auto& letter : pending_dead_letters_) space_->dead_letters.push_back(std::move(letter));
        pending_dead_letters_.clear();
        finish();
    }

    /// Undoes every table change of the batch.
    /// Ends the batch without keeping its dead letters. Returns whether the tables are back as
    /// they were at `begin` (journal mode); if not, the caller must rebuild them.
    bool rollback() {
        const bool journaled = log_->active;
        for (auto it = log_->participants.rbegin(); it != log_->participants.rend(); ++it) it->rollback(it->table);
        pending_dead_letters_.clear();
        finish();
        return journaled;
    }

private:
    template <class Table>
    void bind(const std::shared_ptr<memory_table<Table>>& t) {
        t->attach(log_.get());
        bound_.push_back({t, [](void* p) noexcept { static_cast<memory_table<Table>*>(p)->attach(nullptr); }});
    }
    void detach_all() noexcept {
        for (auto& [table, detach] : bound_) detach(table.get());
        bound_.clear();
    }

    void finish() noexcept {
        log_->participants.clear();
        log_->active = false;
        in_batch_ = false;
        if (rows_lock_.owns_lock()) rows_lock_.unlock();
        held_.clear();
        if (handoff_turn_.owns_lock()) handoff_turn_.unlock();
    }

    memory_storage* storage_;
    std::string projection_;
    space_t* space_;
    std::unique_ptr<detail::transaction_log> log_ = std::make_unique<detail::transaction_log>();
    std::unique_lock<std::shared_mutex> rows_lock_;
    std::vector<std::unique_lock<std::shared_mutex>> held_;  ///< other versions' rows, locked by lock_position
    std::unique_lock<std::mutex> handoff_turn_;              ///< the storage's hand-over turn (lock_position)
    std::vector<dead_letter> pending_dead_letters_;
    bool in_batch_ = false;
    std::vector<std::pair<std::shared_ptr<void>, void (*)(void*) noexcept>> bound_;
};

inline memory_storage::session memory_storage::open(std::string_view projection) {
    return session(*this, projection);
}

}  // namespace projectionist
