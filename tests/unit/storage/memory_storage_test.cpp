// memory_storage and memory_table: typed tables, journaled batches (begin/commit/rollback), the
// projection catalog and checkpoints.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/hana/define_struct.hpp>

#include <projectionist/projection/table.hpp>
#include <projectionist/storage/memory_storage.hpp>

namespace memory_storage_test {

namespace pj = projectionist;

namespace {

struct account_row {
    BOOST_HANA_DEFINE_STRUCT(account_row, (std::string, id), (std::string, owner), (int, balance));
    friend bool operator==(const account_row&, const account_row&) = default;
};
using accounts = pj::table<account_row, &account_row::id>;

struct counter_row {
    BOOST_HANA_DEFINE_STRUCT(counter_row, (int, n), (std::string, label));
    friend bool operator==(const counter_row&, const counter_row&) = default;
};
using counters = pj::table<counter_row, &counter_row::n>;

using account_table = pj::memory_table<accounts>;
using counter_table = pj::memory_table<counters>;

static_assert(std::is_same_v<pj::memory_storage::table_handle<accounts>, account_table>);
static_assert(std::is_same_v<account_table::key_type, std::string>);
static_assert(std::is_same_v<counter_table::key_type, int>);
static_assert(std::is_same_v<pj::memory_storage::storage_category, pj::detail::storage_category>);
static_assert(!std::is_copy_constructible_v<pj::memory_storage>);
static_assert(std::is_move_constructible_v<pj::memory_storage::session>);
static_assert(!std::is_copy_constructible_v<pj::memory_storage::session>);

/// The table's whole content, ordered by key, to compare states exactly.
template <class Table>
auto snapshot(const pj::memory_table<Table>& t) {
    std::map<typename Table::key_type, typename Table::row_type> out;
    t.for_each([&](const typename Table::row_type& r) {
        const bool fresh = out.emplace(Table::key_of(r), r).second;
        REQUIRE(fresh);  // for_each visits each row once
    });
    REQUIRE(out.size() == t.size());
    // Every row is found under its own key.
    for (const auto& [key, row] : out) {
        const auto found = t.find(key);
        REQUIRE(found.has_value());
        REQUIRE(*found == row);
    }
    return out;
}

void fill(account_table& t) {
    t.insert({"a-1", "ann", 10});
    t.insert({"a-2", "bob", 20});
    t.insert({"a-3", "cat", 30});
}

}  // namespace

// ---- tables: create, open, find ----------------------------------------------------------------

TEST_CASE("tables are created once and found by name", "[storage][tables]") {
    pj::memory_storage storage;
    auto session = storage.open("bank_v1");
    CHECK(session.projection() == "bank_v1");
    CHECK(&session.storage() == &storage);

    CHECK_FALSE(storage.find_table<accounts>("bank_v1").has_value());
    CHECK(session.open_table<accounts>("bank_v1") == nullptr);
    CHECK_FALSE(storage.has_table("bank_v1"));

    auto& t = session.create_table<accounts>("bank_v1");
    CHECK(t.name() == "bank_v1");
    CHECK(t.empty());
    CHECK(storage.has_table("bank_v1"));
    const auto found = storage.find_table<accounts>("bank_v1");  // a handle on the same table
    REQUIRE(found.has_value());
    CHECK(found->name() == "bank_v1");
    CHECK(session.open_table<accounts>("bank_v1") == &t);

    t.insert({"a-1", "ann", 10});
    CHECK(found->size() == 1);
    CHECK(found->find("a-1") == account_row{"a-1", "ann", 10});
    auto& again = session.create_table<accounts>("bank_v1");  // idempotent: the same table, rows kept
    CHECK(&again == &t);
    CHECK(again.size() == 1);

    // Another session, even of another projection, sees the same table.
    auto other = storage.open("audit_v1");
    CHECK(other.open_table<accounts>("bank_v1") == &t);

    session.create_table<counters>("bank_v1_counters");
    const auto names = storage.table_names();
    CHECK(names == std::vector<std::string>{"bank_v1", "bank_v1_counters"});
}

TEST_CASE("a table that exists with another row type is an error", "[storage][tables]") {
    pj::memory_storage storage;
    auto session = storage.open("bank_v1");
    auto& t = session.create_table<accounts>("bank_v1");
    t.insert({"a-1", "ann", 10});

    CHECK_THROWS_AS(session.create_table<counters>("bank_v1"), pj::table_error);
    CHECK_THROWS_AS(session.open_table<counters>("bank_v1"), pj::table_error);
    CHECK_THROWS_AS(storage.find_table<counters>("bank_v1"), pj::table_error);
    CHECK_THROWS_WITH(storage.find_table<counters>("bank_v1"), Catch::Contains("'bank_v1'"));
    // The existing table is untouched.
    CHECK(session.open_table<accounts>("bank_v1") == &t);
    CHECK(storage.find_table<accounts>("bank_v1")->find("a-1") == account_row{"a-1", "ann", 10});
    CHECK(t.size() == 1);
}

TEST_CASE("drop_table removes a table; creating it again starts empty", "[storage][tables]") {
    pj::memory_storage storage(pj::memory_rollback::journal);
    auto session = storage.open("bank_v1");
    auto& t = session.create_table<accounts>("bank_v1");
    fill(t);
    auto& keep = session.create_table<counters>("bank_v1_counters");
    keep.insert({1, "one"});

    CHECK(session.drop_table("bank_v1"));
    CHECK_FALSE(storage.has_table("bank_v1"));
    CHECK_FALSE(storage.find_table<accounts>("bank_v1").has_value());
    CHECK_FALSE(session.drop_table("bank_v1"));
    CHECK_FALSE(session.drop_table("never_existed"));

    // Dropping one table leaves the others, and their journaling, alone.
    CHECK(session.open_table<counters>("bank_v1_counters") == &keep);
    CHECK(storage.find_table<counters>("bank_v1_counters")->contains(1));
    session.begin();
    keep.insert({2, "two"});
    session.rollback();
    CHECK(keep.size() == 1);
    CHECK_FALSE(keep.contains(2));

    // The name can now be used with any row type.
    auto& fresh = session.create_table<counters>("bank_v1");
    CHECK(fresh.empty());
}

TEST_CASE("a table dropped by one session is safe to forget in another", "[storage][tables]") {
    pj::memory_storage storage;
    {
        auto writer = storage.open("bank_v1");
        auto& t = writer.create_table<accounts>("bank_v1");
        fill(t);
        auto remover = storage.open("bank_v1");
        CHECK(remover.drop_table("bank_v1"));
        CHECK_FALSE(storage.has_table("bank_v1"));
        // `writer` still has the handle bound; ending the session must not touch freed memory
        // (checked by the sanitizer build).
    }
    CHECK(storage.table_names().empty());
}

TEST_CASE("a table dropped inside a batch is safe to roll back", "[storage][tables]") {
    pj::memory_storage storage(pj::memory_rollback::journal);
    auto session = storage.open("bank_v1");
    auto& t = session.create_table<accounts>("bank_v1");
    auto& other = session.create_table<counters>("bank_v1_counters");
    fill(t);
    other.insert({1, "one"});

    session.begin();
    t.insert({"a-4", "dan", 40});
    other.erase(1);
    CHECK(session.drop_table("bank_v1"));
    session.rollback();  // must not touch freed memory (checked by the sanitizer build)

    CHECK_FALSE(storage.has_table("bank_v1"));
    CHECK(other.contains(1));  // the table that was not dropped is rolled back
}

// ---- rows -----------------------------------------------------------------------------------

TEST_CASE("insert, find, contains, size", "[storage][rows]") {
    pj::memory_storage storage;
    auto session = storage.open("bank_v1");
    auto& t = session.create_table<accounts>("bank_v1");

    t.insert({"a-1", "ann", 10});
    t.insert({"a-2", "bob", 20});
    CHECK(t.size() == 2);
    CHECK_FALSE(t.empty());
    CHECK(t.contains(std::string("a-1")));
    CHECK(t.contains(std::string_view("a-2")));  // transparent lookup
    CHECK(t.contains("a-2"));
    CHECK_FALSE(t.contains("a-3"));
    REQUIRE(t.find("a-1").has_value());
    CHECK(*t.find("a-1") == account_row{"a-1", "ann", 10});
    CHECK(*t.find(std::string_view("a-2")) == account_row{"a-2", "bob", 20});
    CHECK_FALSE(t.find("a-3").has_value());
    CHECK_FALSE(t.find("").has_value());
}

TEST_CASE("inserting a duplicate key throws and keeps the row", "[storage][rows]") {
    pj::memory_storage storage;
    auto session = storage.open("bank_v1");
    auto& t = session.create_table<accounts>("bank_v1");
    t.insert({"a-1", "ann", 10});

    try {
        t.insert({"a-1", "impostor", 99});
        FAIL("expected table_error");
    } catch (const pj::table_error& e) {
        const std::string what = e.what();
        CHECK_THAT(what, Catch::Contains("'bank_v1'"));
        CHECK_THAT(what, Catch::Contains("'a-1'"));
    }
    CHECK(t.size() == 1);
    CHECK(*t.find("a-1") == account_row{"a-1", "ann", 10});

    // Integer keys are named too.
    auto& c = session.create_table<counters>("bank_v1_counters");
    c.insert({7, "seven"});
    CHECK_THROWS_AS(c.insert({7, "again"}), pj::table_error);
    CHECK_THROWS_WITH(c.insert({7, "again"}), Catch::Contains("'7'") && Catch::Contains("'bank_v1_counters'"));
    CHECK(c.find(7)->label == "seven");
    // table_error is a projectionist::error.
    CHECK_THROWS_AS(c.insert({7, "again"}), pj::error);
}

TEST_CASE("upsert adds or replaces", "[storage][rows]") {
    pj::memory_storage storage;
    auto session = storage.open("bank_v1");
    auto& t = session.create_table<accounts>("bank_v1");

    t.upsert({"a-1", "ann", 10});
    CHECK(t.size() == 1);
    CHECK(*t.find("a-1") == account_row{"a-1", "ann", 10});
    t.upsert({"a-1", "ann", 15});
    CHECK(t.size() == 1);
    CHECK(*t.find("a-1") == account_row{"a-1", "ann", 15});
    t.upsert({"a-2", "bob", 1});
    CHECK(t.size() == 2);
}

TEST_CASE("update changes a row in place", "[storage][rows]") {
    pj::memory_storage storage;
    auto session = storage.open("bank_v1");
    auto& t = session.create_table<accounts>("bank_v1");
    fill(t);

    int calls = 0;
    CHECK(t.update("a-2", [&](account_row& r) {
        ++calls;
        r.balance += 5;
        r.owner = "bobby";
    }));
    CHECK(calls == 1);
    CHECK(*t.find("a-2") == account_row{"a-2", "bobby", 25});

    SECTION("a missing key returns false and calls nothing") {
        CHECK_FALSE(t.update("zzz", [&](account_row&) { ++calls; }));
        CHECK(calls == 1);
        CHECK(t.size() == 3);
    }
    SECTION("changing the key throws") {
        try {
            t.update("a-1", [](account_row& r) { r.id = "a-9"; });
            FAIL("expected table_error");
        } catch (const pj::table_error& e) {
            CHECK_THAT(std::string(e.what()), Catch::Contains("'bank_v1'"));
            CHECK_THAT(std::string(e.what()), Catch::Contains("'a-1'"));
        }
        CHECK(t.size() == 3);
        CHECK_FALSE(t.contains("a-9"));
        // The table stays consistent: the row keeps the key it is stored under...
        REQUIRE(t.find("a-1").has_value());
        CHECK(t.find("a-1")->id == "a-1");
        snapshot(t);
        // ...so that a later batch's rollback restores it under that key.
        session.begin();
        t.update("a-1", [](account_row& r) { r.balance = 0; });
        session.rollback();
        CHECK(t.size() == 3);
        CHECK_FALSE(t.contains("a-9"));
        CHECK(t.find("a-1")->id == "a-1");
    }
}

TEST_CASE("erase, for_each and clear", "[storage][rows]") {
    pj::memory_storage storage;
    auto session = storage.open("bank_v1");
    auto& t = session.create_table<accounts>("bank_v1");
    fill(t);

    CHECK(t.erase("a-2"));
    CHECK_FALSE(t.erase("a-2"));
    CHECK_FALSE(t.erase("nope"));
    CHECK(t.size() == 2);
    CHECK_FALSE(t.find("a-2").has_value());

    int total = 0;
    std::vector<std::string> ids;
    t.for_each([&](const account_row& r) {
        total += r.balance;
        ids.push_back(r.id);
    });
    CHECK(total == 40);
    std::sort(ids.begin(), ids.end());
    CHECK(ids == std::vector<std::string>{"a-1", "a-3"});

    t.clear();
    CHECK(t.empty());
    CHECK(t.size() == 0);
    int visits = 0;
    t.for_each([&](const account_row&) { ++visits; });
    CHECK(visits == 0);
    t.insert({"a-1", "ann", 1});  // usable after clear
    CHECK(t.size() == 1);
}

// ---- journaling -----------------------------------------------------------------------------

TEST_CASE("rollback undoes every kind of change exactly", "[storage][journal]") {
    pj::memory_storage storage(pj::memory_rollback::journal);
    auto session = storage.open("bank_v1");
    auto& t = session.create_table<accounts>("bank_v1");
    fill(t);
    const auto before = snapshot(t);

    session.begin();
    SECTION("insert") {
        t.insert({"a-4", "dan", 40});
        t.insert({"a-5", "eve", 50});
        CHECK(t.size() == 5);
    }
    SECTION("upsert of a new key") {
        t.upsert({"a-4", "dan", 40});
        CHECK(t.contains("a-4"));
    }
    SECTION("upsert of an existing key") {
        t.upsert({"a-1", "ann", 999});
        CHECK(t.find("a-1")->balance == 999);
    }
    SECTION("update") {
        CHECK(t.update("a-3", [](account_row& r) { r.balance = 0; }));
        CHECK(t.find("a-3")->balance == 0);
    }
    SECTION("update that changes the key (and throws)") {
        CHECK_THROWS_AS(t.update("a-3", [](account_row& r) { r.id = "a-7"; }), pj::table_error);
    }
    SECTION("erase") {
        CHECK(t.erase("a-2"));
        CHECK_FALSE(t.contains("a-2"));
    }
    SECTION("clear") {
        t.clear();
        CHECK(t.empty());
    }
    SECTION("clear, then insert the same keys again") {
        t.clear();
        t.insert({"a-1", "new ann", 1});
        t.insert({"a-2", "new bob", 2});
        t.insert({"a-9", "new", 9});
    }
    SECTION("a failed insert is not journaled as an insert") {
        CHECK_THROWS_AS(t.insert({"a-1", "dup", 0}), pj::table_error);
        t.insert({"a-4", "dan", 40});
    }
    SECTION("misses change nothing") {
        CHECK_FALSE(t.update("zzz", [](account_row& r) { r.balance = -1; }));
        CHECK_FALSE(t.erase("zzz"));
    }
    SECTION("every kind at once") {
        t.insert({"a-4", "dan", 40});
        t.upsert({"a-5", "eve", 50});
        t.upsert({"a-1", "ann", 11});
        t.update("a-2", [](account_row& r) { r.owner = "rob"; });
        t.erase("a-3");
        t.clear();
        t.insert({"a-3", "cat again", 3});
    }
    session.rollback();
    CHECK(snapshot(t) == before);
}

TEST_CASE("rollback undoes several changes to one key in one batch", "[storage][journal]") {
    pj::memory_storage storage(pj::memory_rollback::journal);
    auto session = storage.open("bank_v1");
    auto& t = session.create_table<accounts>("bank_v1");
    fill(t);
    const auto before = snapshot(t);

    session.begin();
    SECTION("a new key: insert, update, erase, insert, upsert") {
        t.insert({"k", "one", 1});
        t.update("k", [](account_row& r) { r.balance = 2; });
        t.erase("k");
        t.insert({"k", "three", 3});
        t.upsert({"k", "four", 4});
        t.update("k", [](account_row& r) { r.balance = 5; });
        CHECK(t.find("k")->balance == 5);
    }
    SECTION("an existing key: update, update, erase, insert, upsert, erase") {
        t.update("a-1", [](account_row& r) { r.balance = 100; });
        t.update("a-1", [](account_row& r) { r.owner = "x"; });
        t.erase("a-1");
        t.insert({"a-1", "y", 1});
        t.upsert({"a-1", "z", 2});
        t.erase("a-1");
        CHECK_FALSE(t.contains("a-1"));
    }
    SECTION("an existing key: erase, upsert, clear, upsert") {
        t.erase("a-2");
        t.upsert({"a-2", "b", 0});
        t.clear();
        t.upsert({"a-2", "c", 1});
        CHECK(t.size() == 1);
    }
    SECTION("many changes to many keys") {
        for (int round = 0; round < 20; ++round) {
            for (int k = 0; k < 10; ++k) {
                const std::string id = "k" + std::to_string(k);
                if (!t.contains(id))
                    t.insert({id, "n", round});
                else if ((round + k) % 3 == 0)
                    t.erase(id);
                else
                    t.update(id, [&](account_row& r) { r.balance += round; });
            }
            if (round % 7 == 6) t.clear();
        }
    }
    session.rollback();
    CHECK(snapshot(t) == before);
}

TEST_CASE("rollback covers every table changed in the batch", "[storage][journal]") {
    pj::memory_storage storage(pj::memory_rollback::journal);
    auto session = storage.open("bank_v1");
    auto& a = session.create_table<accounts>("bank_v1");
    auto& c = session.create_table<counters>("bank_v1_counters");
    auto& untouched = session.create_table<accounts>("bank_v1_untouched");
    fill(a);
    c.insert({1, "one"});
    c.insert({2, "two"});
    untouched.insert({"u", "u", 0});
    const auto before_a = snapshot(a);
    const auto before_c = snapshot(c);
    const auto before_u = snapshot(untouched);

    session.begin();
    a.insert({"a-4", "dan", 40});
    c.erase(1);
    a.update("a-1", [](account_row& r) { r.balance = -1; });
    c.upsert({2, "TWO"});
    c.insert({3, "three"});
    a.clear();
    c.update(3, [](counter_row& r) { r.label = "drei"; });
    session.rollback();

    CHECK(snapshot(a) == before_a);
    CHECK(snapshot(c) == before_c);
    CHECK(snapshot(untouched) == before_u);
}

TEST_CASE("commit keeps the batch's changes", "[storage][journal]") {
    pj::memory_storage storage(pj::memory_rollback::journal);
    auto session = storage.open("bank_v1");
    auto& t = session.create_table<accounts>("bank_v1");
    fill(t);

    session.begin();
    t.insert({"a-4", "dan", 40});
    t.erase("a-1");
    t.update("a-2", [](account_row& r) { r.balance = 0; });
    session.commit(session.load_checkpoint(), {});
    const auto committed = snapshot(t);
    CHECK(committed.size() == 3);
    CHECK(committed.count("a-1") == 0);
    CHECK(committed.at("a-2").balance == 0);

    SECTION("an empty batch rolled back afterwards undoes nothing") {
        session.begin();
        session.rollback();
        CHECK(snapshot(t) == committed);
    }
    SECTION("the next batch's rollback undoes only that batch") {
        session.begin();
        t.insert({"a-5", "eve", 50});
        t.erase("a-4");
        t.upsert({"a-2", "bob", 2});
        session.rollback();
        CHECK(snapshot(t) == committed);
    }
    SECTION("a second commit keeps the second batch too") {
        session.begin();
        t.clear();
        session.commit(session.load_checkpoint(), {});
        session.begin();
        session.rollback();
        CHECK(t.empty());
    }
    SECTION("the rows lock is released after commit and rollback") {
        {
            auto lock = storage.lock_shared("bank_v1");
            CHECK(lock.owns_lock());
        }
        session.begin();
        session.rollback();
        auto lock = storage.lock_shared("bank_v1");
        CHECK(lock.owns_lock());
    }
}

TEST_CASE("outside a batch nothing is journaled", "[storage][journal]") {
    pj::memory_storage storage(pj::memory_rollback::journal);
    auto session = storage.open("bank_v1");
    auto& t = session.create_table<accounts>("bank_v1");
    fill(t);

    t.insert({"a-4", "dan", 40});
    t.erase("a-1");
    t.upsert({"a-2", "bob", 0});
    t.update("a-3", [](account_row& r) { r.owner = "kit"; });
    const auto after = snapshot(t);

    session.begin();
    session.rollback();
    CHECK(snapshot(t) == after);

    // A change after a rolled-back batch is not journaled either.
    t.clear();
    session.begin();
    session.rollback();
    CHECK(t.empty());
}

TEST_CASE("a table created inside a batch journals that batch", "[storage][journal]") {
    pj::memory_storage storage(pj::memory_rollback::journal);
    auto session = storage.open("bank_v1");
    session.begin();
    auto& t = session.create_table<accounts>("bank_v1");
    t.insert({"a-1", "ann", 10});
    session.rollback();
    CHECK(t.empty());
    CHECK(storage.has_table("bank_v1"));  // creating a table is not a row change
}

TEST_CASE("ending a session with an open batch rolls it back", "[storage][journal]") {
    pj::memory_storage storage(pj::memory_rollback::journal);
    {
        auto session = storage.open("bank_v1");
        auto& t = session.create_table<accounts>("bank_v1");
        t.insert({"a-1", "ann", 10});
        session.begin();
        t.insert({"a-2", "bob", 20});
        t.erase("a-1");
    }
    auto t = storage.find_table<accounts>("bank_v1");
    REQUIRE(t.has_value());
    CHECK(t->size() == 1);
    CHECK(t->contains("a-1"));
    CHECK_FALSE(t->contains("a-2"));
    // And the rows lock was released.
    auto lock = storage.lock_shared("bank_v1");
    CHECK(lock.owns_lock());
}

TEST_CASE("a moved session keeps its tables and batch", "[storage][journal]") {
    pj::memory_storage storage(pj::memory_rollback::journal);
    auto first = storage.open("bank_v1");
    auto& t = first.create_table<accounts>("bank_v1");
    fill(t);
    const auto before = snapshot(t);
    pj::memory_storage::session moved = std::move(first);
    moved.begin();
    t.insert({"a-4", "dan", 40});
    moved.rollback();
    CHECK(snapshot(t) == before);
    CHECK(moved.projection() == "bank_v1");
}

// ---- catalog --------------------------------------------------------------------------------

namespace {
pj::catalog_entry entry(std::string name, std::string base, unsigned version, pj::projection_state state) {
    pj::catalog_entry e;
    e.name = std::move(name);
    e.base_name = std::move(base);
    e.version = version;
    e.state = state;
    e.partitioning = "global";
    e.tables = {e.name};
    return e;
}
}  // namespace

TEST_CASE("the catalog stores one row per projection version", "[storage][catalog]") {
    pj::memory_storage storage;
    auto v2 = storage.open("tickets_v2");
    auto v1 = storage.open("tickets_v1");
    CHECK_FALSE(v2.find_catalog().has_value());
    CHECK(storage.catalog().empty());

    auto e2 = entry("tickets_v2", "tickets", 2, pj::projection_state::backfilling);
    e2.tables.push_back("tickets_v2_by_type");
    v2.save_catalog(e2);
    v1.save_catalog(entry("tickets_v1", "tickets", 1, pj::projection_state::serving));

    const auto found = v2.find_catalog();
    REQUIRE(found.has_value());
    CHECK(found->name == "tickets_v2");
    CHECK(found->base_name == "tickets");
    CHECK(found->version == 2);
    CHECK(found->state == pj::projection_state::backfilling);
    CHECK_FALSE(found->live);
    CHECK(found->partitioning == "global");
    CHECK(found->tables == std::vector<std::string>{"tickets_v2", "tickets_v2_by_type"});
    CHECK(storage.find_catalog("tickets_v2")->version == 2);
    CHECK(v1.find_catalog()->state == pj::projection_state::serving);
    CHECK_FALSE(storage.find_catalog("tickets_v3").has_value());

    // Ordered by name.
    const auto all = storage.catalog();
    REQUIRE(all.size() == 2);
    CHECK(all[0].name == "tickets_v1");
    CHECK(all[1].name == "tickets_v2");

    // Saving again replaces the row.
    e2.state = pj::projection_state::serving;
    e2.live = true;
    v2.save_catalog(e2);
    CHECK(storage.catalog().size() == 2);
    CHECK(v2.find_catalog()->state == pj::projection_state::serving);
    CHECK(v2.find_catalog()->live);

    // A returned row is a copy.
    auto copy = *v2.find_catalog();
    copy.version = 99;
    CHECK(v2.find_catalog()->version == 2);

    // Erasing goes through the projection's own session and leaves other versions alone.
    v2.erase_catalog();
    CHECK_FALSE(v2.find_catalog().has_value());
    CHECK_FALSE(storage.find_catalog("tickets_v2").has_value());
    CHECK(v1.find_catalog().has_value());
    REQUIRE(storage.catalog().size() == 1);
    CHECK(storage.catalog()[0].name == "tickets_v1");
    v2.erase_catalog();  // erasing twice is harmless
    CHECK(storage.catalog().size() == 1);
}

// ---- checkpoints ----------------------------------------------------------------------------

TEST_CASE("load_checkpoint hands out one object per projection", "[storage][checkpoint]") {
    pj::memory_storage storage;
    auto s1 = storage.open("tickets_v1");
    auto& cp = s1.load_checkpoint();
    CHECK(cp.position == 0);
    CHECK(cp.aggregate_versions.empty());
    CHECK(cp.aggregates_tracked == 0);

    cp.position = 42;
    cp.aggregate_versions = {3, 0, 7};
    cp.aggregates_tracked = 2;
    CHECK(&s1.load_checkpoint() == &cp);

    // Another session on the same projection sees the same checkpoint.
    auto again = storage.open("tickets_v1");
    CHECK(&again.load_checkpoint() == &cp);
    CHECK(again.load_checkpoint().position == 42);

    // Another projection has its own.
    auto s2 = storage.open("tickets_v2");
    CHECK(&s2.load_checkpoint() != &cp);
    CHECK(s2.load_checkpoint().position == 0);

    // reset_checkpoint empties it in place.
    s1.reset_checkpoint();
    CHECK(&s1.load_checkpoint() == &cp);
    CHECK(cp.position == 0);
    CHECK(cp.aggregate_versions.empty());
    CHECK(cp.aggregates_tracked == 0);
    CHECK(again.load_checkpoint().position == 0);
}

TEST_CASE("checkpoint::version_of", "[storage][checkpoint]") {
    pj::checkpoint cp;
    CHECK(cp.version_of(0) == 0);
    CHECK(cp.version_of(1000) == 0);
    cp.aggregate_versions = {5, 0, 9};
    CHECK(cp.version_of(0) == 5);
    CHECK(cp.version_of(1) == 0);
    CHECK(cp.version_of(2) == 9);
    CHECK(cp.version_of(3) == 0);
    CHECK(cp.version_of(std::numeric_limits<std::uint64_t>::max()) == 0);
}

// ---- projection_state ---------------------------------------------------------------------

static_assert(pj::to_string(pj::projection_state::caught_up) == "caught_up");
static_assert(pj::projection_state_from_string("serving") == pj::projection_state::serving);
static_assert(!pj::projection_state_from_string("Serving").has_value());

TEST_CASE("projection_state converts to and from its name", "[storage][catalog]") {
    const std::vector<std::pair<pj::projection_state, std::string>> all{
        {pj::projection_state::declared, "declared"},       {pj::projection_state::initialized, "initialized"},
        {pj::projection_state::backfilling, "backfilling"}, {pj::projection_state::caught_up, "caught_up"},
        {pj::projection_state::serving, "serving"},         {pj::projection_state::retired, "retired"},
        {pj::projection_state::deleted, "deleted"},
    };
    for (const auto& [state, name] : all) {
        INFO(name);
        CHECK(pj::to_string(state) == name);
        const auto back = pj::projection_state_from_string(name);
        REQUIRE(back.has_value());
        CHECK(*back == state);
    }
    CHECK_FALSE(pj::projection_state_from_string("").has_value());
    CHECK_FALSE(pj::projection_state_from_string("unknown").has_value());
    CHECK_FALSE(pj::projection_state_from_string("live ").has_value());
    // A catalog written when being live was also a state: the row's live flag carries it now.
    CHECK(pj::projection_state_from_string("live") == pj::projection_state::caught_up);
    CHECK_FALSE(pj::projection_state_from_string("caught-up").has_value());
    CHECK(pj::to_string(static_cast<pj::projection_state>(200)) == "unknown");
    CHECK(pj::catalog_entry{}.state == pj::projection_state::declared);
}

TEST_CASE("by default memory storage does not journal: rollback says the tables need a rebuild", "[storage][journal]") {
    pj::memory_storage storage;
    CHECK(storage.rollback_mode() == pj::memory_rollback::rebuild);
    auto session = storage.open("p_v1");
    auto& table = session.create_table<accounts>("p_v1");
    session.begin();
    table.insert({"a", "alice", 1});
    CHECK_FALSE(session.rollback());  // not undone: the runner rebuilds from the log instead
    CHECK(table.contains("a"));

    pj::memory_storage journaled(pj::memory_rollback::journal);
    auto s2 = journaled.open("p_v1");
    auto& t2 = s2.create_table<accounts>("p_v1");
    s2.begin();
    t2.insert({"a", "alice", 1});
    CHECK(s2.rollback());
    CHECK_FALSE(t2.contains("a"));
}

TEST_CASE("settings are kept by key", "[storage][settings]") {
    pj::memory_storage storage;
    CHECK_FALSE(storage.find_setting("a").has_value());
    storage.save_setting("a", "1");
    storage.save_setting("a", "2");
    storage.save_setting("b", "3");
    CHECK(storage.find_setting("a") == "2");
    CHECK(storage.find_setting("b") == "3");
}

}  // namespace memory_storage_test
