#pragma once

/// The commands: each finds the names it was given among the registered controllers, calls the
/// controller (which keeps the rules of the deployment) and says what happened and what to run
/// next. `run`, the long-running one, is in cli/run.hpp.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <projectionist/cli/options.hpp>
#include <projectionist/cli/parser.hpp>
#include <projectionist/cli/progress.hpp>
#include <projectionist/cli/signals.hpp>
#include <projectionist/deploy/controller/any_controller.hpp>
#include <projectionist/deploy/verify.hpp>
#include <projectionist/detail/text.hpp>
#include <projectionist/error.hpp>
#include <projectionist/projection/retention.hpp>
#include <projectionist/runner/status.hpp>
#include <projectionist/storage/catalog.hpp>

namespace projectionist::detail::cli {

/// What one command works with: the streams, the options, the program's name, the projections.
struct session {
    std::ostream& out;
    std::ostream& err;
    bool terminal;
    const command_line_options& options;
    std::string program;
    const std::vector<any_controller*>& entries;
};

using entry_ptr = any_controller*;

// ---- names -----------------------------------------------------------------------------------------

inline std::vector<std::string_view> projections_of(const std::vector<any_controller*>& entries) {
    std::vector<std::string_view> out;
    for (const auto* e : entries) out.push_back(e->base_name());
    return out;
}

inline std::vector<std::string_view> versions_of(const std::vector<any_controller*>& entries) {
    std::vector<std::string_view> out;
    for (const auto* e : entries) out.insert(out.end(), e->versions().begin(), e->versions().end());
    return out;
}

inline std::pair<entry_ptr, std::string_view> find_version(const session& s, std::string_view name) {
    for (auto* e : s.entries)
        for (auto v : e->versions())
            if (v == name) return {e, v};
    for (auto* e : s.entries)
        if (e->base_name() == name)
            throw name_error(fmt::format("'{}' is a projection, not a version; its versions are: {}", e->base_name(),
                                         join(e->versions())));
    throw name_error(fmt::format("unknown version '{}'; the versions are: {}", shown(name),
                                 s.entries.empty() ? std::string("(none registered)") : join(versions_of(s.entries))));
}

inline entry_ptr find_projection(const session& s, std::string_view name) {
    for (auto* e : s.entries)
        if (e->base_name() == name) return e;
    std::string hint;
    for (auto* e : s.entries)
        for (auto v : e->versions())
            if (v == name) hint = fmt::format(" ('{}' is a version of {})", v, e->base_name());
    throw name_error(
        fmt::format("unknown projection '{}'{}; the projections are: {}", shown(name), hint,
                    s.entries.empty() ? std::string("(none registered)") : join(projections_of(s.entries))));
}

/// A projection, or one of its versions: (controller, version or empty).
inline std::pair<entry_ptr, std::string_view> find_projection_or_version(const session& s, std::string_view name) {
    for (auto* e : s.entries) {
        if (e->base_name() == name) return {e, {}};
        for (auto v : e->versions())
            if (v == name) return {e, v};
    }
    throw name_error(fmt::format("unknown projection or version '{}'; the projections are: {}; the versions are: {}",
                                 shown(name), join(projections_of(s.entries)), join(versions_of(s.entries))));
}

// ---- the life cycle --------------------------------------------------------------------------------

inline int cmd_init(const parsed_command& p, session& s) {
    auto [e, v] = find_version(s, p.args[0]);
    const projection_state before = e->refresh(v);
    const auto date = p.value("retain-until");
    if (date && !is_day(*date))
        throw usage_error(fmt::format("--retain-until '{}': a day is written YYYY-MM-DD", shown(*date)));
    const bool force = p.has("force");
    if (force && !date) throw usage_error("--force goes with --retain-until: it moves a retention date earlier");
    if (date && !force && before != projection_state::declared && before != projection_state::deleted) {
        // Refused before anything changes: an earlier day lets delete drop the version sooner.
        const std::string current = e->status_of(v).retain_until;
        if (shortens_retention(current, *date))
            throw state_error(fmt::format(
                "projectionist: cannot retain {} until {}: it is retained until {}, a later day; give that day or "
                "a later one, or run '{} init {} --retain-until {} --force' to move it earlier",
                v, *date, current, s.program, v, *date));
    }
    const init_result done = e->init(v);
    if (date) {
        e->retain_until(v, *date, force);
        s.out << fmt::format("{} is retained until {}: delete refuses before that day unless --force\n", v, *date);
    }
    if (!done) {  // initialized already: init only created a table a newer build declares, if any
        if (!p.has("retain-until"))
            s.out << fmt::format("{} is initialized already (it is {}); nothing to do\n", v, to_string(before));
        return 0;
    }
    if (done.recreated) s.out << "note: " << done.note << '\n';
    s.out << fmt::format("initialized {} (tables: {}); it is {}\nnext: {} backfill {}\n", v, join(e->tables_of(v)),
                         to_string(e->refresh(v)), s.program, v);
    return 0;
}

/// `backfill`'s --memory-budget and --mode: this backfill's own settings, and how the first
/// line shows them ("; memory budget 512 MiB, bulk"; empty without either).
inline std::pair<backfill_options, std::string> backfill_settings(const parsed_command& p) {
    backfill_options o;
    std::vector<std::string> shown_settings;
    if (const auto budget = p.value("memory-budget")) {
        if (*budget == "unbounded") {
            o.bulk_memory_budget = runner_options::unbounded;
            shown_settings.emplace_back("memory budget unbounded");
        } else if (const auto bytes = parse_size(*budget)) {
            o.bulk_memory_budget = *bytes;
            shown_settings.push_back("memory budget " + bytes_text(*bytes));
        } else {
            throw usage_error(
                fmt::format("--memory-budget '{}': give a size such as 512MiB, 4GiB or 1GB (at least 1 "
                            "byte), or unbounded",
                            shown(*budget)));
        }
    }
    if (const auto mode = p.value("mode")) {
        o.mode = detail::enum_names_of<backfill_mode>.parse(*mode);
        if (!o.mode) throw usage_error(fmt::format("--mode '{}': the modes are auto, bulk and batch", shown(*mode)));
        shown_settings.push_back(fmt::format("mode {}", *mode));
    }
    return {o, shown_settings.empty() ? std::string() : "; " + join(shown_settings)};
}

/// What a backfill's bulk writes did, between two statuses of its runner: ", in bulk: 209 rows
/// written by 23 writes (9 read back) in 12 passes over the log"; empty if it wrote nothing in bulk.
inline std::string bulk_summary(const runner_status& before, const runner_status& after) {
    const std::uint64_t flushes = after.bulk_flushes - before.bulk_flushes;
    if (flushes == 0) return {};
    std::string out = fmt::format(", in bulk: {} rows written by {} write{}",
                                  group_digits(after.bulk_rows_flushed - before.bulk_rows_flushed),
                                  group_digits(flushes), flushes == 1 ? "" : "s");
    if (const std::uint64_t read = after.bulk_rows_read - before.bulk_rows_read; read != 0)
        out += fmt::format(" ({} read back)", group_digits(read));
    if (const std::uint64_t passes = after.bulk_passes - before.bulk_passes; passes != 0)
        out += fmt::format(" in {} passes over the log", group_digits(passes + 1));
    return out;
}

/// Why a command stopped between two batches: "SIGINT received", or "stop requested" (the
/// options' stop token) when no signal came.
inline std::string stop_reason(int signal) {
    return signal != 0 ? fmt::format("{} received", signal_name(signal)) : std::string("stop requested");
}

/// The stop condition of `backfill` and `catch-up`: the options' stop token, or a signal caught
/// by `signals`.
inline std::function<bool()> stop_condition(const session& s, const signal_scope& signals) {
    return [&s, &signals] { return s.options.stop.stop_requested() || signals.received() != 0; };
}

/// "no predicate named 'vip' is registered<where>; the registered ones are: beta, internal", with
/// `how_to_register` said instead when `known` is empty.
inline std::string unknown_predicate(std::string_view name, const std::vector<std::string>& known,
                                     std::string_view how_to_register, std::string_view where = {}) {
    return fmt::format("no predicate named '{}' is registered{}; {}", shown(name), where,
                       known.empty() ? fmt::format("none is (register one in code with {})", how_to_register)
                                     : fmt::format("the registered ones are: {}", join(known)));
}

inline int cmd_backfill(const parsed_command& p, session& s) {
    const std::string mode = p.value("progress").value_or("auto");
    if (mode != "auto" && mode != "bar" && mode != "lines" && mode != "none")
        throw usage_error(fmt::format("--progress '{}': the modes are auto, bar, lines and none", shown(mode)));
    const auto [options, settings] = backfill_settings(p);
    auto [e, v] = find_version(s, p.args[0]);
    if (const projection_state st = e->refresh(v); st == projection_state::declared || st == projection_state::deleted)
        e->backfill(v, options);  // the deployment's refusal, before any progress is shown
    const runner_status before = e->status_of(v);
    if (options.mode == backfill_mode::bulk && caught_up_or_later(before.state))
        s.out << fmt::format(
            "note: --mode bulk rebuilds a version that serves no queries yet; {} is {}, so its tables are "
            "not private and its events are applied a batch at a time\n",
            v, to_string(before.state));
    const bool show = mode != "none";
    const bool bar = mode == "bar" || (mode == "auto" && s.terminal);
    if (show) {
        if (before.head > before.position)
            s.out << fmt::format("backfill {}: from position {} to the head at {} ({} events to go){}\n", v,
                                 group_digits(before.position), group_digits(before.head),
                                 group_digits(before.head - before.position), settings);
        else
            s.out << fmt::format("backfill {}: at the head already (position {}){}\n", v, group_digits(before.position),
                                 settings);
        s.out << std::flush;
    }
    std::optional<backfill_progress> progress;
    if (show)
        progress.emplace(s.out, bar, s.options, std::string(v), before.position, before.head,
                         [e = e, v = v, passes = before.bulk_passes] {
                             const runner_status now = e->status_of(v);
                             return progress_sample(now.position, bulk_phase_text(now.phase, now.bulk_passes - passes));
                         });
    const auto started = std::chrono::steady_clock::now();
    // SIGINT or SIGTERM ends the backfill between two batches, keeping what it applied (a bulk
    // backfill writes it first): hours of a long rebuild are not lost to a Ctrl-C or a shutdown.
    signal_scope signals(s.options.handle_signals);
    const std::function<bool()> stopping = stop_condition(s, signals);
    std::uint64_t applied = 0;
    try {
        applied = e->backfill(v, options, stopping);
    } catch (...) {
        if (progress) progress->finish(false, 0);
        throw;
    }
    const runner_status after = e->status_of(v);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const bool stopped = after.position < before.head && stopping();
    if (progress) progress->finish(!stopped, after.position);
    const double scanned = static_cast<double>(after.position > before.position ? after.position - before.position : 0);
    const std::string rate =
        seconds > 0 && scanned > 0
            ? fmt::format(" ({} events/s)", group_digits(static_cast<std::uint64_t>(scanned / seconds)))
            : std::string();
    if (stopped) {
        s.out << fmt::format(
            "stopped backfill of {} ({}): {} events applied and kept, now at position {} of {} in {}{}{}; it is {}\n",
            v, stop_reason(signals.received()), group_digits(applied), group_digits(after.position),
            group_digits(before.head), elapsed_text(seconds), rate, bulk_summary(before, after),
            to_string(after.state));
        s.out << fmt::format("next: {} backfill {} (goes on from position {})\n", s.program, v,
                             group_digits(after.position));
        return 1;  // not done: a script must not go on to verify or switch
    }
    s.out << fmt::format("backfilled {}: {} events applied, now at position {} (head {}) in {}{}{}; it is {}\n", v,
                         group_digits(applied), group_digits(after.position), group_digits(after.head),
                         elapsed_text(seconds), rate, bulk_summary(before, after), to_string(after.state));
    if (auto other = e->serving_peer(v)) s.out << fmt::format("next: {} verify {} {}\n", s.program, *other, v);
    return 0;
}

inline int cmd_catch_up(const parsed_command& p, session& s) {
    std::vector<std::pair<entry_ptr, std::string_view>> targets;
    if (p.args.empty()) {
        for (auto* e : s.entries)
            for (auto v : e->versions()) targets.emplace_back(e, v);
    } else {
        auto [e, v] = find_projection_or_version(s, p.args[0]);
        if (v.empty())
            for (auto each : e->versions()) targets.emplace_back(e, each);
        else
            targets.emplace_back(e, v);
    }
    // As in backfill: SIGINT or SIGTERM ends the catch-up between two batches, keeping what it
    // applied, and the versions not reached yet are left for the next one.
    signal_scope signals(s.options.handle_signals);
    const std::function<bool()> stopping = stop_condition(s, signals);
    int status = 0;
    for (std::size_t i = 0; i < targets.size(); ++i) {
        auto [e, v] = targets[i];
        if (stopping()) {
            std::vector<std::string_view> left;
            for (std::size_t j = i; j < targets.size(); ++j) left.push_back(targets[j].second);
            s.out << fmt::format("stopped ({}) before {}\n", stop_reason(signals.received()), join(left));
            return 1;
        }
        e->refresh(v);
        const runner_status before = e->status_of(v);
        try {
            const auto applied = e->catch_up(v, false, stopping);  // refreshed just now
            if (!applied) {
                s.out << fmt::format("{}: deleted; skipped (run init {} to start it again)\n", v, v);
                continue;
            }
            const runner_status after = e->status_of(v);
            if (after.dormant) {
                s.out << fmt::format("{}: dormant (manual kick-off); run init {} to start it\n", v, v);
            } else if (after.lag != 0 && stopping()) {
                s.out << fmt::format("{}: stopped ({}) after {} events; position {}, head {}, lag {}\n", v,
                                     stop_reason(signals.received()), group_digits(*applied),
                                     group_digits(after.position), group_digits(after.head), group_digits(after.lag));
                status = 1;  // not caught up: the next catch-up goes on from there
            } else {
                s.out << fmt::format(
                    "{}: {} events applied; position {}, head {}, lag {}{}\n", v, group_digits(*applied),
                    group_digits(after.position), group_digits(after.head), group_digits(after.lag),
                    before.state == projection_state::declared && after.state != projection_state::declared
                        ? fmt::format("; initialized by its automatic kick-off, it is {}", to_string(after.state))
                    : before.state != after.state ? fmt::format("; it is {}", to_string(after.state))
                                                  : std::string());
            }
        } catch (const error& x) {
            s.err << x.what() << '\n';
            status = 1;
        }
    }
    return status;
}

/// The first 8 of a fingerprint's 16 hex digits: enough to tell two definitions apart at a glance
/// (the full one is in the catalog and in the refusal of a changed definition).
inline std::string short_fingerprint(std::string_view fingerprint) {
    return fingerprint.empty() ? std::string("-") : std::string(fingerprint.substr(0, 8));
}

/// A version's state for the status table: "stopped (caught_up)" after an error stopped its
/// runner (the catalog's state in brackets: where the version stands in the deployment).
inline std::string state_text(const runner_status& st) {
    if (st.state != projection_state::stopped) return std::string(to_string(st.state));
    return fmt::format("stopped ({})", to_string(st.catalog_state));
}

inline int cmd_status(const parsed_command& p, session& s) {
    std::vector<std::pair<entry_ptr, std::string_view>> targets;  // version empty: all of it
    if (p.args.empty()) {
        for (auto* e : s.entries) targets.emplace_back(e, std::string_view{});
    } else {
        targets.push_back(find_projection_or_version(s, p.args[0]));
    }
    if (targets.empty()) s.out << "no projections are registered\n";
    bool first = true;
    for (auto [e, only] : targets) {
        const std::vector<version_status> all = e->status();  // refreshed
        const auto routing = e->routing();
        if (!first) s.out << '\n';
        first = false;
        s.out << e->base_name() << '\n';
        text_table t({"version", "state", "live", "position", "head", "lag", "partitioning", "traffic", "fingerprint",
                      "retained until", "error / note"},
                     {false, false, false, true, true, true, false, false, false, false, false}, table_header::plain);
        std::vector<std::string> notes;
        std::vector<std::string_view> serving;  // in the catalog: one, unless a switch did not finish
        for (const version_status& vs : all) {
            const std::string_view v = vs.name;
            if (!only.empty() && v != only) continue;
            const runner_status& st = vs.status;
            std::string note = st.error ? fmt::format("error: {}", *st.error) : st.note;
            if (note.empty() && st.state == projection_state::declared && !vs.manual_kickoff)
                note = "not initialized: automatic kick-off, the next catch-up or run initializes it";
            t.add({std::string(v), state_text(st), st.live ? "yes" : "no", group_digits(st.position),
                   group_digits(st.head), group_digits(st.lag), std::string(st.partitioning), vs.traffic,
                   short_fingerprint(st.fingerprint), st.retain_until.empty() ? "-" : st.retain_until, note});
            const projection_state recorded = st.catalog_state;
            if (recorded == projection_state::serving) serving.push_back(v);
            if (routing && routing->primary == v && recorded != projection_state::serving &&
                caught_up_or_later(recorded))
                notes.push_back(
                    fmt::format("the router's primary {} is {} in the catalog, not serving; run '{} "
                                "switch {} --to {}' to record it",
                                v, to_string(recorded), s.program, e->base_name(), v));
            if (routing && (routing->primary == v || routing->candidate == v) &&
                (recorded == projection_state::deleted || recorded == projection_state::declared))
                notes.push_back(
                    fmt::format("WARNING: the router sends queries to {}, which is {}", v, to_string(recorded)));
        }
        if (serving.size() > 1)
            notes.push_back(fmt::format(
                "{} serving in the catalog: a switch did not finish, or the catalog was edited{}; run '{} switch {} "
                "--to <version>' to retire the other{}",
                serving.size() == 2 ? fmt::format("{} and {} are both", serving[0], serving[1])
                                    : fmt::format("{} are all", join(serving)),
                routing ? fmt::format(" (the router's primary is {})", routing->primary) : std::string(), s.program,
                e->base_name(), serving.size() == 2 ? "" : "s"));
        s.out << t.render("  ");
        if (routing)
            s.out << "  router " << routing->to_string() << '\n';
        else
            s.out << "  router: none registered\n";
        for (const auto& n : notes) s.out << "  note: " << n << '\n';
    }
    return 0;
}

/// A table's suffix among its version's tables: "" for the main table ("customer_orders_v2"),
/// "transactions" for "customer_orders_v2_transactions".
inline std::string table_suffix(std::string_view table, std::string_view version) {
    return table.size() > version.size() + 1 ? std::string(table.substr(version.size() + 1)) : std::string();
}

inline int cmd_verify(const parsed_command& p, session& s) {
    auto [ea, a] = find_version(s, p.args[0]);
    auto [eb, b] = find_version(s, p.args[1]);
    if (ea != eb)
        throw usage_error(fmt::format("{} and {} are versions of different projections ({} and {})", a, b,
                                      ea->base_name(), eb->base_name()));
    if (a == b) throw usage_error(fmt::format("give two different versions, not {} twice", a));
    verify_request request;
    for (const auto& value : p.values("expect-change")) {
        std::size_t pos = 0;
        while (pos <= value.size()) {
            const std::size_t comma = std::min(value.find(',', pos), value.size());
            if (comma > pos) request.expected_changes.push_back(value.substr(pos, comma - pos));
            pos = comma + 1;
        }
    }
    request.keys = p.values("key");
    // the tables to compare: the one --table names, or every pair of the same suffix
    std::vector<verify_request> requests;
    if (auto table = p.value("table")) {
        request.table = *table;
        requests.push_back(request);
    } else {
        const std::string_view va = a;  // a structured binding: lambdas capture a copy (clang 14)
        const auto tables_a = ea->tables_of(a);
        for (const auto& t : ea->tables_of(b)) {
            const std::string suffix = table_suffix(t, b);
            const bool paired = std::any_of(tables_a.begin(), tables_a.end(),
                                            [&](const std::string& ta) { return table_suffix(ta, va) == suffix; });
            if (!paired) {
                s.err << fmt::format("note: {} has no counterpart in {}: not compared\n", t, a);
                continue;
            }
            verify_request r = request;
            r.table = suffix;
            if (!suffix.empty()) r.keys.clear();  // --key names rows of the main tables
            requests.push_back(std::move(r));
        }
        for (const auto& t : tables_a)
            if (std::none_of(requests.begin(), requests.end(),
                             [&](const verify_request& r) { return r.table == table_suffix(t, va); }))
                s.err << fmt::format("note: {} has no counterpart in {}: not compared\n", t, b);
    }
    for (const auto& r : requests) ea->validate(a, b, r);
    for (auto v : {a, b}) {
        const projection_state st = ea->refresh(v);
        if (st == projection_state::declared || st == projection_state::deleted) break;  // verify refuses it
        const runner_status rs = ea->status_of(v);
        if (!caught_up_or_later(st))
            s.err << fmt::format("note: {} is {} (position {} of {}): the comparison is with a partial table\n", v,
                                 to_string(st), rs.position, rs.head);
        else if (rs.lag != 0)
            s.err << fmt::format("note: {} is {} events behind the head; run '{} catch-up' for an exact comparison\n",
                                 v, rs.lag, s.program);
    }
    int status = 0;
    std::vector<std::string> json;
    for (const auto& r : requests) {
        const verify::report report = ea->verify(a, b, r);
        status = std::max(status, verify::exit_status(report));
        if (p.has("json")) {
            json.push_back(verify::to_json(report));
            continue;
        }
        if (requests.size() > 1 && report.structure)
            s.out << fmt::format("== {} against {}\n", report.structure->a_name, report.structure->b_name);
        s.out << verify::to_text(report);
    }
    if (p.has("json")) s.out << (json.size() == 1 ? json[0] : fmt::format("[{}]", fmt::join(json, ","))) << '\n';
    return status;
}

// ---- traffic -----------------------------------------------------------------------------------------

inline int cmd_switch(const parsed_command& p, session& s) {
    const auto to = p.value("to");
    if (!to) throw usage_error("missing option --to <version>");
    std::optional<unsigned> basis_points;
    if (auto percent = p.value("percent")) {
        basis_points = parse_percent(*percent);
        if (!basis_points)
            throw usage_error(
                fmt::format("--percent '{}': give a share from 0 to 100, with at most two decimals (e.g. 10, 12.5)",
                            shown(*percent)));
    }
    entry_ptr e = find_projection(s, p.args[0]);
    const auto& vs = e->versions();
    const auto found = std::find(vs.begin(), vs.end(), *to);
    if (found == vs.end())
        throw name_error(
            fmt::format("unknown version '{}' of {}; its versions are: {}", shown(*to), e->base_name(), join(vs)));
    const std::string_view v = *found;
    if (e->has_router() && !e->routes(v))
        throw name_error(fmt::format("the router of {} does not route to {}; the versions it routes to are: {}",
                                     e->base_name(), v, join(e->routing()->versions)));
    if (basis_points && *basis_points < routing_buckets) {
        e->rollout_basis_points(v, *basis_points);  // refused for a version that has not caught up
        const auto routing = e->routing();
        s.out << fmt::format("{}: {} now gets {} of the queries (candidate); {} serves the rest\n", e->base_name(), v,
                             router_status::format_share(*basis_points), routing->primary);
        s.out << "  router " << routing->to_string() << '\n';
        return 0;
    }
    e->switch_to(v);  // refused for a version that has not caught up, before any traffic moves
    std::vector<std::string> retired;
    for (auto other : vs)
        if (other != v && e->status_of(other).state == projection_state::retired) retired.emplace_back(other);
    s.out << fmt::format(
        "{}: {} now serves every query{}\n", e->base_name(), v,
        retired.empty() ? std::string() : fmt::format("; {} retired (still following, for a rollback)", join(retired)));
    if (auto routing = e->routing())
        s.out << "  router " << routing->to_string() << '\n';
    else
        s.out << fmt::format("  no query router is registered for {}: only the catalog records it\n", e->base_name());
    return 0;
}

inline int cmd_dead_letters(const parsed_command& p, session& s) {
    auto [e, v] = find_version(s, p.args[0]);
    const std::vector<dead_letter> letters = e->dead_letters_of(v);
    if (letters.empty()) {
        s.out << fmt::format("{} has no dead letters\n", v);
        return 0;
    }
    const auto parked = static_cast<std::size_t>(
        std::count_if(letters.begin(), letters.end(), [](const dead_letter& d) { return d.parked; }));
    s.out << fmt::format("{}: {} dead letter{}{}\n", v, letters.size(), letters.size() == 1 ? "" : "s",
                         parked == 0 ? std::string() : fmt::format(" ({} parked behind an earlier failure)", parked));
    text_table t({"position", "stream", "aggregate", "event", "parked", "reason"},
                 {true, false, false, false, false, false}, table_header::plain);
    for (const dead_letter& d : letters)
        t.add({group_digits(d.position), shown(d.stream), shown(d.aggregate_id), shown(d.event_type),
               d.parked ? "yes" : "no", shown(d.reason)});
    s.out << t.render("  ");
    return 0;
}

inline int cmd_live(const parsed_command& p, session& s) {
    auto [e, v] = find_version(s, p.args[0]);
    e->make_live(v);
    s.out << fmt::format("{} is live: the events it emits are appended from now on (it is {})\n", v,
                         to_string(e->refresh(v)));
    return 0;
}

inline int cmd_rollback(const parsed_command& p, session& s) {
    entry_ptr e = find_projection(s, p.args[0]);
    const rollback_result r = e->rollback();
    if (r.cancelled_candidate)
        s.out << fmt::format("{}: cancelled the rollout of {}; {} serves every query\n", e->base_name(), r.version,
                             r.primary);
    else
        s.out << fmt::format("{}: rolled back to {}, which serves every query again; {} is {}\n", e->base_name(),
                             r.version, r.primary, to_string(e->refresh(r.primary)));
    s.out << "  router " << e->routing()->to_string() << '\n';
    return 0;
}

inline int cmd_predicate(const parsed_command& p, session& s) {
    entry_ptr e = find_projection(s, p.args[0]);
    const auto on = p.value("on");
    if (on && p.has("off")) throw usage_error("give --on NAME or --off, not both");
    if (const auto routing = on ? e->routing() : std::nullopt;
        routing && std::find(routing->predicates.begin(), routing->predicates.end(), *on) == routing->predicates.end())
        // A name typed wrong, like an unknown version: a usage error, listing the valid ones.
        throw name_error(unknown_predicate(*on, routing->predicates, "router.register_predicate(name, fn)"));
    if (on || p.has("off")) {
        e->set_predicate(on ? std::optional<std::string_view>(*on) : std::nullopt);
        s.out << (on ? fmt::format("{}: predicate {} is on: the keys it accepts go to the candidate\n", e->base_name(),
                                   *on)
                     : fmt::format("{}: the predicate is off: keys go by the share alone\n", e->base_name()));
    } else {
        e->refresh();
    }
    const auto routing = e->routing();
    if (!routing) throw error(fmt::format("projectionist: {} has no query router, so no predicate", e->base_name()));
    s.out << fmt::format("  predicates: {}; on: {}\n",
                         routing->predicates.empty() ? std::string("(none registered)") : join(routing->predicates),
                         routing->predicate_name.value_or("none"));
    s.out << "  router " << routing->to_string() << '\n';
    return 0;
}

// ---- removal -----------------------------------------------------------------------------------------

inline int cmd_reset(const parsed_command& p, session& s) {
    auto [e, v] = find_version(s, p.args[0]);
    e->reset(v);  // refused while the router sends it queries or it serves; drained first
    s.out << fmt::format(
        "reset {}: its tables and checkpoint are empty and it is not live; it is {}\nnext: {} backfill {}\n", v,
        to_string(e->refresh(v)), s.program, v);
    return 0;
}

inline int cmd_delete(const parsed_command& p, session& s) {
    auto [e, v] = find_version(s, p.args[0]);
    // Refused while the router sends it queries, it serves, or it is retained; drained first.
    const auto tables = e->remove(v, {.force = p.has("force"), .by = "delete"});
    s.out << fmt::format(
        "deleted {}: dropped its tables ({}) and checkpoint; the catalog keeps it as deleted, so no process "
        "re-creates it but an explicit init, and the router has forgotten it\n",
        v, join(tables));
    return 0;
}

}  // namespace projectionist::detail::cli
