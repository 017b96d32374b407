#pragma once

/// Reports as JSON for a script, built with Boost.JSON: every compared row (the text output caps
/// them), values as their canonical text or null, non-finite numbers as null, and text that is
/// not valid UTF-8 repaired with U+FFFD, so the document always parses. Needs Boost.JSON's
/// library: link `projectionist::tools` (or `projectionist::sqlite`, which links it too).
///
///     std::cout << projectionist::verify::to_json(r) << '\n';
///     // {"pass":true,"verdict":"pass","failures":[],"structure":{"check":"structural_diff",...},...}

#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>

#include <projectionist/deploy/verify/report.hpp>
#include <projectionist/deploy/verify/verdict.hpp>
#include <projectionist/detail/text.hpp>

namespace projectionist::detail::verification {

inline boost::json::value json_text(std::string_view s) {
    return boost::json::string(valid_utf8(s));
}
inline boost::json::value json_text_or_null(const std::optional<std::string>& s) {
    return s ? json_text(*s) : boost::json::value(nullptr);
}
inline boost::json::value json_number(double v) {
    return std::isfinite(v) ? boost::json::value(v) : boost::json::value(nullptr);
}
inline boost::json::value json_number(const std::optional<double>& v) {
    return v ? json_number(*v) : boost::json::value(nullptr);
}
inline boost::json::array json_texts(const std::vector<std::string>& texts) {
    boost::json::array out;
    out.reserve(texts.size());
    for (const auto& t : texts) out.push_back(json_text(t));
    return out;
}

inline boost::json::value json_stats(const std::optional<verify::column_stats>& s) {
    if (!s) return nullptr;
    boost::json::object o{{"type", json_text(s->type)},
                          {"values", s->values},
                          {"nulls", s->nulls},
                          {"distinct", s->distinct},
                          {"numeric", s->numeric}};
    if (s->numeric) {
        o["min"] = json_number(s->min);
        o["max"] = json_number(s->max);
        o["sum"] = json_number(s->sum);
        o["integer_sum"] = s->integer_sum ? boost::json::value(*s->integer_sum) : boost::json::value(nullptr);
    }
    o["min_text"] = json_text_or_null(s->min_text);
    o["max_text"] = json_text_or_null(s->max_text);
    if (s->frequencies) {
        boost::json::array f;
        for (const auto& e : *s->frequencies)
            f.push_back(boost::json::object{{"value", json_text(e.value)}, {"rows", e.rows}});
        o["frequencies"] = std::move(f);
    } else {
        o["frequencies"] = nullptr;
    }
    return o;
}

/// The verdict members every check starts with.
inline void add_verdict(boost::json::object& o, bool pass, const std::vector<std::string>& failures,
                        const std::vector<std::string>& notes) {
    o["pass"] = pass;
    o["verdict"] = pass ? "pass" : "fail";
    o["failures"] = json_texts(failures);
    o["notes"] = json_texts(notes);
}

inline boost::json::object json_report(const verify::structural_report& r) {
    boost::json::object o{{"check", "structural_diff"}, {"a", json_text(r.a_name)}, {"b", json_text(r.b_name)}};
    add_verdict(o, r.pass, r.failures, r.notes);
    o["rows"] = boost::json::object{{"a", r.a_rows}, {"b", r.b_rows}, {"ok", r.rows_ok}};
    boost::json::array columns;
    for (const auto& c : r.columns)
        columns.push_back(boost::json::object{{"name", json_text(c.name)},
                                              {"presence", verify::to_string(c.presence)},
                                              {"expected_change", c.expected_change},
                                              {"type_changed", c.type_changed},
                                              {"ok", c.ok},
                                              {"differences", json_texts(c.differences)},
                                              {"tolerated", json_texts(c.tolerated)},
                                              {"a", json_stats(c.a)},
                                              {"b", json_stats(c.b)}});
    o["columns"] = std::move(columns);
    return o;
}

inline boost::json::array json_rows(const std::vector<verify::row_comparison>& rows) {
    boost::json::array out;
    out.reserve(rows.size());
    for (const auto& r : rows) {
        boost::json::array differences;
        for (const auto& d : r.differences)
            differences.push_back(boost::json::object{{"field", json_text(d.field)},
                                                      {"a", json_text_or_null(d.a)},
                                                      {"b", json_text_or_null(d.b)},
                                                      {"expected", d.expected}});
        auto fields = [](const std::vector<verify::field_value>& list) {
            boost::json::array a;
            for (const auto& f : list)
                a.push_back(boost::json::object{{"field", json_text(f.field)}, {"value", json_text_or_null(f.value)}});
            return a;
        };
        out.push_back(boost::json::object{{"key", json_text(r.key)},
                                          {"outcome", verify::to_string(r.outcome)},
                                          {"ok", r.ok},
                                          {"differences", std::move(differences)},
                                          {"only_in_a", fields(r.only_in_a)},
                                          {"only_in_b", fields(r.only_in_b)}});
    }
    return out;
}

inline boost::json::object json_report(const verify::spot_report& r) {
    boost::json::object o{{"check", "spot_check"}, {"a", json_text(r.a_name)}, {"b", json_text(r.b_name)}};
    add_verdict(o, r.pass, r.failures, r.notes);
    o["counts"] = boost::json::object{{"keys", r.rows.size()},          {"equal", r.equal},
                                      {"differs", r.differs},           {"missing_in_a", r.missing_in_a},
                                      {"missing_in_b", r.missing_in_b}, {"missing_in_both", r.missing_in_both}};
    o["rows"] = json_rows(r.rows);
    return o;
}

inline boost::json::object json_report(const verify::sample_report& r) {
    boost::json::object o{{"check", "sample"},
                          {"name", json_text(r.name)},
                          {"a", json_text(r.a_name)},
                          {"b", json_text(r.b_name)},
                          {"expect", verify::to_string(r.expect)}};
    add_verdict(o, r.pass, r.failures, r.notes);
    o["counts"] = boost::json::object{{"limit", r.limit}, {"matched", r.matched}, {"compared", r.compared},
                                      {"equal", r.equal}, {"differs", r.differs}, {"missing_in_a", r.missing_in_a}};
    boost::json::array fields;
    for (const auto& f : r.differing_fields)
        fields.push_back(boost::json::object{{"field", json_text(f.field)}, {"rows", f.rows}});
    o["differing_fields"] = std::move(fields);
    o["rows"] = json_rows(r.rows);
    return o;
}

}  // namespace projectionist::detail::verification

