# Builds and runs one package consumer; run by CTest as
#
#   cmake -DPARAMS_FILE=<file> -DCONFIG=<config> -P run_consumer.cmake
#
# PARAMS_FILE (written by tests/package/CMakeLists.txt at configure time) sets:
#   CONSUMER_KIND             find_package | add_subdirectory
#   CONSUMER_SOURCE_DIR       the consumer project
#   SCRATCH_DIR               this consumer's own scratch directory (wiped first)
#   PROJECTIONIST_SOURCE_DIR  projectionist's source root
#   PROJECTIONIST_BINARY_DIR  projectionist's top-level build directory (installed from)
#   INSTALL_INCLUDEDIR        CMAKE_INSTALL_INCLUDEDIR of that build
#   INSTALL_DATADIR           CMAKE_INSTALL_DATADIR of that build
#   GENERATOR, GENERATOR_PLATFORM, GENERATOR_TOOLSET, GENERATOR_IS_MULTI_CONFIG, MAKE_PROGRAM
#   CXX_COMPILER              the compiler projectionist's build uses
#   PREFIX_PATH               that build's CMAKE_PREFIX_PATH (where its dependencies are)
#
# Steps (find_package): install -> check the installed tree -> configure -> build -> run.
# Steps (add_subdirectory): configure -> build -> run. Each fails with the step's name and output.
cmake_minimum_required(VERSION 3.25)

if(NOT PARAMS_FILE OR NOT EXISTS "${PARAMS_FILE}")
  message(FATAL_ERROR "run_consumer.cmake: pass -DPARAMS_FILE=<file written by tests/package/CMakeLists.txt>")
endif()
include("${PARAMS_FILE}")
if(NOT CONSUMER_KIND MATCHES "^(find_package|add_subdirectory)$")
  message(FATAL_ERROR "run_consumer.cmake: unknown CONSUMER_KIND '${CONSUMER_KIND}'")
endif()

set(_tag "[package ${CONSUMER_KIND} consumer]")
set(_step_number 0)
if(CONSUMER_KIND STREQUAL "find_package")
  set(_step_count 5)
else()
  set(_step_count 3)
endif()

