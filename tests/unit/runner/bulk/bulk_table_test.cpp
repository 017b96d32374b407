// bulk_table over its source: the flush hands a source with has_bulk_write its rows in one call,
// split into new rows, replaced rows and deleted keys, and a source without it one upsert or
// erase per row; evicted rows come back by one find_each per batch of keys when the source has
// has_batched_find. SQLite's write_bulk and find_each write and read what the per-row path does.

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include <projectionist/sqlite.hpp>
#include <projectionist/storage/bulk_table.hpp>
#include <sqlite_test_support.hpp>
#include <tickets_domain.hpp>

namespace bulk_table_test {

namespace pj = projectionist;
using tickets_domain::ticket_row;
using row_table = pj::table<ticket_row, &ticket_row::ticket_id>;

namespace {

/// A memory table that counts what it is asked, with the two table abilities or without them.
template <bool Abilities>
class counting_source {
public:
    using row_type = ticket_row;
    using key_type = std::string;

    [[nodiscard]] std::string_view name() const noexcept { return "counted"; }
    void upsert(const ticket_row& row) {
        ++upserts;
        table.upsert(row);
    }
    bool erase(const std::string& key) {
        ++erases;
        return table.erase(key);
    }
    [[nodiscard]] std::optional<ticket_row> find(const std::string& key) {
        ++finds;
        return table.find(key);
    }

    void write_bulk(std::span<const ticket_row* const> added, std::span<const ticket_row* const> changed,
                    std::span<const std::string* const> erased) requires Abilities {
        ++bulk_writes;
        for (const ticket_row* r : added) {
            added_keys.push_back(r->ticket_id);
            table.insert(*r);  // a key the table holds would throw
        }
        for (const ticket_row* r : changed) {
            changed_keys.push_back(r->ticket_id);
            table.upsert(*r);
        }
        for (const std::string* k : erased) {
            erased_keys.push_back(*k);
            CHECK(table.erase(*k));  // only keys the table holds are deleted
        }
    }
    template <class F>
    void find_each(std::span<const std::string* const> keys, F&& fn) requires Abilities {
        ++batched_finds;
        for (const std::string* k : keys)
            if (std::optional<ticket_row> row = table.find(*k)) fn(std::move(*row));
    }

