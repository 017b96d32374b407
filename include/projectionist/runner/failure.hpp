#pragma once

/// How the runner reads the exceptions that stop a batch: which are another runner's doing (a
/// moved checkpoint, a lost lease) and which are the projection's failure, and their text.
/// Plain functions: they run once per failed batch, never per event.

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include <projectionist/error.hpp>
#include <projectionist/runner/status.hpp>

namespace projectionist::detail {

/// Per aggregate: the next event of an aggregate is not the one after its last applied version.
struct version_gap : std::runtime_error {
    using std::runtime_error::runtime_error;
};

[[noreturn, gnu::noinline]] inline void throw_version_gap(std::uint64_t applied, std::uint64_t got) {
    throw version_gap(fmt::format(
        "aggregate version gap: the last applied version is {}, the next event has version {}", applied, got));
}

template <class Exception>
[[nodiscard]] bool holds(const std::exception_ptr& cause) {
    try {
        std::rethrow_exception(cause);
    } catch (const Exception&) {
        return true;
    } catch (...) {
        return false;
    }
}

/// A worker's claim on the partition is gone: not the projection's failure.
[[nodiscard]] inline bool is_lease_lost(const std::exception_ptr& cause) {
    return holds<lease_lost>(cause);
}

/// Another runner of the version moved the checkpoint first: go on from where it is.
[[nodiscard]] inline bool is_checkpoint_conflict(const std::exception_ptr& cause) {
    return holds<checkpoint_conflict>(cause);
}

/// The database failed (read-only, full, I/O error, ...): not the event's failure, so it stops
/// the runner whatever its failure policy, and is never recorded as a dead letter.
[[nodiscard]] inline bool is_storage_failure(const std::exception_ptr& cause) {
    return holds<storage_error>(cause);
}

/// The connection to the database was lost: a reconnect may cure it.
[[nodiscard]] inline bool is_connection_lost(const std::exception_ptr& cause) {
    try {
        std::rethrow_exception(cause);
    } catch (const storage_error& e) {
        return e.connection_lost();
    } catch (...) {
        return false;
    }
}

/// The kind of error `cause` is, for `projectionist_errors_total`: `event` when one event is at
/// fault (its handler threw, or it could not be read), else what the exception says.
[[nodiscard]] inline error_kind kind_of(const std::exception_ptr& cause, bool event) {
    if (event) return error_kind::handler;
    try {
        std::rethrow_exception(cause);
    } catch (const lease_lost&) {
        return error_kind::fenced;
    } catch (const checkpoint_conflict&) {
        return error_kind::conflict;
    } catch (const storage_error& e) {
        return e.connection_lost() ? error_kind::connection : error_kind::storage;
    } catch (...) {
        return error_kind::other;
    }
}

/// What is wrong with a record as read, beyond what decoding checks; empty when nothing is.
/// The SQL stores mark a type id that has no type, and fields out of range.
template <class Record>
[[nodiscard]] std::string record_defect(const Record& rec) {
    if constexpr (requires { rec.defect(); })
        return std::string(rec.defect());
    else
        return {};
}

/// The message of `cause`, for status() and dead letters.
[[nodiscard]] inline std::string reason_of(const std::exception_ptr& cause) {
    try {
        std::rethrow_exception(cause);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "a handler threw an exception that is not a std::exception";
    }
}

}  // namespace projectionist::detail
