// The process of one bulk backfill, for comparisons 8c (memory budget) and 8d (scale): started
// by projectionist_bench for every repetition, so that its peak resident set size is the
// backfill's own (the runner, SQLite's or libpq's buffers, the row store), not the benchmark's,
// which holds the whole history in memory.
//
//   projectionist_bench_bulk_child sqlite <log file> <read-model file> <budget> <full|normal> [<runner>]
//   projectionist_bench_bulk_child postgres <url> <log schema> <read-model schema> <budget> [<runner>]
//
// <budget> is runner_options::bulk_memory_budget in bytes, or "unbounded". <runner> is "global"
// (the default), "per_aggregate", or "passes" (per_aggregate with bulk_passes_by_aggregate). The
// read model must not exist yet (the file, or the schema: the parent removes it first). Prints one
// line:
//
//   bulk_child events=N wall_s=S cpu_s=S server_cpu_s=S rss_start_kib=K peak_rss_kib=K
//   flushes=N rows_flushed=N passes=N
//
// cpu_s is the process's CPU time during the backfill (every thread's: a bulk backfill reads the
// log on a second thread while it applies); server_cpu_s the CPU time of the process's server
// backends during the backfill (PostgreSQL on this machine; -1 where not measurable, 0 on SQLite);
// rss_start_kib is the resident set after init(), before the backfill; peak_rss_kib is VmHWM, the
// process's peak over its whole life.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <projectionist/sqlite.hpp>

#include "bench_bulk.hpp"

#ifdef PROJECTIONIST_BENCH_POSTGRES
#include <libpq-fe.h>

#include <projectionist/postgres.hpp>
#endif

namespace {

using namespace bench;

/// A field of /proc/self/status in KiB (VmRSS, VmHWM), or -1.
long status_kib(std::string_view field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':')
            return std::stol(line.substr(field.size() + 1));
    return -1;
}

std::size_t budget_of(std::string_view text) {
    return text == "unbounded" ? pj::runner_options::unbounded
                               : static_cast<std::size_t>(std::stoull(std::string(text)));
}

struct outcome {
    std::uint64_t events = 0;
    double wall = 0;
    double cpu = 0;
    double server = 0;
    long rss_start = 0;
    std::uint64_t flushes = 0;
    std::uint64_t rows_flushed = 0;
    std::uint64_t passes = 0;
};

/// init(), then the timed backfill(); `pids` gives the server backends whose CPU time counts too.
template <class Runner, class Pids>
outcome run(Runner& runner, Pids&& pids) {
    runner.init();
    outcome o;
    o.rss_start = status_kib("VmRSS");
    const std::vector<int> backends = pids();
    const double server_start = backends.empty() ? 0 : processes_cpu_seconds(backends);
    const cpu_times cpu_start = process_cpu_times();
    const auto start = std::chrono::steady_clock::now();
    o.events = runner.backfill();
    const auto stop = std::chrono::steady_clock::now();
    const cpu_times cpu_stop = process_cpu_times();
    const double server_stop = backends.empty() ? 0 : processes_cpu_seconds(backends);
    o.wall = std::chrono::duration<double>(stop - start).count();
    o.cpu = cpu_stop.total - cpu_start.total;
    o.server = backends.empty() ? 0 : (server_start < 0 || server_stop < 0 ? -1 : server_stop - server_start);
    const pj::runner_status s = runner.status();
    o.flushes = s.bulk_flushes;
    o.rows_flushed = s.bulk_rows_flushed;
    o.passes = s.bulk_passes;
    return o;
}

/// Which runner the child backfills with (the optional last argument).
enum class runner_kind { global, per_aggregate, passes };

runner_kind kind_of(int argc, char** argv) {
    const std::string_view k = argc > 6 ? argv[6] : "global";
    if (k == "global") return runner_kind::global;
    if (k == "per_aggregate") return runner_kind::per_aggregate;
    if (k == "passes") return runner_kind::passes;
    throw std::invalid_argument(fmt::format("unknown runner '{}' (global, per_aggregate or passes)", k));
}

/// Calls `with(runner)` with a runner of `kind` over `log` and `storage`.
template <class Storage, class Log, class With>
outcome with_runner(runner_kind kind, Log& log, Storage& storage, std::size_t budget, With&& with) {
    const pj::runner_options options{.backfill = pj::backfill_mode::bulk,
                                     .bulk_memory_budget = budget,
                                     .bulk_passes_by_aggregate = kind == runner_kind::passes};
    if (kind == runner_kind::global) {
        pj::runner<bulk_tickets, Storage, pj::global> runner(log, storage, options);
        return with(runner);
    }
    pj::runner<bulk_tickets, Storage, pj::per_aggregate> runner(log, storage, options);
    return with(runner);
}

int usage() {
    std::fputs(
        "usage: projectionist_bench_bulk_child sqlite <log> <model> <budget|unbounded> <full|normal> [<runner>]\n"
        "       projectionist_bench_bulk_child postgres <url> <log schema> <model schema> <budget|unbounded> "
        "[<runner>]\n"
        "<runner>: global (the default), per_aggregate, passes\n",
        stderr);
    return 2;
}

}  // namespace

int main(int argc, char** argv) try {
    if (argc != 6 && argc != 7) return usage();
    const runner_kind kind = kind_of(argc, argv);
    const std::string_view backend = argv[1];
    outcome o;
    if (backend == "sqlite") {
        const pj::sqlite_options options{.synchronous = std::string_view(argv[5]) == "normal"
                                                            ? pj::sqlite_synchronous::normal
                                                            : pj::sqlite_synchronous::full};
        pj::sqlite_event_store log(argv[2], options);
        pj::sqlite_storage storage(argv[3], options);
        o = with_runner(kind, log, storage, budget_of(argv[4]),
                        [](auto& runner) { return run(runner, [] { return std::vector<int>{}; }); });
    } else if (backend == "postgres") {
#ifdef PROJECTIONIST_BENCH_POSTGRES
        pj::postgres_options log_options;
        log_options.schema = argv[3];
        pj::postgres_event_store log(argv[2], log_options);
        pj::postgres_options options;
        options.schema = argv[4];
        pj::postgres_storage storage(argv[2], options);
        const bool local = std::getenv("PROJECTIONIST_BENCH_CHILD_SERVER_CPU") != nullptr;
        o = with_runner(kind, log, storage, budget_of(argv[5]), [&](auto& runner) {
            return run(runner, [&] {
                return local ? std::vector<int>{log.connection().backend_pid(), PQbackendPID(runner.session().raw()),
                                                storage.connection().backend_pid()}
                             : std::vector<int>{};
            });
        });
        if (!local) o.server = -1;
#else
        std::fputs("projectionist_bench_bulk_child: built without libpq\n", stderr);
        return 2;
#endif
    } else {
        return usage();
    }
    fmt::print(
        "bulk_child events={} wall_s={:.6f} cpu_s={:.6f} server_cpu_s={:.6f} rss_start_kib={} peak_rss_kib={} "
        "flushes={} rows_flushed={} passes={}\n",
        o.events, o.wall, o.cpu, o.server, o.rss_start, status_kib("VmHWM"), o.flushes, o.rows_flushed, o.passes);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "projectionist_bench_bulk_child: %s\n", e.what());
    return 1;
}
