#pragma once

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <libpq-fe.h>

#include <projectionist/detail/sql_text.hpp>
#include <projectionist/error.hpp>

namespace projectionist {

/// An error reported by PostgreSQL or libpq; `sqlstate()` is the five-character SQLSTATE code
/// ("40001", "23505", ...), empty when libpq itself failed (a lost connection, say).
class postgres_error : public error {
public:
    postgres_error(std::string message, std::string sqlstate)
        : error(std::move(message)), sqlstate_(std::move(sqlstate)) {}
    [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }
    /// A unique or exclusion constraint refused the row.
    [[nodiscard]] bool unique_violation() const noexcept { return sqlstate_ == "23505"; }
    /// The transaction lost a serialization or deadlock race and may be retried.
    [[nodiscard]] bool retryable() const noexcept { return sqlstate_ == "40001" || sqlstate_ == "40P01"; }

private:
    std::string sqlstate_;
};

/// PostgreSQL failed, not the statement: the connection was lost (the server restarted, the
/// backend was terminated), the server is shutting down or refuses connections, is out of disk
/// or memory, is read-only, hit an I/O error or corruption, or cancelled the statement after
/// statement_timeout or lock_timeout. A storage_error, so that a runner
/// stops on it whatever its failure policy instead of blaming the event; `sqlstate()` is empty
/// when libpq lost the connection, and `connection_lost()` says whether the connection is gone
/// (rather than the server refusing the work: a full disk, a read-only server).
class postgres_storage_error : public storage_error {
public:
    postgres_storage_error(std::string message, std::string sqlstate, bool connection_lost = false)
        : storage_error(std::move(message), 0, connection_lost), sqlstate_(std::move(sqlstate)) {}
    [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }
    /// The statement was cancelled by lock_timeout or statement_timeout (or by a cancel request):
    /// the database was too busy, not the statement wrong, and a later attempt may succeed.
    [[nodiscard]] bool timed_out() const noexcept { return sqlstate_ == "55P03" || sqlstate_ == "57014"; }

private:
    std::string sqlstate_;
};

namespace detail::pg {

using detail::quote;

/// Whether a failure with `sqlstate` (empty: libpq's own) is the server's or the connection's
/// rather than the statement's: connection exceptions (08), operator intervention (57P01-57P03:
/// shutdown, crash, cannot connect now), insufficient resources (53: disk full, out of memory,
/// too many connections), system errors (58: I/O), internal errors and corruption (XX), a
/// read-only transaction (25006), a statement cancelled by statement_timeout, lock_timeout or a
/// cancel request (57014, 55P03).
[[nodiscard]] inline bool server_failure(std::string_view sqlstate, bool connection_bad) noexcept {
    if (sqlstate.empty()) return connection_bad;
    return sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03" ||
           sqlstate.starts_with("53") || sqlstate.starts_with("58") || sqlstate.starts_with("XX") ||
           sqlstate == "25006" || sqlstate == "57014" || sqlstate == "55P03";
}

/// Whether `sqlstate` says the connection itself is gone or going: a connection exception (08),
/// the server shutting down or restarting (57P01-57P03). A new connection may then succeed.
[[nodiscard]] inline bool connection_failure(std::string_view sqlstate) noexcept {
    return sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03";
}

/// `'text'` with embedded quotes doubled: a string literal, for the few statements (DDL) that
/// cannot take parameters.
inline std::string literal(std::string_view text) {
    return sql_quoted(text, '\'');
}

/// Parameters of one statement, in order ($1, $2, ...). Values are copied into the object, so
/// temporaries may be passed. Text format unless added as binary (bytea).
class params {
public:
    params() = default;
    params(const params&) = delete;
    params& operator=(const params&) = delete;

