#pragma once

/// The commands' table and the parser of their arguments.
///
/// **Why a parser of our own, not CLI11.** The command line's texts are part of its interface:
/// the usage of each command, the messages of a wrong argument ("unknown option '--force'; the
/// options are: --help"), and the exit statuses 0/1/2 are tested and read by deploy scripts.
/// CLI11 formats its own errors and help and exits on its own terms, so keeping these texts would
/// take a custom formatter and error mapping larger than this table-driven parser (about 150
/// lines), and every translation unit that embeds the command line would parse CLI11's headers.

#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <projectionist/deploy/controller/any_controller.hpp>
#include <projectionist/deploy/router.hpp>
#include <projectionist/detail/text.hpp>

namespace projectionist::detail::cli {

/// Wrong or missing arguments: the message, then the command's usage; exit status 2.
using usage_error = detail::usage_error;
/// An unknown projection, version or column: the message lists the valid names; exit status 2.
using name_error = detail::name_error;

/// The value of `--<option>` as a whole number; a usage error if it is not one.
inline std::uint64_t parse_count(std::string_view option, std::string_view text) {
    std::uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size())
        throw usage_error(fmt::format("--{} '{}': not a whole number", option, shown(text)));
    return n;
}

/// A duration as typed: "500ms", "2s", "1m", "1h", or a number of seconds. Empty if malformed.
inline std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    std::uint64_t n = 0;
    const char* begin = text.data();
    const char* end = begin + text.size();
    auto [ptr, ec] = std::from_chars(begin, end, n);
    if (ec != std::errc{} || ptr == begin) return std::nullopt;
    const std::string_view unit(ptr, static_cast<std::size_t>(end - ptr));
    std::uint64_t factor = 0;
    if (unit == "ms")
        factor = 1;
    else if (unit.empty() || unit == "s")
        factor = 1000;
    else if (unit == "m" || unit == "min")
        factor = 60'000;
    else if (unit == "h")
        factor = 3'600'000;
    else
        return std::nullopt;
    if (n > 100'000'000'000ULL / factor) return std::nullopt;
    return std::chrono::milliseconds(static_cast<std::int64_t>(n * factor));
}

/// A memory size as typed: "512MiB", "2GiB", "64KiB", "1GB" (KB/MB/GB/TB: powers of 1000;
/// KiB/MiB/GiB/TiB: powers of 1024), or a number of bytes. Empty if malformed, zero or too large.
inline std::optional<std::size_t> parse_size(std::string_view text) {
    std::uint64_t n = 0;
    const char* begin = text.data();
    const char* end = begin + text.size();
    auto [ptr, ec] = std::from_chars(begin, end, n);
    if (ec != std::errc{} || ptr == begin || n == 0) return std::nullopt;
    const std::string_view unit(ptr, static_cast<std::size_t>(end - ptr));
    std::uint64_t factor = 1;
    if (!unit.empty() && unit != "B") {
        const std::size_t power = std::string_view("KMGT").find(unit.front()) + 1;  // 0: no prefix
        const std::string_view rest = unit.substr(1);
        if (power == 0 || (rest != "B" && rest != "iB")) return std::nullopt;
        for (std::size_t i = 0; i < power; ++i) factor *= rest == "B" ? 1000 : 1024;
    }
    if (n > std::numeric_limits<std::size_t>::max() / factor) return std::nullopt;
    return static_cast<std::size_t>(n * factor);
}

/// A share as typed: "10", "10%", "12.5", "0.01" -> basis points (0 to 10000). Empty if malformed.
inline std::optional<unsigned> parse_percent(std::string_view text) {
    if (!text.empty() && text.back() == '%') text.remove_suffix(1);
    const std::size_t dot = text.find('.');
    const std::string_view whole = text.substr(0, dot);
    const std::string_view fraction = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
    if (whole.empty() || whole.size() > 3 || fraction.size() > 2) return std::nullopt;
    if (dot != std::string_view::npos && fraction.empty()) return std::nullopt;
    unsigned value = 0;
    for (char c : whole) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    unsigned hundredths = 0;
    for (std::size_t i = 0; i < 2; ++i) {
        const char c = i < fraction.size() ? fraction[i] : '0';
        if (c < '0' || c > '9') return std::nullopt;
        hundredths = hundredths * 10 + static_cast<unsigned>(c - '0');
    }
    const unsigned bp = value * 100 + hundredths;
    if (bp > routing_buckets) return std::nullopt;
    return bp;
}

