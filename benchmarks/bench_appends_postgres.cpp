// Comparison 9c-9f, appends on PostgreSQL: postgres_event_store's append paths against plain libpq
// writing the same rows into the same tables (created by the store), each side in a schema of its
// own, dropped and created again (untimed) before every repetition:
//
//   9c  `writers` threads, one connection each, one event per transaction; thread t appends the
//       events of the aggregates whose number is t modulo `writers`, in log order (no two threads
//       share an aggregate). store: postgres_event_store::append per event (a store per thread).
//       raw: BEGIN; UPDATE the aggregate's version (or INSERT the aggregate at its first event);
//       INSERT the event at nextval(positions); COMMIT: the same rows and round trips, with no
//       reservation lock, no block lock, no NOTIFY. Ratio of wall times (raw ÷ store).
//   9d  the whole history in one transaction. store: one append(batch) of every event. raw: one
//       binary COPY of the aggregates at their last version and one binary COPY of the events
//       (encoded as they are sent). Ratio of wall times.
//   9e  a writer appends one event at a time (a new aggregate each, 1 ms apart) and times each
//       append, with no runner (quiet) and while a live, emitting runner (postgres_storage in
//       the same database, so its emitted events commit with its batch) applies the log in
//       batches of `live_batch`. Ratio of the p99s (live ÷ quiet).
//   9f  `readers` threads poll for `read_seconds` each: a 100-event read at a random position,
//       through the store (the horizon, then the read below it), and by plain libpq with and
//       without the horizon call; and the head, through the store and by plain max(position).
//       Reads/s of all readers together; no target.
// After every run of 9c and 9d the log is checked: events, head, aggregates, sum of versions.

#include "bench_appends.hpp"

#include <fmt/format.h>

#ifndef PROJECTIONIST_BENCH_POSTGRES

namespace bench {

void bench_appends_postgres(const pj::memory_event_store&, const history_stats&, const pg_appends_options&,
                            std::vector<comparison>&, std::vector<extra>& data) {
    fmt::print("9c-9f. PostgreSQL appends: not built (libpq was not found when the benchmarks were configured)\n");
    data.push_back({"appends_postgres", std::string("not built: libpq was not found at configure time")});
}

}  // namespace bench

#else

#include <libpq-fe.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/hana/define_struct.hpp>

#include <projectionist/postgres.hpp>

#include "pg_client.hpp"

namespace bench {
namespace {

using mem_store = pj::memory_event_store;
using log_store = pj::postgres_event_store;
using clock_type = std::chrono::steady_clock;

// ---- clocks and percentiles ------------------------------------------------------------------

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

// ---- 9e: the live, emitting projection ------------------------------------------------------------

struct status_changed {
    BOOST_HANA_DEFINE_STRUCT(status_changed, (std::string, ticket_id), (std::string, status));
    static constexpr std::string_view event_name = "bench_ticket_summary.status_changed";
};
using summary_stream = pj::stream<"bench_ticket_summary", status_changed>;

/// The tickets read model (6d's), emitting a status change at every registration and close.
struct live_tickets : pj::projection<"bench_live_tickets", 1, ticket_stream, pj::emits_to<summary_stream> > {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;

    void on(const ticket_registered& e, auto& ctx) {
        ctx.table().insert(make_row(e));
        ctx.emit(status_changed{e.ticket_id, "open"});
    }
    void on(const ticket_assigned& e, auto& ctx) { change(e, ctx); }
    void on(const ticket_prioritized& e, auto& ctx) { change(e, ctx); }
    void on(const ticket_commented& e, auto& ctx) { change(e, ctx); }
    void on(const ticket_closed& e, auto& ctx) {
        change(e, ctx);
        ctx.emit(status_changed{e.ticket_id, "closed"});
    }
    void on(const ticket_reopened& e, auto& ctx) { change(e, ctx); }
    void on(const ticket_escalated& e, auto& ctx) { change(e, ctx); }
    void on(const ticket_tagged& e, auto& ctx) { change(e, ctx); }

