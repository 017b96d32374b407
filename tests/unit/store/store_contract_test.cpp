// The event store contract (store/concepts.hpp) and the event store abilities: memory_event_store
// satisfies it for the tickets stream, waits for events and counts its aggregates.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <stop_token>

#include <projectionist/storage/abilities.hpp>
#include <projectionist/store/concepts.hpp>
#include <projectionist/store/memory_event_store.hpp>

#include <tickets_domain.hpp>

namespace store_contract_test {

namespace pj = projectionist;

namespace {

static_assert(pj::event_store<pj::memory_event_store>);
static_assert(pj::event_store_for<pj::memory_event_store, tickets_domain::ticket_stream>);
static_assert(pj::detail::require_event_store<pj::memory_event_store, tickets_domain::ticket_stream>());
static_assert(pj::has_event_wait<pj::memory_event_store>);
static_assert(pj::has_aggregate_count<pj::memory_event_store>);

// A store that has wait_for_events but declines it by specializing the trait.
struct polled_store {
    bool wait_for_events(std::uint64_t, std::chrono::milliseconds, std::stop_token) const { return false; }
};
struct plain_store {};

// Not an event store: the record misses envelope_of (the concept names what is checked).
struct thin_record {
    std::uint64_t position() const;
};
struct thin_store {
    using event_store_category = pj::detail::event_store_category;
    using batch = std::vector<thin_record>;
    std::uint64_t head() const;
    void read(std::uint64_t, std::size_t, batch&) const;
    std::uint32_t type_count() const;
    pj::event_type_info type_info(std::uint32_t) const;
};
static_assert(!pj::event_store<thin_store>);
static_assert(pj::detail::store_contract::has_read<thin_store> && pj::detail::store_contract::has_head<thin_store>);
static_assert(!pj::detail::store_contract::has_records<thin_store>);

}  // namespace

}  // namespace store_contract_test

template <>
inline constexpr bool projectionist::has_event_wait<store_contract_test::polled_store> = false;

namespace store_contract_test {

static_assert(!pj::has_event_wait<polled_store>);
static_assert(!pj::has_event_wait<plain_store>);
static_assert(!pj::has_aggregate_count<plain_store>);

TEST_CASE("a memory store's record is what the contract reads", "[store][contract]") {
    pj::memory_event_store store;
    tickets_domain::append_ticket(store, "t-1", "bug", 1, true);
    pj::memory_event_store::batch batch;
    store.read(0, 10, batch);
    REQUIRE(batch.size() == 4);
    static_assert(std::is_same_v<pj::detail::batch_record_t<pj::memory_event_store>, pj::memory_event_store::record>);
    CHECK(batch[0]->envelope_of().position == 1);
    CHECK(store.aggregate_count() == 1);
}

}  // namespace store_contract_test
