#pragma once

/// `projectionist::command_line`: the registered projections, `main`/`run`, the help texts, and
/// the mapping of errors to exit statuses. The rules of the deployment are the controller's
/// (deploy/controller.hpp); see <projectionist/cli.hpp> for the commands.

#include <algorithm>
#include <cerrno>
#include <exception>
#include <iostream>
#include <list>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>

#include <projectionist/cli/commands.hpp>
#include <projectionist/cli/custom_command.hpp>
#include <projectionist/cli/options.hpp>
#include <projectionist/cli/parser.hpp>
#include <projectionist/cli/rollout_commands.hpp>
#include <projectionist/cli/run.hpp>
#include <projectionist/cli/usage.hpp>
#include <projectionist/deploy/controller.hpp>
#include <projectionist/deploy/deployment.hpp>
#include <projectionist/deploy/router.hpp>
#include <projectionist/detail/text.hpp>
#include <projectionist/error.hpp>

namespace projectionist {

/// The command line over the registered projections; see <projectionist/cli.hpp>. Use it as
/// `projectionist::command_line`. A template only so that its members are compiled in the
/// translation units that use it.
template <class Unused = void>
class basic_command_line {
public:
    explicit basic_command_line(command_line_options options = {}) : options_(std::move(options)) {}
    basic_command_line(const basic_command_line&) = delete;
    basic_command_line& operator=(const basic_command_line&) = delete;

    /// Registers a projection's deployment and its query router (over the same versions, or a
    /// subset of them), and what `verify` may find different between its versions. Both are held
    /// by reference. Throws `projectionist::error` if the projection is registered already or the
    /// verify settings name an unknown version.
    template <class... Runners, class... Versions>
    basic_command_line& add(deployment<Runners...>& d, router<Versions...>& r, verify_settings settings = {}) {
        static_assert(detail::router_fits<deployment<Runners...>>(std::type_identity<router<Versions...>>{}),
                      "projectionist: command_line::add(deployment, router): the router must route versions of the "
                      "deployment's projection, each of them one of the deployment's versions");
        check_new(deployment<Runners...>::base_name);
        return add_owned(
            std::make_unique<controller<deployment<Runners...>, router<Versions...>>>(d, r, std::move(settings)));
    }

    /// Registers a projection without a query router: `switch` records which version serves in
    /// the catalog only; `--percent` and `rollback` are not available.
    template <class... Runners>
    basic_command_line& add(deployment<Runners...>& d, no_router_t = no_router, verify_settings settings = {}) {
        check_new(deployment<Runners...>::base_name);
        return add_owned(
            std::make_unique<controller<deployment<Runners...>, no_router_t>>(d, no_router, std::move(settings)));
    }

    /// Registers an application's own controller (held by reference): the command line and the
    /// application then drive the same one. Its options (drain timeout, the program named in its
    /// refusals) are its own.
    basic_command_line& add(any_controller& c) {
        check_new(c.base_name());
        entries_.push_back(&c);
        return *this;
    }

    /// Registers a projection's rollout (held by reference) for the `rollout` command; the
    /// projection itself must be registered too.
    basic_command_line& add(any_rollout& r) {
        for (const auto* other : rollouts_)
            if (other->projection() == r.projection())
                throw error(fmt::format("projectionist: command_line::add: a rollout of '{}' is registered already",
                                        r.projection()));
        rollouts_.push_back(&r);
        return *this;
    }

    /// Adds an application's own command (see cli/custom_command.hpp). Throws `error` for a
    /// malformed name, a name taken (by a built-in command or an added one), or no `run`.
    basic_command_line& add_command(command_definition command) {
        const std::string& name = command.name;
        const bool well_formed =
            !name.empty() && name[0] >= 'a' && name[0] <= 'z' && std::all_of(name.begin(), name.end(), [](char c) {
                return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
            });
        if (!well_formed)
            throw error(fmt::format(
                "projectionist: command_line::add_command('{}'): a command's name is a-z, then a-z, 0-9 and '-'",
                detail::shown(name)));
        if (find_command(name) != nullptr)
            throw error(fmt::format("projectionist: command_line::add_command('{}'): there is a command '{}' already",
                                    name, name));
        if (!command.run)
            throw error(fmt::format("projectionist: command_line::add_command('{}'): give it a run", name));
        if (command.min_args > command.max_args)
            throw error(
                fmt::format("projectionist: command_line::add_command('{}'): min_args is above max_args", name));
        added_.emplace_back(std::move(command));
        return *this;
    }