    template <class E>
    static void change(const E& e, auto& ctx) {
        auto& table = ctx.table();
        if (std::optional<ticket_row> row = table.find(e.ticket_id)) {
            apply(e, *row);
            table.upsert(*row);
        }
    }
};
using live_runner = pj::runner<live_tickets, pj::postgres_storage, pj::global>;

// ---- the bench ------------------------------------------------------------------------------------

class pg_appends {
public:
    pg_appends(const mem_store& history, pg_appends_options o)
        : o_(std::move(o)), alternatives_(alternatives_of(history)) {
        history.read(0, history.head(), records_);
    }

    [[nodiscard]] const pg_appends_options& options() const noexcept { return o_; }
    [[nodiscard]] const mem_store::batch& records() const noexcept { return records_; }

    /// A new, empty log in `schema`, its event types interned as the store would (ids from 1 in
    /// the stream's order), so that no side pays for creating them.
    void fresh(const std::string& schema) const {
        drop(schema);
        pj::postgres_options po;
        po.schema = schema;
        const log_store created(o_.url, po);
        const pq_conn db(o_.url, pq_messages::server_default);
        boost::mp11::mp_for_each<ticket_events>([&](auto e) {
            using E = decltype(e);
            db.exec(fmt::format("INSERT INTO {}.projectionist_event_types(id, stream, name) VALUES ({}, '{}', '{}')",
                                quote(schema), alternative<E> + 1, ticket_stream::name, pj::event_name_of<E>));
        });
    }
    void drop(const std::string& schema) const {
        const pq_conn db(o_.url);  // without the notices of the DROP's cascade
        db.exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", quote(schema)));
    }

    [[nodiscard]] std::unique_ptr<log_store> open(const std::string& schema) const {
        pj::postgres_options po;
        po.schema = schema;
        return std::make_unique<log_store>(o_.url, po);
    }

    /// The first `n` events of the history split by aggregate number over `parts` lists.
    [[nodiscard]] std::vector<std::vector<const mem_store::record*> > split(std::size_t n, std::size_t parts) const {
        std::vector<std::vector<const mem_store::record*> > out(parts);
        for (std::size_t i = 0; i < n && i < records_.size(); ++i)
            out[records_[i]->aggregate_number() % parts].push_back(records_[i]);
        return out;
    }

    /// 9c's store side: one thread per part, each its own store (opened by the caller, untimed).
    void store_concurrent(const std::vector<std::vector<const mem_store::record*> >& parts,
                          std::vector<std::unique_ptr<log_store> >& stores) const {
        std::vector<std::thread> threads;
        for (std::size_t t = 0; t < parts.size(); ++t)
            threads.emplace_back([this, &parts, &stores, t] {
                log_store& store = *stores[t];
                for (const mem_store::record* rec : parts[t])
                    with_event(alternatives_, *rec, [&](const auto& e) {
                        store.append(ticket_stream{}, rec->aggregate_id(), rec->aggregate_version() - 1, e);
                    });
            });
        for (std::thread& t : threads) t.join();
    }

    /// 9c's raw side: the same rows and round trips on plain libpq connections (opened by the
    /// caller, statements prepared, untimed).
    void raw_concurrent(const std::vector<std::vector<const mem_store::record*> >& parts,
                        std::vector<std::unique_ptr<pq_conn> >& conns) const {
        std::vector<std::thread> threads;
        for (std::size_t t = 0; t < parts.size(); ++t)
            threads.emplace_back([this, &parts, &conns, t] {
                const pq_conn& db = *conns[t];
                std::string payload, version_text, expected_text, number_text, type_text, now_text;
                for (const mem_store::record* rec : parts[t]) {
                    payload.clear();
                    with_event(alternatives_, *rec, [&](const auto& e) { pj::binary_codec::encode(e, payload); });
                    const std::string stream(rec->stream());
                    const std::string id(rec->aggregate_id());
                    const std::uint64_t version = rec->aggregate_version();
                    db.exec("BEGIN");
                    std::int64_t number = 0;
                    if (version == 1) {
                        const char* v[] = {stream.c_str(), id.c_str()};
                        number = db.run("add_aggregate", PGRES_TUPLES_OK, 2, v).int64(0, 0);
                    } else {
                        expected_text = std::to_string(version - 1);
                        const char* v[] = {stream.c_str(), id.c_str(), expected_text.c_str()};
                        const pq_result moved = db.run("move_aggregate", PGRES_TUPLES_OK, 3, v);
                        if (moved.rows() != 1)
                            throw std::runtime_error("9c. raw: the aggregate was not at its version");
                        number = moved.int64(0, 0);
                    }
                    number_text = std::to_string(number);
                    version_text = std::to_string(version);
                    type_text = std::to_string(alternatives_[rec->type_id()] + 1);
                    now_text = std::to_string(now_ns());
                    const char* v[] = {stream.c_str(),    id.c_str(), number_text.c_str(), version_text.c_str(),
                                       type_text.c_str(), "1",        payload.data(),      now_text.c_str()};
                    const int lengths[] = {0, 0, 0, 0, 0, 0, static_cast<int>(payload.size()), 0};
                    const int formats[] = {0, 0, 0, 0, 0, 0, 1, 0};
                    db.run("insert_event", PGRES_COMMAND_OK, 8, v, 0, lengths, formats);
                    db.exec("COMMIT");
                }
            });
        for (std::thread& t : threads) t.join();
    }

