#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace projectionist {

/// Where an error happened: whichever of these the failing operation knew.
struct error_context {
    std::string projection;
    std::optional<std::uint64_t> position;
    std::string stream;
    std::string aggregate_id;
    std::string event_type;
};

/// The one base of every exception projectionist throws. `what()` is a full sentence that names
/// the projection, position, aggregate and event type involved, when they are known; the same
/// facts are available as fields through `context()`.
class error : public std::runtime_error {
public:
    explicit error(std::string message, error_context context = {})
        : std::runtime_error(std::move(message)), context_(std::move(context)) {}

    [[nodiscard]] const error_context& context() const noexcept { return context_; }

private:
    error_context context_;
};

/// Optimistic concurrency: the aggregate was not at the version the writer expected.
class version_conflict : public error {
public:
    version_conflict(std::string_view stream, std::string_view aggregate_id, std::uint64_t expected,
                     std::uint64_t actual)
        : error(fmt::format("projectionist: version conflict on stream '{}', aggregate '{}': expected version {}, "
                            "but the aggregate is at version {}; nothing was appended",
                            stream, aggregate_id, expected, actual),
                error_context{{}, {}, std::string(stream), std::string(aggregate_id), {}}),
          expected_(expected),
          actual_(actual) {}

    [[nodiscard]] std::uint64_t expected() const noexcept { return expected_; }
    [[nodiscard]] std::uint64_t actual() const noexcept { return actual_; }

private:
    std::uint64_t expected_;
    std::uint64_t actual_;
};

/// A handler threw, or an event could not be applied: the projection stopped at its last
/// committed position. The original exception's message is kept in `reason()`.
class projection_error : public error {
public:
    projection_error(error_context context, std::string reason)
        : error(context.position
                    ? fmt::format("projectionist: projection '{}' stopped at position {} (aggregate '{}' "
                                  "of stream '{}', event '{}'): {}",
                                  context.projection, *context.position, context.aggregate_id, context.stream,
                                  context.event_type, reason)
                    : fmt::format("projectionist: projection '{}' stopped: {}", context.projection, reason),
                context),
          reason_(std::move(reason)) {}

    [[nodiscard]] const std::string& reason() const noexcept { return reason_; }

private:
    std::string reason_;
};

/// An operation that the projection's current state does not allow (catch_up on a failed
/// projection, backfill before init with manual kick-off, ...). The message says what to run.
class state_error : public error {
public:
    using error::error;
};

/// Another runner committed this projection version's checkpoint first (a second process on the
/// same database, e.g. the command line backfilling while the application follows). The batch
/// was rolled back; the runner reloads the checkpoint and goes on from there.
class checkpoint_conflict : public error {
public:
    using error::error;
};

/// A fenced commit found that its worker no longer holds the lease of its partition (another
/// worker claimed it, or it expired): nothing was written. Not a checkpoint_conflict, because a
/// runner must not reload and retry: it stops applying that partition (see workers/worker.hpp).
class lease_lost : public error {
public:
    using error::error;
};

/// Thrown inside a bulk backfill when a handler asks what the in-memory row store cannot serve
/// (the raw connection, the size of a whole table, a scan, a clear). The runner catches it, drops
/// what it applied since its last flush and goes on in batch mode; `status().note` says why.
class bulk_fallback : public error {
public:
    using error::error;
};

namespace detail {

/// An error with the backend's own code (SQLite's extended result code): the base of
/// storage_error and sqlite_error.
class coded_error : public error {
public:
    coded_error(std::string message, int code) : error(std::move(message)), code_(code) {}
    [[nodiscard]] int code() const noexcept { return code_; }

private:
    int code_;
};

}  // namespace detail

/// The database failed, not the event being applied: it is read-only, full, corrupt, cannot be
/// opened, had an I/O error, or stayed locked past the busy timeout. A runner stops on it
/// whatever its failure policy (skipping the event would dead-letter every event after it);
/// `code()` is the backend's own code (SQLite's extended result code).
///
///     catch (const projectionist::storage_error& e) { alert(e.what()); }  // "... is read-only ..."
class storage_error : public detail::coded_error {
public:
    storage_error(std::string message, int code, bool connection_lost = false)
        : coded_error(std::move(message), code), connection_lost_(connection_lost) {}
    /// The connection to the database's server was lost (it restarted, or the backend was
    /// terminated): the connection is opened again on its next statement, so a later attempt may
    /// succeed (`runner::reconnect()`; the `run` loops retry with a bounded backoff).
    [[nodiscard]] bool connection_lost() const noexcept { return connection_lost_; }

private:
    bool connection_lost_;
};

/// A table operation that broke the table's contract, such as inserting a duplicate key.
class table_error : public error {
public:
    using error::error;
};

namespace detail {
/// A table key in an error message: quoted when fmt can format it.
template <class T>
std::string describe_key(const T& key) {
    if constexpr (fmt::is_formattable<T>::value)
        return fmt::format("'{}'", key);
    else
        return "(a key that cannot be formatted)";
}
}  // namespace detail

}  // namespace projectionist
