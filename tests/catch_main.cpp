// The main of most test programs: Catch2's session.
#include <catch_session.hpp>

int main(int argc, char* argv[]) {
    return run_catch_session(argc, argv);
}
