#pragma once
// The release programs' entry points (releases.cpp): argv as main() receives it, argv[1] the
// database, the command line after it (release_app.hpp).

namespace release {

int release_1_main(int argc, char** argv);
int release_2_main(int argc, char** argv);
int release_2_changed_main(int argc, char** argv);
int release_3_main(int argc, char** argv);

}  // namespace release