namespace projectionist::verify {

/// A JSON string literal (with its quotes) for `text`, as the JSON output writes it: `"` and `\`
/// escaped, control characters escaped, bytes that are not valid UTF-8 replaced by U+FFFD, so
/// the result is always valid JSON whatever a row holds.
///
///     json_string("a\"b\n")   // "\"a\\\"b\\n\""
[[nodiscard]] inline std::string json_string(std::string_view text) {
    return boost::json::serialize(detail::verification::json_text(text));
}

/// JSON for a script: `{"check": "structural_diff", "a": ..., "b": ..., "pass": true, "verdict":
/// "pass", "failures": [...], "notes": [...], "rows": {"a": 42, "b": 42, "ok": true}, "columns":
/// [{"name": "status", "presence": "both", ..., "a": {"type": "string", "nulls": 0, "distinct": 2,
/// ...}}]}`. Values are strings (their canonical text) or null; non-finite numbers are null.
[[nodiscard]] inline std::string to_json(const structural_report& r) {
    return boost::json::serialize(detail::verification::json_report(r));
}
/// JSON: `{"check": "spot_check", "pass": ..., "counts": {...}, "rows": [{"key": "t-1", "outcome":
/// "differs", "ok": true, "differences": [{"field": "status", "a": "closed", "b": "open",
/// "expected": true}], "only_in_a": [], "only_in_b": [{"field": "reopened", "value": "1"}]}]}`.
[[nodiscard]] inline std::string to_json(const spot_report& r) {
    return boost::json::serialize(detail::verification::json_report(r));
}
/// JSON: `{"check": "sample", "name": ..., "expect": "differ", "pass": ..., "counts": {"matched": ...},
/// "differing_fields": [{"field": "status", "rows": 12}], "rows": [...]}`.
[[nodiscard]] inline std::string to_json(const sample_report& r) {
    return boost::json::serialize(detail::verification::json_report(r));
}
/// JSON: `{"pass": ..., "verdict": ..., "failures": [...], "structure": {...} or null,
/// "spot_checks": [...], "samples": [...]}`.
[[nodiscard]] inline std::string to_json(const report& r) {
    namespace v = detail::verification;
    const bool pass = passed(r);
    boost::json::object o{
        {"pass", pass}, {"verdict", pass ? "pass" : "fail"}, {"failures", v::json_texts(failures(r))}};
    o["structure"] = r.structure ? boost::json::value(v::json_report(*r.structure)) : boost::json::value(nullptr);
    boost::json::array spots, samples;
    for (const auto& s : r.spot_checks) spots.push_back(v::json_report(s));
    for (const auto& s : r.samples) samples.push_back(v::json_report(s));
    o["spot_checks"] = std::move(spots);
    o["samples"] = std::move(samples);
    return boost::json::serialize(o);
}

}  // namespace projectionist::verify
