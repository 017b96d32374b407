#pragma once

/// Verification of a new projection version against the one it replaces: step 4 of a blue-green
/// deployment ("verify v2"), done before the new version serves a single query.
///
/// Three checks, each returning a plain report:
///
/// - `structural_diff(a, b, options)`: row counts, and per column (matched by reflected field
///   NAME, so the two versions may have different row types) the C++ type, null count, exact
///   distinct count, per-value row counts for low-cardinality columns, and min, max and sum for
///   numeric columns (min and max for time points). Columns present in one version only are
///   shown as such. A verdict with tolerances.
/// - `spot_check(a, b, keys, options)`: the rows of the given keys compared field by field.
/// - `sample(a, b, predicate, limit, options, sample_options)`: the rows of B (the new version)
///   that match a predicate ("where the new logic should differ") compared with A's row of the
///   same key, expecting them to differ (the default), to be equal, or only reporting.
///
/// `to_text` renders any report (or a whole `report` of several checks) as aligned tables with a
/// `VERDICT: PASS` / `VERDICT: FAIL` line and every reason; `to_json` renders it as JSON for a
/// script; `exit_status` gives the process exit status a deploy script gates on: 0 when the
/// report passes, 1 when it fails (the command line returns it; it uses 2 for its own usage
/// errors).
///
///     namespace verify = projectionist::verify;
///     auto v1 = storage.find_table<tickets<1>::table>("tickets_v1");   // std::optional handles,
///     auto v2 = storage.find_table<tickets<2>::table>("tickets_v2");   // on every storage
///     const verify::diff_options options{.expected_changes = {"status", "reopened"}};
///     verify::report r;
///     r.structure = verify::structural_diff(v1, v2, options);
///     r.spot_checks.push_back(verify::spot_check(v1, v2, {"t-001", "t-017"}, options));
///     r.samples.push_back(verify::sample(v1, v2, [](const ticket_row& t) { return t.reopened > 0; }, 100,
///                                        options, {.name = "reopened tickets"}));
///     fmt::print("{}", verify::to_text(r));
///     return verify::exit_status(r);   // 0: PASS, 1: FAIL
///
/// Rules, and why:
///
/// - **Table handles.** Anything with `for_each(fn(const Row&))` and `find(key)` returning an
///   optional row (or a pointer): every backend's table handle, and a pointer, `std::optional` or
///   smart pointer to one (what `find_table` returns; an empty one throws `projectionist::error`
///   naming the side). `sample` also needs the key of a row of B, taken from the handle's table
///   declaration (`Handle<Table>` with `Table::key_of`, or a `table_type` member). Reading a
///   memory table while its runner writes needs `storage.lock_shared(name)`, as for any reader.
/// - **Values are compared by canonical text** (`value_text`): fmt's shortest round-trip form
///   for numbers, `true`/`false`, enums as their underlying integer, time points as ISO-8601
///   UTC (`2024-05-01T12:00:00.250Z`, as many fraction digits as the duration has), an empty
///   optional as null (kept apart from the string "null"), pairs, vectors and other ranges, and
///   nested reflected structs spelled out (detail/value_text.hpp, which the router's shadow reads
///   share). So `int 3` in v1 equals `std::int64_t 3` in v2, a NaN equals a NaN, and a
///   value compares the same in memory and in SQLite. A field type with no text form does not
///   compile (make it formattable with fmt).
/// - **Column types** are compared by a label (`int32`, `optional<string>`, `time_point<ns>`,
///   `enum kind : uint8`). A changed type fails unless the column is an expected change: readers
///   of the table see it even when the values print the same.
/// - **Statistics.** Nulls are empty optionals (no other type is ever null). `distinct` counts
///   distinct non-null values exactly, as SQL's COUNT(DISTINCT) does. Columns with at most
///   `histogram_limit` distinct values also keep each value's row count: a changed handler
///   usually moves rows between a few values ("closed" to "open") without changing how many
///   distinct values there are, and only these counts show it. Numeric columns (arithmetic,
///   not bool, not characters) have min, max and sum as doubles, skipping NaN, the exact text of
///   min and max, and for integers the exact sum (`integer_sum`, empty if it overflows int64).
/// - **Tolerances are relative and symmetric**: `|a - b| <= tolerance * max(|a|, |b|)`, so 0 (the
///   default) means equal. `row_count_tolerance` applies to row counts, `stat_tolerance` to every
///   count and numeric statistic. Floating-point sums are compared with at least 1e-12: their
///   rounding depends on summation order, which differs between storages (Neumaier summation
///   keeps it that small). Integer sums are compared exactly, through `integer_sum`.
/// - **Verdict.** A difference in a column listed in `expected_changes` never fails. Otherwise a
///   structural diff fails when the row counts are out of tolerance, a common column's type or
///   statistics differ beyond tolerance, or a column of A is missing from B (dropped). A column
///   only in B (new) is reported and fails only with `forbid_new_columns`. A spot check fails
///   for a key missing on either side or a row with an unexpected difference. A sample expecting
///   `differ` fails for a row that is equal to A (v2 did not apply its new logic), missing in A,
///   or different in an unexpected field, and when no row matches at all; expecting `equal`, for
///   any difference or missing row. A `report` fails when any part fails, and when it is empty:
///   a deploy gate must not pass because nothing was checked. Every failure is recorded as a
///   sentence naming the column, key or field; observations that do not fail are `notes`.
/// - **Fields present in one version only** do not make a row differ in spot checks and samples
///   (every row of a version that adds a column would differ otherwise); they are listed with
///   their values.
/// - **Cost.** A structural diff reads each table once and holds each column's distinct values
///   while it does (the key column: one per row); 500,000 rows of four columns take about 0.2 s
///   per table at -O2. A spot check or sample finds A's row by key, one look-up per compared row.
///   Reasons are capped at 10 per check ("... and 15 more failing keys") and the text lists at
///   most 50 rows per check, failing rows first; the JSON has every compared row.
///
/// The parts, one job each, under deploy/verify/: `report.hpp` (options and reports),
/// `statistics.hpp` (column accumulators, table summaries), `handles.hpp`, `compare.hpp` and
/// `checks.hpp` (the three checks), `verdict.hpp`, `text.hpp` (`to_text`) and `json.hpp`
/// (`to_json`, built with Boost.JSON). This header includes them all, JSON too, so a program that
/// includes it links Boost.JSON's library (`projectionist::tools`); one that wants no JSON includes
/// `verify/checks.hpp`, `verify/verdict.hpp` and `verify/text.hpp` instead.

#include <projectionist/deploy/verify/checks.hpp>
#include <projectionist/deploy/verify/json.hpp>
#include <projectionist/deploy/verify/report.hpp>
#include <projectionist/deploy/verify/text.hpp>
#include <projectionist/deploy/verify/verdict.hpp>
