#pragma once

// A TCP proxy that delays what it forwards: a link with latency for benchmarks on a machine whose
// kernel cannot add any (no netem). It listens on 127.0.0.1 (a port of the system's choosing) and
// connects each client to the target; in both directions every chunk read is written to the other
// side `delay` after it was read, chunks in the order read. A round trip through it thus takes at
// least twice `delay`. Its own thread runs every connection.
//
//     bench::latency_proxy proxy("127.0.0.1", 5432, std::chrono::milliseconds(1));
//     PQconnectdb(("postgresql://app@127.0.0.1:" + std::to_string(proxy.port()) + "/app").c_str());

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

namespace bench {

class latency_proxy {
public:
    latency_proxy(const std::string& target_host, std::uint16_t target_port, std::chrono::microseconds delay)
        : target_(boost::asio::ip::make_address(target_host), target_port),
          delay_(delay),
          acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
        accept();
        thread_ = std::thread([this] { io_.run(); });
    }
    latency_proxy(const latency_proxy&) = delete;
    latency_proxy& operator=(const latency_proxy&) = delete;
    ~latency_proxy() {
        io_.stop();
        thread_.join();
    }

    /// The port clients connect to (on 127.0.0.1).
    [[nodiscard]] std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    [[nodiscard]] std::chrono::microseconds delay() const noexcept { return delay_; }

private:
    using tcp = boost::asio::ip::tcp;
    using clock = std::chrono::steady_clock;

    /// One direction of one connection: reads `from`, writes each chunk to `to` once its time has come.
    struct direction {
        tcp::socket* from;
        tcp::socket* to;
        boost::asio::steady_timer timer;
        std::deque<std::pair<clock::time_point, std::string>> queue{};
        std::array<char, 64 * 1024> buffer{};
        bool writing = false;
        bool ended = false;  // `from` reached its end: shut `to`'s sending side once the queue is empty
        direction(tcp::socket& f, tcp::socket& t, boost::asio::io_context& io) : from(&f), to(&t), timer(io) {}
    };

    /// Both directions of a client's connection; kept alive by the handlers that refer to it.
    struct link : std::enable_shared_from_this<link> {
        tcp::socket client;
        tcp::socket server;
        direction up;    // client -> server
        direction down;  // server -> client
        std::chrono::microseconds delay;
        link(boost::asio::io_context& io, tcp::socket c, std::chrono::microseconds d)
            : client(std::move(c)), server(io), up(client, server, io), down(server, client, io), delay(d) {}

        void start() {
            read(up);
            read(down);
        }
        void close() {
            boost::system::error_code ignored;
            client.close(ignored);
            server.close(ignored);
            up.timer.cancel();
            down.timer.cancel();
        }
        void read(direction& d) {
            d.from->async_read_some(boost::asio::buffer(d.buffer), [self = shared_from_this(), &d](
                                                                       boost::system::error_code ec, std::size_t n) {
                if (ec) {
                    d.ended = true;
                    if (!d.writing) self->finish(d);
                    return;
                }
                d.queue.emplace_back(clock::now() + self->delay, std::string(d.buffer.data(), n));
                if (!d.writing) self->deliver(d);
                self->read(d);
            });
        }
        void deliver(direction& d) {
            if (d.queue.empty()) {
                d.writing = false;
                if (d.ended) finish(d);
                return;
            }
            d.writing = true;
            d.timer.expires_at(d.queue.front().first);
            d.timer.async_wait([self = shared_from_this(), &d](boost::system::error_code ec) {
                if (ec) return;
                boost::asio::async_write(*d.to, boost::asio::buffer(d.queue.front().second),
                                         [self, &d](boost::system::error_code wec, std::size_t) {
                                             if (wec) {
                                                 self->close();
                                                 return;
                                             }
                                             d.queue.pop_front();
                                             self->deliver(d);
                                         });
            });
        }
        /// `d`'s source ended and all it read was delivered: pass the end on.
        void finish(direction& d) {
            boost::system::error_code ignored;
            d.to->shutdown(tcp::socket::shutdown_send, ignored);
            if (up.ended && down.ended && !up.writing && !down.writing) close();
        }
    };

    void accept() {
        acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket client) {
            if (ec) return;
            client.set_option(tcp::no_delay(true));
            auto l = std::make_shared<link>(io_, std::move(client), delay_);
            l->server.async_connect(target_, [l](boost::system::error_code cec) {
                if (cec) {
                    l->close();
                    return;
                }
                l->server.set_option(tcp::no_delay(true));
                l->start();
            });
            accept();
        });
    }

    tcp::endpoint target_;
    std::chrono::microseconds delay_;
    boost::asio::io_context io_;
    tcp::acceptor acceptor_;
    std::thread thread_;
};

}  // namespace bench