    void prepare_raw(const pq_conn& db, const std::string& schema) const {
        const std::string s = quote(schema);
        db.prepare("add_aggregate",
                   fmt::format("INSERT INTO {0}.projectionist_aggregates(number, stream, aggregate_id, version) VALUES "
                               "(nextval('{0}.projectionist_aggregate_numbers'), $1, $2, 1) RETURNING number",
                               s));
        db.prepare("move_aggregate",
                   fmt::format("UPDATE {}.projectionist_aggregates SET version = version + 1 WHERE stream = $1 AND "
                               "aggregate_id = $2 AND version = $3 RETURNING number",
                               s));
        db.prepare("insert_event",
                   fmt::format("INSERT INTO {0}.projectionist_events(position, stream, aggregate_id, "
                               "aggregate_number, aggregate_version, type_id, schema_version, payload, recorded_at) "
                               "VALUES (nextval('{0}.projectionist_positions'), $1, $2, $3, $4, $5, $6, $7, $8)",
                               s));
    }

    /// 9d's store side: one append(batch) of the first `n` events.
    void store_batch(log_store& store, std::size_t n) const {
        auto batch = store.new_batch();
        batch.reserve(n, n);
        for (std::size_t i = 0; i < n; ++i) {
            const mem_store::record* rec = records_[i];
            with_event(alternatives_, *rec, [&](const auto& e) {
                batch.add(ticket_stream{}, rec->aggregate_id(), rec->aggregate_version() - 1, e);
            });
        }
        store.append(batch);
    }