    params& add(std::string_view text) {
        push(text, 0);
        return *this;
    }
    params& add(const char* text) { return add(std::string_view(text)); }
    params& add(const std::string& text) { return add(std::string_view(text)); }
    params& add(std::int64_t v) {
        char buf[24];
        const auto r = std::to_chars(buf, buf + sizeof buf, v);
        push(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)), 0);
        return *this;
    }
    params& add(std::uint64_t v) { return add(static_cast<std::int64_t>(v)); }
    params& add(int v) { return add(static_cast<std::int64_t>(v)); }
    params& add(unsigned v) { return add(static_cast<std::int64_t>(v)); }
    params& add(bool v) { return add(std::string_view(v ? "t" : "f")); }
    params& add(double v) {
        push(fmt::format("{}", v), 0);
        return *this;
    }
    /// Raw bytes sent in binary format: the parameter's type must be bytea.
    params& add_binary(std::string_view bytes) {
        push(bytes, 1);
        return *this;
    }
    params& add_null() {
        offsets_.push_back(npos);
        lengths_.push_back(0);
        formats_.push_back(0);
        return *this;
    }
    void clear() noexcept {
        buffer_.clear();
        offsets_.clear();
        lengths_.clear();
        formats_.clear();
    }

    [[nodiscard]] int size() const noexcept { return static_cast<int>(offsets_.size()); }
    [[nodiscard]] const int* lengths() const noexcept { return lengths_.data(); }
    [[nodiscard]] const int* formats() const noexcept { return formats_.data(); }
    /// Pointers into the buffer; valid until the next add or clear.
    [[nodiscard]] const char* const* values() const {
        pointers_.resize(offsets_.size());
        for (std::size_t i = 0; i < offsets_.size(); ++i)
            pointers_[i] = offsets_[i] == npos ? nullptr : buffer_.data() + offsets_[i];
        return pointers_.data();
    }

private:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
    void push(std::string_view bytes, int format) {
        offsets_.push_back(buffer_.size());
        buffer_.append(bytes);
        buffer_.push_back('\0');  // text parameters are read as C strings
        lengths_.push_back(static_cast<int>(bytes.size()));
        formats_.push_back(format);
    }
    std::string buffer_;
    std::vector<std::size_t> offsets_;
    std::vector<int> lengths_;
    std::vector<int> formats_;
    mutable std::vector<const char*> pointers_;
};

/// A query's result. Move-only; clears on destruction. Row and column indexes start at 0.
class result {
public:
    result() = default;
    explicit result(PGresult* r) noexcept : r_(r) {}
    result(const result&) = delete;
    result& operator=(const result&) = delete;
    result(result&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
    result& operator=(result&& o) noexcept {
        if (this != &o) {
            PQclear(r_);
            r_ = std::exchange(o.r_, nullptr);
        }
        return *this;
    }
    ~result() { PQclear(r_); }

    [[nodiscard]] PGresult* get() const noexcept { return r_; }
    [[nodiscard]] int rows() const noexcept { return PQntuples(r_); }
    [[nodiscard]] int columns() const noexcept { return PQnfields(r_); }
    /// Rows changed by an INSERT, UPDATE or DELETE.
    [[nodiscard]] std::uint64_t affected() const noexcept {
        const char* n = PQcmdTuples(r_);
        std::uint64_t v = 0;
        if (n && *n) std::from_chars(n, n + std::strlen(n), v);
        return v;
    }
    [[nodiscard]] bool is_null(int row, int col) const noexcept { return PQgetisnull(r_, row, col) != 0; }
    /// The value as the server sent it (text, or raw bytes for binary results).
    [[nodiscard]] std::string_view text(int row, int col) const noexcept {
        return {PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col))};
    }
    /// A text-format integer column.
    [[nodiscard]] std::int64_t int64(int row, int col) const {
        const auto t = text(row, col);
        std::int64_t v = 0;
        const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
        if (r.ec != std::errc{} || r.ptr != t.data() + t.size())
            throw error(
                fmt::format("projectionist: postgres: column {} of row {} is not an integer: '{}'", col, row, t));
        return v;
    }
    /// A text-format boolean column.
    [[nodiscard]] bool boolean(int row, int col) const noexcept { return text(row, col) == "t"; }
    /// A text-format bytea column (hex, `\x...`), decoded.
    [[nodiscard]] std::string bytea(int row, int col) const {
        const auto t = text(row, col);
        if (t.size() < 2 || t[0] != '\\' || t[1] != 'x')
            throw error(fmt::format("projectionist: postgres: column {} of row {} is not hex bytea", col, row));
        std::string out;
        out.reserve((t.size() - 2) / 2);
        auto nibble = [&](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            throw error(fmt::format("projectionist: postgres: bad hex digit in bytea column {} of row {}", col, row));
        };
        for (std::size_t i = 2; i + 1 < t.size(); i += 2)
            out.push_back(static_cast<char>((nibble(t[i]) << 4) | nibble(t[i + 1])));
        return out;
    }

