#pragma once

/// The verdict of a whole `report`, and the exit status a deploy script gates on.
///
///     return projectionist::verify::exit_status(r);   // 0: PASS, 1: FAIL

#include <string>
#include <vector>

#include <fmt/format.h>

#include <projectionist/deploy/verify/report.hpp>

namespace projectionist::verify {

// ---- verdicts ---------------------------------------------------------------------------------------

/// Whether a whole report passes: every part passes, and there is at least one part.
[[nodiscard]] inline bool passed(const report& r) {
    if (!r.structure && r.spot_checks.empty() && r.samples.empty()) return false;
    if (r.structure && !r.structure->pass) return false;
    for (const auto& s : r.spot_checks)
        if (!s.pass) return false;
    for (const auto& s : r.samples)
        if (!s.pass) return false;
    return true;
}

/// Every failing reason of a report, each prefixed with the check it comes from.
[[nodiscard]] inline std::vector<std::string> failures(const report& r) {
    std::vector<std::string> out;
    if (!r.structure && r.spot_checks.empty() && r.samples.empty())
        out.emplace_back("nothing was verified: the report has no structural diff, spot check or sample");
    if (r.structure)
        for (const auto& f : r.structure->failures) out.push_back("structural diff: " + f);
    for (const auto& s : r.spot_checks)
        for (const auto& f : s.failures) out.push_back("spot check: " + f);
    for (const auto& s : r.samples)
        for (const auto& f : s.failures) out.push_back(fmt::format("sample '{}': {}", s.name, f));
    return out;
}

/// The exit status a deploy script gates on: 0 when the report passes, 1 when it fails.
[[nodiscard]] inline int exit_status(const structural_report& r) noexcept {
    return r.pass ? 0 : 1;
}
[[nodiscard]] inline int exit_status(const spot_report& r) noexcept {
    return r.pass ? 0 : 1;
}
[[nodiscard]] inline int exit_status(const sample_report& r) noexcept {
    return r.pass ? 0 : 1;
}
[[nodiscard]] inline int exit_status(const report& r) {
    return passed(r) ? 0 : 1;
}

}  // namespace projectionist::verify