    /// 9d's raw side: the aggregates at their last version and the events, each by one binary
    /// COPY, in one transaction; then the sequences moved past them.
    void raw_copy(const pq_conn& db, const std::string& schema, std::size_t n) const {
        const std::string s = quote(schema);
        // Aggregate numbers as the store gives them: from 0, in order of first appearance.
        std::vector<std::int64_t> number_of(records_.size() == 0 ? 0 : records_.size(), -1);
        std::vector<const mem_store::record*> first_of;  // by new number
        std::vector<std::int64_t> last_version;
        db.exec("BEGIN");
        for (std::size_t i = 0; i < n; ++i) {
            const mem_store::record* rec = records_[i];
            std::int64_t& number = number_of[rec->aggregate_number()];
            if (number < 0) {
                number = static_cast<std::int64_t>(first_of.size());
                first_of.push_back(rec);
                last_version.push_back(0);
            }
            last_version[static_cast<std::size_t>(number)] = static_cast<std::int64_t>(rec->aggregate_version());
        }
        copy_in(db,
                fmt::format("COPY {}.projectionist_aggregates(number, stream, aggregate_id, version) FROM STDIN "
                            "(FORMAT binary)",
                            s),
                [&](std::string& data, auto&& flush) {
                    for (std::size_t k = 0; k < first_of.size(); ++k) {
                        put_be<std::int16_t>(data, 4);
                        field64(data, static_cast<std::int64_t>(k));
                        field(data, first_of[k]->stream());
                        field(data, first_of[k]->aggregate_id());
                        field64(data, last_version[k]);
                        flush();
                    }
                });
        copy_in(db,
                fmt::format("COPY {}.projectionist_events(position, stream, aggregate_id, aggregate_number, "
                            "aggregate_version, type_id, schema_version, payload, recorded_at) FROM STDIN "
                            "(FORMAT binary)",
                            s),
                [&](std::string& data, auto&& flush) {
                    const std::int64_t now = now_ns();
                    std::string payload;
                    for (std::size_t i = 0; i < n; ++i) {
                        const mem_store::record* rec = records_[i];
                        payload.clear();
                        with_event(alternatives_, *rec, [&](const auto& e) { pj::binary_codec::encode(e, payload); });
                        put_be<std::int16_t>(data, 9);
                        field64(data, static_cast<std::int64_t>(i + 1));
                        field(data, rec->stream());
                        field(data, rec->aggregate_id());
                        field64(data, number_of[rec->aggregate_number()]);
                        field64(data, static_cast<std::int64_t>(rec->aggregate_version()));
                        field32(data, alternatives_[rec->type_id()] + 1);
                        field32(data, 1);
                        field(data, payload);
                        field64(data, now);
                        flush();
                    }
                });
        (void)db.query(
            fmt::format("SELECT setval('{0}.projectionist_positions', {1}), "
                        "setval('{0}.projectionist_aggregate_numbers', {2})",
                        s, n, static_cast<std::int64_t>(first_of.size()) - 1));
        db.exec("COMMIT");
    }

    /// The log in `schema` holds the first `n` events: head, events, aggregates, versions.
    void check(const std::string& schema, std::size_t n, std::string_view side) const {
        const pq_conn db(o_.url, pq_messages::server_default);
        const std::string s = quote(schema);
        std::vector<bool> seen(records_.size(), false);
        std::int64_t aggregates = 0;
        for (std::size_t i = 0; i < n; ++i)
            if (!seen[records_[i]->aggregate_number()]) {
                seen[records_[i]->aggregate_number()] = true;
                ++aggregates;
            }
        const pq_result r = db.query(
            fmt::format("SELECT (SELECT count(*) FROM {0}.projectionist_events), (SELECT coalesce(max(position), 0) "
                        "FROM {0}.projectionist_events), (SELECT count(*) FROM {0}.projectionist_aggregates), "
                        "(SELECT coalesce(sum(version), 0) FROM {0}.projectionist_aggregates)",
                        s));
        const auto count = static_cast<std::int64_t>(n);
        if (r.int64(0, 0) != count || r.int64(0, 1) != count || r.int64(0, 2) != aggregates || r.int64(0, 3) != count)
            mismatch(
                fmt::format("9. PostgreSQL appends: the log written by {} (events {}, head {}, aggregates {}, "
                            "versions {}; expected {} events over {} aggregates)",
                            side, r.int64(0, 0), r.int64(0, 1), r.int64(0, 2), r.int64(0, 3), count, aggregates));
    }