private:
    PGresult* r_ = nullptr;
};

/// One row of a result, read by column: the row detail/sql_records.hpp reads records from.
class result_row {
public:
    result_row(const result& r, int row) noexcept : r_(&r), row_(row) {}
    [[nodiscard]] std::string_view text(int col) const noexcept { return r_->text(row_, col); }
    [[nodiscard]] std::int64_t int64(int col) const { return r_->int64(row_, col); }
    [[nodiscard]] bool boolean(int col) const noexcept { return r_->boolean(row_, col); }

private:
    const result* r_;
    int row_;
};

/// Rows in COPY's binary format (`COPY t(columns) FROM STDIN (FORMAT binary)`), built in memory.
///
///     detail::pg::copy_rows rows;
///     rows.row(2).int8(7).text("x");
///     db.copy_in("COPY t(a, b) FROM STDIN (FORMAT binary)", rows.finish());
class copy_rows {
public:
    copy_rows() { start(); }
    /// Starts a row of `fields` fields; then add exactly that many.
    copy_rows& row(std::int16_t fields) {
        integer(static_cast<std::uint16_t>(fields));
        return *this;
    }
    copy_rows& int8(std::int64_t v) { return fixed(static_cast<std::uint64_t>(v)); }
    copy_rows& int4(std::int32_t v) { return fixed(static_cast<std::uint32_t>(v)); }
    copy_rows& int2(std::int16_t v) { return fixed(static_cast<std::uint16_t>(v)); }
    copy_rows& boolean(bool v) { return fixed(static_cast<std::uint8_t>(v ? 1 : 0)); }
    /// real, double precision: the IEEE 754 bits, big-endian.
    copy_rows& float4(float v) { return fixed(std::bit_cast<std::uint32_t>(v)); }
    copy_rows& float8(double v) { return fixed(std::bit_cast<std::uint64_t>(v)); }
    /// text, bytea: the bytes as they are.
    copy_rows& bytes(std::string_view b) {
        integer(static_cast<std::uint32_t>(b.size()));
        data_.append(b);
        return *this;
    }
    /// jsonb: a format version byte (1), then the document's text.
    copy_rows& jsonb(std::string_view text) {
        integer(static_cast<std::uint32_t>(text.size() + 1));
        data_.push_back('\1');
        data_.append(text);
        return *this;
    }
    copy_rows& null() {
        integer(std::uint32_t{0xFFFFFFFFu});
        return *this;
    }
    /// The rows with the trailer; valid until the next call.
    [[nodiscard]] std::string_view finish() {
        data_.append("\xFF\xFF", 2);
        return data_;
    }
    /// Bytes so far.
    [[nodiscard]] std::size_t size() const noexcept { return data_.size(); }
    /// The bytes so far, for a COPY sent in pieces (connection::copy_in_pieces): send them, then
    /// `next_piece()` empties the buffer for the rows that follow (no header; `finish` ends).
    [[nodiscard]] std::string_view piece() const noexcept { return data_; }
    void next_piece() noexcept { data_.clear(); }
    /// Empties it for the next COPY, keeping its memory.
    void clear() {
        data_.clear();
        start();
    }

private:
    void start() { data_.append("PGCOPY\n\xFF\r\n\0\0\0\0\0\0\0\0\0", 19); }
    /// A fixed-width field: its length, then its bytes, big-endian.
    template <class U>
    copy_rows& fixed(U bits) {
        integer(static_cast<std::uint32_t>(sizeof(U)));
        integer(bits);
        return *this;
    }
    template <class U>
    void integer(U v) {
        char b[sizeof(U)];
        for (std::size_t i = 0; i < sizeof(U); ++i) b[i] = static_cast<char>((v >> (8 * (sizeof(U) - 1 - i))) & 0xFFu);
        data_.append(b, sizeof(U));
    }
    std::string data_;
};

