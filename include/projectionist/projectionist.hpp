#pragma once

/// The whole library except the backends that link a system library (sqlite.hpp, postgres.hpp).

#include <projectionist/cli/cli.hpp>
#include <projectionist/deploy/deployment.hpp>
#include <projectionist/deploy/router.hpp>
#include <projectionist/deploy/verify.hpp>
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

/// The compile-time handler table of a projection, for a typical handler context. The runner
/// builds the same table for its own context; use this one in static_assert checks:
///
///     static_assert(projectionist::handler_table<tickets<1>>::handles<ticket_closed>);
template <projection_type Projection>
using handler_table = basic_handler_table<Projection, handler_context<Projection, memory_storage, emit_always>>;

}  // namespace projectionist
