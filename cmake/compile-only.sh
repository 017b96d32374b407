#!/bin/sh
# The compiler and linker launcher of the targets that a build only compiles (the tests of
# PROJECTIONIST_TESTS_COMPILE_ONLY, tests/CMakeLists.txt; the benchmarks with
# PROJECTIONIST_BENCHMARKS_COMPILE_ONLY, benchmarks/CMakeLists.txt): their sources are checked with
# every warning of the project (-fsyntax-only, no code generated) and nothing is linked.
#
#   compile-only.sh compile <compiler command...>  runs it with -fsyntax-only, then touches its -o file
#   compile-only.sh link <linker command...>       writes, as its -o file, a program that says it was
#                                                  not built and fails
set -eu
mode=$1
shift
out=
previous=
for arg in "$@"; do
  if [ "$previous" = "-o" ]; then out=$arg; fi
  previous=$arg
done
if [ -z "$out" ]; then
  echo "compile-only.sh: no -o in: $*" >&2
  exit 2
fi
case $mode in
compile)
  "$@" -fsyntax-only
  : >"$out"
  ;;
link)
  cat >"$out" <<STUB
#!/bin/sh
echo "$(basename "$out"): this build only compiled its sources (PROJECTIONIST_TESTS_COMPILE_ONLY or PROJECTIONIST_BENCHMARKS_COMPILE_ONLY); build it without that option to run it" >&2
exit 1
STUB
  chmod +x "$out"
  ;;
*)
  echo "compile-only.sh: the mode is compile or link, not '$mode'" >&2
  exit 2
  ;;
esac