/// `{"a","b"}`: a text array literal, for a parameter of type text[] (`unnest($1::text[])`).
template <class Range>
std::string text_array(const Range& items) {
    std::string out = "{";
    for (std::string_view item : items) {
        if (out.size() > 1) out.push_back(',');
        out.push_back('"');
        for (char c : item) {
            if (c == '"' || c == '\\') out.push_back('\\');
            out.push_back(c);
        }
        out.push_back('"');
    }
    out.push_back('}');
    return out;
}

/// One connection to a server. Move-only; closes on destruction. Not thread-safe: one thread
/// at a time, as libpq requires.
class connection {
public:
    connection() = default;
    /// `conninfo` is a libpq connection string or URI ("postgresql://user@host:port/db").
    explicit connection(const std::string& conninfo) : c_(PQconnectdb(conninfo.c_str())) {
        if (!c_ || PQstatus(c_) != CONNECTION_OK) {
            std::string why = c_ ? PQerrorMessage(c_) : "out of memory";
            while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
            PQfinish(c_);
            c_ = nullptr;
            throw postgres_error(fmt::format("projectionist: postgres: cannot connect: {}", why), {});
        }
        try {
            setup("SET client_min_messages = warning");  // no NOTICE chatter on stderr
        } catch (...) {
            close();  // a server that ends the session at once (shutting down): the socket is not left open
            throw;
        }
    }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    connection(connection&& o) noexcept
        : c_(std::exchange(o.c_, nullptr)),
          prepared_(std::move(o.prepared_)),
          setup_(std::move(o.setup_)),
          in_transaction_(o.in_transaction_),
          round_trips_(o.round_trips_) {}
    connection& operator=(connection&& o) noexcept {
        if (this != &o) {
            close();
            c_ = std::exchange(o.c_, nullptr);
            prepared_ = std::move(o.prepared_);
            setup_ = std::move(o.setup_);
            in_transaction_ = o.in_transaction_;
            round_trips_ = o.round_trips_;
        }
        return *this;
    }
    ~connection() { close(); }

    [[nodiscard]] PGconn* get() const noexcept { return c_; }
    explicit operator bool() const noexcept { return c_ != nullptr; }
    /// The server process serving this connection (pg_backend_pid()).
    [[nodiscard]] int backend_pid() const noexcept { return PQbackendPID(c_); }
    /// Inside a transaction block (BEGIN without COMMIT or ROLLBACK yet)?
    [[nodiscard]] bool in_transaction() const noexcept {
        const auto s = PQtransactionStatus(c_);
        return s == PQTRANS_INTRANS || s == PQTRANS_INERROR;
    }

    /// Round trips to the server so far: each statement run, each prepare, each pipeline's sync
    /// point (two per COPY). For tests and benchmarks that count what a batch costs.
    [[nodiscard]] std::uint64_t round_trips() const noexcept { return round_trips_; }

    class pipeline;