    [[nodiscard]] const std::vector<std::uint8_t>& alternatives() const noexcept { return alternatives_; }

private:
    pg_appends_options o_;
    std::vector<std::uint8_t> alternatives_;
    mem_store::batch records_;
};

/// The server's version, durability settings and whether its data directory is on tmpfs.
std::vector<extra> describe_server(const std::string& url, std::string& line) {
    const pq_conn db(url, pq_messages::server_default);
    const pq_result r = db.query(
        "SELECT version(), current_setting('fsync'), current_setting('synchronous_commit'), "
        "current_setting('full_page_writes'), current_setting('shared_buffers'), current_setting('data_directory')");
    const std::string directory(r.text(0, 5));
    std::string medium = "unknown (the data directory is not readable here)";
    struct statfs fs {};
    if (::statfs(directory.c_str(), &fs) == 0)
        medium = static_cast<unsigned long>(fs.f_type) == 0x01021994UL ? "tmpfs (memory)" : "disk (not tmpfs)";
    const std::string settings = fmt::format("fsync={}, synchronous_commit={}, full_page_writes={}, shared_buffers={}",
                                             r.text(0, 1), r.text(0, 2), r.text(0, 3), r.text(0, 4));
    line = fmt::format("{}; data directory {} on {}", settings, directory, medium);
    return {{"appends_postgres_server", std::string(r.text(0, 0))},
            {"appends_postgres_settings", settings},
            {"appends_postgres_data_directory", directory},
            {"appends_postgres_data_medium", medium}};
}

std::string wall_line(const samples& x, std::size_t events) {
    return fmt::format("{} {:.2f} s ({}/s; min {:.2f}, max {:.2f} s)", x.name, x.median(),
                       si(events_per_second(x.median(), events)), x.min(), x.max());
}
std::vector<extra> wall_extras(const samples& x, std::size_t events) {
    return {{x.name + "_wall_s", x.median()},
            {x.name + "_wall_min_s", x.min()},
            {x.name + "_wall_max_s", x.max()},
            {x.name + "_events_per_s", events_per_second(x.median(), events)},
            {x.name + "_client_cpu_s", x.cpu_median()}};
}

}  // namespace

void bench_appends_postgres(const mem_store& history, const history_stats& stats, const pg_appends_options& o,
                            std::vector<comparison>& out, std::vector<extra>& data) {
    if (o.url.empty()) {
        fmt::print(
            "9c-9f. PostgreSQL appends: no server (PROJECTIONIST_BENCH_PG_APPEND_URL or "
            "PROJECTIONIST_BENCH_PG_URL; run.sh starts one), not measured\n");
        data.push_back({"appends_postgres", std::string("not measured: no server")});
        return;
    }
    pg_appends bench(history, o);
    std::string server;
    for (extra& x : describe_server(o.url, server)) data.push_back(std::move(x));
    const std::string stem = fmt::format("bench_appends_{}", ::getpid());
    const std::vector<std::string> schemas{stem + "_raw", stem + "_store", stem + "_live_log", stem + "_live_model"};
    struct cleanup {
        const pg_appends* bench;
        const std::vector<std::string>* schemas;
        ~cleanup() {
            for (const std::string& s : *schemas) try {
                    bench->drop(s);
                } catch (...) {
                }
        }
    } drop_at_end{&bench, &schemas};
    const std::string& raw_schema = schemas[0];
    const std::string& store_schema = schemas[1];
    fmt::print("9c-9f. PostgreSQL appends: {}\n", server);
    std::fflush(stdout);

    const auto part = [&](char which) { return o.parts.find(which) != std::string::npos; };
    // ---- 9c ----
    if (part('c')) {
        const std::size_t n = std::min(o.concurrent_events, bench.records().size());
        const auto parts = bench.split(n, o.writers);
        std::vector<std::unique_ptr<log_store> > stores;
        std::vector<std::unique_ptr<pq_conn> > conns;
        fmt::print(
            "  9c. {} concurrent writers, one event per transaction: {} events ({} per writer), {} warm-up + {} "
            "repetitions per side\n",
            o.writers, n, n / o.writers, o.measure.warmup, o.measure.repetitions);
        std::fflush(stdout);
        const std::vector<side> sides{
            {"raw_libpq",
             [&] {
                 conns.clear();
                 bench.fresh(raw_schema);
                 for (std::size_t t = 0; t < o.writers; ++t) {
                     conns.push_back(std::make_unique<pq_conn>(o.url, pq_messages::server_default));
                     bench.prepare_raw(*conns.back(), raw_schema);
                 }
             },
             [&] {
                 bench.raw_concurrent(parts, conns);
                 bench.check(raw_schema, n, "9c raw_libpq");
             }},
            {"store_append",
             [&] {
                 stores.clear();
                 bench.fresh(store_schema);
                 for (std::size_t t = 0; t < o.writers; ++t) stores.push_back(bench.open(store_schema));
             },
             [&] {
                 bench.store_concurrent(parts, stores);
                 bench.check(store_schema, n, "9c store_append");
             }},
        };
        const std::vector<samples> s = measure_interleaved(sides, o.measure);
        stores.clear();
        conns.clear();
        print_samples("9c. concurrent single appends (wall)", s, n);
        comparison c;
        c.name = fmt::format("9c. PostgreSQL: {} writers' appends / raw libpq (events/s)", o.writers);
        c.ratio = s[0].median() / s[1].median();
        c.target = ">= 0.8";
        c.met = c.ratio >= 0.8;
        c.summary = fmt::format("{}; {}", wall_line(s[1], n), wall_line(s[0], n));
        c.extras = wall_extras(s[1], n);
        for (extra& x : wall_extras(s[0], n)) c.extras.push_back(std::move(x));
        c.extras.push_back({"writers", static_cast<double>(o.writers)});
        c.extras.push_back({"events", static_cast<double>(n)});
        c.extras.push_back({"server", server});
        out.push_back(std::move(c));
    }

    // ---- 9d (9f reads the log its store side wrote) ----
    const std::size_t batch_n =
        o.batch_events == 0 ? bench.records().size() : std::min(o.batch_events, bench.records().size());
    if (part('d') || part('f')) {
        std::unique_ptr<log_store> store;
        std::unique_ptr<pq_conn> conn;
        fmt::print("  9d. one batch of {} events over {} aggregates, {} warm-up + {} repetitions per side\n", batch_n,
                   stats.aggregates, o.measure.warmup, o.measure.repetitions);
        std::fflush(stdout);
        const std::vector<side> sides{
            {"raw_copy",
             [&] {
                 conn.reset();
                 bench.fresh(raw_schema);
                 conn = std::make_unique<pq_conn>(o.url, pq_messages::server_default);
             },
             [&] {
                 bench.raw_copy(*conn, raw_schema, batch_n);
                 bench.check(raw_schema, batch_n, "9d raw_copy");
             }},
            {"store_batch",
             [&] {
                 store.reset();
                 bench.fresh(store_schema);
                 store = bench.open(store_schema);
             },
             [&] {
                 bench.store_batch(*store, batch_n);
                 bench.check(store_schema, batch_n, "9d store_batch");
             }},
        };
        measure_options m = o.measure;
        if (!part('d')) m = {0, 1};  // only the log for 9f
        const std::vector<samples> s = measure_interleaved(part('d') ? sides : std::vector<side>{sides[1]}, m);
        if (part('d')) {
            print_samples("9d. batch append (wall)", s, batch_n);
            comparison c;
            c.name = "9d. PostgreSQL: batch append / raw binary COPY (events/s)";
            c.ratio = s[0].median() / s[1].median();
            c.target = ">= 0.8";
            c.met = c.ratio >= 0.8;
            c.summary = fmt::format("{}; {}", wall_line(s[1], batch_n), wall_line(s[0], batch_n));
            c.extras = wall_extras(s[1], batch_n);
            for (extra& x : wall_extras(s[0], batch_n)) c.extras.push_back(std::move(x));
            c.extras.push_back({"events", static_cast<double>(batch_n)});
            out.push_back(std::move(c));
        }
    }

    // ---- 9f: the reader's guard, on the log the last 9d store side wrote ----
    if (part('f')) {
        std::vector<std::unique_ptr<log_store> > stores;
        std::vector<std::unique_ptr<pq_conn> > conns;
        for (std::size_t t = 0; t < o.readers; ++t) {
            stores.push_back(bench.open(store_schema));
            conns.push_back(std::make_unique<pq_conn>(o.url, pq_messages::server_default));
            const std::string s = quote(store_schema);
            conns.back()->prepare(
                "read", fmt::format("SELECT position, type_id, aggregate_number, aggregate_version, schema_version, "
                                    "recorded_at, aggregate_id, payload FROM {}.projectionist_events WHERE position > "
                                    "$1 AND position < $3 ORDER BY position LIMIT $2",
                                    s));
            // The store's own guard, called with the store's lock classes and key.
            const auto oid = static_cast<std::uint32_t>(
                conns.back()
                    ->query(fmt::format("SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = '{}'", store_schema))
                    .int64(0, 0));
            conns.back()->prepare(
                "horizon",
                fmt::format("SELECT {}.projectionist_read_horizon({}, {}, {})", s, pj::detail::pg::append_lock_class,
                            static_cast<std::int32_t>(oid), pj::detail::pg::block_lock_class(oid)));
            conns.back()->prepare("head",
                                  fmt::format("SELECT coalesce(max(position), 0) FROM {}.projectionist_events", s));
        }
        const auto max_after = static_cast<std::int64_t>(batch_n > 100 ? batch_n - 100 : 0);
        struct reader_side {
            std::string name;
            std::function<void(std::size_t, std::mt19937_64&)> one;
        };
        const std::vector<reader_side> reader_sides{
            {"raw_read",
             [&](std::size_t t, std::mt19937_64& rng) {
                 const std::string after = std::to_string(static_cast<std::int64_t>(rng() % (max_after + 1)));
                 const char* v[] = {after.c_str(), "100", "9223372036854775807"};
                 keep(conns[t]->run("read", PGRES_TUPLES_OK, 3, v, 1).rows());
             }},
            {"raw_guarded_read",
             [&](std::size_t t, std::mt19937_64& rng) {
                 const std::string after = std::to_string(static_cast<std::int64_t>(rng() % (max_after + 1)));
                 const std::string horizon(conns[t]->run("horizon", PGRES_TUPLES_OK, 0, nullptr).text(0, 0));
                 const char* v[] = {after.c_str(), "100", horizon.c_str()};
                 keep(conns[t]->run("read", PGRES_TUPLES_OK, 3, v, 1).rows());
             }},
            {"store_read",
             [&](std::size_t t, std::mt19937_64& rng) {
                 thread_local log_store::batch got;
                 stores[t]->read(rng() % static_cast<std::uint64_t>(max_after + 1), 100, got);
                 keep(got.size());
             }},
            {"raw_head",
             [&](std::size_t t, std::mt19937_64&) { keep(conns[t]->run("head", PGRES_TUPLES_OK, 0, nullptr).rows()); }},
            {"store_head", [&](std::size_t t, std::mt19937_64&) { keep(stores[t]->head()); }},
        };
        fmt::print(
            "  9f. the reader's guard: {} readers, {:.1f} s per side, 100-event reads at random positions of "
            "the {}-event log\n",
            o.readers, o.read_seconds, batch_n);
        std::vector<double> rates;
        for (const reader_side& rs : reader_sides) {
            std::atomic<std::uint64_t> total{0};
            const auto until = clock_type::now() + std::chrono::duration<double>(o.read_seconds);
            const auto started = clock_type::now();
            std::vector<std::thread> threads;
            for (std::size_t t = 0; t < o.readers; ++t)
                threads.emplace_back([&rs, &total, until, t] {
                    std::mt19937_64 rng(t + 1);
                    std::uint64_t done = 0;
                    while (clock_type::now() < until) {
                        rs.one(t, rng);
                        ++done;
                    }
                    total += done;
                });
            for (std::thread& t : threads) t.join();
            const double seconds = std::chrono::duration<double>(clock_type::now() - started).count();
            rates.push_back(static_cast<double>(total.load()) / seconds);
            fmt::print("    {:<20} {:>10.0f} calls/s\n", rs.name, rates.back());
        }
        std::fflush(stdout);
        comparison c;
        c.name = fmt::format("9f. PostgreSQL: {} readers, guarded / unguarded read (reads/s)", o.readers);
        c.ratio = rates[1] / rates[0];
        c.target = "(reported)";
        c.informational = true;
        c.summary = fmt::format(
            "raw_guarded_read {:.0f}/s; raw_read {:.0f}/s; store_read {:.0f}/s; store_head {:.0f}/s; "
            "raw_head (max) {:.0f}/s",
            rates[1], rates[0], rates[2], rates[4], rates[3]);
        for (std::size_t i = 0; i < reader_sides.size(); ++i)
            c.extras.push_back({reader_sides[i].name + "_per_s", rates[i]});
        c.extras.push_back({"readers", static_cast<double>(o.readers)});
        c.extras.push_back({"seconds_per_side", o.read_seconds});
        out.push_back(std::move(c));
    }

    // ---- 9e ----
    if (part('e')) {
        const std::string& log_schema = schemas[2];
        const std::string& model_schema = schemas[3];
        const std::size_t live_n = std::min(o.live_events, bench.records().size());
        bench.fresh(log_schema);
        std::unique_ptr<log_store> log = bench.open(log_schema);
        bench.store_batch(*log, live_n);  // the log the runner applies (untimed)
        std::unique_ptr<log_store> writer_store = bench.open(log_schema);
        std::unique_ptr<pj::postgres_storage> storage;
        std::unique_ptr<live_runner> runner;
        std::vector<double> quiet, live;
        std::uint64_t emitted = 0, applied = 0;
        std::size_t written = 0;
        const std::size_t quiet_samples = 2000;
        // One append to a new aggregate, timed, then a 1 ms pause.
        const auto one_append = [&](std::vector<double>& into) {
            const std::string id = fmt::format("w-{}", written++);
            const auto start = clock_type::now();
            writer_store->append(ticket_stream{}, id, 0, ticket_registered{id, 0, "writer"});
            into.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - start).count());
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        };
        fmt::print(
            "  9e. a writer's single appends (1 ms apart): alone ({} appends), and while a live, emitting "
            "runner applies {} events in batches of {}; {} repetitions per side\n",
            quiet_samples, live_n, o.live_batch, o.measure.repetitions);
        std::fflush(stdout);
        const std::vector<side> sides{
            {"quiet", [] {},
             [&] {
                 for (std::size_t i = 0; i < quiet_samples; ++i) one_append(quiet);
             }},
            {"live_runner",
             [&] {
                 runner.reset();
                 storage.reset();
                 bench.drop(model_schema);
                 pj::postgres_options po;
                 po.schema = model_schema;
                 storage = std::make_unique<pj::postgres_storage>(o.url, po);
                 pj::runner_options ro;
                 ro.batch_size = o.live_batch;
                 runner = std::make_unique<live_runner>(*log, *storage, ro);
                 runner->init();
                 runner->make_live();
             },
             [&] {
                 std::atomic<bool> done{false};
                 std::exception_ptr failed;
                 std::thread applying([&] {
                     try {
                         applied += runner->catch_up();
                     } catch (...) {
                         failed = std::current_exception();
                     }
                     done = true;
                 });
                 while (!done) one_append(live);
                 applying.join();
                 if (failed) std::rethrow_exception(failed);
                 emitted += runner->status().emitted;
             }},
        };
        measure_interleaved(sides, o.measure);
        runner.reset();
        storage.reset();
        if (emitted == 0) mismatch("9e. PostgreSQL live: the runner emitted nothing");
        const double quiet_p99 = percentile(quiet, 0.99), live_p99 = percentile(live, 0.99);
        const auto line = [](std::string_view name, const std::vector<double>& v) {
            return fmt::format("{}: p50 {:.0f} µs, p99 {:.0f} µs, max {:.0f} µs ({} appends)", name, percentile(v, 0.5),
                               percentile(v, 0.99), percentile(v, 1.0), v.size());
        };
        fmt::print("    {}\n    {}\n    the runner applied {} events and emitted {}\n", line("quiet", quiet),
                   line("live_runner", live), applied, emitted);
        comparison c;
        c.name = fmt::format("9e. PostgreSQL: append p99, live runner (batches of {}) / none", o.live_batch);
        c.ratio = live_p99 / quiet_p99;
        c.target = "<= 2";
        c.met = c.ratio <= 2;
        c.summary = fmt::format("{}; {}", line("live_runner", live), line("quiet", quiet));
        for (const auto& [name, v] :
             {std::pair{std::string("live_runner"), &live}, std::pair{std::string("quiet"), &quiet}}) {
            c.extras.push_back({name + "_p50_us", percentile(*v, 0.5)});
            c.extras.push_back({name + "_p99_us", percentile(*v, 0.99)});
            c.extras.push_back({name + "_max_us", percentile(*v, 1.0)});
            c.extras.push_back({name + "_appends", static_cast<double>(v->size())});
        }
        c.extras.push_back({"runner_events_applied", static_cast<double>(applied)});
        c.extras.push_back({"runner_events_emitted", static_cast<double>(emitted)});
        c.extras.push_back({"runner_batch", static_cast<double>(o.live_batch)});
        out.push_back(std::move(c));
    }
}

}  // namespace bench

#endif