    /// The registered projections' base names, in registration order.
    [[nodiscard]] std::vector<std::string_view> projections() const { return detail::cli::projections_of(entries_); }
    /// Every registered version's name.
    [[nodiscard]] std::vector<std::string_view> versions() const { return detail::cli::versions_of(entries_); }

    /// The program's main(): `std::cout`, `std::cerr`, the program name from argv[0].
    int main(int argc, const char* const* argv) {
        std::vector<std::string> args;
        for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
        if (argc > 0 && argv[0] != nullptr) {
            const std::string_view path(argv[0]);
            const std::size_t slash = path.rfind('/');
            argv0_ = std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
        }
        return run(args, std::cout, std::cerr);
    }

    /// Runs one command (`args` without the program name) and returns the exit status: 0
    /// success, 1 a refused or failed operation (or a failing verify), 2 a usage error. `out` is
    /// flushed at the end: if it could not be written (a full disk, say), `err` says so and the
    /// status is at least 1, since a script would otherwise read a partial answer as the whole.
    int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
        int status = run_command(args, out, err);
        errno = 0;
        out.flush();
        if (!out) {
            const int cause = errno;
            err << fmt::format(
                "{}{}: cannot write the output: {}; what the command did stands, but its output is incomplete: "
                "check where the output goes\n",
                program(), args.empty() ? std::string() : " " + detail::shown(args[0]),
                cause != 0 ? std::system_category().message(cause) : std::string("the output stream failed"));
            status = std::max(status, 1);
        }
        return status;
    }

    /// The text of `help`: every command, the registered projections, the exit statuses.
    [[nodiscard]] std::string general_usage() const {
        std::vector<const detail::cli::command_spec*> added;
        for (const auto& c : added_) added.push_back(&c.spec);
        return detail::cli::general_usage(program(), entries_, added);
    }

