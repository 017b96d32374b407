#pragma once

/// The row store of a bulk backfill: a projection's handlers write to it as to any table, while
/// its rows live in memory; the runner writes the changed rows to the real table at each flush,
/// in one transaction with the checkpoint, and may then evict them.
///
/// It reads a row it does not hold from the real table (the `Source` handle), except when that
/// table was empty when the backfill started and the row's key was never flushed: then the row
/// is known to be absent without a query. A row found absent is remembered as absent.
///
/// What it cannot answer from memory (the size of the whole table, a scan of every row, clearing
/// it) throws `bulk_fallback`: the runner then continues the backfill in batch mode from its last
/// flush, with the reason in its status.

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>

#include <projectionist/error.hpp>
#include <projectionist/meta/reflection.hpp>
#include <projectionist/storage/abilities.hpp>
#include <projectionist/storage/memory_storage.hpp>

#if __has_include(<sys/mman.h>)
#include <sys/mman.h>
#endif

namespace projectionist {

namespace detail {

/// The allocator of a row store's hash table: a block of 4 MiB or more is aligned to 2 MiB and
/// offered to the kernel for transparent huge pages (`madvise(MADV_HUGEPAGE)`, where the system
/// has it; a hint, ignored elsewhere). Handlers look rows up in random order, so with 4 KiB pages
/// nearly every look-up of a large store also missed the TLB, and every 4 KiB of the table cost a
/// page fault when first touched (a 1M-event backfill into 125k rows fills a 53 MiB table).
/// Smaller blocks come from std::allocator.
template <class T>
struct row_store_allocator {
    using value_type = T;
    static constexpr std::size_t huge_page = std::size_t{2} << 20;
    static constexpr std::size_t threshold = std::size_t{4} << 20;

    row_store_allocator() noexcept = default;
    template <class U>
    row_store_allocator(const row_store_allocator<U>&) noexcept {}  // converting, as std::allocator's

    [[nodiscard]] T* allocate(std::size_t n) {
        if (n > std::allocator_traits<std::allocator<T>>::max_size(std::allocator<T>{}))
            throw std::bad_array_new_length();
        const std::size_t bytes = n * sizeof(T);
        if (bytes < threshold) return std::allocator<T>{}.allocate(n);
        void* p = ::operator new (bytes, std::align_val_t{huge_page});
#if defined(MADV_HUGEPAGE)
        (void)::madvise(p, bytes, MADV_HUGEPAGE);  // a hint: its failure changes nothing
#endif
        return static_cast<T*>(p);
    }
    void deallocate(T* p, std::size_t n) noexcept {
        if (n * sizeof(T) < threshold)
            std::allocator<T>{}.deallocate(p, n);
        else
            ::operator delete (p, std::align_val_t{huge_page});
    }

    friend bool operator==(const row_store_allocator&, const row_store_allocator&) noexcept {
        return true;
    }
};

/// What a row costs in memory, roughly: the object, plus the heap blocks of its text and vector
/// fields (short strings live in the object). Used against the bulk memory budget.
template <class T>
[[nodiscard]] std::size_t heap_bytes(const T& value) noexcept {
    if constexpr (std::is_same_v<T, std::string>) {
        return value.capacity() > 15 ? value.capacity() + 1 : 0;
    } else if constexpr (requires {
                             value.capacity();
                             value.begin();
                         }) {
        std::size_t n = value.capacity() * sizeof(typename T::value_type);
        for (const auto& e : value) n += heap_bytes(e);
        return n;
    } else if constexpr (requires {
                             value.has_value();
                             *value;
                         }) {
        return value.has_value() ? heap_bytes(*value) : 0;
    } else if constexpr (is_reflected<T>) {
        std::size_t n = 0;
        for_each_field(value, [&](std::string_view, const auto& field) { n += heap_bytes(field); });
        return n;
    } else {
        return 0;
    }
}

}  // namespace detail

/// A table of a projection during a bulk backfill; see the header comment. `Source` is the
/// storage session's own handle of the same table (the rows flushed before, and the rows that
/// were there when the backfill started).
template <class Table, class Source>
class bulk_table {
public:
    using row_type = typename Table::row_type;
    using key_type = typename Table::key_type;

    explicit bulk_table(std::string name) : name_(std::move(name)) {}

    [[nodiscard]] std::string_view name() const noexcept { return name_; }

    /// The real table's quoted name, for handlers that write SQL of their own (they reach the
    /// connection through ctx.storage(), which sends the backfill to batch mode first).
    [[nodiscard]] decltype(auto) quoted_name() const requires requires(const Source& s) { s.quoted_name(); }
    { return source_->quoted_name(); }

