#pragma once
// Comparison 8, the baselines of a bulk backfill: the runner as it backfills today against the
// best hand-written method known (read the log once, build the read model in memory, write the
// final rows in bulk: "Sequent's replay"), and against the physical limits (reading and decoding
// the log alone, writing the final rows alone). 8a/8c on SQLite (bench_bulk_sqlite.cpp), 8b/8d
// and the live catch-up 8e on PostgreSQL (bench_bulk_postgres.cpp). README.md, "8. Bulk
// backfill baselines", says what every side does.
//
// A comparison's sides are a plain vector of `bulk_side`: a new side (the library's bulk mode,
// for one) is one more element, and every number the report prints or writes is derived from
// the vector, side by side.

#include <malloc.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/mp11/algorithm.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include <projectionist/event/codec.hpp>
#include <projectionist/storage/bulk_table.hpp>

#include "bench_domain.hpp"
#include "harness.hpp"

namespace bench {

// ---- what main passes ------------------------------------------------------------------------------

struct bulk_options {
    std::string directory;               ///< where the SQLite files go (a fresh subdirectory)
    bool synchronous_full = true;        ///< PRAGMA synchronous=FULL (projectionist's default) or NORMAL, every side
    unsigned repetitions = 3;            ///< timed repetitions per side (PROJECTIONIST_BENCH_BULK_REPS)
    unsigned pg_runner_repetitions = 1;  ///< of 8b's runner_batch side (PROJECTIONIST_BENCH_BULK_PG_RUNNER_REPS)
    unsigned live_repetitions = 5;       ///< per side of 8e (PROJECTIONIST_BENCH_PG_LIVE_REPS)
    std::size_t live_events = 10'000;    ///< 8e: the new events (PROJECTIONIST_BENCH_PG_LIVE_EVENTS)
    bool sqlite = true;                  ///< 8a, 8c and 8d on SQLite
    bool postgres = true;                ///< 8b, 8c on PostgreSQL
    bool live = true;                    ///< 8e
};

/// 8c and 8d read their settings from the environment themselves (PROJECTIONIST_BENCH_BULK_*);
/// each runs without the other.
struct bulk_child_options {
    unsigned budget_repetitions = 3;        ///< per side of 8c (PROJECTIONIST_BENCH_BULK_BUDGET_REPS; 0 skips 8c)
    std::size_t budget_divisor = 4;         ///< 8c's budget: the read model's size / this (..._BUDGET_DIVISOR)
    std::size_t scale_events = 10'000'000;  ///< 8d (PROJECTIONIST_BENCH_BULK_SCALE_EVENTS; 0 skips 8d)
    std::size_t scale_aggregates = 0;       ///< 8d (..._SCALE_AGGREGATES; 0: events / 10)
    unsigned scale_repetitions = 1;         ///< 8d, per side (..._SCALE_REPS)
    static bulk_child_options from_environment() {
        bulk_child_options o;
        o.budget_repetitions =
            static_cast<unsigned>(env_number("PROJECTIONIST_BENCH_BULK_BUDGET_REPS", o.budget_repetitions));
        o.budget_divisor = std::max<std::size_t>(env_number("PROJECTIONIST_BENCH_BULK_BUDGET_DIVISOR", 4), 1);
        o.scale_events = env_number("PROJECTIONIST_BENCH_BULK_SCALE_EVENTS", o.scale_events);
        o.scale_aggregates = env_number("PROJECTIONIST_BENCH_BULK_SCALE_AGGREGATES", o.scale_events / 10);
        o.scale_repetitions =
            std::max<unsigned>(static_cast<unsigned>(env_number("PROJECTIONIST_BENCH_BULK_SCALE_REPS", 1)), 1);
        return o;
    }
};

/// 8a and 8c: writes the history into a SQLite log of its own (once), then measures.
void bench_bulk_sqlite(const pj::memory_event_store& history, const history_stats& stats, const bulk_options& options,
                       std::vector<comparison>& out, std::vector<extra>& data);

/// 8b, 8d and 8e: writes the history into a PostgreSQL log of its own (once, on the server named
/// by PROJECTIONIST_BENCH_PG_URL), then measures. Without a server, or without libpq, says so.
void bench_bulk_postgres(const pj::memory_event_store& history, const history_stats& stats, const bulk_options& options,
                         std::vector<comparison>& out, std::vector<extra>& data);

// ---- the projection every runner side runs -----------------------------------------------------------

/// The tickets read model (storage-generic): a registration inserts the row; every other event
/// changes it in place with `update` and the shared `apply`, as the hand-written loops change the
/// row in their map. (6a's handlers read the row with `find` and write it back with `upsert`: two
/// copies of the row per event, which cost a bulk backfill about 15 % of its CPU.)
struct bulk_tickets : pj::projection<"bench_tickets", 1, ticket_stream, pj::exhaustive> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;

    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert(make_row(e)); }
    void on(const ticket_assigned& e, auto& ctx) { change(e, ctx); }
    void on(const ticket_prioritized& e, auto& ctx) { change(e, ctx); }
    void on(const ticket_commented& e, auto& ctx) { change(e, ctx); }
    void on(const ticket_closed& e, auto& ctx) { change(e, ctx); }
    void on(const ticket_reopened& e, auto& ctx) { change(e, ctx); }
    void on(const ticket_escalated& e, auto& ctx) { change(e, ctx); }
    void on(const ticket_tagged& e, auto& ctx) { change(e, ctx); }

    template <class E>
    static void change(const E& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [&](ticket_row& row) { apply(e, row); });
    }
};
inline constexpr std::string_view bulk_model_table = pj::name_of<bulk_tickets>;

