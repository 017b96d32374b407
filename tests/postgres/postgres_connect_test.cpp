// A connection that the server ends right after it was made (a server shutting down terminates
// new sessions): the connection's first statement fails, the error carries the server's words,
// and the connection is closed, not left open. A stand-in server on a loopback port speaks just
// enough of PostgreSQL's protocol (v3) for that: it accepts the session, answers the first
// statement with an error, and then waits for the client to end the session.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <future>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include <fmt/format.h>

#include <projectionist/postgres.hpp>

namespace postgres_connect_test {

namespace {

/// A file descriptor, closed on destruction.
struct fd_guard {
    int fd = -1;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
};

/// Reads exactly `n` bytes, waiting at most `timeout` for each; false on EOF or timeout.
bool read_exactly(int fd, char* out, std::size_t n, std::chrono::milliseconds timeout) {
    while (n > 0) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
        const ssize_t got = ::recv(fd, out, n, 0);
        if (got <= 0) return false;
        out += got;
        n -= static_cast<std::size_t>(got);
    }
    return true;
}

std::uint32_t big_endian(const char* p) {
    return (std::uint32_t(std::uint8_t(p[0])) << 24) | (std::uint32_t(std::uint8_t(p[1])) << 16) |
           (std::uint32_t(std::uint8_t(p[2])) << 8) | std::uint32_t(std::uint8_t(p[3]));
}

/// One message of the protocol: its type byte, then its length (itself included) and `body`.
std::string message(char type, std::string_view body) {
    const auto n = static_cast<std::uint32_t>(body.size() + 4);
    std::string m(1, type);
    for (int shift = 24; shift >= 0; shift -= 8) m.push_back(static_cast<char>((n >> shift) & 0xff));
    m.append(body);
    return m;
}

void send_all(int fd, const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
        const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) throw std::runtime_error("stand-in server: send failed");
        sent += static_cast<std::size_t>(n);
    }
}

/// The stand-in server: one session. What it saw is the future's value: "closed" if the client
/// ended the session after the error, or what went otherwise.
class ending_server {
public:
    ending_server() {
        listener_.fd = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(listener_.fd >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        REQUIRE(::bind(listener_.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(listener_.fd, 1) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(listener_.fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port_ = ntohs(a.sin_port);
        outcome_ = std::async(std::launch::async, [this] { return serve(); });
    }

    [[nodiscard]] std::uint16_t port() const { return port_; }
    /// "closed" once the client closed the session; waits for the session to end.
    std::string outcome() { return outcome_.get(); }

private:
    std::string serve() {
        using namespace std::chrono_literals;
        pollfd p{listener_.fd, POLLIN, 0};
        if (::poll(&p, 1, 10'000) <= 0) return "no client came";
        fd_guard c{::accept(listener_.fd, nullptr, nullptr)};
        if (c.fd < 0) return "accept failed";
        // The startup message (no SSL or GSS request: the client disables both): length, body.
        std::array<char, 4> len{};
        if (!read_exactly(c.fd, len.data(), 4, 10s)) return "no startup message";
        std::string body(big_endian(len.data()) - 4, '\0');
        if (!read_exactly(c.fd, body.data(), body.size(), 10s)) return "a short startup message";
        // AuthenticationOk, then ReadyForQuery (idle): the session is made.
        send_all(c.fd, message('R', std::string("\0\0\0\0", 4)) + message('Z', "I"));
        // The first statement (whatever its messages): answered by an error, as a server
        // terminating the session would, then ReadyForQuery.
        std::array<char, 5> head{};
        if (!read_exactly(c.fd, head.data(), 5, 10s)) return "no statement came";
        using namespace std::string_literals;
        const std::string error =
            "SERROR\0"s + "C57P01\0"s + "Mterminating connection due to administrator command\0"s + "\0"s;
        send_all(c.fd, message('E', error) + message('Z', "I"));
        // Now the client should end the session: Terminate ('X') and EOF, within 10 s.
        std::array<char, 4096> rest{};
        for (;;) {
            pollfd q{c.fd, POLLIN, 0};
            if (::poll(&q, 1, 10'000) <= 0) return "the client left the session open";
            const ssize_t got = ::recv(c.fd, rest.data(), rest.size(), 0);
            if (got == 0) return "closed";
            if (got < 0) return "recv failed";
        }
    }

    fd_guard listener_;
    std::uint16_t port_ = 0;
    std::future<std::string> outcome_;
};

}  // namespace

TEST_CASE("a session the server ends at once: the error has the server's words and the connection is closed",
          "[postgres][connection]") {
    ending_server server;
    const std::string conninfo = fmt::format(
        "host=127.0.0.1 port={} user=projectionist dbname=projectionist sslmode=disable gssencmode=disable "
        "connect_timeout=10",
        server.port());
    std::string what = "<no error>";
    try {
        projectionist::detail::pg::connection c(conninfo);
    } catch (const projectionist::error& e) {
        what = e.what();
    }
    CHECK_THAT(what, Catch::Contains("terminating connection due to administrator command"));
    CHECK(server.outcome() == "closed");
}

}  // namespace postgres_connect_test