    /// Starts a bulk pass over `source`. `source_empty`: the real table holds no rows now, so a
    /// key that this store never flushed is absent without asking.
    void attach(Source* source, bool source_empty) {
        detach();
        source_ = source;
        if constexpr (requires { source->begin_bulk(); }) source_->begin_bulk();
        source_empty_ = source_empty;
        rows_.clear();
        last_ = nullptr;
        flushed_keys_.clear();
        dirty_ = 0;
        bytes_ = 0;
        shared_ = 0;
        evicted_ = false;
        planned_ = false;
        prefetch_ = true;
        prefetch_queried_ = prefetch_found_ = false;
        rows_read_ = 0;
    }

    /// Remembers, for each row, the aggregate whose event touched it last: `*current` when the
    /// row is looked up (the runner sets it before each handler). For `evict_owned_from`. Null
    /// (the default): nothing is remembered.
    void track_owners(const std::uint64_t* current) noexcept { owner_source_ = current; }

    /// Several stores over one source, each used by a thread of its own (a bulk backfill that
    /// applies events on several threads): their reads of the source take `lock`, one at a time.
    /// Null (the default): the store is the source's only user.
    void share_source(std::mutex* lock) noexcept { source_lock_ = lock; }

    /// The pass ends: a source that holds something for a bulk pass (begin_bulk: SQLite's larger
    /// page cache) lets it go.
    void detach() noexcept {
        if constexpr (requires(Source & s) { s.end_bulk(); })
            if (source_ != nullptr) source_->end_bulk();
        source_ = nullptr;
    }

    // ---- what handlers call: the table API of every backend ----------------------------------

    /// Adds a row; throws `table_error` if a row with its key exists.
    void insert(row_type row) {
        entry& e = load(Table::key_of(row));
        if (!e.absent)
            throw table_error(
                fmt::format("projectionist: insert into table '{}': a row with key {} already exists; "
                            "use upsert to replace it",
                            name_, detail::describe_key(Table::key_of(row))));
        set(e, std::move(row));
    }

    /// Adds the row, or replaces the row with the same key.
    void upsert(row_type&& row) {
        entry& e = load(Table::key_of(row));
        set(e, std::move(row));
    }
    /// A row read with `find`, changed and written back: copied into the held row, whose text
    /// fields keep their buffers.
    void upsert(const row_type& row) {
        entry& e = load(Table::key_of(row));
        set(e, row);
    }

    /// Calls `fn(row&)` on the row with `key`; returns false (and calls nothing) if there is none.
    template <class K, class F>
    bool update(const K& key, F&& fn) {
        entry& e = load(key);
        if (e.absent) return false;
        const key_type& stored_key = last_->first;  // `load` leaves the entry it returns in `last_`
        const std::size_t before = detail::heap_bytes(e.row);
        std::forward<F>(fn)(e.row);
        bytes_ = bytes_ - std::min(bytes_, before) + detail::heap_bytes(e.row);  // a row may grow or shrink
        if (!(Table::key_of(e.row) == stored_key)) {  // against the map's key: no copy of `key`
            e.row.*Table::key = stored_key;
            throw table_error(
                fmt::format("projectionist: update of table '{}' changed the key of row {}; erase and "
                            "insert instead",
                            name_, detail::describe_key(stored_key)));
        }
        mark_dirty(e);
        return true;
    }

    /// Removes the row with `key`; returns whether there was one.
    template <class K>
    bool erase(const K& key) {
        entry& e = load(key);
        if (e.absent) return false;
        bytes_ -= std::min(bytes_, detail::heap_bytes(e.row));
        e.absent = true;
        { row_type gone = std::move(e.row); }  // frees its heap blocks (assigning keeps a string's)
        e.row = row_type{};
        mark_dirty(e);
        return true;
    }

    /// A copy of the row with `key`, or nullopt, as every backend's `find`.
    template <class K>
    [[nodiscard]] std::optional<row_type> find(const K& key) {
        const entry& e = load(key);
        if (e.absent) return std::nullopt;
        return e.row;
    }

    template <class K>
    [[nodiscard]] bool contains(const K& key) {
        return !load(key).absent;
    }

    [[noreturn]] std::size_t size() const { fallback("size()"); }
    template <class F>
    [[noreturn]] void for_each(F&&) const {
        fallback("for_each()");
    }
    [[noreturn]] void clear() { fallback("clear()"); }

    // ---- what the runner calls -------------------------------------------------------------