/// The options of every `runner_batch` side: the defaults, in batch mode (a transaction per
/// batch of 1000). Where runner_options has a `backfill` mode, it is set to `batch` explicitly:
/// its default may choose a bulk backfill on a database, and these sides measure today's path.
template <class Options = pj::runner_options>
constexpr bool backfill_mode_selectable() {
    return requires(Options & x) {
        x.backfill = decltype(x.backfill)::batch;
    };
}
template <class Options = pj::runner_options>
Options batch_runner_options() {
    Options o{};
    if constexpr (backfill_mode_selectable<Options>()) o.backfill = decltype(o.backfill)::batch;
    return o;
}
static_assert(bulk_model_table == "bench_tickets_v1");

/// What the runner_batch sides ran, for results.json.
inline std::string runner_batch_mode() {
    return backfill_mode_selectable() ? "batch (runner_options::backfill set to batch)"
                                      : "batch (this library's only mode: runner_options has no backfill mode)";
}

// ---- the in-memory read model of the hand-written sides ------------------------------------------------

/// The rows of the hand-written sides, by key: boost::unordered_flat_map, what memory_table uses.
using bulk_row_map = boost::unordered_flat_map<std::string, ticket_row>;

/// Applies one decoded event to the in-memory rows, with the shared make_row/apply.
template <class E>
inline void apply_to(bulk_row_map& rows, E&& e) {
    using T = std::remove_cvref_t<E>;
    if constexpr (std::is_same_v<T, ticket_registered>) {
        rows.try_emplace(e.ticket_id, make_row(e));
    } else {
        if (const auto it = rows.find(e.ticket_id); it != rows.end()) apply(e, it->second);
    }
}

/// Decodes a stored payload of the event whose switch label is `alt` (binary_codec, as the
/// stores store it) and calls `f(event)`.
template <class F>
inline void decode_event(std::uint8_t alt, std::string_view payload, F&& f) {
    switch (alt) {
        case alternative<ticket_registered>: f(pj::binary_codec::decode<ticket_registered>(payload)); break;
        case alternative<ticket_assigned>: f(pj::binary_codec::decode<ticket_assigned>(payload)); break;
        case alternative<ticket_prioritized>: f(pj::binary_codec::decode<ticket_prioritized>(payload)); break;
        case alternative<ticket_commented>: f(pj::binary_codec::decode<ticket_commented>(payload)); break;
        case alternative<ticket_closed>: f(pj::binary_codec::decode<ticket_closed>(payload)); break;
        case alternative<ticket_reopened>: f(pj::binary_codec::decode<ticket_reopened>(payload)); break;
        case alternative<ticket_escalated>: f(pj::binary_codec::decode<ticket_escalated>(payload)); break;
        case alternative<ticket_tagged>: f(pj::binary_codec::decode<ticket_tagged>(payload)); break;
        default: throw std::runtime_error("bulk: an event type that is not in the ticket stream");
    }
}

/// The switch label of a stored event type, by stream and name (no_alternative if not ours).
inline std::uint8_t alternative_of(std::string_view stream, std::string_view name) {
    std::uint8_t out = no_alternative;
    boost::mp11::mp_for_each<ticket_events>([&](auto e) {
        using E = decltype(e);
        if (stream == ticket_stream::name && name == pj::event_name_of<E>) out = alternative<E>;
    });
    return out;
}

