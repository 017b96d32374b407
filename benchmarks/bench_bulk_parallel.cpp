// Comparison 8f, SQLite: the bulk backfill of a per-aggregate projection with its apply phase on
// 2 threads (runner_options::bulk_apply_threads) against 1 thread.
//
// The history is written once into a SQLite log of this group's own; then each side backfills
// it into a new, empty read-model file per repetition (storage, runner and init() outside the
// timed part), sides interleaved:
//
//   threads_1   runner<bulk_tickets, sqlite_storage, per_aggregate>::backfill() in bulk mode,
//               bulk_apply_threads = 1 (the default)
//   threads_2   the same with bulk_apply_threads = 2: each read's events applied on 2 threads,
//               read and flush on the runner's thread
//
// The comparison is about parallelism, so its ratio is of wall time (1 thread / 2 threads);
// the process's CPU time (every thread's) is printed beside it, with the machine's load.
// memory_storage has no bulk mode (its tables are an in-memory row store already), so there is
// no memory side.

#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/mp11/algorithm.hpp>

#include <projectionist/sqlite.hpp>

#include "bench_bulk.hpp"
#include "bench_bulk_parallel.hpp"

namespace bench {
namespace {

namespace fs = std::filesystem;
using mem_store = pj::memory_event_store;
using log_store = pj::sqlite_event_store;

double process_cpu_now() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double load_now() {
    std::ifstream in("/proc/loadavg");
    double one = 0;
    in >> one;
    return one;
}

/// Copies the history into a SQLite log: the aggregates first (numbered in order of first
/// appearance, as append would), then every event through append with its expected version,
/// 50,000 per transaction.
void write_log(const mem_store& history, const std::string& path, const pj::sqlite_options& options) {
    log_store log(path, options);
    const std::vector<std::uint8_t> alternatives = alternatives_of(history);
    mem_store::batch batch;
    {
        pj::detail::sqlite::connection& db = log.connection();
        db.exec("BEGIN IMMEDIATE");
        pj::detail::sqlite::statement add(
            db, "INSERT INTO projectionist_aggregates(number, stream, aggregate_id, version) VALUES (?, ?, ?, 0)");
        history.read(0, history.head(), batch);
        for (const mem_store::record* rec : batch) {
            if (rec->aggregate_version() != 1) continue;
            add.bind(1, static_cast<std::int64_t>(rec->aggregate_number()));
            add.bind(2, rec->stream());
            add.bind(3, rec->aggregate_id());
            add.run();
        }
        db.exec("COMMIT");
    }
    for (std::uint64_t after = 0;;) {
        history.read(after, 50'000, batch);
        if (batch.empty()) break;
        log.connection().exec("BEGIN IMMEDIATE");
        for (const mem_store::record* rec : batch) {
            pj::append_result r;
            boost::mp11::mp_with_index<event_type_count>(alternatives.at(rec->type_id()), [&](auto I) {
                using E = boost::mp11::mp_at_c<ticket_events, decltype(I)::value>;
                r = log.append(ticket_stream{}, rec->aggregate_id(), pj::expected_version(rec->aggregate_version() - 1),
                               mem_store::event_of<E>(*rec));
            });
            if (r.last_position != rec->position() || r.version != rec->aggregate_version())
                mismatch("8f. copying the history into the SQLite log");
        }
        log.connection().exec("COMMIT");
        after += batch.size();
    }
}

/// One side: a per-aggregate runner in bulk mode with `threads` apply threads, over a new
/// read-model file per repetition.
class side_runner {
public:
    using runner_type = pj::runner<bulk_tickets, pj::sqlite_storage, pj::per_aggregate>;

    side_runner(log_store& log, std::string path, pj::sqlite_options options, std::size_t threads,
                std::size_t read_size)
        : log_(&log), path_(std::move(path)), options_(options), threads_(threads), read_size_(read_size) {}

    void prepare() {
        runner_.reset();
        storage_.reset();
        for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
            std::error_code ec;
            fs::remove(path_ + suffix, ec);
        }
        storage_ = std::make_unique<pj::sqlite_storage>(path_, options_);
        runner_ = std::make_unique<runner_type>(
            *log_, *storage_,
            pj::runner_options{
                .backfill = pj::backfill_mode::bulk, .bulk_read_size = read_size_, .bulk_apply_threads = threads_});
        runner_->init();
    }
    std::uint64_t run() { return runner_->backfill(); }
    [[nodiscard]] const pj::runner_status status() const { return runner_->status(); }

    [[nodiscard]] std::uint64_t digest() {
        bulk_row_map rows;
        auto table = storage_->find_table<bulk_tickets::table>(bulk_model_table);
        if (!table) mismatch("8f. the read model's table is missing");
        table->for_each([&](const ticket_row& r) { rows.emplace(r.ticket_id, r); });
        return rows_digest(rows);
    }

private:
    log_store* log_;
    std::string path_;
    pj::sqlite_options options_;
    std::size_t threads_;
    std::size_t read_size_;
    std::unique_ptr<pj::sqlite_storage> storage_;
    std::unique_ptr<runner_type> runner_;
};

struct timings {
    std::vector<double> wall;
    std::vector<double> cpu;  ///< the process's CPU time: every thread's
};

}  // namespace

void bench_bulk_parallel(const mem_store& history, const history_stats& stats, const bulk_parallel_options& o,
                         std::vector<comparison>& out, std::vector<extra>& data) {
    const std::size_t n = stats.events;
    const fs::path dir = fs::path(o.directory) / fmt::format("projectionist-bench-bulk-parallel-{}", ::getpid());
    fs::remove_all(dir);
    fs::create_directories(dir);
    struct remove_at_exit {
        fs::path dir;
        ~remove_at_exit() {
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    } cleanup{dir};
    const pj::sqlite_options options{.synchronous = o.synchronous_full ? pj::sqlite_synchronous::full
                                                                       : pj::sqlite_synchronous::normal};
    const auto path = [&](std::string_view name) { return (dir / fmt::format("{}.db", name)).string(); };

    fmt::print("  8f. bulk apply threads: writing the history into {} ...\n", path("log"));
    std::fflush(stdout);
    write_log(history, path("log"), options);
    log_store log(path("log"), options);
    if (log.head() != n) mismatch("8f. the log's head");
    const std::uint64_t expected = rows_digest(rows_at(history));

    std::vector<side_runner> sides;
    sides.emplace_back(log, path("threads_1"), options, 1, o.read_size);
    sides.emplace_back(log, path("threads_2"), options, 2, o.read_size);
    std::vector<timings> t(sides.size());
    const double load_start = load_now();
    for (unsigned r = 0; r < o.repetitions; ++r)
        for (std::size_t i = 0; i < sides.size(); ++i) {
            side_runner& s = sides[i];
            s.prepare();
            const double cpu_start = process_cpu_now();
            const auto start = std::chrono::steady_clock::now();
            const std::uint64_t events = s.run();
            const auto stop = std::chrono::steady_clock::now();
            const double cpu_stop = process_cpu_now();
            if (events != n) mismatch(fmt::format("8f. threads_{} applied {} events, not {}", i + 1, events, n));
            if (!s.status().note.empty()) mismatch(fmt::format("8f. threads_{}: {}", i + 1, s.status().note));
            if (s.digest() != expected) mismatch(fmt::format("8f. threads_{}: the read model differs", i + 1));
            t[i].wall.push_back(std::chrono::duration<double>(stop - start).count());
            t[i].cpu.push_back(cpu_stop - cpu_start);
        }
    const double load_end = load_now();

    const double wall_1 = median_of(t[0].wall), wall_2 = median_of(t[1].wall);
    const double cpu_1 = median_of(t[0].cpu), cpu_2 = median_of(t[1].cpu);
    comparison c;
    c.name = "8f. bulk backfill, per aggregate, SQLite: 1 apply thread / 2 (wall)";
    c.ratio = wall_1 / wall_2;
    c.target = "> 1 (the speed-up of the apply phase's second thread)";
    c.met = c.ratio > 1;
    c.summary = fmt::format(
        "wall {:.0f} / {:.0f} ms ({} / {} events/s), process CPU {:.0f} / {:.0f} ms ({} / {} events/s), load "
        "{:.2f}-{:.2f}, reads of {}",
        wall_1 * 1e3, wall_2 * 1e3, si(events_per_second(wall_1, n)), si(events_per_second(wall_2, n)), cpu_1 * 1e3,
        cpu_2 * 1e3, si(events_per_second(cpu_1, n)), si(events_per_second(cpu_2, n)), load_start, load_end,
        o.read_size);
    for (std::size_t i = 0; i < sides.size(); ++i) {
        const std::string name = fmt::format("threads_{}", i + 1);
        c.extras.push_back({name + "_wall_median_ms", median_of(t[i].wall) * 1e3});
        c.extras.push_back({name + "_process_cpu_median_ms", median_of(t[i].cpu) * 1e3});
        c.extras.push_back({name + "_events_per_s_wall", events_per_second(median_of(t[i].wall), n)});
        c.extras.push_back({name + "_events_per_s_cpu", events_per_second(median_of(t[i].cpu), n)});
        c.extras.push_back({name + "_runs", static_cast<double>(t[i].wall.size())});
    }
    c.extras.push_back({"cpu_ratio_1_over_2", cpu_1 / cpu_2});
    c.extras.push_back({"bulk_read_size", static_cast<double>(o.read_size)});
    c.extras.push_back({"load_average_1min_start", load_start});
    c.extras.push_back({"load_average_1min_end", load_end});
    fmt::print("  {}: {:.3f} (CPU {:.3f}); {}\n", c.name, c.ratio, cpu_1 / cpu_2, c.summary);
    for (std::size_t i = 0; i < sides.size(); ++i)
        for (std::size_t r = 0; r < t[i].wall.size(); ++r)
            fmt::print("      threads_{} #{} wall {:.0f} ms, process CPU {:.0f} ms\n", i + 1, r, t[i].wall[r] * 1e3,
                       t[i].cpu[r] * 1e3);
    std::fflush(stdout);
    data.push_back({"bulk_parallel_events", static_cast<double>(n)});
    out.push_back(std::move(c));
}

}  // namespace bench
