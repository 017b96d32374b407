# Runs one compile-fail check: `cmake -D<var>=<value>... -P check_compile.cmake`.
#
#   COMPILER       the C++ compiler to run
#   COMPILER_ID    CMAKE_CXX_COMPILER_ID (GNU, Clang): picks the `expect-error(<id>):` lines that apply
#   SOURCE         the source file
#   EXPECT         `compile` (must compile) or `fail` (must fail, and every expected regex must match)
#   FLAGS          compiler flags, separated by '|' (e.g. -std=c++20|-fsyntax-only)
#   INCLUDE_DIRS   include directories, separated by '|'
#   IMPLICIT_DIRS  the compiler's own include directories, separated by '|': left out of the -I flags,
#                  as CMake does
#   DEFINITIONS    preprocessor definitions (NAME or NAME=VALUE), separated by '|'
#   EXTRA_REGEX    optional: one more regex the output must match (used by the harness self-tests)
#
# ('|' rather than ';' because add_test splits a list-valued argument into several arguments.)
#
# Expected diagnostics come from the source file, one regex per comment line:
#
#   // expect-error: <regex>           every compiler
#   // expect-error(GNU): <regex>      only when COMPILER_ID is GNU
#   // expect-error(Clang): <regex>    only when COMPILER_ID is Clang
#
# Matching is line-based, like grep: each regex that applies must match some line of the compiler's
# combined stdout+stderr (CMake regex syntax). A `fail` source needs at least one regex that applies; a
# `compile` source must have none (a twin that still carries expectations is a copy-paste mistake).

cmake_minimum_required(VERSION 3.25)

# Reports a failed check: the text (the arguments, concatenated) goes out as is, since
# message(FATAL_ERROR) would re-wrap the compiler's output; then a short fatal error makes the script
# exit non-zero.
function(cf_fail)
  set(text "")
  math(EXPR last "${ARGC} - 1")
  foreach(i RANGE ${last})  # ARGV<i> one by one: ${ARGV} would split a ';' in the compiler's output
    string(APPEND text "${ARGV${i}}")
  endforeach()
  message("check_compile: ${text}")
  message(FATAL_ERROR "check_compile: the check failed, see above")
endfunction()

foreach(required COMPILER COMPILER_ID SOURCE EXPECT)
  if(NOT DEFINED ${required} OR "${${required}}" STREQUAL "")
    cf_fail("-D${required}=... is required")
  endif()
endforeach()
if(NOT EXPECT MATCHES "^(compile|fail)$")
  cf_fail("EXPECT must be 'compile' or 'fail', not '${EXPECT}'")
endif()
if(NOT EXISTS "${SOURCE}")
  cf_fail("no such source file: ${SOURCE}")
endif()

# ---- text -> list of lines, safe for any content ------------------------------------------------
# A CMake list cannot hold ';' in an element, and '[' ']' or a trailing '\' change how it splits;
# swap them for control characters while the text is a list, and swap them back per line.
string(ASCII 1 cf_semicolon)
string(ASCII 2 cf_open)
string(ASCII 3 cf_close)
string(ASCII 4 cf_backslash)

function(cf_split_lines out_var text)
  string(REPLACE "\\" "${cf_backslash}" text "${text}")
  string(REPLACE ";" "${cf_semicolon}" text "${text}")
  string(REPLACE "[" "${cf_open}" text "${text}")
  string(REPLACE "]" "${cf_close}" text "${text}")
  string(REPLACE "\r" "" text "${text}")
  string(REPLACE "\n" ";" text "${text}")
  set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

function(cf_restore_line out_var line)
  string(REPLACE "${cf_backslash}" "\\" line "${line}")
  string(REPLACE "${cf_semicolon}" ";" line "${line}")
  string(REPLACE "${cf_open}" "[" line "${line}")
  string(REPLACE "${cf_close}" "]" line "${line}")
  set(${out_var} "${line}" PARENT_SCOPE)
endfunction()

function(cf_split_bar out_var value)
  if("${value}" STREQUAL "")
    set(${out_var} "" PARENT_SCOPE)
  else()
    string(REPLACE "|" ";" value "${value}")
    set(${out_var} "${value}" PARENT_SCOPE)
  endif()
endfunction()