/// The read model after the history's events up to `position` (all of them by default), built
/// in memory from the history itself: what every side must have written, and the rows the
/// insert-only sides write.
inline bulk_row_map rows_at(const pj::memory_event_store& history, std::uint64_t position = ~std::uint64_t{0}) {
    const std::vector<std::uint8_t> alternatives = alternatives_of(history);
    bulk_row_map rows;
    pj::memory_event_store::batch batch;
    history.read(0, std::min<std::uint64_t>(position, history.head()), batch);
    for (const pj::memory_event_store::record* rec : batch)
        boost::mp11::mp_with_index<event_type_count>(alternatives.at(rec->type_id()), [&](auto I) {
            using E = boost::mp11::mp_at_c<ticket_events, decltype(I)::value>;
            apply_to(rows, pj::memory_event_store::event_of<E>(*rec));
        });
    return rows;
}

/// The rows in key order (bytewise, which is also PostgreSQL's "C" collation and SQLite's
/// BINARY): written in this order, every insert lands at the right edge of the key's B-tree.
inline std::vector<const ticket_row*> sorted_rows(const bulk_row_map& rows) {
    std::vector<const ticket_row*> out;
    out.reserve(rows.size());
    for (const auto& [key, row] : rows) out.push_back(&row);
    std::sort(out.begin(), out.end(),
              [](const ticket_row* a, const ticket_row* b) { return a->ticket_id < b->ticket_id; });
    return out;
}

/// The order-independent digest of a set of rows (the count plus every row's digest).
inline std::uint64_t rows_digest(const bulk_row_map& rows) {
    std::uint64_t d = rows.size();
    for (const auto& [key, row] : rows) d += digest(row);
    return d;
}

// ---- measuring ----------------------------------------------------------------------------------

/// One side of a bulk comparison. `run` returns the events it processed (checked); `backends`,
/// if set, names the server processes whose CPU time is the side's too (PostgreSQL);
/// `repetitions` 0 means the group's default.
struct bulk_side {
    std::string name;
    std::function<void()> prepare;
    std::function<std::uint64_t()> run;
    std::function<std::vector<int>()> backends = {};
    unsigned repetitions = 0;
    std::string what = {};  ///< one line: what the side does (results.json)
};

struct bulk_samples {
    std::string name;
    std::string what;
    std::vector<double> wall;
    std::vector<double> cpu;     ///< the process's CPU time, every thread's (user + system)
    std::vector<double> server;  ///< the side's server processes' CPU time (PostgreSQL on this machine)
    [[nodiscard]] std::vector<double> total() const {
        std::vector<double> t = cpu;
        for (std::size_t i = 0; i < t.size() && i < server.size(); ++i) t[i] += server[i];
        return t;
    }
};

/// Interleaved rounds (A, B, C, A, B, C, ...): in round r, every side that still has
/// repetitions left runs once (prepare untimed, run timed). No warm-up run: every repetition
/// starts from a new, empty read model anyway, and the log's pages are warm from writing it.
inline std::vector<bulk_samples> measure_bulk(const std::vector<bulk_side>& sides, unsigned default_repetitions,
                                              std::uint64_t expected_events, std::string_view group) {
    using clock = std::chrono::steady_clock;
    std::vector<bulk_samples> out;
    unsigned rounds = 0;
    for (const bulk_side& s : sides) {
        out.push_back({s.name, s.what, {}, {}, {}});
        rounds = std::max(rounds, s.repetitions != 0 ? s.repetitions : default_repetitions);
    }
    const bool verbose = std::getenv("PROJECTIONIST_BENCH_BULK_VERBOSE") != nullptr;
    for (unsigned r = 0; r < rounds; ++r)
        for (std::size_t i = 0; i < sides.size(); ++i) {
            const bulk_side& s = sides[i];
            if (r >= (s.repetitions != 0 ? s.repetitions : default_repetitions)) continue;
            s.prepare();
            const std::vector<int> pids = s.backends ? s.backends() : std::vector<int>{};
            const double server_start = pids.empty() ? 0 : processes_cpu_seconds(pids);
            const cpu_times cpu_start = process_cpu_times();
            const auto start = clock::now();
            const std::uint64_t events = s.run();
            const auto stop = clock::now();
            const cpu_times cpu_stop = process_cpu_times();
            const double server_stop = pids.empty() ? 0 : processes_cpu_seconds(pids);
            if (events != expected_events)
                mismatch(fmt::format("{}: {} processed {} events, not {}", group, s.name, events, expected_events));
            out[i].wall.push_back(std::chrono::duration<double>(stop - start).count());
            out[i].cpu.push_back(cpu_stop.total - cpu_start.total);
            if (!pids.empty() && server_start >= 0 && server_stop >= 0)
                out[i].server.push_back(server_stop - server_start);
            if (verbose)
                fmt::print("      {:<16} #{} wall {:.0f} ms, CPU {:.0f} ms, server CPU {:.0f} ms\n", s.name, r,
                           out[i].wall.back() * 1e3, out[i].cpu.back() * 1e3,
                           out[i].server.empty() ? -1.0 : out[i].server.back() * 1e3);
            std::fflush(stdout);
        }
    return out;
}