    /// Runs one or more statements without parameters (the simple query protocol).
    void exec(const std::string& sql) const {
        if (!usable(sql)) return;
        ++round_trips_;
        check(PQexec(c_, sql.c_str()), sql);
    }

    /// Runs `sql`, statements separated by ';' (the simple query protocol, one round trip), and
    /// reports the first one's failure only: the server stops at a failed statement, and the
    /// later ones are best effort (a notification sent after a COMMIT).
    void exec_first(const std::string& sql) const {
        if (!usable(sql)) return;
        ++round_trips_;
        if (PQsendQuery(c_, sql.c_str()) != 1) {
            check(nullptr, sql);
            return;
        }
        PGresult* first = PQgetResult(c_);
        while (PGresult* rest = PQgetResult(c_)) PQclear(rest);
        check(first, sql);
    }

    /// Runs `sql` (SET ...) now and again whenever the connection is opened anew: a setting every
    /// statement on this connection relies on.
    void setup(const std::string& sql) {
        exec(sql);
        setup_.push_back(sql);
    }

    /// Runs one statement with parameters; text results unless `binary_results`.
    result query(const std::string& sql, const params& p = {}, bool binary_results = false) const {
        usable(sql);
        ++round_trips_;
        return check(PQexecParams(c_, sql.c_str(), p.size(), nullptr, p.values(), p.lengths(), p.formats(),
                                  binary_results ? 1 : 0),
                     sql);
    }

    /// Prepares `sql` under `name` on this connection (once; later calls are no-ops, and a
    /// connection opened anew prepares it again).
    void prepare(const std::string& name, const std::string& sql) {
        for (const auto& n : prepared_)
            if (n.first == name) return;
        usable(sql);
        ++round_trips_;
        check(PQprepare(c_, name.c_str(), sql.c_str(), 0, nullptr), sql);
        prepared_.emplace_back(name, sql);
    }
    /// Runs a statement prepared under `name`.
    result execute(const std::string& name, const params& p = {}, bool binary_results = false) const {
        usable(name);
        ++round_trips_;
        return check(
            PQexecPrepared(c_, name.c_str(), p.size(), p.values(), p.lengths(), p.formats(), binary_results ? 1 : 0),
            name);
    }

    /// Runs `sql`, a `COPY ... FROM STDIN`, sending `data` (in the COPY's format) as its input.
    void copy_in(const std::string& sql, std::string_view data) const {
        copy_in_pieces(sql, [data](const auto& send) {
            constexpr std::size_t chunk = 1u << 20;
            for (std::size_t at = 0; at < data.size(); at += chunk) send(data.substr(at, chunk));
        });
    }

    /// Runs `sql`, a `COPY ... FROM STDIN`, whose input `produce(send)` makes and passes to
    /// `send(std::string_view)` piece by piece (pieces of about a megabyte), so that the server
    /// stores the first rows while the rest are made. A failure of `produce` ends the COPY as
    /// failed and is rethrown.
    template <class Produce>
    void copy_in_pieces(const std::string& sql, Produce&& produce) const {
        usable(sql);
        round_trips_ += 2;  // the COPY's start, then its end
        check(PQexec(c_, sql.c_str()), sql);
        bool sent = true;
        std::exception_ptr failed;
        try {
            produce([&](std::string_view data) {
                if (sent && !data.empty()) sent = PQputCopyData(c_, data.data(), static_cast<int>(data.size())) == 1;
            });
        } catch (...) {
            failed = std::current_exception();
        }
        const int ended =
            PQputCopyEnd(c_, sent && !failed ? nullptr : "projectionist: making or sending the rows failed");
        PGresult* failure = nullptr;
        while (PGresult* raw = PQgetResult(c_)) {
            if (PQresultStatus(raw) != PGRES_COMMAND_OK && !failure)
                failure = raw;
            else
                PQclear(raw);
        }
        if (failed) {
            PQclear(failure);
            std::rethrow_exception(failed);
        }
        if (failure) check(failure, sql);
        if (!sent || ended != 1) check(nullptr, sql);
    }

private:
    [[nodiscard]] bool is_prepared(std::string_view name) const noexcept {
        return std::any_of(prepared_.begin(), prepared_.end(), [&](const auto& n) { return n.first == name; });
    }

