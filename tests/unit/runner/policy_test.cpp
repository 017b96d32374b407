// Policy selection: defaults, free order, and the policies a runner ends up with.

#include <catch2/catch.hpp>

#include <type_traits>

#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

namespace policy_test {

namespace pj = projectionist;
using namespace tickets_domain;

using defaults = pj::runner<tickets<1>>;
static_assert(std::is_same_v<defaults::storage_type, pj::memory_storage>);
static_assert(std::is_same_v<defaults::event_store_type, pj::memory_event_store>);
static_assert(std::is_same_v<defaults::partitioning, pj::global>);
static_assert(std::is_same_v<defaults::emission, pj::emit_when_live>);
static_assert(std::is_same_v<defaults::kickoff, pj::auto_kickoff>);
static_assert(std::is_same_v<defaults::failure, pj::stop_on_error>);

// Order is free: the same policies in two orders give the same configuration.
using one_order = pj::runner<tickets<2>, pj::manual_kickoff, pj::per_aggregate, pj::emit_always, pj::memory_storage>;
using other_order = pj::runner<tickets<2>, pj::memory_storage, pj::emit_always, pj::per_aggregate, pj::manual_kickoff>;
static_assert(std::is_same_v<one_order::partitioning, pj::per_aggregate>);
static_assert(std::is_same_v<one_order::emission, pj::emit_always>);
static_assert(std::is_same_v<one_order::kickoff, pj::manual_kickoff>);
static_assert(std::is_same_v<one_order::partitioning, other_order::partitioning>);
static_assert(std::is_same_v<one_order::emission, other_order::emission>);
static_assert(std::is_same_v<one_order::kickoff, other_order::kickoff>);

// Policy values known at compile time: the emission decision folds to a constant.
static_assert(!pj::no_emission::allowed);
static_assert(pj::emit_always::pass(false));
static_assert(!pj::emit_when_live::pass(false) && pj::emit_when_live::pass(true));
static_assert(pj::manual_kickoff::manual && !pj::auto_kickoff::manual);
static_assert(pj::per_aggregate::partitioned && !pj::global::partitioned);

// The runner's handler table is the projection's, for the runner's own context type.
static_assert(one_order::handler_table::size == 3);
static_assert(defaults::handler_table::size == 2);

TEST_CASE("a runner with every policy spelled out behaves like the scenario expects", "[runner][policy]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 1, false);
    other_order r(store, storage);
    CHECK(r.catch_up() == 0);  // manual kick-off
    r.init();
    CHECK(r.catch_up() == 3);
    CHECK(r.status().partitioning == "per_aggregate");
    CHECK(storage.find_catalog("tickets_v2")->partitioning == "per_aggregate");
}

}  // namespace policy_test
