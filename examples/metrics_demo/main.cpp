// Metrics and probes for a blue-green deployment, in memory.
//
// tickets_v1 serves; tickets_v2 is deployed beside it and backfilled. An HTTP endpoint serves
// /metrics (Prometheus), /healthz and /readyz, where ready means "tickets_v2 is caught up within
// 10 events". The program asks its own endpoint before and after the backfill, prints what it
// answers, and exits with status 1 if the answers are not what the story says.
//
//     metrics_demo              # the story, then exit
//     metrics_demo --serve 60   # then serve for 60 s: curl http://127.0.0.1:<port>/metrics

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>

#include <fmt/format.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/hana/define_struct.hpp>

#include <projectionist/deploy/deployment.hpp>
#include <projectionist/observe.hpp>
#include <projectionist/observe/http.hpp>
#include <projectionist/projectionist.hpp>

namespace pj = projectionist;

struct ticket_opened {
    BOOST_HANA_DEFINE_STRUCT(ticket_opened, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.opened";
};
struct ticket_closed {
    BOOST_HANA_DEFINE_STRUCT(ticket_closed, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.closed";
};
using ticket_stream = pj::stream<"ticket", ticket_opened, ticket_closed>;

struct ticket_row {
    BOOST_HANA_DEFINE_STRUCT(ticket_row, (std::string, ticket_id), (std::string, status));
};

template <unsigned V>
struct tickets : pj::projection<"tickets", V, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_opened& e, auto& ctx) { ctx.table().insert({e.ticket_id, "open"}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
    }
};

namespace {

struct answer {
    unsigned status = 0;
    std::string body;
};

answer get(std::uint16_t port, std::string_view target) {
    namespace http = boost::beast::http;
    boost::asio::io_context io;
    boost::beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(5));
    stream.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    http::request<http::string_body> req(http::verb::get, target, 11);
    req.set(http::field::host, "127.0.0.1");
    http::write(stream, req);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    return {res.result_int(), res.body()};
}

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

int main(int argc, char** argv) {
    int serve_seconds = 0;
    if (argc == 3 && std::string_view(argv[1]) == "--serve") {
        serve_seconds = std::atoi(argv[2]);
    } else if (argc != 1) {
        std::fprintf(stderr, "usage: metrics_demo [--serve SECONDS]\n");
        return 2;
    }

    pj::memory_event_store store;
    pj::memory_storage storage;
    for (int i = 0; i < 200; ++i) {
        const std::string id = fmt::format("t-{}", i);
        store.append(ticket_stream{}, id, 0, ticket_opened{id});
        if (i % 2 == 0) store.append(ticket_stream{}, id, 1, ticket_closed{id});
    }
    pj::deployment<pj::runner<tickets<1>, pj::memory_storage>,
                   pj::runner<tickets<2>, pj::memory_storage, pj::manual_kickoff>>
        deployment(store, storage);
    deployment.catch_up();  // v1 follows the log; v2 is dormant until init

    pj::metrics_exporter metrics;
    metrics.add(deployment);
    pj::metrics_endpoint http(metrics,
                              {.address = "127.0.0.1", .port = 0, .ready_version = "tickets_v2", .max_lag = 10});
    std::printf("serving on http://127.0.0.1:%u/metrics\n", static_cast<unsigned>(http.port()));

    bool ok = true;
    auto expect = [&](bool condition, std::string_view what) {
        std::printf("  %s %.*s\n", condition ? "ok  " : "FAIL", static_cast<int>(what.size()), what.data());
        ok = ok && condition;
    };

    const auto before = get(http.port(), "/readyz");
    std::printf("before the backfill, /readyz: %u %s", before.status, before.body.c_str());
    expect(before.status == 503, "tickets_v2 is not ready while dormant");
    expect(get(http.port(), "/healthz").status == 200, "/healthz answers 200");

    deployment.init("tickets_v2");
    deployment.backfill("tickets_v2");

    const auto after = get(http.port(), "/readyz");
    std::printf("after the backfill, /readyz: %u %s", after.status, after.body.c_str());
    expect(after.status == 200, "tickets_v2 is ready once caught up");

    const auto page = get(http.port(), "/metrics");
    for (std::string_view line : {"projectionist_lag_events", "projectionist_events_applied_total",
                                  "projectionist_state{projection=\"tickets\",version=\"tickets_v2\""}) {
        std::size_t p = 0;
        while ((p = page.body.find(line, p)) != std::string::npos) {
            if (p == 0 || page.body[p - 1] == '\n') {
                const auto end = page.body.find('\n', p);
                std::printf("  | %s\n", page.body.substr(p, end - p).c_str());
            }
            p += line.size();
        }
    }
    expect(has_line(page.body, "projectionist_lag_events{projection=\"tickets\",version=\"tickets_v2\"} 0"),
           "tickets_v2 has no lag");
    expect(has_line(page.body, "projectionist_events_applied_total{projection=\"tickets\",version=\"tickets_v2\"} 300"),
           "tickets_v2 applied the 300 events");

    if (serve_seconds > 0) {
        std::printf("serving for %d s\n", serve_seconds);
        std::this_thread::sleep_for(std::chrono::seconds(serve_seconds));
    }
    return ok ? 0 : 1;
}
