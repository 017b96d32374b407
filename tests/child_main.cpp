// The main of the test programs whose tests start the program again as a child process
// (support/child_entry.hpp): the child entry that argv[1] names, or else the Catch2 session.
#include <string_view>

#include <catch_session.hpp>
#include <child_entry.hpp>

int main(int argc, char* argv[]) {
    if (argc >= 2) {
        const auto& entries = child_entries::all();
        if (const auto it = entries.find(std::string_view(argv[1])); it != entries.end()) return it->second(argc, argv);
    }
    return run_catch_session(argc, argv);
}
