#pragma once

/// An application's own commands on the embedded command line, beside init, backfill, switch...:
///
///     cli.add_command({.name = "orders",
///                      .synopsis = "<order id>",
///                      .min_args = 1, .max_args = 1,
///                      .summary = "show an order as the dashboard sees it",
///                      .run = [&](projectionist::command_call& call) {
///                          call.out() << describe(get_order(call.args()[0])) << '\n';
///                          return 0;
///                      }});
///
/// The command is parsed like the built-in ones (its options, `--help`, the count of its
/// arguments), listed by `help`, and its exit status is what `run` returns; a
/// `projectionist::error` it throws is printed with exit status 1, `call.usage_error(...)` prints
/// the message and the command's usage with exit status 2.

#include <cstddef>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <projectionist/cli/parser.hpp>
#include <projectionist/deploy/controller/any_controller.hpp>

namespace projectionist {

/// One option of an application's command, `--name VALUE` (or a flag, without `value_name`).
struct command_option {
    std::string name{};        ///< without the dashes
    std::string value_name{};  ///< empty: a flag without a value
    bool repeatable = false;
    std::string help{};
};

class command_call;

/// An application's command: its name (a-z, 0-9 and '-', not a built-in one), what `help` shows,
/// the count of its positional arguments, its options and what it does.
struct command_definition {
    std::string name{};
    std::string synopsis{};  ///< after the name, e.g. "<order id> [--json]"
    std::size_t min_args = 0;
    std::size_t max_args = 0;
    std::string summary{};      ///< one line for `help`
    std::string description{};  ///< for `<command> --help`; end each line with '\n'
    std::vector<command_option> options{};
    std::function<int(command_call&)> run{};
};

/// What an application's command is given: its arguments and options as parsed, the streams, the
/// program's name, and the registered projections' controllers.
class command_call {
public:
    command_call(const detail::cli::parsed_command& parsed, std::ostream& out, std::ostream& err, std::string program,
                 const std::vector<any_controller*>& controllers)
        : parsed_(parsed), out_(out), err_(err), program_(std::move(program)), controllers_(controllers) {}

    [[nodiscard]] const std::vector<std::string>& args() const noexcept { return parsed_.args; }
    /// Whether the option was given.
    [[nodiscard]] bool has(std::string_view option) const { return parsed_.has(option); }
    /// The option's value (its first, for a repeatable one), or nullopt.
    [[nodiscard]] std::optional<std::string> value(std::string_view option) const { return parsed_.value(option); }
    /// Every value of a repeatable option, in order.
    [[nodiscard]] std::vector<std::string> values(std::string_view option) const { return parsed_.values(option); }

    [[nodiscard]] std::ostream& out() const noexcept { return out_; }
    [[nodiscard]] std::ostream& err() const noexcept { return err_; }
    [[nodiscard]] const std::string& program() const noexcept { return program_; }

    /// The controller of projection `base_name`; a name error (exit status 2) lists the projections.
    [[nodiscard]] any_controller& controller(std::string_view base_name) const {
        for (auto* c : controllers_)
            if (c->base_name() == base_name) return *c;
        std::vector<std::string_view> names;
        for (const auto* c : controllers_) names.push_back(c->base_name());
        throw detail::name_error(fmt::format("unknown projection '{}'; the projections are: {}",
                                             detail::shown(base_name), detail::join(names)));
    }

    /// Refuses the arguments as given: the message and the command's usage, exit status 2.
    [[noreturn]] void usage_error(const std::string& message) const { throw detail::usage_error(message); }

private:
    const detail::cli::parsed_command& parsed_;
    std::ostream& out_;
    std::ostream& err_;
    std::string program_;
    const std::vector<any_controller*>& controllers_;
};

namespace detail::cli {

/// An added command: the definition, and the spec the parser reads (views into the definition).
struct custom_command {
    command_definition definition;
    command_spec spec;

    explicit custom_command(command_definition d) : definition(std::move(d)) {
        spec = {command_id::custom,  definition.name,    definition.synopsis,    definition.min_args,
                definition.max_args, definition.summary, definition.description, {}};
        for (const auto& o : definition.options) spec.options.push_back({o.name, o.value_name, o.repeatable, o.help});
    }
    custom_command(const custom_command&) = delete;
    custom_command& operator=(const custom_command&) = delete;
};

}  // namespace detail::cli

}  // namespace projectionist
