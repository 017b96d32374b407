#pragma once

/// `controller<Deployment, Router>`: the `any_controller` interface over one deployment and its
/// query router (or `no_router_t`), with the typed parts: names, tables and verification of the
/// versions' main tables.

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>
#include <boost/mp11/utility.hpp>

#include <projectionist/deploy/controller/any_controller.hpp>
#include <projectionist/deploy/deployment.hpp>
#include <projectionist/deploy/router.hpp>
#include <projectionist/deploy/verify.hpp>
#include <projectionist/detail/text.hpp>
#include <projectionist/error.hpp>
#include <projectionist/meta/reflection.hpp>
#include <projectionist/projection/projection.hpp>

namespace projectionist {

namespace detail {

/// Whether a router fits a deployment: it routes versions of the deployment's projection, each
/// one of the deployment's versions (all of them, or a subset).
template <class Deployment, class... Versions>
consteval bool router_fits(std::type_identity<router<Versions...>>) {
    return router<Versions...>::projection_name == Deployment::base_name &&
           (Deployment::contains(Versions::versioned_name) && ...);
}
template <class Deployment>
consteval bool router_fits(std::type_identity<no_router_t>) {
    return true;
}

/// A key typed by a user, as a value of the table's key type.
template <class Key>
Key parse_key(std::string_view text, std::string_view version) {
    if constexpr (std::is_constructible_v<Key, std::string>) {
        return Key(std::string(text));
    } else if constexpr (std::is_integral_v<Key> && !std::is_same_v<Key, bool>) {
        Key value{};
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc{} || ptr != text.data() + text.size() || text.empty())
            throw usage_error(fmt::format("--key '{}': the keys of {} are integers", shown(text), version));
        return value;
    } else {
        throw usage_error(
            fmt::format("--key: the keys of {} are neither text nor integers, so they cannot be typed", version));
    }
}

}  // namespace detail

/// The blue-green controller of one projection: its deployment (`projectionist::deployment<...>`)
/// and optionally its query router (`projectionist::router<...>` over the same versions or a
/// subset, checked at compile time), both held by reference. An application that drives the
/// steps itself calls the controller instead of the deployment and the router, and so keeps the
/// rules the command line keeps (see `any_controller`):
///
///     projectionist::controller control(deployment, router);     // or (deployment, no_router)
///     control.init("tickets_v2");
///     control.backfill("tickets_v2");
///     control.verify("tickets_v1", "tickets_v2", {.expected_changes = {"status"}});
///     control.rollout("tickets_v2", 10);     // refused until tickets_v2 has caught up
///     control.switch_to("tickets_v2");       // the catalog records it serving; the router switches
///     control.rollback();                    // tickets_v1 serves again
///     control.remove("tickets_v1");          // refused: the router sends it queries
///
/// Errors: `state_error` for a step the life cycle refuses, with the version's state and what to
/// run first; `error` for a name that is not a version, or a share without a router.
template <class Deployment, class Router = no_router_t>
class controller final : public any_controller {
    static constexpr bool routed = !std::is_same_v<Router, no_router_t>;
    static_assert(detail::router_fits<Deployment>(std::type_identity<Router>{}),
                  "projectionist: controller(deployment, router): the router must route versions of the deployment's "
                  "projection, each of them one of the deployment's versions");

public:
    using deployment_type = Deployment;
    using router_type = Router;

    /// Throws `error` if the verify settings name a version that is not deployed.
    controller(Deployment& deployment, Router& router, verify_settings settings = {},
               controller_options options = {}) requires routed
        : controller(deployment, &router, std::move(settings), std::move(options)) {}

    controller(Deployment& deployment, no_router_t = no_router, verify_settings settings = {},
               controller_options options = {}) requires(!routed)
        : controller(deployment, nullptr, std::move(settings), std::move(options)) {}

    [[nodiscard]] Deployment& deployment() noexcept { return deployment_; }

    [[nodiscard]] std::string_view base_name() const noexcept override { return Deployment::base_name; }
    [[nodiscard]] const std::vector<std::string_view>& versions() const noexcept override { return versions_; }
    [[nodiscard]] bool has_router() const noexcept override { return routed; }
    [[nodiscard]] bool routes(std::string_view version) const noexcept override {
        if constexpr (routed) {
            for (auto n : Router::version_names)
                if (n == version) return true;
        } else {
            (void)version;
        }
        return false;
    }