    /// What a row held in memory costs besides the heap blocks of its fields (`heap_bytes`): the
    /// unit the memory budget counts in, for sizing a budget from a read model's row count.
    [[nodiscard]] static constexpr std::size_t row_bytes() noexcept { return sizeof(entry) + sizeof(key_type); }

    /// Whether this store touched `key` since it was attached and may still act on what it saw:
    /// it holds the key (a row, or the row found absent), or flushed a row of it and evicted it
    /// while the real table was known empty apart from what it flushed itself.
    template <class K>
    [[nodiscard]] bool touched(const K& key) const {
        return rows_.contains(key) || flushed_keys_.contains(key);
    }
    /// Calls `fn(key)` for each key held in memory (rows, and rows found absent).
    template <class F>
    void for_each_key(F&& fn) const {
        for (const auto& item : rows_) fn(item.first);
    }

    /// Rows held in memory, and roughly what they cost.
    [[nodiscard]] std::size_t rows_in_memory() const noexcept { return rows_.size(); }
    [[nodiscard]] std::size_t approximate_bytes() const noexcept { return bytes_; }
    /// Rows the store holds room for without growing (what `plan_rows` reserved, or more).
    [[nodiscard]] std::size_t row_capacity() const noexcept {
        return static_cast<std::size_t>(static_cast<double>(rows_.bucket_count()) * rows_.max_load_factor());
    }
    /// Rows changed since the last flush.
    [[nodiscard]] std::size_t dirty_rows() const noexcept { return dirty_; }
    /// Rows read from the real table (evicted by this store, or held by the table before the
    /// pass) since the last call; the count starts again at 0.
    [[nodiscard]] std::uint64_t take_rows_read() noexcept { return std::exchange(rows_read_, 0); }

    /// Writes the changed rows to `source` (inside the caller's transaction). They stay changed
    /// until `flushed()`: a failed transaction loses nothing.
    /// Rows are written in key order where keys are ordered: a B-tree index then takes them as
    /// appends instead of random inserts, which keeps a small page cache from thrashing.
    /// A source with `has_bulk_write` gets them in one call, split into rows it does not hold,
    /// rows it may hold and keys to delete; another one gets an `upsert` or `erase` per row.
    void write_changes() {
        bulk_table* self = this;
        write_changes_of(std::span<bulk_table* const>(&self, 1));
    }

