// The Prometheus text format as metrics_text writes it, the metrics the exporter reads from
// runners, deployments and routers, readiness, and the HTTP endpoint's three paths.

#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>

#include <fmt/format.h>

#include <fake_worker.hpp>
#include <observe_support.hpp>
#include <projectionist/deploy/deployment.hpp>
#include <projectionist/deploy/router.hpp>
#include <projectionist/observe.hpp>
#include <projectionist/observe/http.hpp>
#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

namespace metrics_test {

namespace pj = projectionist;
using namespace tickets_domain;

namespace {

std::size_t occurrences(std::string_view text, std::string_view what) {
    std::size_t n = 0;
    for (auto p = text.find(what); p != std::string_view::npos; p = text.find(what, p + 1)) ++n;
    return n;
}

bool has_line(std::string_view text, std::string_view line) {
    return text.starts_with(std::string(line) + "\n") ||
           text.find("\n" + std::string(line) + "\n") != std::string_view::npos;
}

}  // namespace

// ---- the text format ---------------------------------------------------------------------------

TEST_CASE("metrics_text writes HELP and TYPE once per metric, then its samples", "[metrics]") {
    pj::metrics_text m;
    m.gauge("projectionist_lag_events", "Events behind.", {{"version", "a_v1"}}, 3);
    m.counter("projectionist_events_applied_total", "Handlers run.", {{"version", "a_v1"}}, 7);
    m.gauge("projectionist_lag_events", "Events behind.", {{"version", "a_v2"}}, 0);
    const std::string text = m.str();
    CHECK(text ==
          "# HELP projectionist_lag_events Events behind.\n"
          "# TYPE projectionist_lag_events gauge\n"
          "projectionist_lag_events{version=\"a_v1\"} 3\n"
          "projectionist_lag_events{version=\"a_v2\"} 0\n"
          "# HELP projectionist_events_applied_total Handlers run.\n"
          "# TYPE projectionist_events_applied_total counter\n"
          "projectionist_events_applied_total{version=\"a_v1\"} 7\n");
}

TEST_CASE("metrics_text escapes label values and HELP text", "[metrics]") {
    pj::metrics_text m;
    m.gauge("g", "a \\ backslash\nand a newline, \"quotes\" kept", {{"v", "back\\slash \"quoted\"\nnext"}}, 1);
    const std::string text = m.str();
    CHECK(has_line(text, "# HELP g a \\\\ backslash\\nand a newline, \"quotes\" kept"));
    CHECK(has_line(text, "g{v=\"back\\\\slash \\\"quoted\\\"\\nnext\"} 1"));
    CHECK(occurrences(text, "\n") == 3);  // no raw newline inside a line
}

TEST_CASE("metrics_text writes histograms with cumulative buckets, +Inf, sum and count", "[metrics]") {
    pj::metrics_text m;
    const std::array<double, 3> bounds{0.01, 0.5, 2};
    const std::array<std::uint64_t, 4> counts{2, 0, 3, 1};  // one above every bound
    m.histogram("d_seconds", "Durations.", {{"version", "a_v1"}}, bounds, counts, 7.25, 6);
    const std::string text = m.str();
    CHECK(text ==
          "# HELP d_seconds Durations.\n"
          "# TYPE d_seconds histogram\n"
          "d_seconds_bucket{version=\"a_v1\",le=\"0.01\"} 2\n"
          "d_seconds_bucket{version=\"a_v1\",le=\"0.5\"} 2\n"
          "d_seconds_bucket{version=\"a_v1\",le=\"2\"} 5\n"
          "d_seconds_bucket{version=\"a_v1\",le=\"+Inf\"} 6\n"
          "d_seconds_sum{version=\"a_v1\"} 7.25\n"
          "d_seconds_count{version=\"a_v1\"} 6\n");
}

TEST_CASE("metrics_text refuses what a scraper would reject", "[metrics]") {
    pj::metrics_text m;
    CHECK_THROWS_WITH(m.counter("applied", "", {}, 1), Catch::Contains("must end in _total"));
    CHECK_THROWS_WITH(m.gauge("1bad", "", {}, 1), Catch::Contains("not a valid metric name"));
    CHECK_THROWS_WITH(m.gauge("g", "", {{"bad-label", "x"}}, 1), Catch::Contains("not a valid label name"));
    m.gauge("twice", "", {}, 1);
    CHECK_THROWS_WITH(m.counter("twice", "", {}, 1), Catch::Contains("must end in _total"));
    m.gauge("twice_total", "", {}, 1);
    CHECK_THROWS_WITH(m.counter("twice_total", "", {}, 1), Catch::Contains("a metric has one type"));
    const std::array<double, 2> bounds{1, 2};
    const std::array<std::uint64_t, 2> counts{1, 1};
    CHECK_THROWS_WITH(m.histogram("h", "", {}, bounds, counts, 0, 2), Catch::Contains("one count per bound"));
}

TEST_CASE("metrics_text spells special values as the format does", "[metrics]") {
    CHECK(pj::detail::metrics::format_value(0.25) == "0.25");
    CHECK(pj::detail::metrics::format_value(42) == "42");
    CHECK(pj::detail::metrics::format_value(1.0 / 0.0) == "+Inf");
    CHECK(pj::detail::metrics::format_value(-1.0 / 0.0) == "-Inf");
    CHECK(pj::detail::metrics::format_value(0.0 / 0.0) == "NaN");
}

// ---- the exporter over real runners --------------------------------------------------------------

TEST_CASE("the exporter reads a runner's status at scrape time", "[metrics]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    for (int i = 0; i < 10; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", 0, true);  // 20 events
    pj::runner<tickets<2>> r(store, storage, {.batch_size = 8});
    const auto t0 = std::chrono::system_clock::now();
    auto now = t0;
    pj::metrics_exporter metrics([&] { return now; });
    metrics.add(r);