    void refresh() override {
        for (auto v : versions_) refresh(v);
        if constexpr (routed) router_->refresh();
    }
    projection_state refresh(std::string_view version, bool checkpoint = true) override {
        return deployment_.visit(version, [&](auto& r) {
            // runner::refresh() reloads the checkpoint only after a reset; an application that
            // follows the log in another process moves it too. Between batches, re-reading what
            // is committed is what the runner itself does after a checkpoint conflict.
            if constexpr (requires { r.session().reload_checkpoint(); })
                if (checkpoint) r.session().reload_checkpoint();
            r.refresh();
            return r.state();
        });
    }
    [[nodiscard]] runner_status status_of(std::string_view version) override {
        return deployment_.visit(version, [](auto& r) { return r.status(); });
    }
    [[nodiscard]] std::optional<router_status> routing() const override {
        if constexpr (routed)
            return router_->status();
        else
            return std::nullopt;
    }
    [[nodiscard]] std::vector<std::string> tables_of(std::string_view version) override {
        return deployment_.visit(version, [](auto& r) {
            using P = typename std::remove_reference_t<decltype(r)>::projection_type;
            std::vector<std::string> out;
            boost::mp11::mp_for_each<boost::mp11::mp_transform<boost::mp11::mp_identity, detail::tables_of<P>>>(
                [&](auto t) { out.emplace_back(detail::table_name_v<P, typename decltype(t)::type>); });
            return out;
        });
    }
    [[nodiscard]] std::vector<dead_letter> dead_letters_of(std::string_view version) override {
        return deployment_.visit(version, [](auto& r) { return r.dead_letters(); });
    }
    [[nodiscard]] bool manual_kickoff(std::string_view version) override {
        return deployment_.visit(version,
                                 [](auto& r) { return std::remove_reference_t<decltype(r)>::kickoff::manual; });
    }

    bool recover(std::string_view version, const error& cause,
                 const std::function<void(const detail::reconnect_attempt&)>& report,
                 const std::function<bool()>& should_stop) override {
        return deployment_.visit(version, [&](auto& r) { return r.recover(cause, report, should_stop); });
    }

    void validate(std::string_view a, std::string_view b, const verify_request& request) override {
        deployment_.visit(a,
                          [&](auto& ra) { deployment_.visit(b, [&](auto& rb) { check_request(ra, rb, request); }); });
    }

protected:
    init_result init_version(std::string_view version) override { return deployment_.init(version); }
    std::uint64_t backfill_version(std::string_view version, const backfill_options& options,
                                   const std::function<bool()>& should_stop) override {
        return deployment_.backfill(version, options, should_stop);
    }
    std::uint64_t catch_up_version(std::string_view version, const std::function<bool()>& should_stop) override {
        return deployment_.catch_up(version, should_stop);
    }
    void make_live_version(std::string_view version) override { deployment_.make_live(version); }
    void serve_version(std::string_view version) override { deployment_.serve(version); }
    void reset_version(std::string_view version) override { deployment_.reset(version); }
    void remove_version(std::string_view version, const remove_options& options) override {
        deployment_.remove(version, options);
    }

    void retain_version(std::string_view version, std::string_view date, bool force) override {
        deployment_.retain_until(version, date, force);
    }

    void router_switch_to(std::string_view version) override {
        if constexpr (routed)
            router_->switch_to(version);
        else
            (void)version;
    }
    void router_rollout(std::string_view version, unsigned basis_points) override {
        deployment_.visit(version, [](auto& r) { r.require_same_definition(); });
        if constexpr (routed)
            router_->rollout_basis_points(version, basis_points);
        else
            (void)version, (void)basis_points;
    }
    void router_rollback() override {
        if constexpr (routed) router_->rollback();
    }
    bool router_wait_for_drain(std::string_view version, std::chrono::milliseconds timeout) override {
        if constexpr (routed) {
            if (routes(version)) return router_->wait_for_drain(version, timeout);
        } else {
            (void)version, (void)timeout;
        }
        return true;
    }

    void router_set_predicate(std::optional<std::string_view> name) override {
        if constexpr (routed) {
            if (name)
                router_->enable_predicate(*name);
            else
                router_->disable_predicate();
        } else {
            (void)name;
        }
    }

