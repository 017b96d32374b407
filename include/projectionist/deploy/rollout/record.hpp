#pragma once

/// How a rollout is persisted, in the storage's settings beside the router's state, as JSON
/// (Boost.JSON: link projectionist::tools):
///
///     projectionist.rollout.tickets                 the plan and its progress (rollout_record)
///     projectionist.rollout.tickets.observers       the processes that report shadow reads
///     projectionist.rollout.tickets.observer.<id>   one process's reads at the current step
///
/// The record is written only when the rollout takes a decision (start, next step, roll back,
/// complete, abort); each process writes only its own observation, so the processes that serve
/// queries never overwrite each other's counts. A value that cannot be read is an error that
/// names the key and what is wrong; it is never ignored.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <projectionist/deploy/rollout/plan.hpp>
#include <projectionist/error.hpp>

namespace projectionist {

/// One process's shadow reads at one step of one plan.
struct rollout_observation {
    std::string plan_id;
    std::size_t step = 0;
    std::uint64_t compared = 0;
    std::uint64_t discrepancies = 0;
    std::vector<rollout_discrepancy> sample{};  ///< the first discrepancies of the step, both answers
};

}  // namespace projectionist

namespace projectionist::detail::rollout {

namespace json = boost::json;

[[nodiscard]] inline std::string record_key(std::string_view projection) {
    return fmt::format("projectionist.rollout.{}", projection);
}
[[nodiscard]] inline std::string observers_key(std::string_view projection) {
    return fmt::format("projectionist.rollout.{}.observers", projection);
}
[[nodiscard]] inline std::string observer_key(std::string_view projection, std::string_view observer) {
    return fmt::format("projectionist.rollout.{}.observer.{}", projection, observer);
}

/// Reads fields of a JSON object, throwing an error that names the setting and the field.
class reader {
public:
    reader(const json::value& v, std::string_view key, std::string_view what) : key_(key) {
        if (!v.is_object()) fail(fmt::format("{} is not a JSON object", what));
        object_ = &v.as_object();
    }
    reader(const json::object& o, std::string_view key) : key_(key), object_(&o) {}

