// The four release programs' code, compiled once: each release's entry point over its own
// versions (release_1.hpp, release_2.hpp, release_2_changed.hpp, release_3.hpp). What the releases
// share (the stores, the command line, the writer) is compiled here once instead of once per
// program; each program is release_main.cpp calling its own entry, and keeps only that entry's
// code (CMakeLists.txt: one section per function, unreferenced sections dropped at link time).
#include "release_1.hpp"
#include "release_2.hpp"
#include "release_2_changed.hpp"
#include "release_3.hpp"
#include "release_entries.hpp"

namespace release {

int release_1_main(int argc, char** argv) {
    return main<release_1::deployment, release_1::router>(argc, argv);
}
int release_2_main(int argc, char** argv) {
    return main<release_2::deployment, release_2::router>(argc, argv);
}
int release_2_changed_main(int argc, char** argv) {
    return main<release_2_changed::deployment, release_2_changed::router>(argc, argv);
}
int release_3_main(int argc, char** argv) {
    return main<release_3::deployment, release_3::router>(argc, argv);
}

}  // namespace release