    [[nodiscard]] verify::report compare(std::string_view a, std::string_view b,
                                         const verify_request& request) override {
        verify::diff_options options = options_for(a, b);
        for (const auto& c : request.expected_changes)
            if (std::find(options.expected_changes.begin(), options.expected_changes.end(), c) ==
                options.expected_changes.end())
                options.expected_changes.push_back(c);
        return deployment_.visit(a, [&](auto& ra) {
            return deployment_.visit(b, [&](auto& rb) { return compare_tables(ra, rb, options, request); });
        });
    }

private:
    controller(Deployment& deployment, Router* router, verify_settings settings, controller_options options)
        : deployment_(deployment),
          router_(router),
          settings_(std::move(settings)),
          versions_(Deployment::names.begin(), Deployment::names.end()) {
        set_options(std::move(options));
        for (const auto& p : settings_.pairs)
            for (const std::string& n : {p.a, p.b})
                if (!Deployment::contains(n))
                    throw error(
                        fmt::format("projectionist: controller(deployment, router, verify_settings): verify settings "
                                    "name '{}', which is not a version of {}; the versions are: {}",
                                    n, Deployment::base_name, detail::join(Deployment::names)));
    }

    [[nodiscard]] verify::diff_options options_for(std::string_view a, std::string_view b) const {
        for (const auto& p : settings_.pairs)
            if ((p.a == a && p.b == b) || (p.a == b && p.b == a)) return p.options;
        return settings_.options;
    }

    /// The suffix ("" for the main table) of the table `table` names: a table name or suffix of
    /// A or B; empty `table`: the main tables. Throws `name_error` listing the tables otherwise.
    template <class PA, class PB>
    static std::string suffix_of(std::string_view table) {
        if (table.empty()) return {};
        std::optional<std::string> found;
        std::vector<std::string> names;
        const auto look = [&]<class P>(std::type_identity<P>) {
            boost::mp11::mp_for_each<boost::mp11::mp_transform<std::type_identity, detail::tables_of<P>>>([&](auto t) {
                using T = typename decltype(t)::type;
                const std::string_view suffix = T::suffix.view();
                if (table == detail::table_name_v<P, T> || (!suffix.empty() && table == suffix))
                    found = std::string(suffix);
                names.emplace_back(detail::table_name_v<P, T>);
            });
        };
        look(std::type_identity<PA>{});
        look(std::type_identity<PB>{});
        if (!found)
            throw detail::name_error(fmt::format("unknown table '{}' of {} and {}; their tables are: {}",
                                                 detail::shown(table), name_of<PA>, name_of<PB>, detail::join(names)));
        return *found;
    }

    /// The index among P's tables of the table with `suffix`, or none.
    template <class P>
    static std::optional<std::size_t> index_of_suffix(std::string_view suffix) {
        std::optional<std::size_t> out;
        std::size_t i = 0;
        boost::mp11::mp_for_each<boost::mp11::mp_transform<std::type_identity, detail::tables_of<P>>>([&](auto t) {
            if (decltype(t)::type::suffix.view() == suffix && !out) out = i;
            ++i;
        });
        return out;
    }

    /// `fn(std::type_identity<TA>{}, std::type_identity<TB>{})` with the tables of A and B that
    /// `table` names (see `suffix_of`), paired by suffix; returns what fn returns (an `R`).
    template <class R, class PA, class PB, class F>
    static R with_table_pair(std::string_view table, F&& fn) {
        using tables_a = detail::tables_of<PA>;
        using tables_b = detail::tables_of<PB>;
        if constexpr (boost::mp11::mp_empty<tables_a>::value || boost::mp11::mp_empty<tables_b>::value) {
            throw error(fmt::format("projectionist: cannot verify {} against {}: {} has no tables to compare",
                                    name_of<PA>, name_of<PB>,
                                    boost::mp11::mp_empty<tables_a>::value ? name_of<PA> : name_of<PB>));
        } else {
            const std::string suffix = suffix_of<PA, PB>(table);
            const auto ia = index_of_suffix<PA>(suffix);
            const auto ib = index_of_suffix<PB>(suffix);
            if (!ia || !ib)
                throw detail::name_error(
                    fmt::format("table '{}' is {}'s only: {} has no table{} to compare it with", detail::shown(table),
                                ia ? name_of<PA> : name_of<PB>, ia ? name_of<PB> : name_of<PA>,
                                suffix.empty() ? std::string() : fmt::format(" with the suffix '{}'", suffix)));
            return boost::mp11::mp_with_index<boost::mp11::mp_size<tables_a>::value>(*ia, [&](auto IA) -> R {
                return boost::mp11::mp_with_index<boost::mp11::mp_size<tables_b>::value>(*ib, [&](auto IB) -> R {
                    return fn(std::type_identity<boost::mp11::mp_at_c<tables_a, IA>>{},
                              std::type_identity<boost::mp11::mp_at_c<tables_b, IB>>{});
                });
            });
        }
    }