/// What a comparison's rates are computed from.
enum class time_basis : std::uint8_t {
    cpu,              ///< the process's CPU time, every thread's
    cpu_plus_server,  ///< plus the side's server backends' (PostgreSQL on this machine)
    wall,             ///< the time a user waits: where a side works on several threads at once
};

inline double basis_median(const bulk_samples& s, time_basis b) {
    if (b == time_basis::wall) return median_of(s.wall);
    if (b == time_basis::cpu_plus_server && s.server.size() == s.cpu.size()) return median_of(s.total());
    return median_of(s.cpu);
}
/// The CPU basis beside a wall-time one: with the server's CPU where it was measured.
inline time_basis cpu_basis_of(const std::vector<bulk_samples>& s) {
    for (const bulk_samples& x : s)
        if (!x.server.empty()) return time_basis::cpu_plus_server;
    return time_basis::cpu;
}
inline std::string_view basis_name(time_basis b) {
    switch (b) {
        case time_basis::cpu: return "CPU";
        case time_basis::cpu_plus_server: return "CPU + server CPU";
        case time_basis::wall: return "wall";
    }
    return "?";
}

/// The sides' absolute numbers, for a comparison's extras and the printed lines: per side its
/// events/s (from the basis and from wall time), medians, minimums, maximums and repetitions,
/// and every side's rate over every other's (`a_over_b`), so that a new side is compared with
/// the others without further code.
inline std::vector<extra> bulk_side_extras(const std::vector<bulk_samples>& s, std::size_t events, time_basis b) {
    std::vector<extra> out;
    for (const bulk_samples& x : s) {
        const double t = basis_median(x, b);
        out.push_back({x.name + "_events_per_s", events_per_second(t, events)});
        out.push_back({x.name + "_events_per_s_wall", events_per_second(median_of(x.wall), events)});
        out.push_back({x.name + "_median_ms", t * 1e3});
        out.push_back({x.name + "_wall_median_ms", median_of(x.wall) * 1e3});
        out.push_back({x.name + "_wall_min_ms", *std::min_element(x.wall.begin(), x.wall.end()) * 1e3});
        out.push_back({x.name + "_wall_max_ms", *std::max_element(x.wall.begin(), x.wall.end()) * 1e3});
        out.push_back({x.name + "_cpu_median_ms", median_of(x.cpu) * 1e3});
        out.push_back({x.name + "_events_per_s_cpu", events_per_second(median_of(x.cpu), events)});
        if (!x.server.empty()) out.push_back({x.name + "_server_cpu_median_ms", median_of(x.server) * 1e3});
        out.push_back({x.name + "_runs", static_cast<double>(x.wall.size())});
        if (!x.what.empty()) out.push_back({x.name + "_does", x.what});
    }
    for (const bulk_samples& x : s)
        for (const bulk_samples& y : s)
            if (&x != &y) out.push_back({x.name + "_over_" + y.name, basis_median(y, b) / basis_median(x, b)});
    return out;
}

inline void print_bulk_samples(std::string_view group, const std::vector<bulk_samples>& s, std::size_t events,
                               time_basis b) {
    fmt::print("  {}\n", group);
    // Beside the basis: wall time, or, when the basis is wall time, CPU time.
    const time_basis beside = b == time_basis::wall ? cpu_basis_of(s) : time_basis::wall;
    for (const bulk_samples& x : s) {
        const auto named = [&](time_basis t) {
            return basis_name(t == time_basis::cpu_plus_server && x.server.empty() ? time_basis::cpu : t);
        };
        fmt::print(
            "    {:<16} {:>10}ev/s ({}; {} runs, median {:.0f} ms)  {} {:>10}ev/s (median {:.0f} ms); wall min "
            "{:.0f}, max {:.0f} ms{}\n",
            x.name, si(events_per_second(basis_median(x, b), events)), named(b), x.wall.size(),
            basis_median(x, b) * 1e3, named(beside), si(events_per_second(basis_median(x, beside), events)),
            basis_median(x, beside) * 1e3, *std::min_element(x.wall.begin(), x.wall.end()) * 1e3,
            *std::max_element(x.wall.begin(), x.wall.end()) * 1e3,
            x.server.empty()
                ? std::string()
                : fmt::format("; CPU {:.0f} + server {:.0f} ms", median_of(x.cpu) * 1e3, median_of(x.server) * 1e3));
    }
    std::fflush(stdout);
}