    /// Before each statement: a connection that libpq found lost, or that the server closed while
    /// it was idle (the server restarted, the backend was terminated), is opened again, with its settings and prepared
    /// statements, and false is returned for a ROLLBACK, which has nothing left to undo. Only outside a transaction: if
    /// one was open when the connection was lost, the server rolled it back, and every statement but ROLLBACK is
    /// refused until the caller has rolled back too (it must not run the rest of that transaction's work on a new
    /// connection, committed piecemeal).
    bool usable(std::string_view sql) const {
        if (PQstatus(c_) != CONNECTION_BAD) [[likely]] {
            in_transaction_ = PQtransactionStatus(c_) != PQTRANS_IDLE;
            // Idle: a server that closed the connection meanwhile (a restart) has left its last
            // message and an end of file to read, which mark it lost here rather than failing the
            // statement. Two non-blocking reads per transaction, none inside one.
            if (in_transaction_ || (PQconsumeInput(c_) == 1 && PQconsumeInput(c_) == 1)) return true;
        }
        if (c_ == nullptr) return true;  // never opened: the statement reports it
        if (sql == "ROLLBACK") {
            in_transaction_ = false;
            return false;
        }
        if (in_transaction_)
            throw postgres_storage_error(
                fmt::format("projectionist: postgres: {}: the connection to the server was lost inside a "
                            "transaction, which the server rolled back; roll back before going on",
                            sql.substr(0, 200)),
                {}, true);
        reopen();
        return true;
    }

    /// PQreset: the same parameters, a new server connection; then the settings and prepared
    /// statements it had. Throws a lost-connection postgres_storage_error while the server cannot
    /// be reached.
    void reopen() const {
        PQreset(c_);
        if (PQstatus(c_) != CONNECTION_OK) {
            std::string why = PQerrorMessage(c_);
            while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
            throw postgres_storage_error(
                fmt::format("projectionist: postgres: the connection to the server is lost, and opening it "
                            "again failed: {}",
                            why),
                {}, true);
        }
        for (const auto& sql : setup_) check(PQexec(c_, sql.c_str()), sql);
        for (const auto& [name, sql] : prepared_) check(PQprepare(c_, name.c_str(), sql.c_str(), 0, nullptr), sql);
    }

    result check(PGresult* raw, std::string_view what) const {
        result r(raw);
        const auto status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_COPY_IN ||
            status == PGRES_COPY_OUT || status == PGRES_EMPTY_QUERY)
            return r;
        std::string why = raw ? PQresultErrorMessage(raw) : PQerrorMessage(c_);
        while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
        const char* state = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
        constexpr std::size_t shown = 200;  // long batched statements are cut in the message
        const std::string_view head = what.substr(0, shown);
        std::string message =
            fmt::format("projectionist: postgres: {}{}: {}", head, what.size() > shown ? "..." : "", why);
        const std::string_view sqlstate = state ? state : "";
        if (server_failure(sqlstate, PQstatus(c_) == CONNECTION_BAD)) [[unlikely]] {
            const bool lost = PQstatus(c_) == CONNECTION_BAD || connection_failure(sqlstate);
            message += PQstatus(c_) == CONNECTION_BAD ? " (the connection to the server is lost)"
                       : sqlstate == "57014" || sqlstate == "55P03"
                           ? " (the statement timed out, or waited for a lock past lock_timeout: the database was "
                             "busy, not the statement wrong)"
                           : " (a failure of the server, not of the statement)";
            throw postgres_storage_error(std::move(message), std::string(sqlstate), lost);
        }
        throw postgres_error(std::move(message), std::string(sqlstate));
    }
    void close() noexcept {
        if (c_) PQfinish(c_);
        c_ = nullptr;
        prepared_.clear();
    }
    PGconn* c_ = nullptr;
    std::vector<std::pair<std::string, std::string>> prepared_;  // name, SQL
    std::vector<std::string> setup_;
    mutable bool in_transaction_ = false;  // as the last statement found it
    mutable std::uint64_t round_trips_ = 0;
};

