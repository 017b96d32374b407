// Comparison 9a/9b, appends on SQLite: the history's events, in log order, appended into a new
// SQLite log (one per side and repetition, created by sqlite_event_store before the timing):
//
//   append     sqlite_event_store: transaction(), then one append() per event, commit()
//   batch      sqlite_event_store: append(batch) of `chunk` events (one part per event), inside
//              one transaction()
//   batch_committing   the same, each batch its own transaction
//   raw_loop_chunked   raw_loop committing every `chunk` events
//   raw_loop   the raw sqlite3 API in one transaction: per event, binary_codec::encode, the
//              INSERT of the event row, the UPDATE of its aggregate's version (and, at an
//              aggregate's first event, the INSERT of its aggregate row); the type ids and
//              aggregate numbers are known in memory
//
// 9a = append events/s ÷ raw_loop events/s (target ≥ 0.5); 9b = batch ÷ raw_loop (target ≥ 0.8);
// 9b' = batch_committing ÷ raw_loop_chunked (the same transactions on both sides; ≥ 0.8 too).
// Rates and ratios are of the sides' CPU time (wall time is reported too).
// After every run the log is checked: the head, the aggregates' count and their versions' sum.

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <boost/mp11/algorithm.hpp>

#include <projectionist/sqlite.hpp>

#include "bench_appends.hpp"
#include "raw_sqlite.hpp"

namespace bench {
namespace {

namespace fs = std::filesystem;
using mem_store = pj::memory_event_store;

/// Gives a raw connection the page cache the store gives its appending connection.
void same_cache(const raw_db& db, const pj::sqlite_options& o) {
    const std::size_t kib = std::max(o.cache_size_kib, o.append_cache_size_kib);
    if (kib != 0) db.exec(fmt::format("PRAGMA cache_size=-{}", kib));
}

class appends_bench {
public:
    appends_bench(const mem_store& history, const appends_options& o, fs::path dir)
        : o_(o), dir_(std::move(dir)), alternatives_(alternatives_of(history)) {
        history.read(0, history.head(), records_);
        options_.synchronous = o.synchronous_full ? pj::sqlite_synchronous::full : pj::sqlite_synchronous::normal;
    }

    /// A new, empty log at `path`, its schema created by the store.
    void fresh(const std::string& path) {
        remove_database(path);
        pj::sqlite_event_store created(path, options_);
    }

    void append_each(const std::string& path) {
        pj::sqlite_event_store store(path, options_);
        auto tx = store.transaction();
        for (const mem_store::record* rec : records_)
            with_event(alternatives_, *rec, [&](const auto& e) {
                store.append(ticket_stream{}, rec->aggregate_id(), rec->aggregate_version() - 1, e);
            });
        tx.commit();
    }

    /// Batch appends of `chunk` events: inside one transaction(), as the raw loop writes, or
    /// (`commit_each`) each batch its own transaction.
    void append_batches(const std::string& path, bool commit_each) {
        pj::sqlite_event_store store(path, options_);
        std::optional<pj::sqlite_event_store::writer::transaction> tx;
        if (!commit_each) tx.emplace(store.transaction());
        auto batch = store.new_batch();
        batch.reserve(o_.chunk, o_.chunk);
        for (const mem_store::record* rec : records_) {
            with_event(alternatives_, *rec, [&](const auto& e) {
                batch.add(ticket_stream{}, rec->aggregate_id(), rec->aggregate_version() - 1, e);
            });
            if (batch.size() == o_.chunk) store.append(batch);
        }
        if (!batch.empty()) store.append(batch);
        if (tx) tx->commit();
    }