    [[noreturn]] void fail(const std::string& what) const {
        throw error(
            fmt::format("projectionist: the saved setting '{}' is invalid: {}; save a rollout again "
                        "(rollout <projection> --to <version> ...) or delete the setting",
                        key_, what));
    }
    [[nodiscard]] const json::value& at(std::string_view name) const {
        const auto* v = object_->if_contains(name);
        if (v == nullptr) fail(fmt::format("the field '{}' is missing", name));
        return *v;
    }
    [[nodiscard]] std::string text(std::string_view name) const {
        const auto& v = at(name);
        if (!v.is_string()) fail(fmt::format("the field '{}' is not a string", name));
        return std::string(v.as_string());
    }
    [[nodiscard]] std::uint64_t number(std::string_view name) const {
        const auto& v = at(name);
        if (v.is_uint64()) return v.as_uint64();
        if (v.is_int64() && v.as_int64() >= 0) return static_cast<std::uint64_t>(v.as_int64());
        fail(fmt::format("the field '{}' is not a whole number from 0", name));
    }
    [[nodiscard]] std::int64_t signed_number(std::string_view name) const {
        const auto& v = at(name);
        if (v.is_int64()) return v.as_int64();
        if (v.is_uint64() && v.as_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
            return static_cast<std::int64_t>(v.as_uint64());
        fail(fmt::format("the field '{}' is not a whole number", name));
    }
    [[nodiscard]] double real(std::string_view name) const {
        const auto& v = at(name);
        if (v.is_double()) return v.as_double();
        if (v.is_int64()) return static_cast<double>(v.as_int64());
        if (v.is_uint64()) return static_cast<double>(v.as_uint64());
        fail(fmt::format("the field '{}' is not a number", name));
    }
    [[nodiscard]] bool flag(std::string_view name) const {
        const auto& v = at(name);
        if (!v.is_bool()) fail(fmt::format("the field '{}' is not true or false", name));
        return v.as_bool();
    }
    [[nodiscard]] const json::array& list(std::string_view name) const {
        const auto& v = at(name);
        if (!v.is_array()) fail(fmt::format("the field '{}' is not a list", name));
        return v.as_array();
    }
    [[nodiscard]] std::vector<std::string> texts(std::string_view name) const {
        std::vector<std::string> out;
        for (const auto& e : list(name)) {
            if (!e.is_string()) fail(fmt::format("the field '{}' holds something that is not a string", name));
            out.emplace_back(e.as_string());
        }
        return out;
    }
    [[nodiscard]] bool has(std::string_view name) const { return object_->contains(name); }
    [[nodiscard]] std::string_view key() const { return key_; }

private:
    std::string_view key_;
    const json::object* object_ = nullptr;
};

[[nodiscard]] inline json::value parse_json(std::string_view text, std::string_view key) {
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec)
        throw error(
            fmt::format("projectionist: the saved setting '{}' is invalid: it is not JSON ({}); its value "
                        "begins '{}'",
                        key, ec.message(), detail::shown(text.substr(0, 60))));
    return v;
}

inline json::array to_json(const std::vector<rollout_discrepancy>& list) {
    json::array a;
    for (const auto& d : list)
        a.push_back(json::object{
            {"key", d.key}, {"primary", d.primary_value}, {"candidate", d.candidate_value}, {"error", d.error}});
    return a;
}

inline std::vector<rollout_discrepancy> discrepancies_from(const reader& r, std::string_view name) {
    std::vector<rollout_discrepancy> out;
    for (const auto& e : r.list(name)) {
        const reader d(e, r.key(), fmt::format("an element of '{}'", name));
        out.push_back({d.text("key"), d.text("primary"), d.text("candidate"), d.text("error")});
    }
    return out;
}

[[nodiscard]] inline std::string format_record(const rollout_record& r) {
    json::array steps;
    for (const auto& s : r.plan.steps) {
        if (s.predicate.empty())
            steps.push_back(json::value(s.basis_points));
        else
            steps.push_back(json::value(s.predicate));
    }
    json::array expected;
    for (const auto& c : r.plan.expected_changes) expected.push_back(json::value(c));
    json::object plan{{"candidate", r.plan.candidate},
                      {"steps", std::move(steps)},
                      {"dwell_ms", r.plan.dwell.count()},
                      {"min_shadow_reads", r.plan.min_shadow_reads},
                      {"max_discrepancy", r.plan.max_discrepancy},
                      {"expected_changes", std::move(expected)},
                      {"make_live", r.plan.make_live},
                      {"shadow_sampling", r.plan.shadow_sampling}};
    if (r.plan.max_lag) plan["max_lag"] = *r.plan.max_lag;
    json::object o{{"format", 1},
                   {"projection", r.projection},
                   {"id", r.id},
                   {"primary", r.primary},
                   {"plan", std::move(plan)},
                   {"state", to_string(r.state)},
                   {"step", r.step},
                   {"step_started_ms", r.step_started_ms},
                   {"finished_ms", r.finished_ms},
                   {"gate", r.gate},
                   {"reason", r.reason},
                   {"discrepant", to_json(r.discrepant)},
                   {"revision", r.revision}};
    return json::serialize(o);
}

[[nodiscard]] inline rollout_record parse_record(std::string_view text, std::string_view key) {
    const json::value v = parse_json(text, key);
    const reader r(v, key, "the value");
    if (r.number("format") != 1)
        r.fail(fmt::format("format {} is not known to this version of projectionist (it reads format 1)",
                           r.number("format")));
    rollout_record out;
    out.projection = r.text("projection");
    out.id = r.text("id");
    out.primary = r.text("primary");
    const reader p(r.at("plan"), key, "the field 'plan'");
    out.plan.candidate = p.text("candidate");
    for (const auto& s : p.list("steps")) {
        if (s.is_string())
            out.plan.steps.push_back({0, std::string(s.as_string())});
        else if ((s.is_uint64() || s.is_int64()) && s.to_number<std::int64_t>() >= 0 &&
                 s.to_number<std::int64_t>() <= routing_buckets)
            out.plan.steps.push_back({static_cast<unsigned>(s.to_number<std::int64_t>()), {}});
        else
            r.fail("a step is neither a share in basis points (0 to 10000) nor a predicate's name");
    }
    out.plan.dwell = std::chrono::milliseconds(p.signed_number("dwell_ms"));
    out.plan.min_shadow_reads = p.number("min_shadow_reads");
    out.plan.max_discrepancy = p.real("max_discrepancy");
    if (p.has("max_lag")) out.plan.max_lag = p.number("max_lag");
    out.plan.expected_changes = p.texts("expected_changes");
    out.plan.make_live = p.flag("make_live");
    out.plan.shadow_sampling = static_cast<unsigned>(std::min<std::uint64_t>(p.number("shadow_sampling"), 10000));
    const std::string state = r.text("state");
    constexpr auto& states = detail::enum_names_of<rollout_state>;
    if (const auto known = states.parse(state))
        out.state = *known;
    else
        r.fail(fmt::format("the state '{}' is none of {}", detail::shown(state), detail::join(states.names)));
    out.step = static_cast<std::size_t>(r.number("step"));
    if (out.plan.steps.empty() || out.step >= out.plan.steps.size())
        r.fail(fmt::format("the step {} is not one of the plan's {} steps", out.step, out.plan.steps.size()));
    out.step_started_ms = r.signed_number("step_started_ms");
    out.finished_ms = r.signed_number("finished_ms");
    out.gate = r.text("gate");
    out.reason = r.text("reason");
    out.discrepant = discrepancies_from(r, "discrepant");
    out.revision = r.number("revision");
    return out;
}

[[nodiscard]] inline std::string format_observation(const rollout_observation& o) {
    return json::serialize(json::object{{"plan", o.plan_id},
                                        {"step", o.step},
                                        {"compared", o.compared},
                                        {"discrepancies", o.discrepancies},
                                        {"sample", to_json(o.sample)}});
}

[[nodiscard]] inline rollout_observation parse_observation(std::string_view text, std::string_view key) {
    const json::value v = parse_json(text, key);
    const reader r(v, key, "the value");
    return {r.text("plan"), static_cast<std::size_t>(r.number("step")), r.number("compared"), r.number("discrepancies"),
            discrepancies_from(r, "sample")};
}

[[nodiscard]] inline std::string format_observers(const std::vector<std::string>& ids) {
    json::array a;
    for (const auto& id : ids) a.push_back(json::value(id));
    return json::serialize(a);
}

[[nodiscard]] inline std::vector<std::string> parse_observers(std::string_view text, std::string_view key) {
    const json::value v = parse_json(text, key);
    if (!v.is_array())
        throw error(fmt::format("projectionist: the saved setting '{}' is invalid: it is not a list of names", key));
    std::vector<std::string> out;
    for (const auto& e : v.as_array()) {
        if (!e.is_string())
            throw error(
                fmt::format("projectionist: the saved setting '{}' is invalid: it holds something not a name", key));
        out.emplace_back(e.as_string());
    }
    return out;
}

}  // namespace projectionist::detail::rollout

namespace projectionist {

/// The rollout of `projection` saved in a settings store (a storage), read afresh; nothing when
/// none was ever started. Throws `projectionist::error` when the saved value cannot be read.
template <class Settings>
[[nodiscard]] std::optional<rollout_record> find_rollout(const Settings& settings, std::string_view projection) {
    const std::string key = detail::rollout::record_key(projection);
    if (auto saved = settings.find_setting(key)) return detail::rollout::parse_record(*saved, key);
    return std::nullopt;
}

}  // namespace projectionist
