#pragma once

/// The core: events, streams, projections, the runner and its policies, and the in-memory event
/// store and storage. Included where projections are defined and run; the rest is included where
/// it is used:
///   - <projectionist/sqlite.hpp>, <projectionist/postgres.hpp>: the backends that link a system
///     library (CMake targets projectionist::sqlite, projectionist::postgres);
///   - <projectionist/deploy.hpp>: deployments, the blue-green controller, the query router and
///     verification (projectionist::tools, for verification's JSON);
///   - <projectionist/cli.hpp>: the embeddable command line (projectionist::tools);
///   - <projectionist/workers/worker.hpp>: worker processes sharing a projection (PostgreSQL).

#include <projectionist/error.hpp>
#include <projectionist/event/envelope.hpp>
#include <projectionist/event/event.hpp>
#include <projectionist/event/stream.hpp>
#include <projectionist/meta/fixed_string.hpp>
#include <projectionist/meta/name.hpp>
#include <projectionist/policy/policies.hpp>
#include <projectionist/projection/context.hpp>
#include <projectionist/projection/handler_table.hpp>
#include <projectionist/projection/lifecycle.hpp>
#include <projectionist/projection/projection.hpp>
#include <projectionist/projection/table.hpp>
#include <projectionist/runner/runner.hpp>
#include <projectionist/runner/status.hpp>
#include <projectionist/storage/catalog.hpp>
#include <projectionist/storage/memory_storage.hpp>
#include <projectionist/store/event_type.hpp>
#include <projectionist/store/expected_version.hpp>
#include <projectionist/store/memory_event_store.hpp>

namespace projectionist {

/// The compile-time handler table of a projection: the one `runner<P, Policies...>` builds
/// (`runner<P, Policies...>::handler_table`: the same handler context, from the same policies),
/// without the runner's checks, so that a static_assert can also look at a projection that a
/// runner would refuse.
///
///     static_assert(projectionist::handler_table<tickets<1>>::handles<ticket_closed>);
template <projection_type Projection, class... Policies>
using handler_table =
    basic_handler_table<Projection, handler_context<Projection, typename detail::runner_config<Policies...>::storage,
                                                    typename detail::runner_config<Policies...>::emission>>;

}  // namespace projectionist