    /// The same rows through the raw sqlite3 API, with what the loop knows in memory: one
    /// transaction, or (`chunk` > 0) one per `chunk` events, as the batch side commits.
    void raw_loop(const std::string& path, std::size_t chunk) {
        std::vector<std::int64_t> type_ids(alternatives_.size(), 0);
        {
            // The types the store would intern, in the ids it would give them (first appearance).
            raw_db db(path);
            raw_stmt add(db, "INSERT INTO projectionist_event_types(stream, name) VALUES (?, ?)");
            for (const mem_store::record* rec : records_) {
                std::int64_t& id = type_ids[rec->type_id()];
                if (id != 0) continue;
                bind_text(add, 1, rec->stream());
                bind_text(add, 2, rec->type_name());
                add.done();
                id = sqlite3_last_insert_rowid(db.db);
            }
        }
        raw_db db(path);
        db.configure(o_.synchronous_full);
        same_cache(db, options_);
        raw_stmt add_aggregate(db,
                               "INSERT INTO projectionist_aggregates(number, stream, aggregate_id, version) VALUES "
                               "(?, ?, ?, 0)");
        raw_stmt insert(db,
                        "INSERT INTO projectionist_events(stream, aggregate_id, aggregate_number, aggregate_version, "
                        "type_id, schema_version, payload, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
        raw_stmt bump(db, "UPDATE projectionist_aggregates SET version = ? WHERE number = ?");
        std::string payload;
        db.exec("BEGIN IMMEDIATE");
        std::size_t in_transaction = 0;
        for (const mem_store::record* rec : records_) {
            if (chunk != 0 && in_transaction++ == chunk) {
                db.exec("COMMIT");
                db.exec("BEGIN IMMEDIATE");
                in_transaction = 1;
            }
            const auto number = static_cast<sqlite3_int64>(rec->aggregate_number());
            const auto version = static_cast<sqlite3_int64>(rec->aggregate_version());
            if (version == 1) {
                sqlite3_bind_int64(add_aggregate, 1, number);
                bind_text(add_aggregate, 2, rec->stream());
                bind_text(add_aggregate, 3, rec->aggregate_id());
                add_aggregate.done();
            }
            payload.clear();
            with_event(alternatives_, *rec, [&](const auto& e) { pj::binary_codec::encode(e, payload); });
            const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
            bind_text(insert, 1, rec->stream());
            bind_text(insert, 2, rec->aggregate_id());
            sqlite3_bind_int64(insert, 3, number);
            sqlite3_bind_int64(insert, 4, version);
            sqlite3_bind_int64(insert, 5, type_ids[rec->type_id()]);
            sqlite3_bind_int64(insert, 6, 1);
            sqlite3_bind_blob(insert, 7, payload.data(), static_cast<int>(payload.size()), SQLITE_STATIC);
            sqlite3_bind_int64(insert, 8, now);
            insert.done();
            sqlite3_bind_int64(bump, 1, version);
            sqlite3_bind_int64(bump, 2, number);
            bump.done();
        }
        db.exec("COMMIT");
    }

    /// The log at `path` holds the history: its head, aggregates and versions.
    void check(const std::string& path, const history_stats& stats, std::string_view side) const {
        raw_db db(path);
        const auto n = static_cast<std::int64_t>(records_.size());
        if (query_int(db, "SELECT max(position) FROM projectionist_events") != n ||
            query_int(db, "SELECT count(*) FROM projectionist_events") != n ||
            query_int(db, "SELECT count(*) FROM projectionist_aggregates") !=
                static_cast<std::int64_t>(stats.aggregates) ||
            query_int(db, "SELECT sum(version) FROM projectionist_aggregates") != n)
            mismatch(fmt::format("9. SQLite appends: the log written by {}", side));
    }

    [[nodiscard]] std::size_t events() const noexcept { return records_.size(); }

private:
    appends_options o_;
    fs::path dir_;
    std::vector<std::uint8_t> alternatives_;
    mem_store::batch records_;
    pj::sqlite_options options_;
};

/// 9g: a log that grows to `events` events over events/10 aggregates, each aggregate's events
/// spread through the log (aggregate picked at random), written by batch appends of `chunk`
/// events, each its own transaction. The thread's CPU and wall time are taken at every million.
struct growth_run {
    std::vector<double> cpu;   ///< per million events (the last part may be shorter)
    std::vector<double> wall;  ///< the same in wall time
    std::vector<double> miss;  ///< page cache misses per event, per million (sqlite3_db_status)
};

class growth_bench {
public:
    growth_bench(std::size_t events, std::size_t chunk, bool synchronous_full)
        : events_(events), chunk_(chunk), ids_(std::max<std::size_t>(events / 10, 1)) {
        for (std::size_t a = 0; a < ids_.size(); ++a) ids_[a] = fmt::format("ticket-{:08}", a);
        options_.synchronous = synchronous_full ? pj::sqlite_synchronous::full : pj::sqlite_synchronous::normal;
    }

    /// Through sqlite_event_store's batch append, with its default options.
    growth_run library(const std::string& path) {
        remove_database(path);
        pj::sqlite_event_store store(path, options_);
        auto batch = store.new_batch();
        batch.reserve(chunk_, chunk_);
        return drive(store.connection().get(), [&](std::size_t a, std::uint32_t version, bool last) {
            batch.add(ticket_stream{}, ids_[a], version, ticket_tagged{ids_[a], static_cast<std::uint32_t>(a), "tag"});
            if (batch.size() == chunk_ || last) store.append(batch);
        });
    }