    /// `write_changes` of several stores over one source whose keys are disjoint (a bulk backfill
    /// applied on several threads, each into stores of its own): their rows in one key order, as
    /// if one store held them all.
    ///
    /// `from` > 0 (with track_owners): only the rows an aggregate numbered `from` or higher touched
    /// last.
    static void write_changes_of(std::span<bulk_table* const> stores, std::uint64_t from = 0) {
        if (stores.empty()) return;
        std::size_t dirty = 0;
        for (const bulk_table* s : stores) dirty += s->dirty_;
        std::vector<const std::pair<const key_type, entry>*> changed;
        changed.reserve(dirty);
        for (const bulk_table* s : stores)
            for (const auto& item : s->rows_)
                if (item.second.dirty && !(item.second.absent && !item.second.stored) && flushes(item.second, from))
                    changed.push_back(&item);
        if constexpr (std::totally_ordered<key_type>)
            std::sort(changed.begin(), changed.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
        Source* source = stores.front()->source_;
        if constexpr (has_bulk_write<Source>) {
            std::vector<const row_type*> added, replaced;
            std::vector<const key_type*> erased;
            for (const auto* item : changed) {
                const entry& e = item->second;
                if (e.absent)
                    erased.push_back(&item->first);
                else
                    (e.stored ? replaced : added).push_back(&e.row);
            }
            source->write_bulk(std::span<const row_type* const>(added), std::span<const row_type* const>(replaced),
                               std::span<const key_type* const>(erased));
        } else {
            for (const auto* item : changed) {
                if (item->second.absent)
                    source->erase(item->first);
                else
                    source->upsert(item->second.row);
            }
        }
    }

    /// The transaction of `write_changes` committed: every row is clean (with `from`, every row
    /// it wrote).
    void flushed(std::uint64_t from = 0) {
        for (auto& [key, e] : rows_) {
            if (!e.dirty || !flushes(e, from)) continue;
            e.dirty = false;
            e.stored = !e.absent;
            --dirty_;
        }
    }

    /// With track_owners: whether a row held was touched by two aggregates since it was read.
    [[nodiscard]] bool holds_shared_rows() const noexcept { return shared_ > 0; }

    /// Sizes the row store once, after the pass's first batch, whose events named `seen`
    /// aggregates, the highest of them numbered `numbered - 1` by the store: a table that holds
    /// rows in proportion to the aggregates seen will hold about rows * numbered / seen at the end
    /// (bounded by what `budget` bytes hold at the rows' size so far). One allocation of that size
    /// instead of a dozen doublings, each of which moves every row into new pages. An estimate
    /// too low costs the doublings it did not save; one too high costs address space, never more
    /// than the budget.
    void plan_rows(std::uint64_t seen, std::uint64_t numbered, std::size_t budget) {
        if (planned_) return;
        planned_ = true;
        if (rows_.size() < 64 || seen == 0 || numbered <= seen) return;  // too few to tell, or all seen
        const double per_row = static_cast<double>(bytes_) / static_cast<double>(rows_.size());
        const double estimate =
            static_cast<double>(rows_.size()) * static_cast<double>(numbered) / static_cast<double>(seen);
        const double bounded = std::min(estimate * 1.05, static_cast<double>(budget) / per_row);
        if (bounded <= static_cast<double>(rows_.size())) return;
        rows_.reserve(static_cast<std::size_t>(bounded));
        last_ = nullptr;  // a rehash moved the rows
    }

    /// Whether `prefetch` can do anything: the source reads many keys at once, and rows may be in
    /// the real table that are not in memory (it had rows at the start, or rows were flushed and
    /// evicted), and prefetching has not proven useless.
    [[nodiscard]] bool prefetching() const noexcept {
        if constexpr (has_batched_find<Source>)
            return prefetch_ && (!source_empty_ || evicted_);
        else
            return false;
    }

    /// Reads the rows of those of `keys` that are neither in memory nor known to be absent, in
    /// one query per batch of keys (`find_each`), before the handlers ask for them one by one.
    /// Candidate keys that name no row are remembered as absent.
    void prefetch(std::span<const key_type* const> keys) {
        if constexpr (has_batched_find<Source>) {
            std::vector<const key_type*> wanted;
            for (const key_type* k : keys)
                if (!rows_.contains(*k) && needs_query(*k)) {
                    add(key_type(*k), entry{});
                    wanted.push_back(k);
                }
            prefetch_queried_ = !wanted.empty();
            prefetch_found_ = false;
            if (wanted.empty()) return;
            source_->find_each(std::span<const key_type* const>(wanted), [&](row_type&& row) {
                entry& e = rows_.find(Table::key_of(row))->second;
                bytes_ += detail::heap_bytes(row);
                e.row = std::move(row);
                e.absent = false;
                e.stored = true;
                prefetch_found_ = true;
                ++rows_read_;
            });
        } else {
            (void)keys;
        }
    }

    /// Forgets the rows held in memory (they are all flushed): later reads go to the real table.
    /// On a table that was empty at the start, the keys of the rows it now holds are remembered,
    /// so that only they are looked up there.
    void evict() {
        evicted_ = evicted_ || !rows_.empty();
        last_ = nullptr;
        if (source_empty_)
            for (const auto& [key, e] : rows_)
                if (e.stored) flushed_keys_.insert(key);
        rows_.clear();
        bytes_ = 0;
        dirty_ = 0;
        shared_ = 0;
    }

    /// `evict` of the rows (all flushed) whose last toucher is an aggregate numbered `first` or
    /// higher (with track_owners); the others stay in memory.
    void evict_owned_from(std::uint64_t first) {
        evicted_ = true;
        last_ = nullptr;
        const std::uint32_t from = owner_number(first);
        boost::unordered::erase_if(rows_, [&](const auto& item) {
            const entry& e = item.second;
            if (e.owner < from) return false;
            if (source_empty_ && e.stored) flushed_keys_.insert(item.first);
            bytes_ -= std::min(bytes_, row_bytes() + detail::heap_bytes(e.row));
            if (e.shared) --shared_;
            return true;
        });
    }

private:
    struct entry {
        row_type row{};
        bool absent = true;   ///< no such row (never was, or erased)
        bool dirty = false;   ///< changed since the last flush
        bool stored = false;  ///< the real table holds a row with this key (as of the last flush)
        bool shared = false;  ///< with track_owners: touched by two aggregates since it was read
        /// With track_owners: the aggregate that touched the row last (saturated at 2^32 - 2, so
        /// that it fits where the flags leave padding; a saturated row is only evicted sooner);
        /// `unowned` before any.
        std::uint32_t owner = unowned;
    };
    static constexpr std::uint32_t unowned = 0xFFFF'FFFFu;

    static std::uint32_t owner_number(std::uint64_t aggregate) noexcept {
        return static_cast<std::uint32_t>(std::min<std::uint64_t>(aggregate, unowned - 1));
    }
    /// Whether a flush of the aggregates numbered `from` or higher (every one when 0) writes `e`.
    static bool flushes(const entry& e, std::uint64_t from) noexcept {
        return from == 0 || e.owner >= owner_number(from);
    }

    template <class K>
    entry& load(const K& key) {
        entry& e = look_up(key);
        if (owner_source_ != nullptr) {
            const std::uint32_t owner = owner_number(*owner_source_);
            if (e.owner != owner) {
                if (e.owner != unowned && !e.shared) {
                    e.shared = true;
                    ++shared_;
                }
                e.owner = owner;
            }
        }
        return e;
    }

    template <class K>
    entry& look_up(const K& key) {
        // A handler reads a row and writes it back: the second look-up is the first one's.
        if (last_ != nullptr && typename lookup::equal{}(last_->first, key)) return last_->second;
        if constexpr (std::is_same_v<K, key_type>) {
            if (source_empty_ && flushed_keys_.empty()) {
                // Nothing to ask the real table: one probe finds the row, or holds its key as
                // absent (an event that creates the row would otherwise probe twice).
                const auto [slot, added] = rows_.try_emplace(key);
                if (added) bytes_ += row_bytes() + detail::heap_bytes(slot->second.row);
                last_ = &*slot;
                return slot->second;
            }
        }
        auto it = rows_.find(key);
        if (it != rows_.end()) {
            last_ = &*it;
            return it->second;
        }
        entry e;
        if (needs_query(key)) {
            // A prefetch that found nothing while its batch still reads rows one by one: the
            // tables's keys are not the aggregates' ids, so prefetching only costs a query.
            if (prefetch_queried_ && !prefetch_found_) prefetch_ = false;
            if (auto row = find_in_source(key)) {
                e.row = std::move(*row);
                e.absent = false;
                e.stored = true;
                ++rows_read_;
            }
        }
        return add(key_type(key), std::move(e));
    }

    template <class K>
    std::optional<row_type> find_in_source(const K& key) {
        if constexpr (!std::is_same_v<K, key_type>) {
            return find_in_source(key_type(key));  // a source needs only find(const key_type&)
        } else {
            if (source_lock_ == nullptr) return source_->find(key);
            const std::lock_guard lock(*source_lock_);
            return source_->find(key);
        }
    }

    template <class K>
    [[nodiscard]] bool needs_query(const K& key) const {
        return !source_empty_ || flushed_keys_.contains(key);
    }

    entry& add(key_type&& key, entry&& e) {
        bytes_ += row_bytes() + detail::heap_bytes(e.row);
        last_ = &*rows_.try_emplace(std::move(key), std::move(e)).first;  // an insert moves the others
        return last_->second;
    }

    template <class Row>
    void set(entry& e, Row&& row) {
        bytes_ -= std::min(bytes_, detail::heap_bytes(e.row));
        e.row = std::forward<Row>(row);
        bytes_ += detail::heap_bytes(e.row);
        e.absent = false;
        mark_dirty(e);
    }

    void mark_dirty(entry& e) noexcept {
        if (!e.dirty) ++dirty_;
        e.dirty = true;
    }

    [[noreturn]] void fallback(std::string_view what) const {
        throw bulk_fallback(
            fmt::format("projectionist: table '{}': {} is not available during a bulk backfill, "
                        "which holds only the rows the handlers touched",
                        name_, what));
    }

    using lookup = detail::key_lookup<key_type>;
    std::string name_;
    Source* source_ = nullptr;
    std::mutex* source_lock_ = nullptr;            ///< taken around reads of the source, if shared
    const std::uint64_t* owner_source_ = nullptr;  ///< track_owners: the aggregate being applied
    bool source_empty_ = false;
    boost::unordered_flat_map<key_type, entry, typename lookup::hash, typename lookup::equal,
                              detail::row_store_allocator<std::pair<const key_type, entry>>>
        rows_;
    boost::unordered_flat_set<key_type, typename lookup::hash, typename lookup::equal> flushed_keys_;
    std::pair<const key_type, entry>* last_ = nullptr;  ///< the row looked up last (valid until an insert)
    std::size_t dirty_ = 0;
    std::size_t bytes_ = 0;
    std::size_t shared_ = 0;         ///< rows held with `shared` set
    bool evicted_ = false;           ///< rows were evicted since attach
    bool planned_ = false;           ///< plan_rows sized the store in this pass
    bool prefetch_ = true;           ///< prefetching is worth its query
    bool prefetch_queried_ = false;  ///< the last prefetch asked the source
    bool prefetch_found_ = false;    ///< ... and found a row
    std::uint64_t rows_read_ = 0;    ///< rows read from the source since take_rows_read
};

}  // namespace projectionist
