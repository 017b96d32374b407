#!/usr/bin/env bash
# Compile-time benchmark: generates a projection over 50 event types and a hand-written switch
# calling the same 50 handlers, compiles each (and each one's includes alone) RUNS times with the
# same flags, interleaved, and writes one line per compile: "<unit>\t<wall seconds>\t<peak KB>".
# projectionist_bench reads that file and reports medians.
#
# Usage: compile_time.sh <out-dir> <c++ compiler> <runs> <project root>
set -euo pipefail
out="$1"
cxx="$2"
runs="$3"
root="$4"
n=50
flags=(-std=c++20 -O2 -I"$root/include")
mkdir -p "$out"

# ---- the generated sources ---------------------------------------------------------------------
# events50.hpp: 50 Hana-reflected events in one stream, the row, and the work each handler does
# (shared by both translation units, so they differ only in how they dispatch).
{
  echo '#pragma once'
  echo '#include <cstdint>'
  echo '#include <string>'
  echo '#include <string_view>'
  echo '#include <boost/hana/define_struct.hpp>'
  echo '#include <projectionist/event/stream.hpp>'
  echo '#include <projectionist/projection/table.hpp>'
  echo 'namespace gen {'
  for ((i = 0; i < n; ++i)); do
    printf 'struct ev%02d {\n' "$i"
    printf '    BOOST_HANA_DEFINE_STRUCT(ev%02d, (std::string, id), (std::int64_t, value));\n' "$i"
    printf '    static constexpr std::string_view event_name = "gen.ev%02d";\n};\n' "$i"
  done
  printf 'using gen_stream = projectionist::stream<"gen"'
  for ((i = 0; i < n; ++i)); do printf ', ev%02d' "$i"; done
  printf '>;\n'
  echo 'struct row50 {'
  echo '    BOOST_HANA_DEFINE_STRUCT(row50, (std::string, id), (std::int64_t, total), (int, last));'
  echo '};'
  echo 'using gen_table = projectionist::table<row50, &row50::id>;'
  echo 'inline row50 make_row(const ev00& e) { return {e.id, e.value, 0}; }'
  for ((i = 1; i < n; ++i)); do
    printf 'inline void apply(const ev%02d& e, row50& r) { r.total += e.value * %d; r.last = %d; }\n' "$i" $((i + 1)) "$i"
  done
  echo '}  // namespace gen'
} >"$out/events50.hpp"

# projection.cpp: the projection (exhaustive, one on() per event) and a runner that runs it. It
# includes what a user of the runner with the in-memory store and storage includes: the runner's
# header, which brings the policies, memory_storage and memory_event_store (not the umbrella
# projectionist.hpp, which adds deploy/ and cli/ that neither side uses; the switch likewise
# includes only the store and storage headers it uses).
projection_includes='#include <projectionist/runner/runner.hpp>
#include "events50.hpp"'
{
  echo "$projection_includes"
  echo 'namespace pj = projectionist;'
  echo 'namespace gen {'
  echo 'struct gen50 : pj::projection<"gen50", 1, gen_stream, pj::exhaustive> {'
  echo '    using table = gen_table;'
  echo '    void on(const ev00& e, auto& ctx) { ctx.table().insert(make_row(e)); }'
  for ((i = 1; i < n; ++i)); do
    printf '    void on(const ev%02d& e, auto& ctx) { ctx.table().update(e.id, [&](row50& r) { apply(e, r); }); }\n' "$i"
  done
  echo '};'
  echo 'std::uint64_t run_projection(pj::memory_event_store& store, pj::memory_storage& storage) {'
  echo '    pj::runner<gen50> runner(store, storage);'
  echo '    return runner.catch_up();'
  echo '}'
  echo '}  // namespace gen'
} >"$out/projection.cpp"

