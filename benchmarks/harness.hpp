#pragma once
// A small benchmark harness: sides of a comparison are measured interleaved in one process
// (warm-up, then A, B, A, B, ...), each repetition timed with steady_clock; ratios come from
// the medians. Plus the report: a table on stdout and results.json.

#include <sched.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <fmt/format.h>

namespace bench {

/// Keeps a value alive for the optimizer without storing it anywhere.
template <class T>
inline void keep(const T& value) noexcept {
    asm volatile("" : : "r,m"(value) : "memory");
}

// ---- configuration from the environment -----------------------------------------------------

inline std::uint64_t env_number(const char* name, std::uint64_t fallback) {
    const char* text = std::getenv(name);
    if (text == nullptr || *text == '\0') return fallback;
    char* end = nullptr;
    const unsigned long long value = std::strtoull(text, &end, 10);
    if (end == text || *end != '\0') throw std::runtime_error(fmt::format("{}={}: not a number", name, text));
    return value;
}

inline std::string env_text(const char* name, std::string fallback) {
    const char* text = std::getenv(name);
    return text == nullptr || *text == '\0' ? fallback : std::string(text);
}

// ---- measuring ------------------------------------------------------------------------------

/// One side of a comparison: `prepare` (untimed) brings it to its start state, `run` is timed.
struct side {
    std::string name;
    std::function<void()> prepare;
    std::function<void()> run;
};

inline double median_of(std::vector<double> s) {
    std::sort(s.begin(), s.end());
    const std::size_t n = s.size();
    if (n == 0) return 0;
    return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/// The ratio a[i] / b[i] of two sides' times within each round of an interleaved measurement
/// (the sides run one after the other in every round): its median and range. On a host whose
/// speed drifts from round to round, the pairs show whether the drift or the sides made the ratio
/// of the two medians.
struct paired_ratio {
    double median = 0;
    double min = 0;
    double max = 0;
};
inline paired_ratio paired_ratio_of(const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> r;
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) r.push_back(a[i] / b[i]);
    if (r.empty()) return {};
    const auto [lo, hi] = std::minmax_element(r.begin(), r.end());
    return {median_of(r), *lo, *hi};
}

struct samples {
    std::string name;
    std::vector<double> seconds;      ///< wall time (steady_clock) of each timed run
    std::vector<double> cpu_seconds;  ///< the measuring thread's CPU time (user + system) of each run
    std::vector<double> sys_seconds;  ///< the system part of it

    [[nodiscard]] double median() const { return median_of(seconds); }
    [[nodiscard]] double min() const { return seconds.empty() ? 0 : *std::min_element(seconds.begin(), seconds.end()); }
    [[nodiscard]] double max() const { return seconds.empty() ? 0 : *std::max_element(seconds.begin(), seconds.end()); }
    [[nodiscard]] double cpu_median() const { return median_of(cpu_seconds); }
    [[nodiscard]] double cpu_min() const {
        return cpu_seconds.empty() ? 0 : *std::min_element(cpu_seconds.begin(), cpu_seconds.end());
    }
    [[nodiscard]] double cpu_max() const {
        return cpu_seconds.empty() ? 0 : *std::max_element(cpu_seconds.begin(), cpu_seconds.end());
    }
};

/// CPU time of the calling thread: user + system, and system alone (what the sides'
/// single-threaded work costs, without the time the thread waited for a CPU on a shared machine).
struct cpu_times {
    double total = 0;
    double system = 0;
};
/// `getrusage(who)`'s CPU time as cpu_times.
inline cpu_times rusage_cpu_times(int who) {
    rusage u{};
    getrusage(who, &u);
    const auto seconds = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
    };
    return {seconds(u.ru_utime) + seconds(u.ru_stime), seconds(u.ru_stime)};
}
inline cpu_times thread_cpu_seconds() {
    return rusage_cpu_times(RUSAGE_THREAD);
}

/// CPU time of this whole process, every thread's: user + system, and system alone (what a side
/// that works on more than one thread costs).
inline cpu_times process_cpu_times() {
    return rusage_cpu_times(RUSAGE_SELF);
}

