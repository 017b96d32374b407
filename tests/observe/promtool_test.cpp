// Prometheus's own checker on what the exporter writes (`promtool check metrics`) and on the
// alert rules the documentation shows (`promtool check rules`). promtool ships with the Debian
// package `prometheus`; without it these tests fail and say so, they never pass silently.

#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <utility>

#include <fake_worker.hpp>
#include <observe_support.hpp>
#include <projectionist/deploy/deployment.hpp>
#include <projectionist/deploy/rollout/any_rollout.hpp>
#include <projectionist/deploy/router.hpp>
#include <projectionist/observe.hpp>
#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

namespace promtool_test {

namespace pj = projectionist;
using namespace tickets_domain;

namespace {

std::string promtool() {
    std::string path = observe_support::prometheus_tool("promtool", "PROJECTIONIST_PROMTOOL");
    if (path.empty())
        FAIL(
            "promtool was not found (set PROJECTIONIST_PROMTOOL or install the Debian package `prometheus`, "
            "which ships /usr/bin/promtool): the metrics cannot be checked");
    return path;
}

/// Runs a shell command; returns its exit status and what it printed (stdout and stderr).
std::pair<int, std::string> run(const std::string& command) {
    std::string out;
    FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    std::array<char, 4096> buf{};
    while (std::fgets(buf.data(), static_cast<int>(buf.size()), p) != nullptr) out += buf.data();
    const int status = ::pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::pair<int, std::string> check_metrics(const std::string& page) {
    observe_support::temp_dir dir("projectionist-promtool");
    const auto file = dir.path / "metrics.txt";
    std::ofstream(file) << page;
    return run(promtool() + " check metrics < " + file.string());
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    REQUIRE(in.good());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// What the exporter reads from a rollout: a running plan at its second step.
struct fake_rollout {
    [[nodiscard]] std::string_view projection() const noexcept { return "tickets"; }
    [[nodiscard]] pj::rollout_snapshot last_snapshot() const {
        pj::rollout_snapshot s;
        pj::rollout_record r;
        r.projection = "tickets";
        r.primary = "tickets_v1";
        r.plan.candidate = "tickets_v2";
        r.plan.steps = pj::percent_steps({1, 10, 100});
        r.state = pj::rollout_state::running;
        r.step = 1;
        s.record = r;
        s.readings.compared = 120;
        s.readings.discrepancies = 1;
        s.observers = 2;
        return s;
    }
};

/// A page with every metric the exporter writes: a deployment's runners (one behind the head), a
/// router with a candidate, a worker that renewed its leases, a rollout.
std::string full_page() {
    pj::memory_event_store store;
    pj::memory_storage storage;
    for (int i = 0; i < 30; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", 1, true);
    pj::deployment<pj::runner<tickets<1>, pj::memory_storage>, pj::runner<tickets<2>, pj::memory_storage>> d(
        store, storage, {.batch_size = 16});
    d.catch_up();
    append_ticket(store, "late", "bug", 0, false);
    pj::router<tickets<1>, tickets<2>> router(storage);
    router.rollout<tickets<2>>(10);
    pj::metrics_exporter metrics;
    observe_support::fake_worker worker;
    fake_rollout rollout;
    metrics.add(d);
    metrics.add(router);
    metrics.add(worker);
    metrics.add(rollout);
    return metrics.render();
}

}  // namespace

TEST_CASE("promtool accepts the exporter's page over real runners, a router and a worker", "[metrics][promtool]") {
    const std::string page = full_page();
    REQUIRE(page.find("projectionist_batch_duration_seconds_bucket") != std::string::npos);
    REQUIRE(page.find("projectionist_worker_lease_renewal_age_seconds") != std::string::npos);
    REQUIRE(page.find("projectionist_errors_total{") != std::string::npos);
    REQUIRE(page.find("projectionist_rollout_step_shadow_reads{") != std::string::npos);
    const auto [status, output] = check_metrics(page);
    INFO("promtool check metrics said:\n" << output << "\non:\n" << page);
    CHECK(status == 0);
}

TEST_CASE("promtool rejects a broken page: the check can fail", "[metrics][promtool]") {
    const auto [status, output] = check_metrics("# TYPE x counter\nx{le=\"1\" 1\n");
    INFO(output);
    CHECK(status != 0);
}

TEST_CASE("promtool accepts the alert rules, and the documentation shows them", "[metrics][promtool]") {
    const auto [status, output] = run(promtool() + " check rules " + PROJECTIONIST_ALERT_RULES);
    INFO("promtool check rules said:\n" << output);
    CHECK(status == 0);
    CHECK_THAT(output, Catch::Contains("2 rules found"));

    const std::string doc = read_file(PROJECTIONIST_METRICS_DOC);
    std::istringstream rules(read_file(PROJECTIONIST_ALERT_RULES));
    for (std::string line; std::getline(rules, line);) {
        if (line.empty() || line.find_first_not_of(' ') == std::string::npos) continue;
        if (line[line.find_first_not_of(' ')] == '#') continue;
        INFO("docs/metrics.md does not show this line of tests/observe/alerts.yml: " << line);
        CHECK(doc.find(line + "\n") != std::string::npos);
    }
}

TEST_CASE("the metrics table of docs/metrics.md names exactly the metrics the exporter writes, with their types",
          "[metrics][docs]") {
    // The table's rows: | `name` | type | labels | meaning |
    std::map<std::string, std::string> documented;
    const std::regex row(R"(^\| `(projectionist_[a-z_]+)` \| ([a-z]+) \|)");
    std::istringstream doc(read_file(PROJECTIONIST_METRICS_DOC));
    for (std::string line; std::getline(doc, line);) {
        std::smatch m;
        if (std::regex_search(line, m, row)) {
            INFO("documented twice: " << m[1]);
            CHECK(documented.emplace(m[1], m[2]).second);
        }
    }
    std::map<std::string, std::string> rendered;
    const std::regex type_line(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) ([a-z]+)$)");
    std::istringstream page(full_page());
    for (std::string line; std::getline(page, line);) {
        std::smatch m;
        if (std::regex_search(line, m, type_line)) rendered.emplace(m[1], m[2]);
    }
    REQUIRE(rendered.size() > 40);
    for (const auto& [name, type] : rendered) {
        INFO("the exporter writes " << name << " (" << type
                                    << "), which docs/metrics.md's table lacks or types otherwise");
        CHECK(documented.count(name) == 1);
        if (documented.count(name) == 1) CHECK(documented.at(name) == type);
    }
    for (const auto& [name, type] : documented) {
        INFO("docs/metrics.md lists " << name << ", which the exporter does not write");
        CHECK(rendered.count(name) == 1);
    }
}

}  // namespace promtool_test
