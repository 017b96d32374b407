// clang-format off
// expect-error: error: .*projectionist_compile_fail_sanity_value
// clang-format on
//
// Sanity case: fails for a trivial reason (an undeclared name), so a broken harness that reports
// every compilation as "failed as expected", or never reads the output, is caught. The twin also
// proves that the library's headers are found with the include directories the harness passes.
#include <projectionist/projectionist.hpp>

int sanity() {
    return projectionist_compile_fail_sanity_value + static_cast<int>(projectionist::max_identifier_length);
}
