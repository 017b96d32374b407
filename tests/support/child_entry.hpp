#pragma once
// A test program that starts itself again as a child process (a worker, a process to kill) names
// the child's entry point here, under the flag the parent passes first on the child's command line:
//
//     const child_entries::entry worker{"--failover-global-worker", [](int argc, char* argv[]) { ... }};
//
// The program's main (tests/child_main.cpp, library projectionist_catch_child_main) runs the entry
// that argv[1] names, or else the Catch2 session. Several such tests can then share one program.
// A flag is unique within a program: a second entry of the same flag ends the program, with a
// message, before any test runs.

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace child_entries {

using main_function = int (*)(int argc, char* argv[]);

inline std::map<std::string, main_function, std::less<>>& all() {
    static std::map<std::string, main_function, std::less<>> entries;
    return entries;
}

struct entry {
    entry(std::string_view flag, main_function run) {
        if (!all().emplace(std::string(flag), run).second) {
            std::fprintf(stderr, "two child process entries are named %.*s\n", static_cast<int>(flag.size()),
                         flag.data());
            std::abort();
        }
    }
};

}  // namespace child_entries
