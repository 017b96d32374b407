#pragma once

/// An HTTP endpoint for a metrics exporter, on its own thread: `/metrics` for Prometheus,
/// `/healthz` for a liveness probe, `/readyz` for a readiness probe. Optional: no core header
/// includes it; it needs Boost.Beast and Boost.Asio (header-only in Boost 1.81) and a thread.
///
///     projectionist::metrics_exporter metrics;
///     metrics.add(tickets_deployment);
///     projectionist::metrics_endpoint http(metrics, {.address = "0.0.0.0", .port = 9464,
///                                                    .ready_version = "tickets_v2", .max_lag = 100});
///     // GET /metrics -> 200, text/plain; version=0.0.4
///     // GET /healthz -> 200 "ok" while the process runs
///     // GET /readyz  -> 200 when tickets_v2 is caught up within 100 events, else 503 and why
///
/// Port 0 picks a free port; `port()` tells which. The destructor stops the server: it closes
/// the listening socket and open connections and joins the thread. Requests are served one at a
/// time on that thread, each with a 10 s timeout, which suits a scraper and two probes; a
/// render runs the exporter's `render()`, which reads the sources' snapshots.
///
/// `/readyz` without `ready_version` is ready when every version the exporter knows is (see
/// `metrics_exporter::ready`).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <projectionist/error.hpp>
#include <projectionist/observe/exporter.hpp>

namespace projectionist {

struct metrics_endpoint_options {
    std::string address = "127.0.0.1";  ///< where to listen; "0.0.0.0" for every interface
    std::uint16_t port = 0;             ///< 0: a free port, see metrics_endpoint::port()
    std::string ready_version{};        ///< the version /readyz checks; empty: every version
    std::uint64_t max_lag = 0;          ///< /readyz: events behind the head still counted as caught up
};

namespace detail::observe {

namespace http = boost::beast::http;

/// The answer to one request, from the exporter.
inline http::response<http::string_body> answer(const metrics_exporter& exporter,
                                                const metrics_endpoint_options& options,
                                                const http::request<http::string_body>& req) {
    http::response<http::string_body> res;
    res.version(req.version());
    res.keep_alive(req.keep_alive());
    res.set(http::field::server, "projectionist");
    auto text = [&](http::status status, std::string body, std::string_view type = "text/plain; charset=utf-8") {
        res.result(status);
        res.set(http::field::content_type, type);
        res.body() = std::move(body);
    };
    std::string_view target(req.target().data(), req.target().size());
    if (const auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
        text(http::status::method_not_allowed, "only GET and HEAD\n");
        res.set(http::field::allow, "GET, HEAD");
    } else if (target == "/metrics") {
        try {
            text(http::status::ok, exporter.render(), "text/plain; version=0.0.4; charset=utf-8");
        } catch (const std::exception& e) {
            text(http::status::internal_server_error, fmt::format("{}\n", e.what()));
        }
    } else if (target == "/healthz") {
        text(http::status::ok, "ok\n");
    } else if (target == "/readyz") {
        try {
            const auto r = options.ready_version.empty() ? exporter.ready(options.max_lag)
                                                         : exporter.ready(options.ready_version, options.max_lag);
            text(r ? http::status::ok : http::status::service_unavailable, r.reason + "\n");
        } catch (const std::exception& e) {
            text(http::status::service_unavailable, fmt::format("{}\n", e.what()));
        }
    } else {
        text(http::status::not_found, "not found: try /metrics, /healthz or /readyz\n");
    }
    if (req.method() == http::verb::head) {
        res.content_length(res.body().size());
        res.body().clear();
        res.prepare_payload();
        return res;
    }
    res.prepare_payload();
    return res;
}

/// One connection: read a request, answer it, again while the client keeps it alive.
class session : public std::enable_shared_from_this<session> {
public:
    session(boost::asio::ip::tcp::socket socket, const metrics_exporter& exporter,
            const metrics_endpoint_options& options)
        : stream_(std::move(socket)), exporter_(exporter), options_(options) {}

    void start() { read(); }

private:
    void read() {
        request_ = {};
        stream_.expires_after(std::chrono::seconds(10));
        http::async_read(stream_, buffer_, request_,
                         [self = shared_from_this()](boost::beast::error_code ec, std::size_t) {
                             if (ec) return self->close();
                             self->respond();
                         });
    }

    void respond() {
        response_ = answer(exporter_, options_, request_);
        stream_.expires_after(std::chrono::seconds(10));
        http::async_write(stream_, response_, [self = shared_from_this()](boost::beast::error_code ec, std::size_t) {
            if (ec || !self->response_.keep_alive()) return self->close();
            self->read();
        });
    }

    void close() {
        boost::beast::error_code ignored;
        stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
    }

    boost::beast::tcp_stream stream_;
    boost::beast::flat_buffer buffer_;
    http::request<http::string_body> request_;
    http::response<http::string_body> response_;
    const metrics_exporter& exporter_;
    const metrics_endpoint_options& options_;
};

}  // namespace detail::observe

/// Serves an exporter over HTTP; see the comment at the top of this file.
class metrics_endpoint {
public:
    /// Binds and listens at once (an address in use throws `projectionist::error` here, not
    /// later on the server's thread), then serves on a thread of its own.
    metrics_endpoint(const metrics_exporter& exporter, metrics_endpoint_options options = {})
        : exporter_(exporter), options_(std::move(options)), acceptor_(io_) {
        try {
            const boost::asio::ip::tcp::endpoint at(boost::asio::ip::make_address(options_.address), options_.port);
            acceptor_.open(at.protocol());
            acceptor_.set_option(boost::asio::socket_base::reuse_address(true));
            acceptor_.bind(at);
            acceptor_.listen();
        } catch (const std::exception& e) {
            throw error(fmt::format("projectionist: metrics_endpoint: cannot listen on {}:{}: {}", options_.address,
                                    options_.port, e.what()));
        }
        port_ = acceptor_.local_endpoint().port();
        accept();
        thread_ = std::thread([this] { io_.run(); });
    }

    metrics_endpoint(const metrics_endpoint&) = delete;
    metrics_endpoint& operator=(const metrics_endpoint&) = delete;

    ~metrics_endpoint() {
        boost::asio::post(io_, [this] {
            boost::beast::error_code ignored;
            acceptor_.close(ignored);
        });
        io_.stop();  // abandons open connections: their handlers are destroyed with io_
        if (thread_.joinable()) thread_.join();
    }

    /// The port the server listens on (the one picked when the options said 0).
    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
    [[nodiscard]] const std::string& address() const noexcept { return options_.address; }

private:
    void accept() {
        acceptor_.async_accept([this](boost::beast::error_code ec, boost::asio::ip::tcp::socket socket) {
            if (ec) return;  // closed: the server stops
            std::make_shared<detail::observe::session>(std::move(socket), exporter_, options_)->start();
            accept();
        });
    }

    const metrics_exporter& exporter_;
    metrics_endpoint_options options_;
    boost::asio::io_context io_{1};
    boost::asio::ip::tcp::acceptor acceptor_;
    std::uint16_t port_ = 0;
    std::thread thread_;
};

}  // namespace projectionist