    /// The same rows through the raw sqlite3 API (the schema created by the store), committing
    /// every `chunk` events, with the page cache the store's appending connection has.
    growth_run raw(const std::string& path) {
        remove_database(path);
        { pj::sqlite_event_store created(path, options_); }
        raw_db db(path);
        db.configure(options_.synchronous == pj::sqlite_synchronous::full);
        same_cache(db, options_);
        const std::string stream(ticket_stream::name);
        std::int64_t type_id = 0;
        {
            raw_stmt add(db, "INSERT INTO projectionist_event_types(stream, name) VALUES (?, ?)");
            bind_text(add, 1, stream);
            bind_text(add, 2, ticket_tagged::event_name);
            add.done();
            type_id = sqlite3_last_insert_rowid(db.db);
        }
        raw_stmt add_aggregate(db,
                               "INSERT INTO projectionist_aggregates(number, stream, aggregate_id, version) VALUES "
                               "(?, ?, ?, 0)");
        raw_stmt insert(db,
                        "INSERT INTO projectionist_events(stream, aggregate_id, aggregate_number, aggregate_version, "
                        "type_id, schema_version, payload, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
        raw_stmt bump(db, "UPDATE projectionist_aggregates SET version = ? WHERE number = ?");
        std::string payload;
        std::size_t in_transaction = 0;
        db.exec("BEGIN IMMEDIATE");
        growth_run r = drive(db.db, [&](std::size_t a, std::uint32_t version, bool last) {
            const auto number = static_cast<sqlite3_int64>(a);
            if (version == 0) {
                sqlite3_bind_int64(add_aggregate, 1, number);
                bind_text(add_aggregate, 2, stream);
                bind_text(add_aggregate, 3, ids_[a]);
                add_aggregate.done();
            }
            payload.clear();
            pj::binary_codec::encode(ticket_tagged{ids_[a], static_cast<std::uint32_t>(a), "tag"}, payload);
            const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
            bind_text(insert, 1, stream);
            bind_text(insert, 2, ids_[a]);
            sqlite3_bind_int64(insert, 3, number);
            sqlite3_bind_int64(insert, 4, version + 1);
            sqlite3_bind_int64(insert, 5, type_id);
            sqlite3_bind_int64(insert, 6, 1);
            sqlite3_bind_blob(insert, 7, payload.data(), static_cast<int>(payload.size()), SQLITE_STATIC);
            sqlite3_bind_int64(insert, 8, now);
            insert.done();
            sqlite3_bind_int64(bump, 1, version + 1);
            sqlite3_bind_int64(bump, 2, number);
            bump.done();
            if (++in_transaction == chunk_ || last) {
                db.exec("COMMIT");
                if (!last) db.exec("BEGIN IMMEDIATE");
                in_transaction = 0;
            }
        });
        return r;
    }

    /// The log at `path` holds every event, each aggregate's versions counted.
    void check(const std::string& path, std::string_view side) const {
        raw_db db(path);
        const auto n = static_cast<std::int64_t>(events_);
        if (query_int(db, "SELECT count(*) FROM projectionist_events") != n ||
            query_int(db, "SELECT sum(version) FROM projectionist_aggregates") != n)
            mismatch(fmt::format("9g. SQLite appends as the log grows: the log written by {}", side));
    }

    [[nodiscard]] std::size_t aggregates() const noexcept { return ids_.size(); }

private:
    /// Calls `add(aggregate, its version before the event, last)` for every event, in the same
    /// order on every side, and times every million.
    template <class Add>
    growth_run drive(sqlite3* db, Add&& add) const {
        std::vector<std::uint32_t> versions(ids_.size(), 0);
        std::mt19937_64 rng(20240601);
        growth_run r;
        const auto mark = [&r, db](cpu_times& cpu, std::chrono::steady_clock::time_point& wall, std::size_t n) {
            const cpu_times c = thread_cpu_seconds();
            const auto w = std::chrono::steady_clock::now();
            int misses = 0;
            int high = 0;
            sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_MISS, &misses, &high, 1);
            r.cpu.push_back(c.total - cpu.total);
            r.wall.push_back(std::chrono::duration<double>(w - wall).count());
            r.miss.push_back(static_cast<double>(misses) / static_cast<double>(n));
            cpu = c;
            wall = w;
        };
        int ignored = 0;
        int high = 0;
        sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_MISS, &ignored, &high, 1);
        cpu_times cpu = thread_cpu_seconds();
        auto wall = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < events_; ++i) {
            const std::size_t a = static_cast<std::size_t>(rng() % ids_.size());
            add(a, versions[a]++, i + 1 == events_);
            if ((i + 1) % million == 0 || i + 1 == events_) mark(cpu, wall, (i % million) + 1);
        }
        return r;
    }