/// Statements sent together and answered in one round trip (libpq's pipeline mode). `add_query`
/// and `add_prepared` send each statement at once (a statement this connection has not prepared
/// yet is prepared in the same round trip); `run` sends the sync point, reads every answer,
/// leaves pipeline mode, and then hands each statement's answer to its handler, in the order
/// sent. A statement without a handler only has its failure reported.
///
/// The server runs the statements in order and, after one fails, skips the rest up to the sync
/// point; `run` throws the first failure exactly as `connection::query` or `execute` would have
/// for that statement (postgres_error with its SQLSTATE, postgres_storage_error for the server's
/// or the connection's failure), after the handlers of the statements before it have run. A
/// handler may throw too: the answers after it are dropped. Whatever happens, including an
/// exception before `run`, the connection leaves pipeline mode, usable or marked lost. Statements
/// that must not run after a failed one are not sent in the same pipeline as it: a pipeline is not
/// a transaction (COMMIT goes after checking the answers).
///
///     detail::pg::connection::pipeline pl(db);
///     pl.add_query("BEGIN");
///     pl.add_prepared("lock", "SELECT ... FOR UPDATE", p, [&](auto& a) { locked = a.take(); });
///     pl.run();
class connection::pipeline {
public:
    /// One statement's answer, for its handler: `take()` returns the result, or throws what the
    /// statement run on its own would have thrown.
    class answer {
    public:
        answer(const answer&) = delete;
        answer& operator=(const answer&) = delete;
        [[nodiscard]] result take() { return db_->check(std::exchange(*raw_, nullptr), what_); }

    private:
        friend class pipeline;
        answer(const connection* db, PGresult** raw, std::string_view what) noexcept
            : db_(db), raw_(raw), what_(what) {}
        const connection* db_;
        PGresult** raw_;
        std::string_view what_;
    };
    using handler = std::function<void(answer&)>;

    explicit pipeline(connection& db) noexcept : db_(&db) {}
    pipeline(const pipeline&) = delete;
    pipeline& operator=(const pipeline&) = delete;
    ~pipeline() {
        collect();
        for (auto& s : steps_) PQclear(std::exchange(s.raw, nullptr));
    }

    /// Sends `sql` with parameters `p` (unnamed, not prepared).
    void add_query(const std::string& sql, const params& p = {}, handler on_answer = {}) {
        enter(sql);
        auto& s = push(sql, std::move(on_answer));
        s.begins = sql == "BEGIN";
        if (sending_)
            sending_ = PQsendQueryParams(db_->c_, sql.c_str(), p.size(), nullptr, p.values(), p.lengths(), p.formats(),
                                         0) == 1;
        if (sending_) ++sent_;
    }

    /// Sends the statement prepared under `name` (`sql`: prepared first if this connection has
    /// not yet, in this round trip, as connection::prepare would).
    void add_prepared(const std::string& name, const std::string& sql, const params& p = {}, handler on_answer = {}) {
        enter(sql);
        if (!db_->is_prepared(name) &&
            std::none_of(steps_.begin(), steps_.end(), [&](const step& s) { return s.prepares == name; })) {
            auto& s = push(sql, {});
            s.prepares = name;
            s.prepared_sql = sql;
            if (sending_) sending_ = PQsendPrepare(db_->c_, name.c_str(), sql.c_str(), 0, nullptr) == 1;
            if (sending_) ++sent_;
        }
        push(name, std::move(on_answer));
        if (sending_)
            sending_ =
                PQsendQueryPrepared(db_->c_, name.c_str(), p.size(), p.values(), p.lengths(), p.formats(), 0) == 1;
        if (sending_) ++sent_;
    }