/// The samples of the side called `name` (which must exist).
inline const bulk_samples& side_named(const std::vector<bulk_samples>& s, std::string_view name) {
    for (const bulk_samples& x : s)
        if (x.name == name) return x;
    throw std::logic_error(fmt::format("bulk: no side named {}", name));
}

/// 8a'/8b' from CPU time (`cpu` a CPU basis), beside the wall-time ratio: the runner's work per
/// event against the loop's.
inline extra bulk_over_loop_by_cpu(const std::vector<bulk_samples>& s, time_basis cpu) {
    return {"runner_bulk_over_sequent_loop_by_cpu",
            basis_median(side_named(s, "sequent_loop"), cpu) / basis_median(side_named(s, "runner_bulk"), cpu)};
}

// ---- 8c and 8d: a bulk backfill in a process of its own (bench_bulk_child.cpp) -------------------------

/// What the bulk row store counts a read model as (runner_options::bulk_memory_budget's unit): per
/// row, the store's entry and key plus the heap blocks of its text fields. The Source of the
/// instantiation does not enter the entry's size.
struct row_store_source {};
inline std::size_t row_store_bytes(const bulk_row_map& rows) {
    std::size_t n = 0;
    for (const auto& [key, row] : rows)
        n += pj::bulk_table<bulk_tickets::table, row_store_source>::row_bytes() + pj::detail::heap_bytes(row);
    return n;
}

/// One line of projectionist_bench_bulk_child.
struct child_result {
    std::uint64_t events = 0;
    double wall = 0;
    double cpu = 0;
    double server = -1;
    double rss_start_kib = 0;
    double peak_rss_kib = 0;
    std::uint64_t flushes = 0;
    std::uint64_t rows_flushed = 0;
    std::uint64_t passes = 0;
};

/// The child program, beside this one.
inline std::string child_program() {
    return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "projectionist_bench_bulk_child").string();
}

inline std::string shell_quote(std::string_view s) {
    std::string out = "'";
    for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

/// Runs the child with `args` and reads its line; `server_cpu`: it measures its server backends.
inline child_result run_child(const std::vector<std::string>& args, bool server_cpu) {
    std::string command = server_cpu ? "PROJECTIONIST_BENCH_CHILD_SERVER_CPU=1 " : "";
    command += shell_quote(child_program());
    for (const std::string& a : args) command += " " + shell_quote(a);
    std::fflush(stdout);
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) throw std::runtime_error("bulk: cannot start " + command);
    std::string text;
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) text += buffer;
    if (::pclose(pipe) != 0 || !text.starts_with("bulk_child "))
        throw std::runtime_error(fmt::format("bulk: {} failed: {}", command, text));
    child_result r;
    std::istringstream in(text.substr(11));
    std::string field;
    while (in >> field) {
        const auto eq = field.find('=');
        const std::string key = field.substr(0, eq);
        const double v = std::stod(field.substr(eq + 1));
        if (key == "events")
            r.events = static_cast<std::uint64_t>(v);
        else if (key == "wall_s")
            r.wall = v;
        else if (key == "cpu_s")
            r.cpu = v;
        else if (key == "server_cpu_s")
            r.server = v;
        else if (key == "rss_start_kib")
            r.rss_start_kib = v;
        else if (key == "peak_rss_kib")
            r.peak_rss_kib = v;
        else if (key == "flushes")
            r.flushes = static_cast<std::uint64_t>(v);
        else if (key == "rows_flushed")
            r.rows_flushed = static_cast<std::uint64_t>(v);
        else if (key == "passes")
            r.passes = static_cast<std::uint64_t>(v);
    }
    return r;
}

