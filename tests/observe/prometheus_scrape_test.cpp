// A real scrape: Prometheus (/usr/bin/prometheus, Debian package `prometheus`) runs on a free
// loopback port with a generated configuration, scrapes this process's endpoint every second
// while a runner backfills, and its query API must report the version's lag first at the head,
// then at 0. Loopback only, every wait bounded; the server is stopped (SIGTERM) at the end.

#include <catch2/catch.hpp>

#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <observe_support.hpp>
#include <projectionist/observe.hpp>
#include <projectionist/observe/http.hpp>
#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

extern char** environ;

namespace prometheus_scrape_test {

namespace pj = projectionist;
using namespace tickets_domain;
using namespace std::chrono_literals;

namespace {

/// Tickets, one millisecond per event: a backfill of a few thousand events lasts seconds, long
/// enough for Prometheus to scrape it midway.
struct slow_tickets : pj::projection<"slow_tickets", 1, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) {
        std::this_thread::sleep_for(1ms);
        ctx.table().insert({e.ticket_id, e.type, "open", 0});
    }
    void on(const ticket_closed& e, auto& ctx) {
        std::this_thread::sleep_for(1ms);
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
    }
};

std::uint16_t free_loopback_port() {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
}

std::string url_encode(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
            c == '.')
            out += static_cast<char>(c);
        else
            out += fmt::format("%{:02X}", c);
    }
    return out;
}

/// A Prometheus server in a child process, stopped with SIGTERM (then SIGKILL after 20 s).
struct prometheus_server {
    pid_t pid = -1;
    std::string log;

    prometheus_server(const std::string& binary, const std::filesystem::path& dir, std::uint16_t port) {
        log = (dir / "prometheus.log").string();
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
        std::vector<std::string> args{binary, "--config.file=" + (dir / "prometheus.yml").string(),
                                      "--storage.tsdb.path=" + (dir / "data").string(),
                                      fmt::format("--web.listen-address=127.0.0.1:{}", port), "--log.level=warn"};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        const int rc = ::posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        if (rc != 0) pid = -1;
    }
    ~prometheus_server() {
        if (pid <= 0) return;
        ::kill(pid, SIGTERM);
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        int status = 0;
        while (::waitpid(pid, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > deadline) {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, &status, 0);
                break;
            }
            std::this_thread::sleep_for(50ms);
        }
    }
    [[nodiscard]] bool running() const { return pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0; }
    [[nodiscard]] std::string log_text() const {
        std::ifstream in(log);
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }
    prometheus_server(const prometheus_server&) = delete;
    prometheus_server& operator=(const prometheus_server&) = delete;
};

/// The value of an instant query's first sample, if Prometheus has one:
/// ..."result":[{"metric":{...},"value":[1700000000.123,"42"]}]...
std::optional<double> query_value(std::uint16_t port, std::string_view promql) {
    try {
        auto a = observe_support::http_get(port, "/api/v1/query?query=" + url_encode(promql));
        if (a.status != 200) return std::nullopt;
        const auto v = a.body.find("\"value\":[");
        if (v == std::string::npos) return std::nullopt;
        const auto open = a.body.find(",\"", v);
        const auto close = a.body.find('"', open + 2);
        if (open == std::string::npos || close == std::string::npos) return std::nullopt;
        return std::stod(a.body.substr(open + 2, close - open - 2));
    } catch (const std::exception&) {
        return std::nullopt;  // not listening yet
    }
}

}  // namespace

TEST_CASE("Prometheus scrapes the endpoint while a version backfills and sees its lag reach 0",
          "[metrics][prometheus]") {
    const std::string binary = observe_support::prometheus_tool("prometheus", "PROJECTIONIST_PROMETHEUS");
    if (binary.empty())
        FAIL(
            "prometheus was not found (set PROJECTIONIST_PROMETHEUS or install the Debian package `prometheus`, "
            "which ships /usr/bin/prometheus): the scrape cannot be tested");

    pj::memory_event_store store;
    pj::memory_storage storage;
    constexpr int tickets_count = 1500;  // 3000 events, about 3 s of backfill
    for (int i = 0; i < tickets_count; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", 0, true);
    const std::uint64_t head = store.head();
    pj::runner<slow_tickets> runner(store, storage, {.batch_size = 100});
    pj::metrics_exporter metrics;
    metrics.add(runner);
    pj::metrics_endpoint endpoint(metrics);  // 127.0.0.1, a free port

    observe_support::temp_dir dir("projectionist-prometheus");
    std::ofstream(dir.path / "prometheus.yml") << fmt::format(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: projectionist\n"
        "    static_configs:\n"
        "      - targets: ['127.0.0.1:{}']\n",
        endpoint.port());
    const std::uint16_t port = free_loopback_port();
    prometheus_server server(binary, dir.path, port);
    REQUIRE(server.pid > 0);

    const std::string lag = R"(projectionist_lag_events{version="slow_tickets_v1"})";
    auto wait_for = [&](auto&& done, std::chrono::seconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            if (!server.running()) return false;
            if (done()) return true;
            std::this_thread::sleep_for(250ms);
        }
        return false;
    };

    // Before the backfill: scraped at the head's distance.
    std::optional<double> first;
    const bool scraped = wait_for([&] { return (first = query_value(port, lag)).has_value(); }, 60s);
    INFO("Prometheus log:\n" << server.log_text());
    REQUIRE(scraped);
    CHECK(*first == static_cast<double>(head));

    // During and after the backfill, on another thread: the lag Prometheus sees falls to 0.
    std::set<double> seen;
    std::jthread backfill([&] { runner.catch_up(); });
    const bool reached_zero = wait_for(
        [&] {
            auto v = query_value(port, lag);
            if (v) seen.insert(*v);
            return v == 0.0;
        },
        60s);
    backfill.join();
    std::string values;
    for (double v : seen) values += fmt::format("{} ", v);
    INFO("values seen: " << values);
    CHECK(reached_zero);
    CHECK(runner.status().lag == 0);
    // The counter as scraped agrees with the runner.
    CHECK(wait_for(
        [&] {
            return query_value(port, R"(projectionist_events_applied_total{version="slow_tickets_v1"})") ==
                   static_cast<double>(head);
        },
        30s));
    CHECK(query_value(port, R"(up{job="projectionist"})") == 1.0);
}

}  // namespace prometheus_scrape_test