/// CPU seconds of a process of this machine (a server backend), or a negative number.
inline double process_cpu_seconds(int pid) {
    clockid_t clock{};
    timespec ts{};
    if (clock_getcpuclockid(pid, &clock) != 0 || clock_gettime(clock, &ts) != 0) return -1;
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
/// The CPU seconds of several processes together, or a negative number if one cannot be read.
inline double processes_cpu_seconds(const std::vector<int>& pids) {
    double sum = 0;
    for (const int pid : pids) {
        const double s = process_cpu_seconds(pid);
        if (s < 0) return -1;
        sum += s;
    }
    return sum;
}

struct measure_options {
    unsigned warmup = 1;
    unsigned repetitions = 7;
};

/// Runs every side `warmup` times untimed, then `repetitions` rounds in which each side runs
/// once, in order (A, B, C, A, B, C, ...): drift on a shared machine hits every side alike.
inline std::vector<samples> measure_interleaved(const std::vector<side>& sides, const measure_options& opt) {
    using clock = std::chrono::steady_clock;
    std::vector<samples> out;
    for (const side& s : sides) out.push_back({s.name, {}, {}, {}});
    for (unsigned w = 0; w < opt.warmup; ++w)
        for (const side& s : sides) {
            s.prepare();
            s.run();
        }
    for (unsigned r = 0; r < opt.repetitions; ++r)
        for (std::size_t i = 0; i < sides.size(); ++i) {
            sides[i].prepare();
            const cpu_times cpu_start = thread_cpu_seconds();
            const auto start = clock::now();
            sides[i].run();
            const auto stop = clock::now();
            const cpu_times cpu_stop = thread_cpu_seconds();
            out[i].seconds.push_back(std::chrono::duration<double>(stop - start).count());
            out[i].cpu_seconds.push_back(cpu_stop.total - cpu_start.total);
            out[i].sys_seconds.push_back(cpu_stop.system - cpu_start.system);
        }
    return out;
}

// ---- reporting ------------------------------------------------------------------------------

/// An extra number or text of a comparison, written into its JSON object.
struct extra {
    std::string key;
    std::variant<double, std::string> value;
};

struct comparison {
    std::string name;
    double ratio = 0;
    std::string target;
    bool met = false;
    std::string summary;  ///< one line for the table: the numbers behind the ratio
    std::vector<extra> extras;
    bool informational = false;  ///< an attribution with no target: "met" is shown as "-" (null in JSON)
};

inline std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20)
                    out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
                else
                    out += c;
        }
    }
    return out + "\"";
}

inline std::string json_number(double v) {
    if (!std::isfinite(v)) return "null";
    if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{:.0f}", v);  // counts stay exact
    return fmt::format("{:.6g}", v);
}

struct report {
    std::string machine;
    unsigned cpus = 0;
    std::string compiler;
    std::string flags;
    std::string revision;  ///< the library's commit the numbers are for
    unsigned runs = 0;
    unsigned warmup = 0;
    std::vector<extra> data;  ///< what the history was
    std::vector<comparison> comparisons;
    std::vector<std::string> pending;  ///< comparisons that have a place but no measurement yet

    void print_table() const {
        fmt::print("\n{:<56} {:>9}  {:<24} {:<4}  {}\n", "comparison", "ratio", "target", "met", "medians");
        fmt::print("{:-<56} {:->9}  {:-<24} {:-<4}  {:-<40}\n", "", "", "", "", "");
        for (const comparison& c : comparisons)
            fmt::print("{:<56} {:>9.3f}  {:<24} {:<4}  {}\n", c.name, c.ratio, c.target,
                       c.informational ? "-"
                       : c.met         ? "yes"
                                       : "NO",
                       c.summary);
        for (const std::string& p : pending) fmt::print("{:<56} {:>9}  {:<24} {:<4}\n", p, "-", "later", "-");
    }

