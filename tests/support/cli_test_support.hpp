#pragma once
// What the tests of the command line share (tests/unit/cli, the backend suite): options for a test,
// and one command run to its outcome.

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include <projectionist/cli.hpp>

namespace cli_test {

/// Options for tests: a fixed program name, plain output, no signal handlers.
inline projectionist::command_line_options test_options() {
    using namespace std::chrono_literals;
    projectionist::command_line_options o;
    o.program_name = "app";
    o.terminal = false;
    o.handle_signals = false;
    o.poll_interval = 5ms;
    o.drain_timeout = 1s;
    return o;
}

/// A command's exit status and what it printed.
struct outcome {
    int status = -1;
    std::string out, err;
};

inline outcome run(projectionist::command_line& c, std::vector<std::string> args) {
    std::ostringstream out, err;
    outcome o;
    o.status = c.run(args, out, err);
    o.out = out.str();
    o.err = err.str();
    return o;
}

}  // namespace cli_test