/// A side of 8c/8d: `prepare` (untimed, in this process) makes the read model absent, `args`
/// are the child's, `check` (after each run) verifies what it wrote.
struct child_side {
    std::string name;
    std::function<void()> prepare;
    std::vector<std::string> args;
    std::function<void()> check;
    std::string what = {};
};
struct child_samples {
    bulk_samples times;
    std::vector<double> peak_mib;
    std::vector<double> start_mib;
    std::uint64_t flushes = 0;
    std::uint64_t rows_flushed = 0;
    std::uint64_t passes = 0;
};

/// Interleaved rounds as measure_bulk, each run a child process.
inline std::vector<child_samples> measure_children(const std::vector<child_side>& sides, unsigned repetitions,
                                                   std::uint64_t expected_events, bool server_cpu,
                                                   std::string_view group) {
    std::vector<child_samples> out;
    for (const child_side& s : sides) out.push_back({{s.name, s.what, {}, {}, {}}, {}, {}, 0, 0, 0});
    const bool verbose = std::getenv("PROJECTIONIST_BENCH_BULK_VERBOSE") != nullptr;
    for (unsigned r = 0; r < repetitions; ++r)
        for (std::size_t i = 0; i < sides.size(); ++i) {
            sides[i].prepare();
            const child_result c = run_child(sides[i].args, server_cpu);
            if (c.events != expected_events)
                mismatch(
                    fmt::format("{}: {} processed {} events, not {}", group, sides[i].name, c.events, expected_events));
            sides[i].check();
            child_samples& x = out[i];
            x.times.wall.push_back(c.wall);
            x.times.cpu.push_back(c.cpu);
            if (server_cpu && c.server >= 0) x.times.server.push_back(c.server);
            x.peak_mib.push_back(c.peak_rss_kib / 1024.0);
            x.start_mib.push_back(c.rss_start_kib / 1024.0);
            x.flushes = c.flushes;
            x.rows_flushed = c.rows_flushed;
            x.passes = c.passes;
            if (verbose)
                fmt::print(
                    "      {:<16} #{} wall {:.0f} ms, CPU {:.0f} ms, server CPU {:.0f} ms, peak RSS {:.1f} "
                    "MiB (after init {:.1f}), {} flushes, {} passes\n",
                    sides[i].name, r, c.wall * 1e3, c.cpu * 1e3, c.server * 1e3, c.peak_rss_kib / 1024.0,
                    c.rss_start_kib / 1024.0, c.flushes, c.passes);
            std::fflush(stdout);
        }
    return out;
}

/// The child sides' extras: bulk_side_extras plus peak RSS (median, max), RSS after init, flushes.
inline std::vector<extra> child_extras(const std::vector<child_samples>& s, std::size_t events, time_basis b) {
    std::vector<bulk_samples> times;
    for (const child_samples& x : s) times.push_back(x.times);
    std::vector<extra> out = bulk_side_extras(times, events, b);
    for (const child_samples& x : s) {
        out.push_back({x.times.name + "_peak_rss_mib_median", median_of(x.peak_mib)});
        out.push_back({x.times.name + "_peak_rss_mib_max", *std::max_element(x.peak_mib.begin(), x.peak_mib.end())});
        out.push_back({x.times.name + "_rss_after_init_mib_median", median_of(x.start_mib)});
        out.push_back({x.times.name + "_flushes", static_cast<double>(x.flushes)});
        out.push_back({x.times.name + "_rows_flushed", static_cast<double>(x.rows_flushed)});
        if (x.passes > 0) out.push_back({x.times.name + "_passes", static_cast<double>(x.passes)});
    }
    return out;
}

/// What a child side runs, for the report: its runner over `storage` (the child's <runner>
/// argument: global, per_aggregate or passes) and its budget.
inline std::string child_what(std::string_view storage, std::size_t budget, std::string_view runner) {
    return fmt::format(
        "runner<bulk_tickets, {}, {}> bulk mode in a process of its own, bulk_memory_budget {}{}", storage,
        runner == "global" ? "global" : "per_aggregate",
        budget == pj::runner_options::unbounded ? std::string("unbounded") : std::to_string(budget) + " bytes",
        runner == "passes" ? ", bulk_passes_by_aggregate" : "");
}