    std::string before = metrics.render();
    CHECK(has_line(before, "projectionist_lag_events{projection=\"tickets\",version=\"tickets_v2\"} 20"));
    CHECK(has_line(before, "projectionist_head{projection=\"tickets\",version=\"tickets_v2\"} 20"));
    // Behind with nothing applied: the age of the lag is unknown, so it is not written.
    CHECK(before.find("projectionist_lag_seconds{") == std::string::npos);
    CHECK_FALSE(metrics.ready("tickets_v2", 0));

    r.catch_up();
    const std::string after = metrics.render();
    const std::string l = "{projection=\"tickets\",version=\"tickets_v2\"}";
    CHECK(has_line(after, "projectionist_lag_events" + l + " 0"));
    CHECK(has_line(after, "projectionist_position" + l + " 20"));
    CHECK(has_line(after, "projectionist_lag_seconds" + l + " 0"));
    CHECK(has_line(after, "projectionist_events_applied_total" + l + " 20"));
    CHECK(has_line(after, "projectionist_batches_total" + l + " 3"));
    CHECK(has_line(after, "projectionist_batch_duration_seconds_count" + l + " 3"));
    CHECK(has_line(
        after,
        "projectionist_batch_duration_seconds_bucket{projection=\"tickets\",version=\"tickets_v2\",le=\"+Inf\"} 3"));
    CHECK(has_line(after, "projectionist_flush_duration_seconds_count" + l + " 0"));
    CHECK(has_line(after, "projectionist_stopped" + l + " 0"));
    CHECK(has_line(after, "projectionist_bulk_mode" + l + " 0"));
    CHECK(has_line(after, "projectionist_live" + l + " 0"));
    const std::string state = to_string(r.status().state).data();
    CHECK(has_line(after,
                   "projectionist_state{projection=\"tickets\",version=\"tickets_v2\",state=\"" + state + "\"} 1"));
    CHECK(occurrences(after, "projectionist_state{") == 8);  // one per state
    CHECK(occurrences(after, "\"} 1\n") >= 1);
    CHECK(occurrences(after, "# TYPE projectionist_state gauge") == 1);