# projection_extern.cpp: the same projection and runner, as a team that compiles the runner once
# writes it: the projection and PROJECTIONIST_EXTERN_RUNNER in a header (gen50.hpp), the explicit
# instantiation in one .cpp (runner_instance.cpp, compiled once, reported on its own), and the
# translation unit that uses the runner compiles none of its code.
{
  echo '#pragma once'
  echo "$projection_includes"
  echo 'namespace gen {'
  echo 'struct gen50 : projectionist::projection<"gen50", 1, gen_stream, projectionist::exhaustive> {'
  echo '    using table = gen_table;'
  echo '    void on(const ev00& e, auto& ctx) { ctx.table().insert(make_row(e)); }'
  for ((i = 1; i < n; ++i)); do
    printf '    void on(const ev%02d& e, auto& ctx) { ctx.table().update(e.id, [&](row50& r) { apply(e, r); }); }\n' "$i"
  done
  echo '};'
  echo '}  // namespace gen'
  echo 'PROJECTIONIST_EXTERN_RUNNER(gen::gen50);'
} >"$out/gen50.hpp"
{
  echo '#include "gen50.hpp"'
  echo 'namespace gen {'
  echo 'std::uint64_t run_projection_extern(projectionist::memory_event_store& store, projectionist::memory_storage& storage) {'
  echo '    projectionist::runner<gen50> runner(store, storage);'
  echo '    return runner.catch_up();'
  echo '}'
  echo '}  // namespace gen'
} >"$out/projection_extern.cpp"
{
  echo '#include "gen50.hpp"'
  echo 'PROJECTIONIST_INSTANTIATE_RUNNER(gen::gen50);'
} >"$out/runner_instance.cpp"

# switch.cpp: the same 50 handlers as functions, a type-id -> case map built once by stored
# name, and a switch over the same records of the same store into the same table type.
switch_includes='#include <cstdint>
#include <limits>
#include <vector>
#include <projectionist/projection/table.hpp>
#include <projectionist/storage/memory_storage.hpp>
#include <projectionist/store/memory_event_store.hpp>
#include "events50.hpp"'
{
  echo "$switch_includes"
  echo 'namespace pj = projectionist;'
  echo 'namespace gen {'
  echo 'using table50 = pj::memory_table<gen_table>;'
  echo 'void handle(const ev00& e, table50& t) { t.insert(make_row(e)); }'
  for ((i = 1; i < n; ++i)); do
    printf 'void handle(const ev%02d& e, table50& t) { t.update(e.id, [&](row50& r) { apply(e, r); }); }\n' "$i"
  done
  echo 'std::uint64_t run_switch(const pj::memory_event_store& store, table50& table) {'
  printf '    static constexpr std::string_view names[] = {'
  for ((i = 0; i < n; ++i)); do printf '"gen.ev%02d", ' "$i"; done
  echo '};'
  echo '    std::vector<int> kind(store.type_count(), -1);'
  echo '    for (std::uint32_t id = 0; id < kind.size(); ++id) {'
  echo '        const pj::event_type_info info = store.type_info(id);'
  echo '        for (int k = 0; k < 50; ++k)'
  echo '            if (info.stream == gen_stream::name && info.name == names[k]) kind[id] = k;'
  echo '    }'
  echo '    pj::memory_event_store::batch batch;'
  echo '    store.read(0, std::numeric_limits<std::size_t>::max(), batch);'
  echo '    std::uint64_t applied = 0;'
  echo '    for (const pj::memory_event_store::record* rec : batch) {'
  echo '        switch (kind[rec->type_id()]) {'
  for ((i = 0; i < n; ++i)); do
    printf '            case %d: handle(pj::memory_event_store::event_of<ev%02d>(*rec), table); break;\n' "$i" "$i"
  done
  echo '            default: continue;'
  echo '        }'
  echo '        ++applied;'
  echo '    }'
  echo '    return applied;'
  echo '}'
  echo '}  // namespace gen'
} >"$out/switch.cpp"

# The includes alone, to tell parsing from instantiation; and the umbrella header alone.
echo "$projection_includes" >"$out/projection_headers.cpp"
echo "$switch_includes" >"$out/switch_headers.cpp"
echo '#include <projectionist/projectionist.hpp>' >"$out/umbrella_headers.cpp"