/// 8c' on `backend`: the per-aggregate child side in passes by aggregate under `budget` bytes
/// (`cs[passes]`) against the per-aggregate unbounded one (`cs[unbounded]`), in events/s.
inline comparison passes_comparison(std::string_view backend, const std::vector<child_samples>& cs,
                                    std::size_t unbounded, std::size_t passes, std::size_t events, time_basis b,
                                    std::size_t budget, std::size_t divisor) {
    const double unbounded_t = basis_median(cs[unbounded].times, b);
    const double passes_t = basis_median(cs[passes].times, b);
    const child_samples& p = cs[passes];
    comparison c{
        fmt::format("8c'. {} per-aggregate bulk in passes: budget of 1/{} / unbounded (events/s)", backend, divisor),
        unbounded_t / passes_t,
        ">= 0.5",
        false,
        fmt::format("unbounded {}ev/s, peak RSS {:.0f} MiB; budget {:.1f} MiB in passes by aggregate: "
                    "{}ev/s, peak RSS {:.0f} MiB, {} flushes, {} later passes, {} rows written",
                    si(events_per_second(unbounded_t, events)), median_of(cs[unbounded].peak_mib),
                    static_cast<double>(budget) / 1048576.0, si(events_per_second(passes_t, events)),
                    median_of(p.peak_mib), p.flushes, p.passes, p.rows_flushed),
        child_extras(cs, events, b)};
    c.met = c.ratio >= 0.5;
    return c;
}

inline void print_child_samples(std::string_view group, const std::vector<child_samples>& s, std::size_t events,
                                time_basis b) {
    std::vector<bulk_samples> times;
    for (const child_samples& x : s) times.push_back(x.times);
    print_bulk_samples(group, times, events, b);
    for (const child_samples& x : s)
        fmt::print("    {:<16} peak RSS {:.1f} MiB (median; max {:.1f}; after init {:.1f}), {} flushes of {} rows\n",
                   x.times.name, median_of(x.peak_mib), *std::max_element(x.peak_mib.begin(), x.peak_mib.end()),
                   median_of(x.start_mib), x.flushes, x.rows_flushed);
    std::fflush(stdout);
}

// ---- 8d: the bulk runner and the hand-written loop at two sizes ------------------------------------

/// Adds `from`'s runs to `into` (8d measures its sides one at a time, in rounds).
inline void append_runs(bulk_samples& into, const bulk_samples& from) {
    if (into.name.empty()) {
        into = from;
        return;
    }
    into.wall.insert(into.wall.end(), from.wall.begin(), from.wall.end());
    into.cpu.insert(into.cpu.end(), from.cpu.begin(), from.cpu.end());
    into.server.insert(into.server.end(), from.server.begin(), from.server.end());
}
inline void append_runs(child_samples& into, const child_samples& from) {
    append_runs(into.times, from.times);
    into.peak_mib.insert(into.peak_mib.end(), from.peak_mib.begin(), from.peak_mib.end());
    into.start_mib.insert(into.start_mib.end(), from.start_mib.begin(), from.start_mib.end());
    into.flushes = from.flushes;
    into.rows_flushed = from.rows_flushed;
}

/// Prepares a side that runs in the benchmark's process, then returns the heap's free memory to
/// the system (malloc_trim): the side's allocations then fault their pages in as a new process's
/// do, instead of reusing pages that an earlier step (8d's large history) touched and freed.
template <class Side>
void prepare_trimmed(Side& side) {
    side.prepare();
    ::malloc_trim(0);
}

/// 8d's four sides: the bulk runner (a process of its own, unbounded) and the Sequent loop (in
/// the benchmark's process), each over the reference history (the other comparisons') and the
/// large one.
struct scale_samples {
    child_samples bulk_reference;
    child_samples bulk_scale;
    bulk_samples loop_reference;
    bulk_samples loop_scale;
};

/// Interleaved rounds: in each, the bulk runner over the reference log, over the large log, then
/// the loop over each; `n` and `big_n` are the two logs' events.
inline scale_samples measure_scale(const child_side& bulk_reference, const child_side& bulk_scale,
                                   const bulk_side& loop_reference, const bulk_side& loop_scale, unsigned repetitions,
                                   std::uint64_t n, std::uint64_t big_n, bool server_cpu, std::string_view group) {
    scale_samples s;
    for (unsigned r = 0; r < repetitions; ++r) {
        append_runs(s.bulk_reference, measure_children({bulk_reference}, 1, n, server_cpu, group).at(0));
        append_runs(s.bulk_scale, measure_children({bulk_scale}, 1, big_n, server_cpu, group).at(0));
        append_runs(s.loop_reference, measure_bulk({loop_reference}, 1, n, group).at(0));
        append_runs(s.loop_scale, measure_bulk({loop_scale}, 1, big_n, group).at(0));
    }
    return s;
}