    // A new event, recorded later: behind again, and the lag in seconds is how much later the
    // head's event was recorded than the last applied one, whatever the clock says now.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    append_ticket(store, "t-new", "bug", 0, false);
    const auto s = r.status();
    REQUIRE(s.head_recorded_at);
    const double exact = std::chrono::duration<double>(*s.head_recorded_at - *s.last_event_recorded_at).count();
    CHECK(exact >= 0.02);
    now = *s.last_event_recorded_at + std::chrono::hours(1);  // an hour later: the lag is not an hour
    const std::string behind = metrics.render();
    CHECK(has_line(behind, "projectionist_lag_events" + l + " 1"));
    CHECK(has_line(behind, "projectionist_lag_seconds" + l + " " + pj::detail::metrics::format_value(exact)));
    (void)t0;
}

TEST_CASE("readiness says why a version is not ready", "[metrics]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    for (int i = 0; i < 5; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", 0, true);
    pj::runner<tickets<2>> r(store, storage);
    pj::metrics_exporter metrics;
    metrics.add(r);

    auto unknown = metrics.ready("tickets_v9", 0);
    CHECK_FALSE(unknown);
    CHECK_THAT(unknown.reason, Catch::Contains("not a version this exporter knows"));
    auto before = metrics.ready("tickets_v2", 0);
    CHECK_FALSE(before);
    CHECK_THAT(before.reason, Catch::Contains("not caught up yet"));

    r.catch_up();
    CHECK(metrics.ready("tickets_v2", 0));
    CHECK(metrics.ready(0));
    append_ticket(store, "t-new", "bug", 2, true);  // 6 events
    auto behind = metrics.ready("tickets_v2", 5);
    CHECK_FALSE(behind);
    CHECK_THAT(behind.reason, Catch::Contains("6 events behind the head (at most 5 allowed)"));
    CHECK(metrics.ready("tickets_v2", 6));

    pj::runner_status stopped = r.status();
    stopped.error = "projectionist: handler failed";
    auto s = pj::metrics_exporter::readiness_of(stopped, 100);
    CHECK_FALSE(s);
    CHECK_THAT(s.reason, Catch::Contains("has stopped: projectionist: handler failed"));
}

TEST_CASE("a stopped version reports projectionist_stopped 1", "[metrics]") {
    pj::metrics_exporter metrics;
    pj::runner_status s;
    s.name = "tickets_v3";
    s.error = "projectionist: boom";
    metrics.add_source("tickets", [&] { return std::vector<pj::runner_status>{s}; });
    CHECK(has_line(metrics.render(), "projectionist_stopped{projection=\"tickets\",version=\"tickets_v3\"} 1"));
}

