#pragma once

/// `run --metrics ADDRESS:PORT`: an exporter over every registered projection's versions (their
/// runners' statuses, read at scrape time; deleted versions left out) and the HTTP endpoint that
/// serves it (observe/http.hpp) for as long as `run` runs.

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include <projectionist/cli/commands.hpp>
#include <projectionist/cli/parser.hpp>
#include <projectionist/deploy/controller/any_controller.hpp>
#include <projectionist/detail/text.hpp>
#include <projectionist/observe/exporter.hpp>
#include <projectionist/observe/http.hpp>

namespace projectionist::detail::cli {

/// "127.0.0.1:9464", "0.0.0.0:0" or "[::1]:9464" -> address and port; a usage error otherwise.
inline std::pair<std::string, std::uint16_t> parse_listen_address(std::string_view text) {
    const auto colon = text.rfind(':');
    auto fail = [&]() -> std::pair<std::string, std::uint16_t> {
        throw usage_error(fmt::format(
            "--metrics '{}': give ADDRESS:PORT, e.g. 127.0.0.1:9464 or [::1]:9464 (port 0: any)", shown(text)));
    };
    if (colon == std::string_view::npos || colon == 0) return fail();
    std::string_view address = text.substr(0, colon);
    const std::string_view port_text = text.substr(colon + 1);
    if (address.size() > 2 && address.front() == '[' && address.back() == ']')
        address = address.substr(1, address.size() - 2);
    std::uint16_t port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc{} || ptr != port_text.data() + port_text.size()) return fail();
    return {std::string(address), port};
}

/// The exporter and the endpoint of one `run`.
struct run_metrics {
    metrics_exporter exporter;
    std::optional<metrics_endpoint> endpoint;
};

/// Starts serving the metrics of `entries` as `run --metrics` asks, or returns null without the
/// option. An address in use is a `projectionist::error` (exit status 1) before anything runs.
inline std::unique_ptr<run_metrics> serve_run_metrics(const parsed_command& p,
                                                      const std::vector<any_controller*>& entries) {
    const auto listen = p.value("metrics");
    if (!listen) {
        for (const char* option : {"ready", "max-lag"})
            if (p.value(option)) throw usage_error(fmt::format("--{} needs --metrics", option));
        return nullptr;
    }
    auto [address, port] = parse_listen_address(*listen);
    metrics_endpoint_options options{.address = std::move(address), .port = port};
    if (auto v = p.value("max-lag")) options.max_lag = parse_count("max-lag", *v);
    auto out = std::make_unique<run_metrics>();
    for (auto* e : entries)
        out->exporter.add_source(std::string(e->base_name()), [e] {
            std::vector<runner_status> statuses;
            for (auto v : e->versions()) {
                runner_status s = e->status_of(v);
                if (s.state != projection_state::deleted) statuses.push_back(std::move(s));
            }
            return statuses;
        });
    if (auto v = p.value("ready")) {
        const auto known = versions_of(entries);
        if (std::find(known.begin(), known.end(), *v) == known.end())
            throw name_error(
                fmt::format("--ready '{}': no such version; the versions are: {}", shown(*v), join(known)));
        options.ready_version = std::string(*v);
    }
    out->endpoint.emplace(out->exporter, std::move(options));
    return out;
}

}  // namespace projectionist::detail::cli