inline void print_scale_samples(std::string_view group, const scale_samples& s, std::uint64_t n, std::uint64_t big_n,
                                time_basis b) {
    print_child_samples(fmt::format("{}: bulk runner, {} events", group, n), {s.bulk_reference}, n, b);
    print_child_samples(fmt::format("{}: bulk runner, {} events", group, big_n), {s.bulk_scale}, big_n, b);
    print_bulk_samples(fmt::format("{}: Sequent loop, {} events", group, n), {s.loop_reference}, n, b);
    print_bulk_samples(fmt::format("{}: Sequent loop, {} events", group, big_n), {s.loop_scale}, big_n, b);
}

/// 8d and its two attributions: bulk at scale / bulk at the reference size (the target, >= 0.75);
/// the loop's same ratio (what the machine's memory hierarchy costs any method); and bulk/loop at
/// scale over bulk/loop at the reference size (what is the library's own: 1 when the bulk runner
/// slows down no more than the loop). `extras`: the backend's; every side's numbers are added.
inline std::vector<comparison> scale_comparisons(std::string_view backend, const scale_samples& s, std::uint64_t n,
                                                 std::uint64_t big_n, time_basis b, std::vector<extra> extras,
                                                 std::string_view scale_note) {
    for (extra& x : child_extras({s.bulk_reference}, n, b)) extras.push_back(std::move(x));
    for (extra& x : child_extras({s.bulk_scale}, big_n, b)) extras.push_back(std::move(x));
    for (extra& x : bulk_side_extras({s.loop_reference}, n, b)) extras.push_back(std::move(x));
    for (extra& x : bulk_side_extras({s.loop_scale}, big_n, b)) extras.push_back(std::move(x));
    const double bulk_ref = events_per_second(basis_median(s.bulk_reference.times, b), n);
    const double bulk_big = events_per_second(basis_median(s.bulk_scale.times, b), big_n);
    const double loop_ref = events_per_second(basis_median(s.loop_reference, b), n);
    const double loop_big = events_per_second(basis_median(s.loop_scale, b), big_n);
    const auto millions = [](std::uint64_t e) { return static_cast<double>(e) / 1e6; };
    const std::string sizes = fmt::format("{}M events / {}M events", millions(big_n), millions(n));
    const std::string rates = fmt::format(
        "bulk {}ev/s at {}M, {}ev/s at {}M; Sequent loop {}ev/s at {}M, {}ev/s at {}M", si(bulk_big), millions(big_n),
        si(bulk_ref), millions(n), si(loop_big), millions(big_n), si(loop_ref), millions(n));
    extras.push_back({"bulk_scale_over_reference", bulk_big / bulk_ref});
    extras.push_back({"loop_scale_over_reference", loop_big / loop_ref});
    extras.push_back({"bulk_over_loop_scale", bulk_big / loop_big});
    extras.push_back({"bulk_over_loop_reference", bulk_ref / loop_ref});
    std::vector<comparison> out;
    comparison d{fmt::format("8d. {} bulk at scale: {} (events/s)", backend, sizes),
                 bulk_big / bulk_ref,
                 ">= 0.75",
                 false,
                 fmt::format("{}; {}", rates, scale_note),
                 extras};
    d.met = d.ratio >= 0.75;
    comparison d2{fmt::format("8d'. {} Sequent loop at scale: {} (events/s)", backend, sizes),
                  loop_big / loop_ref,
                  "none (what the larger read model costs a hand-written loop)",
                  false,
                  rates,
                  extras};
    d2.informational = true;
    comparison d3{fmt::format("8d''. {} bulk / Sequent loop: at {}M / at {}M", backend, millions(big_n), millions(n)),
                  (bulk_big / loop_big) / (bulk_ref / loop_ref),
                  "none (1: the bulk runner slows down no more than the loop)",
                  false,
                  fmt::format("bulk / loop {:.2f} at {}M, {:.2f} at {}M", bulk_big / loop_big, millions(big_n),
                              bulk_ref / loop_ref, millions(n)),
                  std::move(extras)};
    d3.informational = true;
    out.push_back(std::move(d));
    out.push_back(std::move(d2));
    out.push_back(std::move(d3));
    return out;
}

/// "runner_batch 95.1 kev/s, sequent_loop 1.20 Mev/s, ...": every side's rate, for the table.
inline std::string rates_line(const std::vector<bulk_samples>& s, std::size_t events, time_basis b) {
    std::string out;
    for (const bulk_samples& x : s)
        out += fmt::format("{}{} {}ev/s", out.empty() ? "" : ", ", x.name,
                           si(events_per_second(basis_median(x, b), events)));
    return out;
}

}  // namespace bench