    /// The text of `<command> --help`; empty for an unknown command.
    [[nodiscard]] std::string command_usage(std::string_view command) const {
        const auto* spec = find_command(command);
        return spec ? detail::cli::command_usage(program(), *spec, entries_) : std::string();
    }

private:
    /// run() without the check of the output.
    int run_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
        const bool terminal = options_.terminal.value_or(&out == &std::cout && ::isatty(STDOUT_FILENO) == 1);
        if (args.empty()) {
            err << general_usage();
            return 2;
        }
        if (args[0] == "--help" || args[0] == "-h") {
            out << general_usage();
            return 0;
        }
        const detail::cli::command_spec* spec = find_command(args[0]);
        if (spec == nullptr) {
            err << fmt::format("{}: unknown command '{}'; the commands are: {}\nRun '{} help' for their usage.\n",
                               program(), detail::shown(args[0]), detail::join(command_names()), program());
            return 2;
        }
        const controller_options controls{.drain_timeout = options_.drain_timeout, .program = program()};
        for (auto& owned : owned_) owned->set_options(controls);
        try {
            const auto p = detail::cli::parse(*spec, args, 1);
            if (p.help) {
                out << detail::cli::command_usage(program(), *spec, entries_);
                return 0;
            }
            detail::cli::session s{out, err, terminal, options_, program(), entries_};
            return dispatch(p, s);
        } catch (const detail::usage_error& e) {
            err << fmt::format("{} {}: {}\n\n", program(), spec->name, e.what())
                << detail::cli::command_usage(program(), *spec, entries_);
            return 2;
        } catch (const detail::name_error& e) {
            err << fmt::format("{} {}: {}\n", program(), spec->name, e.what());
            return 2;
        } catch (const error& e) {  // state_error and every other projectionist::error
            err << e.what() << '\n';
            return 1;
        } catch (const std::exception& e) {
            err << fmt::format("{} {}: failed: {}\n", program(), spec->name, e.what());
            return 1;
        }
    }

    [[nodiscard]] std::string program() const {
        if (!options_.program_name.empty()) return options_.program_name;
        if (!argv0_.empty()) return argv0_;
        return "projectionist";
    }

    /// A built-in command, or one the application added; null if none has that name.
    [[nodiscard]] const detail::cli::command_spec* find_command(std::string_view name) const {
        if (const auto* spec = detail::cli::find_command(name)) return spec;
        for (const auto& c : added_)
            if (c.spec.name == name) return &c.spec;
        return nullptr;
    }

    [[nodiscard]] std::vector<std::string_view> command_names() const {
        std::vector<std::string_view> names;
        for (const auto& c : detail::cli::commands()) names.push_back(c.name);
        for (const auto& c : added_) names.push_back(c.spec.name);
        return names;
    }

    void check_new(std::string_view base_name) const {
        for (const auto* other : entries_)
            if (other->base_name() == base_name)
                throw error(
                    fmt::format("projectionist: command_line::add: projection '{}' is registered already", base_name));
    }

    basic_command_line& add_owned(std::unique_ptr<any_controller> c) {
        entries_.push_back(c.get());
        owned_.push_back(std::move(c));
        return *this;
    }

    int dispatch(const detail::cli::parsed_command& p, detail::cli::session& s) {
        using detail::cli::command_id;
        switch (p.spec->id) {
            case command_id::init: return detail::cli::cmd_init(p, s);
            case command_id::backfill: return detail::cli::cmd_backfill(p, s);
            case command_id::catch_up: return detail::cli::cmd_catch_up(p, s);
            case command_id::status: return detail::cli::cmd_status(p, s);
            case command_id::dead_letters: return detail::cli::cmd_dead_letters(p, s);
            case command_id::verify: return detail::cli::cmd_verify(p, s);
            case command_id::switch_traffic: return detail::cli::cmd_switch(p, s);
            case command_id::live: return detail::cli::cmd_live(p, s);
            case command_id::rollback: return detail::cli::cmd_rollback(p, s);
            case command_id::reset: return detail::cli::cmd_reset(p, s);
            case command_id::remove: return detail::cli::cmd_delete(p, s);
            case command_id::run: return detail::cli::cmd_run(p, s);
            case command_id::rollout: return detail::cli::cmd_rollout(p, s, rollouts_, detail::rollout::now_ms());
            case command_id::predicate: return detail::cli::cmd_predicate(p, s);
            case command_id::help: return help(p, s);
            case command_id::custom: return run_added(p, s);
        }
        return 2;
    }

    int help(const detail::cli::parsed_command& p, detail::cli::session& s) const {
        if (p.args.empty()) {
            s.out << general_usage();
            return 0;
        }
        const auto* spec = find_command(p.args[0]);
        if (spec == nullptr)
            throw detail::name_error(fmt::format("unknown command '{}'; the commands are: {}", detail::shown(p.args[0]),
                                                 detail::join(command_names())));
        s.out << detail::cli::command_usage(program(), *spec, entries_);
        return 0;
    }

    int run_added(const detail::cli::parsed_command& p, detail::cli::session& s) {
        for (auto& c : added_)
            if (&c.spec == p.spec) {
                command_call call(p, s.out, s.err, s.program, entries_);
                return c.definition.run(call);
            }
        return 2;
    }

    command_line_options options_;
    std::list<detail::cli::custom_command> added_;  // a list: the parser holds pointers to the specs
    std::string argv0_;
    std::vector<any_controller*> entries_;
    std::vector<std::unique_ptr<any_controller>> owned_;
    std::vector<any_rollout*> rollouts_;
};

/// The command line: `projectionist::command_line cli; cli.add(deployment, router); return cli.main(argc, argv);`
using command_line = basic_command_line<>;

}  // namespace projectionist