TEST_CASE("the exporter writes every version of a deployment and the router's state", "[metrics]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 0, false);
    append_ticket(store, "t-2", "bug", 1, false);
    pj::deployment<pj::runner<tickets<1>, pj::memory_storage>, pj::runner<tickets<2>, pj::memory_storage>> d(store,
                                                                                                             storage);
    d.catch_up();
    pj::router<tickets<1>, tickets<2>> router(storage);
    router.rollout_basis_points<tickets<2>>(1250);
    router.shadow_query("user-1", []<class P>(std::type_identity<P>) { return P::version; });  // always differ
    // Keys routed by bucket: those below 1250 of 10000 to v2, the others to v1.
    std::uint64_t to_v1 = 0, to_v2 = 0;
    for (int i = 0; i < 200; ++i) {
        const std::string key = "user-" + std::to_string(i);
        (pj::routing_bucket(key) < 1250 ? to_v2 : to_v1) += 1;
        (void)router.query(key, []<class P>(std::type_identity<P>) { return P::version; });
    }
    REQUIRE(to_v2 > 0);

    pj::metrics_exporter metrics;
    metrics.add(d);
    metrics.add(router);
    const std::string text = metrics.render();
    CHECK(has_line(text, "projectionist_lag_events{projection=\"tickets\",version=\"tickets_v1\"} 0"));
    CHECK(has_line(text, "projectionist_lag_events{projection=\"tickets\",version=\"tickets_v2\"} 0"));
    CHECK(has_line(text, "projectionist_rollout_share{projection=\"tickets\",version=\"tickets_v1\"} 0.875"));
    CHECK(has_line(text, "projectionist_rollout_share{projection=\"tickets\",version=\"tickets_v2\"} 0.125"));
    CHECK(has_line(text, "projectionist_router_primary{projection=\"tickets\",version=\"tickets_v1\"} 1"));
    CHECK(has_line(text, "projectionist_router_in_flight_queries{projection=\"tickets\",version=\"tickets_v2\"} 0"));
    // Per version: the routed queries, plus one run each for the shadow query above.
    CHECK(router.queries("tickets_v1") == to_v1 + 1);
    CHECK(router.queries<tickets<2>>() == to_v2 + 1);
    CHECK(has_line(text,
                   fmt::format("projectionist_router_queries_total{{projection=\"tickets\",version=\"tickets_v1\"}} {}",
                               to_v1 + 1)));
    CHECK(has_line(text,
                   fmt::format("projectionist_router_queries_total{{projection=\"tickets\",version=\"tickets_v2\"}} {}",
                               to_v2 + 1)));
    CHECK(has_line(text, "projectionist_shadow_queries_total{projection=\"tickets\"} 1"));
    CHECK(has_line(text, "projectionist_shadow_reads_total{projection=\"tickets\"} 1"));
    CHECK(has_line(text, "projectionist_shadow_discrepancies_total{projection=\"tickets\"} 1"));
    CHECK(occurrences(text, "# HELP projectionist_lag_events ") == 1);
}

// ---- the HTTP endpoint -------------------------------------------------------------------------

TEST_CASE("the endpoint serves /metrics, /healthz and /readyz on a port it picks", "[metrics][http]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    for (int i = 0; i < 5; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", 0, true);
    pj::runner<tickets<2>> r(store, storage);
    pj::metrics_exporter metrics;
    metrics.add(r);
    std::uint16_t port = 0;
    {
        pj::metrics_endpoint http(metrics,
                                  {.address = "127.0.0.1", .port = 0, .ready_version = "tickets_v2", .max_lag = 0});
        port = http.port();
        REQUIRE(port != 0);

        auto m = observe_support::http_get(port, "/metrics");
        CHECK(m.status == 200);
        CHECK(m.content_type.starts_with("text/plain; version=0.0.4"));
        CHECK(has_line(m.body, "projectionist_lag_events{projection=\"tickets\",version=\"tickets_v2\"} 10"));
        CHECK(observe_support::http_get(port, "/healthz").status == 200);
        auto not_ready = observe_support::http_get(port, "/readyz");
        CHECK(not_ready.status == 503);
        CHECK_THAT(not_ready.body, Catch::Contains("tickets_v2 is"));
        r.catch_up();
        auto ready = observe_support::http_get(port, "/readyz");
        CHECK(ready.status == 200);
        CHECK_THAT(ready.body, Catch::Contains("caught up"));
        CHECK(observe_support::http_get(port, "/nothing").status == 404);
        CHECK(observe_support::http_get(port, "/metrics", "POST").status == 405);
        auto head = observe_support::http_get(port, "/healthz", "HEAD");
        CHECK(head.status == 200);
        CHECK(head.body.empty());
        CHECK_THROWS_WITH(
            (pj::metrics_endpoint(metrics, {.address = "127.0.0.1", .port = port, .ready_version = "", .max_lag = 0})),
            Catch::Contains("cannot listen on 127.0.0.1:"));
    }
    // Stopped by its destructor: nothing listens any more.
    CHECK_THROWS(observe_support::http_get(port, "/healthz"));
}

// ---- workers -----------------------------------------------------------------------------------

using observe_support::fake_worker;