# ---- expectations from the source --------------------------------------------------------------
file(READ "${SOURCE}" source_text)
cf_split_lines(source_lines "${source_text}")
set(expectations "")  # indices into expectation_<n>
set(expectation_count 0)
set(marker_count 0)
foreach(escaped IN LISTS source_lines)
  cf_restore_line(line "${escaped}")
  if(line MATCHES "^[ \t]*//[ \t]*expect-error(\\(([A-Za-z]+)\\))?:[ \t]*(.*)$")
    math(EXPR marker_count "${marker_count} + 1")
    set(only_for "${CMAKE_MATCH_2}")
    set(regex "${CMAKE_MATCH_3}")
    string(STRIP "${regex}" regex)
    if(regex STREQUAL "")
      cf_fail("${SOURCE}: an empty expect-error line")
    endif()
    if(only_for STREQUAL "" OR only_for STREQUAL COMPILER_ID)
      set(expectation_${expectation_count} "${regex}")
      math(EXPR expectation_count "${expectation_count} + 1")
    endif()
  endif()
endforeach()
if(DEFINED EXTRA_REGEX AND NOT EXTRA_REGEX STREQUAL "")
  set(expectation_${expectation_count} "${EXTRA_REGEX}")
  math(EXPR expectation_count "${expectation_count} + 1")
endif()


# ---- the command line --------------------------------------------------------------------------
cf_split_bar(flags "${FLAGS}")
cf_split_bar(include_dirs "${INCLUDE_DIRS}")
cf_split_bar(implicit_dirs "${IMPLICIT_DIRS}")
cf_split_bar(definitions "${DEFINITIONS}")

set(command "${COMPILER}" ${flags})
foreach(definition IN LISTS definitions)
  list(APPEND command "-D${definition}")
endforeach()
list(REMOVE_DUPLICATES include_dirs)
foreach(dir IN LISTS include_dirs)
  if(NOT dir IN_LIST implicit_dirs)
    list(APPEND command "-I${dir}")
  endif()
endforeach()
list(APPEND command "${SOURCE}")

# Plain ASCII quotes and no colours, so that the expected regexes stay simple.
set(ENV{LC_ALL} C)
set(ENV{LANG} C)
unset(ENV{GCC_COLORS})

execute_process(COMMAND ${command} RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)

list(JOIN command " " command_line)
set(report "command: ${command_line}\nexit: ${result}\n---- compiler output ----\n${output}-------------------------")

if(EXPECT STREQUAL "compile")
  if(NOT result EQUAL 0)
    cf_fail("expected ${SOURCE} to compile, but it failed\n${report}")
  endif()
  if(marker_count GREATER 0)
    cf_fail("${SOURCE} must compile, but carries expect-error lines; "
                        "remove them from the passing twin")
  endif()
  message(STATUS "compiles, as expected: ${SOURCE}")
  return()
endif()

if(result EQUAL 0)
  cf_fail("expected ${SOURCE} to fail to compile, but it compiled\n${report}")
endif()
if(NOT result MATCHES "^[0-9]+$")
  cf_fail("expected ${SOURCE} to fail to compile, but the compiler did not run: ${result}\n${report}")
endif()

if(expectation_count EQUAL 0)
  cf_fail("${SOURCE} must fail, but has no '// expect-error: <regex>' line "
                      "for compiler ${COMPILER_ID}: a failing case must say which diagnostic it expects\n${report}")
endif()

cf_split_lines(output_lines "${output}")
set(first_error "")
foreach(escaped IN LISTS output_lines)  # the first error, for the log
  cf_restore_line(line "${escaped}")
  if(line MATCHES "error:")
    set(first_error "${line}")
    break()
  endif()
endforeach()

set(unmatched "")
set(matched_report "")
math(EXPR last "${expectation_count} - 1")
foreach(i RANGE ${last})
  set(regex "${expectation_${i}}")
  set(found "")
  foreach(escaped IN LISTS output_lines)
    cf_restore_line(line "${escaped}")
    if(line MATCHES "${regex}")
      set(found "${line}")
      break()
    endif()
  endforeach()
  if(found STREQUAL "")
    string(APPEND unmatched "\n  ${regex}")
  else()
    string(APPEND matched_report "\n  ${regex}\n    matched: ${found}")
  endif()
endforeach()

if(NOT unmatched STREQUAL "")
  cf_fail("${SOURCE} failed to compile as expected, but these expected diagnostics did not match "
                      "any line of the output:${unmatched}\n${report}")
endif()
message(STATUS "fails, as expected: ${SOURCE}\nfirst error: ${first_error}\nexpected diagnostics:${matched_report}")
