#pragma once

/// The PostgreSQL backend: the event log and the read models in a PostgreSQL schema (one schema
/// or two, one server or several). Link the CMake target `projectionist::postgres` (libpq and
/// Boost.JSON).
///
///     projectionist::postgres_event_store store("postgresql://app@db/app");
///     projectionist::postgres_storage storage("postgresql://app@db/app");
///     projectionist::runner<tickets<2>, projectionist::postgres_storage, projectionist::per_aggregate> v2(store,
///                                                                                                        storage);

#include <projectionist/detail/pg_api.hpp>
#include <projectionist/detail/pg_schema.hpp>
#include <projectionist/event/codec.hpp>
#include <projectionist/event/json_codec.hpp>
#include <projectionist/event/schema.hpp>
#include <projectionist/policy/policies.hpp>
#include <projectionist/projectionist.hpp>
#include <projectionist/storage/postgres_storage.hpp>
#include <projectionist/storage/postgres_table.hpp>
#include <projectionist/store/postgres_event_store.hpp>

namespace projectionist {

/// The libpq connection, parameter and result wrappers, for handlers that write their own SQL
/// through `ctx.storage().connection()` inside the batch's transaction:
///
///     projectionist::postgres_params p;
///     p.add(e.ticket_id);
///     ctx.storage().connection().query("UPDATE ... WHERE id = $1", p);
using postgres_connection = detail::pg::connection;
using postgres_params = detail::pg::params;
using postgres_result = detail::pg::result;

}  // namespace projectionist
