#pragma once

/// The help texts: `help` (every command, the registered projections, the exit statuses) and
/// `<command> --help` (its synopsis, description, options and the names it accepts).

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <projectionist/cli/commands.hpp>
#include <projectionist/cli/parser.hpp>
#include <projectionist/deploy/controller/any_controller.hpp>
#include <projectionist/detail/text.hpp>

namespace projectionist::detail::cli {

inline std::string general_usage(std::string_view program, const std::vector<any_controller*>& entries,
                                 const std::vector<const command_spec*>& added = {}) {
    std::string out = fmt::format("usage: {} <command> [arguments] [--help]\n\n", program);
    out += "Blue-green deployment of this application's projections, version by version.\n\ncommands:\n";
    text_table t({"", ""}, {false, false}, table_header::hidden);
    for (const auto& c : commands()) {
        const std::size_t cut = c.synopsis.find(" [--");
        t.add({fmt::format("{} {}", c.name, c.synopsis.substr(0, cut)), std::string(c.summary)});
    }
    out += t.render("  ");
    if (!added.empty()) {
        out += "\nthis application's commands:\n";
        text_table own({"", ""}, {false, false}, table_header::hidden);
        for (const auto* c : added)
            own.add({fmt::format("{} {}", c->name, c->synopsis.substr(0, c->synopsis.find(" [--"))),
                     std::string(c->summary)});
        out += own.render("  ");
    }
    out += "\nprojections:\n";
    if (entries.empty()) out += "  (none registered)\n";
    for (const auto* e : entries)
        out += fmt::format("  {}: {}{}\n", e->base_name(), join(e->versions()),
                           e->has_router() ? "" : " (no query router)");
    out += fmt::format(
        "\nexit status: 0 success (verify: PASS), 1 a refused or failed operation (verify: FAIL), 2 a usage "
        "error.\nRun '{} <command> --help' for a command's options.\n",
        program);
    return out;
}

inline std::string command_usage(std::string_view program, const command_spec& spec,
                                 const std::vector<any_controller*>& entries) {
    std::string out = fmt::format("usage: {} {} {}\n", program, spec.name, spec.synopsis);
    out += fmt::format("\n{}.\n", spec.summary);
    if (!spec.description.empty()) out += fmt::format("\n{}", spec.description);
    out += "\noptions:\n";
    text_table t({"", ""}, {false, false}, table_header::hidden);
    for (const auto& o : spec.options)
        t.add({o.value_name.empty() ? fmt::format("--{}", o.name) : fmt::format("--{} {}", o.name, o.value_name),
               std::string(o.help)});
    t.add({"--help", "show this text"});
    out += t.render("  ");
    if (spec.id != command_id::help && spec.id != command_id::run && spec.id != command_id::custom) {
        if (spec.synopsis.find("<projection>") != std::string_view::npos)
            out += fmt::format("\nprojections: {}\n", join(projections_of(entries)));
        if (spec.synopsis.find("<version") != std::string_view::npos)
            out += fmt::format("\nversions: {}\n", join(versions_of(entries)));
    }
    return out;
}

}  // namespace projectionist::detail::cli