# run_step(<id> <description> <command...>): runs one step's command, its output logged in
# <scratch>/<n>-<id>.log; on failure, stops with the step's description, command and output.
function(run_step id name)
  math(EXPR _n "${_step_number} + 1")
  set(_step_number ${_n} PARENT_SCOPE)
  set(_log "${SCRATCH_DIR}/${_n}-${id}.log")
  message(STATUS "${_tag} step ${_n}/${_step_count}: ${name}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out TIMEOUT 600)
  file(WRITE "${_log}" "${_out}")
  if(NOT _rc STREQUAL "0")
    list(JOIN ARGN " " _command)
    # NOTICE prints the output verbatim; FATAL_ERROR would re-wrap it.
    message(NOTICE "----- command: ${_command}\n----- output (also in ${_log}):\n${_out}-----")
    message(FATAL_ERROR "${_tag} step ${_n}/${_step_count} FAILED: ${name} (exit: ${_rc}); its output is above")
  endif()
endfunction()

function(fail_step name what)
  math(EXPR _n "${_step_number}")
  message(FATAL_ERROR "${_tag} step ${_n}/${_step_count} FAILED: ${name}: ${what}")
endfunction()

# ---- a fresh scratch directory ------------------------------------------------------------------
file(REMOVE_RECURSE "${SCRATCH_DIR}")
file(MAKE_DIRECTORY "${SCRATCH_DIR}")
set(_prefix "${SCRATCH_DIR}/prefix")
set(_build "${SCRATCH_DIR}/build")

set(_config_args)
if(NOT CONFIG STREQUAL "")
  set(_config_args --config "${CONFIG}")
endif()

# ---- find_package: install, then check the installed tree ---------------------------------------
if(CONSUMER_KIND STREQUAL "find_package")
  run_step(install "install projectionist into ${_prefix}" "${CMAKE_COMMAND}" --install "${PROJECTIONIST_BINARY_DIR}" --prefix
           "${_prefix}" ${_config_args})

  math(EXPR _step_number "${_step_number} + 1")
  message(STATUS "${_tag} step ${_step_number}/${_step_count}: check the installed tree")
  set(_package_dir "${_prefix}/${INSTALL_DATADIR}/projectionist/cmake")
  foreach(_file IN ITEMS "${_prefix}/${INSTALL_INCLUDEDIR}/projectionist/projectionist.hpp"
                         "${_package_dir}/projectionistConfig.cmake" "${_package_dir}/projectionistConfigVersion.cmake"
                         "${_package_dir}/projectionistTargets.cmake")
    if(NOT EXISTS "${_file}")
      fail_step("check the installed tree" "missing ${_file}")
    endif()
  endforeach()
  # The installed package must be relocatable: no absolute path into the source or build tree.
  file(GLOB _package_files "${_package_dir}/*.cmake")
  foreach(_file IN LISTS _package_files)
    file(READ "${_file}" _content)
    foreach(_dir IN ITEMS "${PROJECTIONIST_SOURCE_DIR}" "${PROJECTIONIST_BINARY_DIR}")
      string(FIND "${_content}" "${_dir}" _at)
      if(NOT _at EQUAL -1)
        fail_step("check the installed tree" "${_file} contains the path ${_dir}")
      endif()
    endforeach()
  endforeach()
endif()

# ---- configure, build and run the consumer ------------------------------------------------------
# Values that may hold lists or spaces go through an initial-cache file, not the command line.
set(_prefix_path ${PREFIX_PATH})
if(CONSUMER_KIND STREQUAL "find_package")
  list(PREPEND _prefix_path "${_prefix}")
endif()
set(_cache "${SCRATCH_DIR}/initial-cache.cmake")
file(WRITE "${_cache}"
     "set(CMAKE_CXX_COMPILER [==[${CXX_COMPILER}]==] CACHE FILEPATH \"\")\n"
     "set(CMAKE_PREFIX_PATH [==[${_prefix_path}]==] CACHE STRING \"\")\n"
     # Only the prefix above may provide projectionist: no user or system package registry.
     "set(CMAKE_FIND_USE_PACKAGE_REGISTRY OFF CACHE BOOL \"\")\n"
     "set(CMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY OFF CACHE BOOL \"\")\n")
if(NOT GENERATOR_IS_MULTI_CONFIG)
  file(APPEND "${_cache}" "set(CMAKE_BUILD_TYPE [==[${CONFIG}]==] CACHE STRING \"\")\n")
endif()
if(MAKE_PROGRAM)
  file(APPEND "${_cache}" "set(CMAKE_MAKE_PROGRAM [==[${MAKE_PROGRAM}]==] CACHE FILEPATH \"\")\n")
endif()
if(CONSUMER_KIND STREQUAL "find_package")
  file(APPEND "${_cache}" "set(EXPECTED_PROJECTIONIST_PREFIX [==[${_prefix}]==] CACHE PATH \"\")\n")
else()
  file(APPEND "${_cache}" "set(PROJECTIONIST_SOURCE_DIR [==[${PROJECTIONIST_SOURCE_DIR}]==] CACHE PATH \"\")\n")
endif()

set(_generator_args -G "${GENERATOR}")
if(GENERATOR_PLATFORM)
  list(APPEND _generator_args -A "${GENERATOR_PLATFORM}")
endif()
if(GENERATOR_TOOLSET)
  list(APPEND _generator_args -T "${GENERATOR_TOOLSET}")
endif()

run_step(configure "configure ${CONSUMER_SOURCE_DIR}" "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${_build}"
         ${_generator_args} -C "${_cache}")
run_step(build "build the consumer" "${CMAKE_COMMAND}" --build "${_build}" ${_config_args} -j 1)

set(_location_file "${_build}/consumer-location-${CONFIG}.txt")
if(NOT EXISTS "${_location_file}")
  fail_step("build the consumer" "the consumer project wrote no ${_location_file}")
endif()
file(READ "${_location_file}" _executable)
if(NOT EXISTS "${_executable}")
  fail_step("build the consumer" "the consumer executable ${_executable} was not built")
endif()
run_step(run "run ${_executable}" "${_executable}")

message(STATUS "${_tag} passed")
