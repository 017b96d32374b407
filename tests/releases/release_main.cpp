// main() of one release program: RELEASE_ENTRY, a compile definition, names its entry point in
// releases.cpp (release_1_main, release_2_main, ...).
#include "release_entries.hpp"

int main(int argc, char** argv) {
    return release::RELEASE_ENTRY(argc, argv);
}
