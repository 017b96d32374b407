// Twin of sanity.fail.cpp: the name is declared.
#include <projectionist/projectionist.hpp>

constexpr int projectionist_compile_fail_sanity_value = 1;

int sanity() {
    return projectionist_compile_fail_sanity_value + static_cast<int>(projectionist::max_identifier_length);
}