    pj::memory_table<row_table> table{"counted"};
    int upserts = 0, erases = 0, finds = 0, bulk_writes = 0, batched_finds = 0;
    std::vector<std::string> added_keys, changed_keys, erased_keys;
};

static_assert(pj::has_bulk_write<counting_source<true>> && pj::has_batched_find<counting_source<true>>);
static_assert(!pj::has_bulk_write<counting_source<false>> && !pj::has_batched_find<counting_source<false>>);
static_assert(pj::has_bulk_write<pj::sqlite_table<row_table>> && pj::has_batched_find<pj::sqlite_table<row_table>>);
static_assert(!pj::has_bulk_write<pj::memory_table<row_table>>);
static_assert(!pj::has_batch_prefetch<pj::sqlite_table<row_table>>);

ticket_row row(int i, std::string status = "open") {
    return {"t-" + std::to_string(i), "bug", std::move(status), 0};
}

template <class Bulk>
void flush(Bulk& bulk) {
    bulk.write_changes();
    bulk.flushed();
}

}  // namespace

TEMPLATE_TEST_CASE_SIG("a flush writes new, changed and erased rows; evicted rows come back", "[bulk]",
                       ((bool Abilities), Abilities), true, false) {
    counting_source<Abilities> source;
    source.table.upsert(row(0, "kept"));  // held before the backfill: not empty, every key is asked for
    source.table.upsert(row(1, "erased later"));
    pj::bulk_table<row_table, counting_source<Abilities>> bulk("counted");
    bulk.attach(&source, false);

    for (int i = 2; i < 6; ++i) bulk.insert(row(i));
    bulk.upsert(row(0, "replaced"));
    CHECK(bulk.erase(std::string("t-1")));
    bulk.insert(row(9));
    CHECK(bulk.erase(std::string("t-9")));  // never reached the table: nothing to delete
    flush(bulk);

    std::map<std::string, std::string> status;
    source.table.for_each([&](const ticket_row& r) { status[r.ticket_id] = r.status; });
    CHECK(status == std::map<std::string, std::string>{
                        {"t-0", "replaced"}, {"t-2", "open"}, {"t-3", "open"}, {"t-4", "open"}, {"t-5", "open"}});
    if constexpr (Abilities) {
        CHECK(source.bulk_writes == 1);
        CHECK(source.upserts + source.erases == 0);
        CHECK(source.added_keys == std::vector<std::string>{"t-2", "t-3", "t-4", "t-5"});  // in key order
        CHECK(source.changed_keys == std::vector<std::string>{"t-0"});
        CHECK(source.erased_keys == std::vector<std::string>{"t-1"});
    } else {
        CHECK(source.upserts == 5);
        CHECK(source.erases == 1);
    }

    // Evicted: the next batch's keys are read back in one query when the source can.
    bulk.evict();
    CHECK(bulk.prefetching() == Abilities);
    const std::vector<std::string> keys{"t-2", "t-3", "t-7", "t-0"};
    std::vector<const std::string*> pointers;
    for (const auto& k : keys) pointers.push_back(&k);
    source.finds = 0;
    bulk.prefetch(std::span<const std::string* const>(pointers));
    CHECK(bulk.find(std::string("t-2")));
    CHECK(bulk.find(std::string("t-0"))->status == "replaced");
    CHECK_FALSE(bulk.find(std::string("t-7")));
    if constexpr (Abilities) {
        CHECK(source.batched_finds == 1);
        CHECK(source.finds == 0);
    } else {
        CHECK(source.finds == 3);
    }
    bulk.update(std::string("t-3"), [](ticket_row& r) { r.status = "closed"; });
    bulk.insert(row(7));
    source.added_keys.clear();
    source.changed_keys.clear();
    flush(bulk);
    if constexpr (Abilities) {
        CHECK(source.added_keys == std::vector<std::string>{"t-7"});
        CHECK(source.changed_keys == std::vector<std::string>{"t-3"});
    }
    CHECK(source.table.find(std::string("t-3"))->status == "closed");
    CHECK(source.table.find(std::string("t-7")));
}

TEST_CASE("a prefetch that finds nothing while rows are still read one by one is not tried again", "[bulk]") {
    counting_source<true> source;
    source.table.upsert(row(0));
    pj::bulk_table<row_table, counting_source<true>> bulk("counted");
    bulk.attach(&source, false);
    const std::string wrong = "not-a-key";
    const std::string* pointer = &wrong;
    bulk.prefetch(std::span<const std::string* const>(&pointer, 1));
    CHECK(bulk.prefetching());
    CHECK(bulk.find(std::string("t-0")));  // the guess missed: read by itself
    CHECK_FALSE(bulk.prefetching());
}

TEST_CASE("update changes a held row in place and refuses a change of its key", "[bulk]") {
    counting_source<true> source;
    source.table.upsert(row(0, "stored"));  // read from the source on first use
    pj::bulk_table<row_table, counting_source<true>> bulk("counted");
    bulk.attach(&source, false);
    bulk.insert(row(1));

    CHECK(bulk.update(std::string("t-0"), [](ticket_row& r) { r.status = "closed"; }));
    CHECK(bulk.update(std::string("t-1"), [](ticket_row& r) { ++r.reopened; }));
    bool called = false;
    CHECK_FALSE(bulk.update(std::string("t-9"), [&](ticket_row&) { called = true; }));
    CHECK_FALSE(called);

    try {
        bulk.update(std::string("t-1"), [](ticket_row& r) {
            r.ticket_id = "t-2";
            r.status = "moved";
        });
        FAIL("an update changed the key");
    } catch (const pj::table_error& e) {
        CHECK_THAT(e.what(),
                   Catch::Contains("'counted'") && Catch::Contains("'t-1'") && Catch::Contains("changed the key"));
    }
    // The row keeps the key it is held under, and nothing is held under the new one.
    REQUIRE(bulk.find(std::string("t-1")));
    CHECK(bulk.find(std::string("t-1"))->ticket_id == "t-1");
    CHECK_FALSE(bulk.find(std::string("t-2")));

    flush(bulk);
    CHECK(source.table.find(std::string("t-0"))->status == "closed");
    CHECK(source.table.find(std::string("t-1"))->reopened == 1);
    CHECK_FALSE(source.table.find(std::string("t-2")));
}

TEST_CASE("eviction by owner: the rows an aggregate from a number on touched last go, the others stay", "[bulk]") {
    counting_source<true> source;
    pj::bulk_table<row_table, counting_source<true>> bulk("counted");
    bulk.attach(&source, true);  // empty at the start: a key never flushed is absent
    std::uint64_t current = 0;
    bulk.track_owners(&current);
    for (int i = 0; i < 6; ++i) {
        current = static_cast<std::uint64_t>(i);  // aggregate i writes row i
        bulk.insert(row(i));
    }
    current = 1;  // aggregate 1 touches row 4 last: it stays with aggregate 1
    bulk.update(std::string("t-4"), [](ticket_row& r) { r.type = "shared"; });
    current = std::uint64_t{1} << 40;  // beyond 32 bits: counted as the highest number
    bulk.insert(row(8));
    flush(bulk);
    const std::size_t bytes = bulk.approximate_bytes();

    bulk.evict_owned_from(3);
    CHECK(bulk.rows_in_memory() == 4);  // t-0, t-1, t-2 and t-4
    CHECK(bulk.approximate_bytes() < bytes);
    CHECK(bulk.approximate_bytes() > 0);
    source.finds = source.batched_finds = 0;
    CHECK(bulk.find(std::string("t-4"))->type == "shared");  // held: not asked for
    CHECK(bulk.find(std::string("t-1")));
    CHECK(source.finds == 0);
    CHECK(bulk.find(std::string("t-5")));  // evicted: read back from the table
    CHECK(bulk.find(std::string("t-8")));
    CHECK(source.finds == 2);
    CHECK_FALSE(bulk.find(std::string("t-7")));  // never written: known absent without asking
    CHECK(source.finds == 2);
    CHECK(bulk.prefetching());  // evicted rows may be read back in batches now
}

TEST_CASE("the bytes counted against the budget follow rows that update grows or shrinks, and erase", "[bulk]") {
    counting_source<true> source;
    pj::bulk_table<row_table, counting_source<true>> bulk("counted");
    bulk.attach(&source, true);
    bulk.insert(row(0));
    bulk.insert(row(1));
    const std::size_t two_rows = bulk.approximate_bytes();
    const std::string big(1'000'000, 'x');
    REQUIRE(bulk.update(std::string("t-0"), [&](ticket_row& r) { r.status = big; }));
    CHECK(bulk.approximate_bytes() >= two_rows + big.size());
    REQUIRE(bulk.update(std::string("t-0"), [](ticket_row& r) {
        r.status.clear();
        r.status.shrink_to_fit();
    }));
    CHECK(bulk.approximate_bytes() < two_rows + big.size() / 2);  // the released block is not counted

    REQUIRE(bulk.update(std::string("t-1"), [&](ticket_row& r) { r.status = big; }));
    const std::size_t with_big = bulk.approximate_bytes();
    CHECK(with_big >= big.size());
    CHECK(bulk.erase(std::string("t-1")));
    CHECK(bulk.approximate_bytes() + big.size() <= with_big);  // an erased row holds no heap block
}

TEST_CASE("a flush of the rows an aggregate from a number on touched last leaves the others changed", "[bulk]") {
    counting_source<true> source;
    pj::bulk_table<row_table, counting_source<true>> bulk("counted");
    bulk.attach(&source, true);
    std::uint64_t current = 0;
    bulk.track_owners(&current);
    for (int i = 0; i < 4; ++i) {
        current = static_cast<std::uint64_t>(i);
        bulk.insert(row(i));
    }
    CHECK_FALSE(bulk.holds_shared_rows());
    bulk.write_changes_of(std::span<decltype(bulk)* const>(std::array{&bulk}), 2);
    bulk.flushed(2);
    CHECK(source.added_keys == std::vector<std::string>{"t-2", "t-3"});
    CHECK(bulk.dirty_rows() == 2);  // t-0 and t-1: still to write
    bulk.evict_owned_from(2);
    CHECK(bulk.rows_in_memory() == 2);

    current = 1;  // aggregate 1 touches aggregate 0's row: shared
    bulk.update(std::string("t-0"), [](ticket_row& r) { r.status = "closed"; });
    CHECK(bulk.holds_shared_rows());
    source.added_keys.clear();
    flush(bulk);
    CHECK(source.added_keys == std::vector<std::string>{"t-0", "t-1"});
    CHECK(bulk.dirty_rows() == 0);
    bulk.evict();
    CHECK_FALSE(bulk.holds_shared_rows());
}

TEST_CASE("the row store takes a key as any type the key is made from, over a source that does not", "[bulk]") {
    counting_source<false> source;  // find(const std::string&) only, as the contract asks
    source.table.upsert(row(0, "stored"));
    pj::bulk_table<row_table, counting_source<false>> bulk("counted");
    bulk.attach(&source, false);
    const std::string text = "t-0";
    const std::string_view stored(text);
    CHECK(bulk.contains(stored));  // read from the source, with the key made once
    CHECK(source.finds == 1);
    CHECK(bulk.update(stored, [](ticket_row& r) { r.status = "closed"; }));
    CHECK(bulk.find(std::string_view("t-0"))->status == "closed");
    CHECK_FALSE(bulk.contains(std::string_view("t-9")));
    CHECK(bulk.erase(stored));
    flush(bulk);
    CHECK_FALSE(source.table.find(std::string("t-0")));
}

TEST_CASE("sqlite_table writes and reads many rows at once as it does one by one", "[bulk][sqlite]") {
    sqlite_test::temp_dir dir{sqlite_test::fast_temp_base()};
    pj::sqlite_options options;
    options.session_cache_size_kib = 0;  // SQLite's default, which the flush raises and gives back
    pj::sqlite_storage storage(dir.file("bulk.db"), options);
    auto session = storage.open("bulk_v1");
    auto& table = session.create_table<row_table>("bulk_v1");
    for (int i = 0; i < 10; ++i) table.upsert(row(i, "before"));

    // 600 rows: two full chunks of 256 and a shorter last one; keys 0-9 exist already.
    std::vector<ticket_row> added, changed;
    for (int i = 10; i < 610; ++i) added.push_back(row(i));
    for (int i = 0; i < 5; ++i) changed.push_back(row(i, "after"));
    changed.push_back(row(1000, "new through upsert"));
    std::vector<const ticket_row*> added_p, changed_p;
    for (const auto& r : added) added_p.push_back(&r);
    for (const auto& r : changed) changed_p.push_back(&r);
    const std::vector<std::string> erased{"t-8", "t-9"};
    std::vector<const std::string*> erased_p{&erased[0], &erased[1]};

    const auto cache_before = [&] {
        pj::detail::sqlite::statement q(session.connection(), "PRAGMA cache_size");
        return q.step() ? q.int64(0) : 0;
    }();
    session.begin();
    table.write_bulk(added_p, changed_p, erased_p);
    session.commit(session.load_checkpoint(), {});
    pj::detail::sqlite::statement q(session.connection(), "PRAGMA cache_size");
    REQUIRE(q.step());
    CHECK(q.int64(0) == cache_before);  // the flush's larger cache is given back
    q.reset();

    CHECK(table.size() == 10 + 600 + 1 - 2);
    CHECK(table.find(std::string("t-3"))->status == "after");
    CHECK(table.find(std::string("t-6"))->status == "before");
    CHECK(table.find(std::string("t-609"))->status == "open");
    CHECK(table.find(std::string("t-1000")));
    CHECK_FALSE(table.find(std::string("t-8")));

    SECTION("an added key the table holds is refused, in a transaction that rolls back") {
        const ticket_row duplicate = row(3, "duplicate");
        const ticket_row* p = &duplicate;
        session.begin();
        CHECK_THROWS(table.write_bulk(std::span<const ticket_row* const>(&p, 1), {}, {}));
        session.rollback();
        CHECK(table.find(std::string("t-3"))->status == "after");
    }
    SECTION("find_each reads the rows of many keys, in chunks, and skips the missing ones") {
        std::vector<std::string> keys;
        for (int i = 0; i < 700; ++i) keys.push_back("t-" + std::to_string(i));
        std::vector<const std::string*> p;
        for (const auto& k : keys) p.push_back(&k);
        std::map<std::string, std::string> found;
        table.find_each(std::span<const std::string* const>(p),
                        [&](ticket_row&& r) { found.emplace(r.ticket_id, r.status); });
        CHECK(found.size() == 608);  // 0-609 but 8 and 9
        CHECK(found.at("t-2") == "after");
        CHECK_FALSE(found.contains("t-8"));
    }
}

}  // namespace bulk_table_test
