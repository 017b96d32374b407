#pragma once

/// The Prometheus text exposition format (version 0.0.4), written by a small registry: metric
/// families in the order they were first added, `# HELP` and `# TYPE` once per family, counters
/// whose names end in `_total`, gauges, and histograms with cumulative `_bucket{le="..."}`,
/// `_sum` and `_count`. Values are in base units (seconds, not milliseconds).
///
///     projectionist::metrics_text m;
///     m.gauge("projectionist_lag_events", "Events behind the head.", {{"version", "tickets_v2"}}, 42);
///     m.counter("projectionist_events_applied_total", "Handlers run.", {{"version", "tickets_v2"}}, 7);
///     std::string body = m.str();
///     // # HELP projectionist_lag_events Events behind the head.
///     // # TYPE projectionist_lag_events gauge
///     // projectionist_lag_events{version="tickets_v2"} 42
///     // ...
///
/// Names are checked ([a-zA-Z_:][a-zA-Z0-9_:]* for metrics, [a-zA-Z_][a-zA-Z0-9_]* for labels);
/// a wrong name, a counter without `_total`, or one family added with two types throws
/// `projectionist::error`: a scraper would reject the whole page, so the mistake is reported
/// where it is made. Label values may hold anything: backslash, double quote and newline are
/// escaped as the format requires.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <projectionist/detail/enum_text.hpp>
#include <projectionist/error.hpp>

namespace projectionist {

/// Label pairs of one series, in the order they are written: `{{"version", "tickets_v2"}}`.
using metric_labels = std::vector<std::pair<std::string, std::string>>;

enum class metric_type { counter, gauge, histogram };

template <>
inline constexpr auto detail::enum_names_of<metric_type> =
    detail::enum_names<metric_type::histogram>{{"counter", "gauge", "histogram"}, "untyped"};

namespace detail::metrics {

[[nodiscard]] constexpr bool valid_name(std::string_view name, bool colon) noexcept {
    if (name.empty()) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
        const bool digit = c >= '0' && c <= '9';
        if (!letter && !(digit && i > 0)) return false;
    }
    return true;
}

/// `\` -> `\\`, newline -> `\n`, and `"` -> `\"` too when `quotes`: the escapes of the text
/// format, which label values and HELP text share but for the quotes.
[[nodiscard]] inline std::string escape_text(std::string_view v, bool quotes) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (quotes && c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

/// A label value as the format requires: `\` -> `\\`, `"` -> `\"`, newline -> `\n`.
[[nodiscard]] inline std::string escape_label_value(std::string_view v) {
    return escape_text(v, true);
}

/// HELP text: `\` -> `\\`, newline -> `\n` (quotes stay as they are).
[[nodiscard]] inline std::string escape_help(std::string_view v) {
    return escape_text(v, false);
}

/// A sample value: integers without a fraction, others in the shortest form that reads back
/// the same, and the format's spellings of infinities and NaN.
[[nodiscard]] inline std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    return fmt::format("{}", v);
}

}  // namespace detail::metrics

/// A page of metrics in the Prometheus text format; see the comment at the top of this file.
/// Not thread-safe: one scrape builds one object.
class metrics_text {
public:
    /// A counter sample. `name` must end in `_total` (the format's rule for counters).
    void counter(std::string_view name, std::string_view help, const metric_labels& labels, double value) {
        if (!name.ends_with("_total"))
            throw error(fmt::format("projectionist: metrics_text: the counter '{}' must end in _total", name));
        family(name, help, metric_type::counter).lines.push_back(sample(name, "", labels, {}, value));
    }

    void gauge(std::string_view name, std::string_view help, const metric_labels& labels, double value) {
        family(name, help, metric_type::gauge).lines.push_back(sample(name, "", labels, {}, value));
    }

    /// A histogram series from per-bucket counts: `counts[i]` observations in (bounds[i-1],
    /// bounds[i]], and `counts[bounds.size()]` those above every bound (so `counts` has one more
    /// element than `bounds`). The buckets written are cumulative, ending with `le="+Inf"`, whose
    /// value is `count`.
    void histogram(std::string_view name, std::string_view help, const metric_labels& labels,
                   std::span<const double> bounds, std::span<const std::uint64_t> counts, double sum,
                   std::uint64_t count) {
        if (counts.size() != bounds.size() + 1)
            throw error(
                fmt::format("projectionist: metrics_text: the histogram '{}' has {} bounds and {} counts; "
                            "give one count per bound plus one for the observations above them",
                            name, bounds.size(), counts.size()));
        auto& f = family(name, help, metric_type::histogram);
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < bounds.size(); ++i) {
            cumulative += counts[i];
            f.lines.push_back(sample(name, "_bucket", labels, detail::metrics::format_value(bounds[i]),
                                     static_cast<double>(cumulative)));
        }
        f.lines.push_back(sample(name, "_bucket", labels, "+Inf", static_cast<double>(count)));
        f.lines.push_back(sample(name, "_sum", labels, {}, sum));
        f.lines.push_back(sample(name, "_count", labels, {}, static_cast<double>(count)));
    }

    /// The page: every family with its HELP and TYPE lines, then its samples.
    [[nodiscard]] std::string str() const {
        std::string out;
        for (const auto& f : families_) {
            out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, detail::metrics::escape_help(f.help), f.name,
                               to_string(f.type));
            for (const auto& l : f.lines) out += l;
        }
        return out;
    }

    [[nodiscard]] bool empty() const noexcept { return families_.empty(); }

private:
    struct metric_family {
        std::string name;
        std::string help;
        metric_type type;
        std::vector<std::string> lines;
    };

    metric_family& family(std::string_view name, std::string_view help, metric_type type) {
        for (auto& f : families_) {
            if (f.name != name) continue;
            if (f.type != type)
                throw error(
                    fmt::format("projectionist: metrics_text: '{}' was added as a {} and now as a {}; a "
                                "metric has one type",
                                name, to_string(f.type), to_string(type)));
            return f;
        }
        if (!detail::metrics::valid_name(name, true))
            throw error(
                fmt::format("projectionist: metrics_text: '{}' is not a valid metric name "
                            "([a-zA-Z_:][a-zA-Z0-9_:]*)",
                            name));
        families_.push_back({std::string(name), std::string(help), type, {}});
        return families_.back();
    }

    static std::string sample(std::string_view name, std::string_view suffix, const metric_labels& labels,
                              std::string_view le, double value) {
        std::string out = fmt::format("{}{}", name, suffix);
        if (!labels.empty() || !le.empty()) {
            out += '{';
            bool first = true;
            auto add = [&](std::string_view key, std::string_view v) {
                if (!detail::metrics::valid_name(key, false) || key.starts_with("__"))
                    throw error(
                        fmt::format("projectionist: metrics_text: '{}' is not a valid label name for '{}' "
                                    "([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)",
                                    key, name));
                if (!first) out += ',';
                first = false;
                out += fmt::format("{}=\"{}\"", key, detail::metrics::escape_label_value(v));
            };
            for (const auto& [k, v] : labels) add(k, v);
            if (!le.empty()) add("le", le);
            out += '}';
        }
        out += ' ';
        out += detail::metrics::format_value(value);
        out += '\n';
        return out;
    }

    std::vector<metric_family> families_;
};

}  // namespace projectionist