// ---- commands and their arguments ----------------------------------------------------------------

enum class command_id {
    init,
    backfill,
    catch_up,
    status,
    dead_letters,
    verify,
    switch_traffic,
    live,
    rollback,
    reset,
    remove,
    run,
    rollout,
    predicate,
    help,
    custom  ///< a command the application added (command_line::add_command)
};

struct option_spec {
    std::string_view name;        ///< without the dashes
    std::string_view value_name;  ///< empty: a flag without a value
    bool repeatable = false;
    std::string_view help;
};

struct command_spec {
    command_id id;
    std::string_view name;
    std::string_view synopsis;  ///< arguments and options, after the name
    std::size_t min_args = 0;
    std::size_t max_args = 0;
    std::string_view summary;
    std::string_view description;
    std::vector<option_spec> options;
};

inline const std::vector<command_spec>& commands() {
    static const std::vector<command_spec> all{
        {command_id::init,
         "init",
         "<version> [--retain-until YYYY-MM-DD [--force]]",
         1,
         1,
         "create a version's tables and catalog row (ends a manual version's dormancy)",
         "Creates the version's tables and its catalog row; a version with manual kick-off starts\n"
         "following the log from then on. Nothing is replayed yet: run backfill next.\n"
         "With --retain-until, delete refuses before that day unless forced; a recorded day moves\n"
         "only later, or earlier with --force.\n",
         {{"retain-until", "DATE", false,
           "keep it until this day (YYYY-MM-DD): delete refuses before it unless --force"},
          {"force", "", false, "with --retain-until: move a recorded retention date earlier"}}},
        {command_id::backfill,
         "backfill",
         "<version> [--progress auto|bar|lines|none] [--memory-budget SIZE|unbounded] [--mode auto|bulk|batch]",
         1,
         1,
         "replay history into a version, showing progress",
         "Replays the log into the version, from its checkpoint to the head as of the start.\n"
         "The version must have been initialized. On a terminal one line shows a bar, events/s\n"
         "and the time left; otherwise a plain line is printed every few percent.\n"
         "On a database, a version that serves no queries yet is rebuilt in bulk: its rows are\n"
         "built in memory and written when they reach the memory budget and at the end, each\n"
         "time with the checkpoint. A budget that holds the whole read model writes every row\n"
         "once; a smaller one writes and reads rows back more often. --memory-budget and --mode\n"
         "hold for this backfill only; without them, the application's settings apply (a budget\n"
         "of 256MiB unless it sets one). SIGINT (Ctrl-C) or SIGTERM stops it between two batches,\n"
         "keeping what it applied (in bulk, written first), and exits 1; backfill again goes on\n"
         "from there.\n",
         {{"progress", "MODE", false, "auto (the default), bar, lines or none"},
          {"memory-budget", "SIZE", false, "rows held in memory before a bulk write: 512MiB, 4GiB, ... or unbounded"},
          {"mode", "MODE", false, "bulk, batch (a transaction per batch) or auto (bulk on a database)"}}},
        {command_id::catch_up,
         "catch-up",
         "[<version>|<projection>]",
         0,
         1,
         "apply the events since the last run to initialized versions",
         "Applies every event up to the head to the initialized versions (of one projection, or\n"
         "one version). Dormant versions (manual kick-off, not initialized) and deleted ones are\n"
         "left alone. SIGINT (Ctrl-C) or SIGTERM stops it between two batches, keeping what it\n"
         "applied, and exits 1; catch-up again goes on from there.\n",
         {}},
        {command_id::status,
         "status",
         "[<projection>|<version>]",
         0,
         1,
         "a table of every version: state, live, position, head, lag, traffic, error",
         "Shows each version's state, live flag, position, the head of the log, the lag, its\n"
         "partitioning, the share of queries the router sends it, and its error or note; then\n"
         "the router's state.\n",
         {}},
        {command_id::dead_letters,
         "dead-letters",
         "<version>",
         1,
         1,
         "list the events a version skipped, with the handler's error",
         "Lists the events the version recorded as dead letters, oldest first: with the\n"
         "skip_to_dead_letter policy an event whose handler fails is skipped and recorded, and a\n"
         "per-aggregate version also parks that aggregate's later events (marked parked) until\n"
         "it is reset. A handler is fixed in a new version, which is backfilled beside this one.\n",
         {}},
        {command_id::verify,
         "verify",
         "<version A> <version B> [--table TABLE] [--expect-change COLUMN]... [--key KEY]... [--json]",
         2,
         2,
         "compare two versions' tables (exit status 0: pass, 1: fail)",
         "Compares the tables of two versions (A: the serving one, B: the new one), each table with\n"
         "its counterpart of the same suffix (the main tables together): row counts, and per column\n"
         "the type, nulls, distinct values, per-value counts and numeric statistics. A table only one\n"
         "version has is named and not compared. --table compares one table only.\n"
         "Columns whose change is intended must be named: with --expect-change, or in the settings\n"
         "the application registered. --key adds a field-by-field comparison of those rows.\n"
         "The exit status is 0 when the verdict is PASS and 1 when it is FAIL.\n",
         {{"table", "TABLE", false, "compare only this table (its name in either version, or its suffix)"},
          {"expect-change", "COLUMN", true, "a column allowed to differ (repeat, or separate with commas)"},
          {"key", "KEY", true, "also compare the rows of this key field by field (repeat for more)"},
          {"json", "", false, "print the report as JSON instead of text"}}},
        {command_id::switch_traffic,
         "switch",
         "<projection> --to <version> [--percent N]",
         1,
         1,
         "move a projection's queries to a version, all of them or a share",
         "With --percent below 100, the version becomes the router's candidate for that share of\n"
         "the routing keys (e.g. 10, 12.5 or 0.01); the primary keeps the rest. Without --percent\n"
         "(or with 100) the version serves every query and the previous one is retired: it keeps\n"
         "following the log, ready for a rollback. The version must have caught up first.\n",
         {{"to", "VERSION", false, "the version that gets the traffic (required)"},
          {"percent", "N", false, "the share of queries, 0 to 100 (default: 100)"}}},
        {command_id::live,
         "live",
         "<version>",
         1,
         1,
         "let a version's emitted events through",
         "Makes the version live: the events its handlers emit are appended from now on. It must\n"
         "have caught up: a version still replaying history would emit it again.\n",
         {}},
        {command_id::rollback,
         "rollback",
         "<projection>",
         1,
         1,
         "undo the last switch or rollout",
         "Cancels the rollout of a candidate if there is one; otherwise puts the previous primary\n"
         "back, which serves every query again.\n",
         {}},
        {command_id::reset,
         "reset",
         "<version>",
         1,
         1,
         "empty a version so that it replays from the start",
         "Empties the version's tables and checkpoint (and clears its live flag). Refused while\n"
         "the version serves queries or the router sends it a share of them.\n",
         {}},
        {command_id::remove,
         "delete",
         "<version> [--force]",
         1,
         1,
         "drop a version's tables and checkpoint; the catalog remembers it deleted",
         "Drops the tables the catalog lists as the version's own and its checkpoint, and leaves it\n"
         "in the catalog as deleted (when, by which command): no process re-creates it but an\n"
         "explicit init. The router forgets it. Other versions are untouched. Refused while the\n"
         "version serves queries or the router sends it a share of them, and before its retention\n"
         "date unless --force; waits for queries still running on it first.\n",
         {{"force", "", false, "delete even before the version's retention date"}}},
        {command_id::run,
         "run",
         "[--for DURATION] [--metrics ADDRESS:PORT [--ready VERSION] [--max-lag EVENTS]]",
         0,
         0,
         "follow the log with every version until stopped",
         "Applies new events to every initialized version as they arrive, until SIGINT (Ctrl-C) or\n"
         "SIGTERM, then stops cleanly between two batches; a second signal ends it at once. Exit\n"
         "status 1 if a version stopped on an error. With --metrics, serves /metrics (Prometheus),\n"
         "/healthz and /readyz over HTTP while it runs; /readyz answers 200 when the --ready version\n"
         "(else every version) is caught up within --max-lag events (default 0).\n",
         {{"for", "DURATION", false, "stop after this long, e.g. 500ms, 30s, 5m, 1h"},
          {"metrics", "ADDRESS:PORT", false, "serve metrics and probes here, e.g. 127.0.0.1:9464 (port 0: any)"},
          {"ready", "VERSION", false, "the version /readyz checks"},
          {"max-lag", "EVENTS", false, "/readyz: events behind the head still counted as caught up"}}},
        {command_id::rollout,
         "rollout",
         "<projection> --to <version> [--steps LIST] [--every DURATION] [--max-discrepancy SHARE] "
         "[--min-shadow N] [--max-lag N] [--expect-change COLUMN]... [--sample SHARE] [--no-live] | "
         "rollout status [<projection>] | rollout abort [<projection>]",
         1,
         2,
         "roll a version out step by step, promoted or rolled back by its gates",
         "Saves a rollout plan in the storage and starts it: the structural diff against the primary\n"
         "first, then each step of traffic in turn. The application's processes follow the plan: a step\n"
         "moves on once it has lasted --every and has --min-shadow shadow reads, with at most\n"
         "--max-discrepancy of them differing (columns given with --expect-change do not count) and\n"
         "the candidate at most --max-lag events behind; after 100% the version serves every query and\n"
         "is made live (unless --no-live). A failing gate sends every query back to the primary at\n"
         "once and stops the plan rolled_back. 'rollout status' shows the plan, its step, the shadow\n"
         "reads and the discrepant keys with both answers; 'rollout abort' stops it by hand (the\n"
         "projection may be left out when only one has a rollout).\n",
         {{"to", "VERSION", false, "the version to roll out (required)"},
          {"steps", "LIST", false,
           "shares in percent, e.g. 1,10,50,100 (the default); a predicate's name may come first"},
          {"every", "DURATION", false, "the least time at each step, e.g. 10m (default 10m)"},
          {"max-discrepancy", "SHARE", false, "the largest share of shadow reads that may differ (default 0.1%)"},
          {"min-shadow", "N", false, "the least shadow reads compared at each step (default 1000)"},
          {"max-lag", "N", false, "the candidate's largest lag in events (default: not gated)"},
          {"expect-change", "COLUMN", true, "a column allowed to differ (repeat, or separate with commas)"},
          {"sample", "SHARE", false, "the share of queries shadowed (default 100%)"},
          {"no-live", "", false, "after 100%, leave the candidate at every query without making it live"}}},
        {command_id::predicate,
         "predicate",
         "<projection> [--on NAME | --off]",
         1,
         1,
         "switch the router's named predicate on or off, or show it",
         "A predicate is code the application registers with its router under a name (for example\n"
         "\"internal-users\"): while it is on, every routing key it accepts goes to the candidate,\n"
         "whatever the share. --on switches one on, --off switches it off, for every process (the\n"
         "choice is saved with the router's state); without either, the registered names and the\n"
         "one that is on are shown.\n",
         {{"on", "NAME", false, "switch this predicate on"}, {"off", "", false, "switch the predicate off"}}},
        {command_id::help, "help", "[<command>]", 0, 1, "show this help, or a command's", "", {}},
    };
    return all;
}

