#pragma once
// Runs Catch2's session on a test program's command line: the mains of the test programs
// (catch_main.cpp, child_main.cpp) call it; catch_session.cpp defines it, where Catch2's
// implementation is compiled once for every test program.

int run_catch_session(int argc, char* argv[]);
