// The backend under test satisfies the contract (store/concepts.hpp, storage/concepts.hpp) and has
// the abilities its fixture says it has (storage/abilities.hpp); the runner relies on both.

#include <type_traits>

#include <projectionist/storage/abilities.hpp>
#include <projectionist/storage/concepts.hpp>
#include <projectionist/store/concepts.hpp>

#include "backend_suite.hpp"

namespace backend_test {
namespace {

using store_type = backend::event_store_type;
using storage_type = backend::storage_type;
using ticket_table = tickets<1>::table;

static_assert(pj::event_store_for<store_type, ticket_stream>);
static_assert(pj::event_store_for<backend::json_event_store_type, ticket_stream>);
static_assert(pj::storage_for<storage_type, ticket_table>);
static_assert(pj::detail::require_event_store<store_type, ticket_stream>());
static_assert(pj::detail::require_storage<storage_type, ticket_table>());

// What each backend can do, as the runner sees it.
static_assert(pj::has_journal_rollback<storage_type> == backend::abilities::journal_rollback);
static_assert(pj::has_lifecycle_transactions<storage_type> == backend::abilities::lifecycle_transactions);
static_assert(pj::has_slices<storage_type> == backend::abilities::slices);
static_assert(pj::has_persisted_checkpoint<storage_type> == backend::abilities::persisted_checkpoint);
static_assert(pj::has_event_wait<store_type> == backend::abilities::event_wait);
static_assert(pj::has_aggregate_count<store_type> == backend::abilities::aggregate_count);
static_assert(pj::has_transactional_emission<store_type, storage_type> == backend::abilities::transactional_emission);
static_assert(pj::has_concurrent_read<store_type> == backend::abilities::concurrent_read);
static_assert(pj::has_prefetching_begin<storage_type> == backend::abilities::prefetching_begin);
static_assert(pj::has_serving_switch<storage_type> == backend::abilities::serving_switch);

// The storage's own header names its event store, whatever else is included.
static_assert(std::is_same_v<pj::detail::default_event_store<storage_type>::type, store_type>);
static_assert(std::is_same_v<typename pj::runner<tickets<1>, storage_type>::event_store_type, store_type>);

}  // namespace
}  // namespace backend_test