    [[nodiscard]] std::string to_json() const {
        const auto extras_json = [](const std::vector<extra>& xs, std::string_view indent) {
            std::string out;
            for (const extra& x : xs) {
                out += fmt::format(",\n{}{}: ", indent, json_string(x.key));
                if (const double* d = std::get_if<double>(&x.value))
                    out += json_number(*d);
                else
                    out += json_string(std::get<std::string>(x.value));
            }
            return out;
        };
        std::string out = "{\n";
        out += fmt::format("  \"machine\": {},\n", json_string(machine));
        out += fmt::format("  \"cpus\": {},\n", cpus);
        out += fmt::format("  \"compiler\": {},\n", json_string(compiler));
        out += fmt::format("  \"flags\": {},\n", json_string(flags));
        out += fmt::format("  \"library_revision\": {},\n", json_string(revision));
        out += fmt::format("  \"runs\": {},\n", runs);
        out += fmt::format("  \"warmup_runs\": {},\n", warmup);
        out += "  \"data\": {";
        std::string d = extras_json(data, "    ");
        if (!d.empty()) d.erase(0, 1);  // no comma before the first member
        out += d + "\n  },\n";
        out += "  \"comparisons\": [";
        for (std::size_t i = 0; i < comparisons.size(); ++i) {
            const comparison& c = comparisons[i];
            out += i == 0 ? "\n" : ",\n";
            out += fmt::format(
                "    {{\n      \"name\": {},\n      \"ratio\": {},\n      \"target\": {},\n      "
                "\"met\": {},\n      \"summary\": {}",
                json_string(c.name), json_number(c.ratio), json_string(c.target),
                c.informational ? "null"
                : c.met         ? "true"
                                : "false",
                json_string(c.summary));
            out += extras_json(c.extras, "      ");
            out += "\n    }";
        }
        out += "\n  ],\n  \"pending\": [";
        for (std::size_t i = 0; i < pending.size(); ++i) out += (i == 0 ? "" : ", ") + json_string(pending[i]);
        out += "]\n}\n";
        return out;
    }
};

// ---- shared pieces of the comparisons ------------------------------------------------------

/// Exits with status 2: the sides of a comparison did not compute the same result.
[[noreturn]] inline void mismatch(std::string_view what) {
    fmt::print(stderr, "projectionist_bench: the sides of '{}' did not compute the same result\n", what);
    std::exit(2);
}

inline double per_event_ns(double seconds, std::size_t events) {
    return seconds * 1e9 / static_cast<double>(events);
}
inline double events_per_second(double seconds, std::size_t events) {
    return static_cast<double>(events) / seconds;
}

inline std::string si(double v) {
    if (v >= 1e6) return fmt::format("{:.2f} M", v / 1e6);
    if (v >= 1e3) return fmt::format("{:.1f} k", v / 1e3);
    return fmt::format("{:.0f}", v);
}

inline void print_samples(std::string_view group, const std::vector<samples>& s, std::size_t events) {
    fmt::print("  {}\n", group);
    for (const samples& x : s)
        fmt::print("    {:<34} median {:8.2f} ms  ({:6.2f} ns/event; min {:.2f}, max {:.2f} ms)\n", x.name,
                   x.median() * 1e3, per_event_ns(x.median(), events), x.min() * 1e3, x.max() * 1e3);
    std::fflush(stdout);
}

inline std::vector<extra> side_extras(const std::vector<samples>& s, std::size_t events) {
    std::vector<extra> out;
    for (const samples& x : s) {
        out.push_back({x.name + "_median_ms", x.median() * 1e3});
        out.push_back({x.name + "_ns_per_event", per_event_ns(x.median(), events)});
        out.push_back({x.name + "_min_ms", x.min() * 1e3});
        out.push_back({x.name + "_max_ms", x.max() * 1e3});
    }
    return out;
}

// ---- the machine ----------------------------------------------------------------------------

inline std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("model name", 0) == 0) {
            const auto colon = line.find(':');
            if (colon != std::string::npos) {
                std::string m = line.substr(colon + 1);
                m.erase(0, m.find_first_not_of(" \t"));
                return m;
            }
        }
    return "unknown";
}

/// The CPUs this process may run on (what `nproc` prints).
inline unsigned usable_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
    return static_cast<unsigned>(CPU_COUNT(&set));
}

inline std::string compiler_name() {
#if defined(__clang__)
    return fmt::format("clang {}.{}.{}", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
    return fmt::format("gcc {}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
    return "unknown";
#endif
}

}  // namespace bench