    static constexpr std::size_t million = 1000000;
    std::size_t events_;
    std::size_t chunk_;
    std::vector<std::string> ids_;
    pj::sqlite_options options_;
};

}  // namespace

void bench_appends_sqlite_growth(const appends_options& o, std::vector<comparison>& out) {
    if (o.growth_events < 2000000) {
        fmt::print("9g. SQLite appends as the log grows: skipped (PROJECTIONIST_BENCH_APPEND_GROWTH_EVENTS={} < 2M)\n",
                   o.growth_events);
        return;
    }
    const fs::path dir = fs::path(o.directory) / fmt::format("projectionist-bench-growth-{}", ::getpid());
    fs::create_directories(dir);
    struct cleanup {
        fs::path dir;
        ~cleanup() {
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    } remove_at_end{dir};
    growth_bench bench(o.growth_events, o.growth_chunk, o.synchronous_full);
    fmt::print(
        "9g. SQLite appends as the log grows: {} events over {} aggregates, batches of {} each committed, in {}\n",
        o.growth_events, bench.aggregates(), o.growth_chunk, dir.string());
    std::fflush(stdout);
    const std::string lib_path = (dir / "library.db").string();
    const std::string raw_path = (dir / "raw.db").string();
    const growth_run lib = bench.library(lib_path);
    bench.check(lib_path, "the batch append");
    remove_database(lib_path);
    const growth_run raw = bench.raw(raw_path);
    bench.check(raw_path, "the raw loop");
    remove_database(raw_path);

    const std::size_t last = o.growth_events / 1000000 - 1;  // the last whole million
    for (std::size_t m = 0; m <= last; ++m)
        fmt::print(
            "   million {:>3}: batch {}/s CPU ({}/s wall, {:.2f} misses/event); raw {}/s CPU ({}/s wall, {:.2f} "
            "misses/event)\n",
            m + 1, si(events_per_second(lib.cpu[m], 1000000)), si(events_per_second(lib.wall[m], 1000000)), lib.miss[m],
            si(events_per_second(raw.cpu[m], 1000000)), si(events_per_second(raw.wall[m], 1000000)), raw.miss[m]);
    const auto add = [&](std::string name, double ratio, double target, std::string summary) {
        comparison c;
        c.name = std::move(name);
        c.ratio = ratio;
        c.target = fmt::format(">= {}", target);
        c.met = ratio >= target;
        c.summary = std::move(summary);
        c.extras = {{"events", static_cast<double>(o.growth_events)},
                    {"chunk", static_cast<double>(o.growth_chunk)},
                    {"batch_first_events_per_cpu_s", events_per_second(lib.cpu[0], 1000000)},
                    {"batch_last_events_per_cpu_s", events_per_second(lib.cpu[last], 1000000)},
                    {"raw_first_events_per_cpu_s", events_per_second(raw.cpu[0], 1000000)},
                    {"raw_last_events_per_cpu_s", events_per_second(raw.cpu[last], 1000000)},
                    {"batch_last_misses_per_event", lib.miss[last]},
                    {"raw_last_misses_per_event", raw.miss[last]}};
        out.push_back(std::move(c));
    };
    const std::size_t m = last + 1;
    const std::string nth = fmt::format("{}{}", m,
                                        m % 10 == 2 && m % 100 != 12   ? "nd"
                                        : m % 10 == 3 && m % 100 != 13 ? "rd"
                                                                       : "th");
    add(fmt::format("9g. SQLite batch append, the {} million of a {}M log / the 1st million (CPU time)", nth,
                    o.growth_events / 1000000),
        lib.cpu[0] / lib.cpu[last], 0.5,
        fmt::format("batch {}/s then {}/s CPU; raw loop {}/s then {}/s CPU ({:.2f})",
                    si(events_per_second(lib.cpu[0], 1000000)), si(events_per_second(lib.cpu[last], 1000000)),
                    si(events_per_second(raw.cpu[0], 1000000)), si(events_per_second(raw.cpu[last], 1000000)),
                    raw.cpu[0] / raw.cpu[last]));
    add(fmt::format("9g'. SQLite batch append / raw loop, the {} million of a {}M log (CPU time)", nth,
                    o.growth_events / 1000000),
        raw.cpu[last] / lib.cpu[last], 0.8,
        fmt::format("batch {:.1f} s, raw loop {:.1f} s CPU for that million", lib.cpu[last], raw.cpu[last]));
}

void bench_appends_sqlite(const mem_store& history, const history_stats& stats, const appends_options& o,
                          std::vector<comparison>& out, std::vector<extra>& data) {
    const fs::path dir = fs::path(o.directory) / fmt::format("projectionist-bench-appends-{}", ::getpid());
    fs::create_directories(dir);
    struct cleanup {
        fs::path dir;
        ~cleanup() {
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    } remove_at_end{dir};

    appends_bench bench(history, o, dir);
    const std::size_t n = bench.events();
    fmt::print(
        "9. SQLite appends: {} events over {} aggregates into a new log per side and repetition in {}, "
        "synchronous={}, {} warm-up + {} repetitions per side\n",
        n, stats.aggregates, dir.string(), o.synchronous_full ? "full" : "normal", o.measure.warmup,
        o.measure.repetitions);
    std::fflush(stdout);

    const auto path = [&](std::string_view side) { return (dir / fmt::format("{}.db", side)).string(); };
    const auto make_side = [&](std::string name, auto run) {
        const std::string p = path(name);
        return side{name, [&bench, p] { bench.fresh(p); },
                    [&bench, &stats, p, name, run] {
                        run(p);
                        bench.check(p, stats, name);
                    }};
    };
    // The check is inside the timed run, the same for every side (a few indexed aggregates).
    const std::vector<side> sides{
        make_side("raw_loop", [&bench](const std::string& p) { bench.raw_loop(p, 0); }),
        make_side("raw_loop_chunked", [&bench, &o](const std::string& p) { bench.raw_loop(p, o.chunk); }),
        make_side("append", [&bench](const std::string& p) { bench.append_each(p); }),
        make_side("batch", [&bench](const std::string& p) { bench.append_batches(p, false); }),
        make_side("batch_committing", [&bench](const std::string& p) { bench.append_batches(p, true); }),
    };
    const std::vector<samples> s = measure_interleaved(sides, o.measure);
    // Ratios of CPU time (the sides are single-threaded and SQLite runs in the process): on a
    // shared machine, wall time also counts the time the thread waited for a CPU.
    const auto rate = [&](double seconds) { return events_per_second(seconds, n); };
    const auto described = [&](const samples& x) {
        return fmt::format("{} {:.2f} s CPU ({}/s), {:.2f} s wall", x.name, x.cpu_median(), si(rate(x.cpu_median())),
                           x.median());
    };
    const auto numbers = [&](const samples& x) {
        return std::vector<extra>{{x.name + "_cpu_s", x.cpu_median()},
                                  {x.name + "_wall_s", x.median()},
                                  {x.name + "_events_per_cpu_s", rate(x.cpu_median())},
                                  {x.name + "_events_per_wall_s", rate(x.median())}};
    };
    const auto join = [](std::vector<extra> a, const std::vector<extra>& b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
    };

    // One comparison: the baseline's CPU time ÷ the side's (higher is better for the side).
    const auto compare = [&](std::string name, const samples& side, const samples& baseline, double target) {
        comparison c;
        c.name = std::move(name);
        c.ratio = baseline.cpu_median() / side.cpu_median();
        c.target = fmt::format(">= {}", target);
        c.met = c.ratio >= target;
        c.summary = fmt::format("{}; {}", described(side), described(baseline));
        c.extras = join(numbers(side), numbers(baseline));
        c.extras.push_back({"chunk", static_cast<double>(o.chunk)});
        out.push_back(std::move(c));
    };
    compare("9a. SQLite: append in one transaction / raw loop", s[2], s[0], 0.5);
    compare(fmt::format("9b. SQLite: batch append ({} per batch, one transaction) / raw loop", o.chunk), s[3], s[0],
            0.8);
    compare(fmt::format("9b'. SQLite: batch append committing each / raw loop committing every {}", o.chunk), s[4],
            s[1], 0.8);
    data.push_back({"appends_sqlite_directory", dir.string()});
    bench_appends_sqlite_growth(o, out);
}

}  // namespace bench