    /// Statements added so far.
    [[nodiscard]] std::size_t size() const noexcept { return steps_.size(); }

    /// The sync point, the answers, the handlers (see the class comment). Once.
    void run() {
        collect();
        for (auto& s : steps_) {
            answer a(db_, &s.raw, s.what);
            if (s.on_answer)
                s.on_answer(a);
            else
                (void)a.take();
        }
    }

private:
    struct step {
        std::string what;  // the SQL, or the prepared statement's name (as the error names it)
        handler on_answer;
        PGresult* raw = nullptr;
        std::string prepares;  // a prepare step: the name it prepares
        std::string prepared_sql;
        bool begins = false;  // BEGIN
    };

    step& push(const std::string& what, handler on_answer) {
        auto& s = steps_.emplace_back();
        s.what = what;
        s.on_answer = std::move(on_answer);
        return s;
    }

    /// Before the first statement: the connection's check (a lost idle connection is opened
    /// again), then pipeline mode.
    void enter(const std::string& sql) {
        if (entered_) return;
        db_->usable(sql);
        entered_ = true;
        in_transaction_before_ = db_->in_transaction_;
        sending_ = db_->c_ != nullptr && PQenterPipelineMode(db_->c_) == 1;
        in_pipeline_ = sending_;
    }

    /// Sends the sync point and reads the answer of every statement sent, then leaves pipeline
    /// mode. Statements never sent, and those whose answer a lost connection cut off, keep no
    /// result: taking it reports the connection's error.
    void collect() noexcept {
        if (!entered_ || collected_) return;
        collected_ = true;
        if (!in_pipeline_) return;
        PGconn* c = db_->c_;
        ++db_->round_trips_;
        const bool synced = PQpipelineSync(c) == 1;
        bool saw_sync = false;
        for (std::size_t i = 0; i < sent_ && !saw_sync; ++i) {
            PGresult* first = nullptr;
            while (PGresult* r = PQgetResult(c)) {
                if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
                    saw_sync = true;
                    PQclear(r);
                    break;
                }
                if (first == nullptr)
                    first = r;
                else
                    PQclear(r);
            }
            steps_[i].raw = first;
            if (first == nullptr && PQstatus(c) == CONNECTION_BAD) break;
        }
        // Up to the sync point (the answers of a connection lost meanwhile end earlier).
        for (int spins = 0; synced && !saw_sync && PQstatus(c) != CONNECTION_BAD && spins < 64;) {
            PGresult* r = PQgetResult(c);
            if (r == nullptr) {
                ++spins;
                continue;
            }
            saw_sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
            PQclear(r);
        }
        PQexitPipelineMode(c);  // a lost connection that stays in it is reset before its next use
        in_pipeline_ = false;
        bool began = false;
        for (auto& s : steps_) {
            const bool ok = s.raw != nullptr && PQresultStatus(s.raw) == PGRES_COMMAND_OK;
            began = began || (s.begins && ok);
            // A prepared statement outlives a failed transaction: it is not prepared again.
            if (ok && !s.prepares.empty()) db_->prepared_.emplace_back(s.prepares, s.prepared_sql);
        }
        db_->in_transaction_ =
            PQstatus(c) != CONNECTION_BAD ? PQtransactionStatus(c) != PQTRANS_IDLE : in_transaction_before_ || began;
    }

    connection* db_;
    std::vector<step> steps_;
    std::size_t sent_ = 0;  // steps_ sent to the server, from the first
    bool entered_ = false;
    bool in_pipeline_ = false;
    bool sending_ = false;
    bool collected_ = false;
    bool in_transaction_before_ = false;
};

}  // namespace detail::pg
}  // namespace projectionist