    /// Every column name of P's tables.
    template <class P>
    static void add_columns(std::vector<std::string>& all) {
        boost::mp11::mp_for_each<boost::mp11::mp_transform<std::type_identity, detail::tables_of<P>>>([&](auto t) {
            for (auto& c : detail::field_names<typename decltype(t)::type::row_type>())
                if (std::find(all.begin(), all.end(), c) == all.end()) all.push_back(std::move(c));
        });
    }

    /// Checks the request's table, its expected changes (columns of any table of A or B) and its
    /// keys (of the key type of B's table).
    template <class RA, class RB>
    static void check_request(RA&, RB&, const verify_request& request) {
        using PA = typename RA::projection_type;
        using PB = typename RB::projection_type;
        with_table_pair<void, PA, PB>(request.table, [&]<class TA, class TB>(std::type_identity<TA>,
                                                                             std::type_identity<TB>) {
            std::vector<std::string> all;
            add_columns<PA>(all);
            add_columns<PB>(all);
            for (const auto& c : request.expected_changes)
                if (std::find(all.begin(), all.end(), c) == all.end())
                    throw detail::name_error(
                        fmt::format("unknown column '{}' in --expect-change; the columns of {} and {} are: {}",
                                    detail::shown(c), name_of<PA>, name_of<PB>, detail::join(all)));
            using key_b = typename TB::key_type;
            for (const auto& k : request.keys) (void)detail::parse_key<key_b>(k, name_of<PB>);
            if constexpr (!std::is_constructible_v<typename TA::key_type, const key_b&>)
                if (!request.keys.empty())
                    throw detail::usage_error(fmt::format("--key: the keys of {} and {} have unrelated types",
                                                          detail::table_name_v<PA, TA>, detail::table_name_v<PB, TB>));
        });
    }

    template <class RA, class RB>
    static verify::report compare_tables(RA& ra, RB& rb, const verify::diff_options& options,
                                         const verify_request& request) {
        check_request(ra, rb, request);
        using PA = typename RA::projection_type;
        using PB = typename RB::projection_type;
        return with_table_pair<verify::report, PA, PB>(
            request.table, [&]<class TA, class TB>(std::type_identity<TA>, std::type_identity<TB>) {
                using key_b = typename TB::key_type;
                std::vector<key_b> keys;
                for (const auto& k : request.keys) keys.push_back(detail::parse_key<key_b>(k, name_of<PB>));
                auto* ha = ra.session().template open_table<TA>(detail::table_name_v<PA, TA>);
                auto* hb = rb.session().template open_table<TB>(detail::table_name_v<PB, TB>);
                if (ha == nullptr || hb == nullptr) {
                    const std::string_view missing =
                        ha == nullptr ? detail::table_name_v<PA, TA> : detail::table_name_v<PB, TB>;
                    throw state_error(fmt::format(
                        "projectionist: cannot verify: table {} does not exist; run init and backfill first", missing));
                }
                verify::report r;
                r.structure = verify::structural_diff(ha, hb, options);
                if constexpr (std::is_constructible_v<typename TA::key_type, const key_b&>)
                    if (!keys.empty()) r.spot_checks.push_back(verify::spot_check(ha, hb, keys, options));
                return r;
            });
    }

    Deployment& deployment_;
    Router* router_;
    verify_settings settings_;
    std::vector<std::string_view> versions_;
};

template <class... Runners, class... Versions>
controller(deployment<Runners...>&, router<Versions...>&, verify_settings = {}, controller_options = {})
    -> controller<deployment<Runners...>, router<Versions...>>;
template <class... Runners>
controller(deployment<Runners...>&, no_router_t = no_router, verify_settings = {}, controller_options = {})
    -> controller<deployment<Runners...>, no_router_t>;

}  // namespace projectionist
