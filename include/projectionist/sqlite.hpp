#pragma once

/// The SQLite backend, the embedded default: the event log and the read models in one file (or
/// two). Link the CMake target `projectionist::sqlite` (SQLite::SQLite3 and Boost.JSON).

#include <projectionist/detail/sqlite_api.hpp>
#include <projectionist/detail/sqlite_schema.hpp>
#include <projectionist/event/codec.hpp>
#include <projectionist/event/json_codec.hpp>
#include <projectionist/event/schema.hpp>
#include <projectionist/policy/policies.hpp>
#include <projectionist/projectionist.hpp>
#include <projectionist/storage/sqlite_storage.hpp>
#include <projectionist/storage/sqlite_table.hpp>
#include <projectionist/store/sqlite_event_store.hpp>

namespace projectionist {

/// The SQLite connection and prepared statement wrappers, for handlers that write their own SQL
/// through `ctx.storage().connection()` inside the batch's transaction:
///
///     projectionist::sqlite_statement s(ctx.storage().connection(), "UPDATE ... WHERE id = ?");
///     s.bind(1, std::string_view(e.id));
///     s.run();
using sqlite_connection = detail::sqlite::connection;
using sqlite_statement = detail::sqlite::statement;

/// The SQLite event log with the readable JSON codec.
using sqlite_json_event_store = basic_sqlite_event_store<json_codec>;

}  // namespace projectionist