TEST_CASE("the exporter writes a worker's partitions and lease counters", "[metrics]") {
    static_assert(pj::observable_worker<fake_worker>);
    static_assert(!pj::observable_worker<pj::runner<tickets<2>>>);
    fake_worker w;
    pj::metrics_exporter metrics;
    metrics.add(w);
    const std::string text = metrics.render();
    const std::string l = "{projection=\"tickets\",version=\"tickets_v2\",worker=\"host:42:0000abcd\"}";
    CHECK(has_line(text, "projectionist_worker_partitions_held" + l + " 2"));
    CHECK(has_line(text, "projectionist_worker_live_workers" + l + " 2"));
    CHECK(has_line(text, "projectionist_worker_leases_claimed_total" + l + " 4"));
    CHECK(has_line(text, "projectionist_worker_leases_taken_over_total" + l + " 1"));
    CHECK(has_line(text, "projectionist_worker_leases_lost_total" + l + " 1"));
    CHECK(has_line(text, "projectionist_worker_fenced_commits_total" + l + " 1"));
    CHECK(has_line(text, "projectionist_worker_events_applied_total" + l + " 99"));
    const std::string k = "{projection=\"tickets\",version=\"tickets_v2\",worker=\"host:42:0000abcd\",kind=";
    CHECK(has_line(text, "projectionist_worker_errors_total" + k + "\"fenced\"} 1"));
    CHECK(has_line(text, "projectionist_worker_errors_total" + k + "\"handler\"} 2"));
    CHECK(has_line(text, "projectionist_worker_errors_total" + k + "\"storage\"} 0"));
    CHECK(occurrences(text, "projectionist_worker_errors_total{") == pj::error_counts::kinds);
}

TEST_CASE("the exporter writes a worker's lease renewals and the time since the last one", "[metrics]") {
    fake_worker w;
    const auto renewed = *w.last_renewal;
    pj::metrics_exporter metrics([&] { return renewed + std::chrono::milliseconds(2500); });
    metrics.add(w);
    const std::string l = "{projection=\"tickets\",version=\"tickets_v2\",worker=\"host:42:0000abcd\"}";
    std::string text = metrics.render();
    CHECK(has_line(text, "# TYPE projectionist_worker_lease_renewals_total counter"));
    CHECK(has_line(text, "projectionist_worker_lease_renewals_total" + l + " 17"));
    CHECK(has_line(text, "# TYPE projectionist_worker_lease_renewal_failures_total counter"));
    CHECK(has_line(text, "projectionist_worker_lease_renewal_failures_total" + l + " 3"));
    CHECK(has_line(text, "# TYPE projectionist_worker_lease_renewal_age_seconds gauge"));
    CHECK(has_line(text, "projectionist_worker_lease_renewal_age_seconds" + l + " 2.5"));
    CHECK(has_line(text, "projectionist_worker_lease_renewed_timestamp_seconds" + l + " 1700000000"));

    // Before its first renewal a worker has no time to give: the counters only.
    w.last_renewal.reset();
    text = metrics.render();
    CHECK(has_line(text, "projectionist_worker_lease_renewals_total" + l + " 0"));
    CHECK(has_line(text, "projectionist_worker_lease_renewal_failures_total" + l + " 3"));
    CHECK(text.find("projectionist_worker_lease_renewal_age_seconds") == std::string::npos);
    CHECK(text.find("projectionist_worker_lease_renewed_timestamp_seconds") == std::string::npos);
}

TEST_CASE("the state label of a runner stopped by an error is stopped", "[metrics]") {
    pj::memory_event_store store;
    pj::memory_storage storage;
    append_ticket(store, "t-1", "bug", 0, true);
    store.append(ticket_stream{}, "dup", pj::expected_version::any(), ticket_registered{"t-1", "bug"});
    pj::runner<tickets<2>> r(store, storage);
    pj::metrics_exporter metrics;
    metrics.add(r);
    CHECK_THROWS_AS(r.catch_up(), pj::projection_error);
    const std::string text = metrics.render();
    const std::string l = "projectionist_state{projection=\"tickets\",version=\"tickets_v2\",state=";
    CHECK(has_line(text, l + "\"stopped\"} 1"));
    CHECK(has_line(text, l + "\"caught_up\"} 0"));
    CHECK(has_line(text, "projectionist_stopped{projection=\"tickets\",version=\"tickets_v2\"} 1"));
}

}  // namespace metrics_test