# check50.cpp: both dispatchers on one small history must build the same table.
{
  echo '#include <cstdio>'
  echo '#include <string>'
  echo '#include <projectionist/projectionist.hpp>'
  echo '#include "events50.hpp"'
  echo 'namespace pj = projectionist;'
  echo 'namespace gen {'
  echo 'std::uint64_t run_projection(pj::memory_event_store&, pj::memory_storage&);'
  echo 'std::uint64_t run_switch(const pj::memory_event_store&, pj::memory_table<gen_table>&);'
  echo 'std::uint64_t run_projection_extern(pj::memory_event_store&, pj::memory_storage&);'
  echo '}'
  echo 'int main() {'
  echo '    using namespace gen;'
  echo '    pj::memory_event_store store;'
  echo '    for (int a = 0; a < 20; ++a) {'
  echo '        const std::string id = "a" + std::to_string(a);'
  echo '        store.append(gen_stream{}, id, 0, ev00{id, a});'
  for ((i = 1; i < n; ++i)); do
    printf '        store.append(gen_stream{}, id, pj::expected_version::any(), ev%02d{id, a + %d});\n' "$i" "$i"
  done
  echo '    }'
  echo '    pj::memory_storage storage;'
  echo '    const auto applied = run_projection(store, storage);'
  echo '    pj::memory_table<gen_table> table("switch");'
  echo '    const auto switched = run_switch(store, table);'
  echo '    const auto projected = storage.find_table<gen_table>("gen50_v1");'
  echo '    pj::memory_storage extern_storage;'
  echo '    const auto applied_extern = run_projection_extern(store, extern_storage);'
  echo '    const auto projected_extern = extern_storage.find_table<gen_table>("gen50_v1");'
  echo '    bool same = applied == switched && applied == applied_extern && applied == store.head() && projected &&'
  echo '                projected_extern && projected->size() == table.size() && projected_extern->size() == table.size();'
  echo '    table.for_each([&](const row50& r) {'
  echo '        const std::optional<row50> p = projected ? projected->find(r.id) : std::nullopt;'
  echo '        same = same && p && p->total == r.total && p->last == r.last;'
  echo '    });'
  # shellcheck disable=SC2028  # the \n is C++ source text, not for echo
  echo '    std::printf("compile-time sources: %s (%llu events)\n", same ? "both dispatchers agree" : "MISMATCH",'
  echo '                static_cast<unsigned long long>(applied));'
  echo '    return same ? 0 : 1;'
  echo '}'
} >"$out/check50.cpp"

# ---- measuring ----------------------------------------------------------------------------------
samples="$out/samples.tsv"
{
  printf '#\tcompiler\t%s\n' "$("$cxx" --version | head -n1)"
  printf '#\tcommand\t%s -std=c++20 -O2 -I<root>/include -c <unit>.cpp\n' "$cxx"
  printf '#\truns\t%s\n' "$runs"
} >"$samples"

# compile <unit>: one timed compile; appends "<unit>\t<seconds>\t<peak KB>" to the samples.
compile() {
  local unit="$1" start end peak
  start=$(date +%s%N)
  /usr/bin/time -f '%M' -o "$out/$unit.time" "$cxx" "${flags[@]}" -c "$out/$unit.cpp" -o "$out/$unit.o"
  end=$(date +%s%N)
  peak=$(tail -n1 "$out/$unit.time")
  printf '%s\t%s\t%s\n' "$unit" "$(awk -v ns=$((end - start)) 'BEGIN { printf "%.3f", ns / 1e9 }')" "$peak"
}

units=(projection projection_extern runner_instance switch projection_headers switch_headers umbrella_headers)
echo "compile time: warm-up (one untimed compile of each unit)"
for u in "${units[@]}"; do compile "$u" >/dev/null; done
for ((r = 1; r <= runs; ++r)); do
  for u in "${units[@]}"; do
    line=$(compile "$u")
    echo "$line" >>"$samples"
    printf '  run %d/%d  %s\n' "$r" "$runs" "$line"
  done
done

# The generated code must do the same work on both sides: link and run the check once.
"$cxx" "${flags[@]}" -c "$out/check50.cpp" -o "$out/check50.o"
"$cxx" "$out/check50.o" "$out/projection.o" "$out/projection_extern.o" "$out/runner_instance.o" "$out/switch.o" \
  -o "$out/check50" -lfmt -pthread
"$out/check50"