inline const command_spec* find_command(std::string_view name) {
    for (const auto& c : commands())
        if (c.name == name) return &c;
    return nullptr;
}

struct parsed_command {
    const command_spec* spec = nullptr;
    std::vector<std::string> args;
    std::vector<std::pair<std::string, std::string>> options;
    bool help = false;

    [[nodiscard]] bool has(std::string_view name) const {
        for (const auto& o : options)
            if (o.first == name) return true;
        return false;
    }
    [[nodiscard]] std::optional<std::string> value(std::string_view name) const {
        for (const auto& o : options)
            if (o.first == name) return o.second;
        return std::nullopt;
    }
    [[nodiscard]] std::vector<std::string> values(std::string_view name) const {
        std::vector<std::string> out;
        for (const auto& o : options)
            if (o.first == name) out.push_back(o.second);
        return out;
    }
};

inline std::string option_list(const command_spec& spec) {
    std::vector<std::string> names;
    for (const auto& o : spec.options) names.push_back(fmt::format("--{}", o.name));
    names.emplace_back("--help");
    return join(names);
}

/// Splits a command's arguments into positional arguments and options, by its spec.
inline parsed_command parse(const command_spec& spec, const std::vector<std::string>& args, std::size_t first) {
    parsed_command p;
    p.spec = &spec;
    for (std::size_t i = first; i < args.size(); ++i) {
        if (args[i] == "--") break;
        if (args[i] == "--help" || args[i] == "-h") {
            p.help = true;
            return p;
        }
    }
    bool only_positional = false;
    for (std::size_t i = first; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (only_positional || a.size() < 2 || a[0] != '-') {
            p.args.push_back(a);
            continue;
        }
        if (a == "--") {
            only_positional = true;
            continue;
        }
        if (a[1] != '-')
            throw usage_error(fmt::format("unknown option '{}'; the options are: {}", shown(a), option_list(spec)));
        const std::size_t eq = a.find('=');
        const std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
        const option_spec* o = nullptr;
        for (const auto& candidate : spec.options)
            if (candidate.name == name) o = &candidate;
        if (o == nullptr)
            throw usage_error(
                fmt::format("unknown option '--{}'; the options are: {}", shown(name), option_list(spec)));
        if (!o->repeatable && p.has(name)) throw usage_error(fmt::format("option --{} is given twice", name));
        if (o->value_name.empty()) {
            if (eq != std::string::npos) throw usage_error(fmt::format("option --{} takes no value", name));
            p.options.emplace_back(name, std::string());
        } else if (eq != std::string::npos) {
            p.options.emplace_back(name, a.substr(eq + 1));
        } else if (i + 1 < args.size() && !args[i + 1].starts_with("--")) {  // not the next option
            p.options.emplace_back(name, args[++i]);
        } else {
            throw usage_error(fmt::format("option --{} needs a value ({})", name, o->value_name));
        }
        if (!o->value_name.empty() && p.options.back().second.empty())
            throw usage_error(fmt::format("option --{} needs a value ({})", name, o->value_name));
    }
    if (p.args.size() < spec.min_args) {
        // "<version A> <version B> [...]": name the first missing argument
        std::string_view rest = spec.synopsis;
        std::string missing;
        for (std::size_t n = 0; n <= p.args.size(); ++n) {
            const std::size_t open = rest.find('<');
            const std::size_t close = rest.find('>', open);
            if (open == std::string_view::npos || close == std::string_view::npos) break;
            missing = std::string(rest.substr(open, close - open + 1));
            rest.remove_prefix(close + 1);
        }
        throw usage_error(fmt::format("missing argument {}", missing.empty() ? "" : missing));
    }
    if (p.args.size() > spec.max_args)
        throw usage_error(fmt::format("unexpected argument '{}'", shown(p.args[spec.max_args])));
    return p;
}

}  // namespace projectionist::detail::cli
