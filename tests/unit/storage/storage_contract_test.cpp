// The backend contract (storage/concepts.hpp) and the ability traits (storage/abilities.hpp):
// memory_storage satisfies the contract, its traits say what it can do, and a backend declares an
// ability by a member (a declared false is false) or by specializing the trait.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <stop_token>
#include <string_view>
#include <type_traits>

#include <projectionist/policy/policies.hpp>
#include <projectionist/storage/abilities.hpp>
#include <projectionist/storage/concepts.hpp>
#include <projectionist/storage/memory_storage.hpp>
#include <projectionist/store/concepts.hpp>
#include <projectionist/store/memory_event_store.hpp>

#include <tickets_domain.hpp>

namespace storage_contract_test {

namespace pj = projectionist;

namespace {

using ticket_table = tickets_domain::tickets<1>::table;

// ---- memory: the contract and its abilities ---------------------------------------------------
static_assert(pj::storage<pj::memory_storage>);
static_assert(pj::storage_session<pj::memory_storage::session>);
static_assert(pj::storage_for<pj::memory_storage, ticket_table>);
static_assert(pj::table_handle_of<pj::memory_table<ticket_table>, ticket_table>);
static_assert(pj::detail::require_storage<pj::memory_storage, ticket_table>());

static_assert(pj::has_journal_rollback<pj::memory_storage>);
static_assert(!pj::has_lifecycle_transactions<pj::memory_storage>);
static_assert(!pj::has_slices<pj::memory_storage>);
static_assert(!pj::has_persisted_checkpoint<pj::memory_storage>);
static_assert(!pj::has_transactional_emission<pj::memory_event_store, pj::memory_storage>);

// The storage's own header names its event store: no specialization, no include order.
static_assert(std::is_same_v<pj::detail::default_event_store<pj::memory_storage>::type, pj::memory_event_store>);

// ---- a backend declares an ability by a member; a declared false is false --------------------
struct says_persisted {
    struct session {
        static constexpr bool persists_checkpoint = true;
    };
};
struct says_not_persisted {
    struct session {
        static constexpr bool persists_checkpoint = false;
    };
};
struct says_nothing {
    struct session {};
};
static_assert(pj::has_persisted_checkpoint<says_persisted>);
static_assert(!pj::has_persisted_checkpoint<says_not_persisted>);
static_assert(!pj::has_persisted_checkpoint<says_nothing>);

struct lifecycle_storage {
    struct session {
        void begin_lifecycle() {}
    };
    session open(std::string_view, pj::partition_slice);
    pj::memory_rollback rollback_mode() const { return pj::memory_rollback::journal; }
};
static_assert(pj::has_lifecycle_transactions<lifecycle_storage>);
static_assert(pj::has_slices<lifecycle_storage>);
static_assert(pj::has_journal_rollback<lifecycle_storage>);
static_assert(!pj::has_lifecycle_transactions<says_nothing>);
static_assert(!pj::has_slices<says_nothing>);
static_assert(!pj::has_journal_rollback<says_nothing>);

// ---- or by specializing the trait: here a storage that has the member but declines -----------
struct declining_storage {
    struct session {
        void begin_lifecycle() {}
    };
    session open(std::string_view, pj::partition_slice);
};

// ---- a storage without a default_event_store alias reads a memory_event_store ---------------
static_assert(std::is_same_v<pj::detail::default_event_store<says_nothing>::type, pj::memory_event_store>);

}  // namespace

}  // namespace storage_contract_test

template <>
inline constexpr bool projectionist::has_slices<storage_contract_test::declining_storage> = false;

namespace storage_contract_test {

static_assert(!pj::has_slices<declining_storage>);
static_assert(pj::has_lifecycle_transactions<declining_storage>);

TEST_CASE("journals_rollback follows the storage's run-time choice", "[storage][contract]") {
    pj::memory_storage rebuild;
    pj::memory_storage journal(pj::memory_rollback::journal);
    CHECK_FALSE(pj::detail::journals_rollback(rebuild));
    CHECK(pj::detail::journals_rollback(journal));
    CHECK_FALSE(pj::detail::journals_rollback(says_nothing{}));
}

}  // namespace storage_contract_test
