#pragma once
// What the observability tests share: an HTTP GET on loopback (Boost.Beast), the tools'
// locations, and a temporary directory removed at the end.

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace observe_support {

struct http_answer {
    int status = 0;
    std::string content_type;
    std::string body;
};

/// GET http://127.0.0.1:<port><target>; throws on a connection error.
inline http_answer http_get(std::uint16_t port, std::string_view target, std::string_view method = "GET") {
    namespace http = boost::beast::http;
    boost::asio::io_context io;
    boost::beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(10));
    stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, "127.0.0.1");
    http::write(stream, req);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    boost::beast::error_code ignored;
    stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    return {static_cast<int>(res.result_int()), std::string(res[http::field::content_type]), res.body()};
}

/// A tool of the `prometheus` package: $PROJECTIONIST_<NAME> if set, else /usr/bin/<name>.
/// Empty when it is not there.
inline std::string prometheus_tool(const std::string& name, const char* env) {
    std::string path = "/usr/bin/" + name;
    if (const char* e = std::getenv(env); e != nullptr && *e != '\0') path = e;
    return std::filesystem::exists(path) ? path : std::string();
}

/// A fresh directory under the system's temporary directory, removed with its contents.
struct temp_dir {
    std::filesystem::path path;
    explicit temp_dir(std::string_view prefix) {
        auto base = std::filesystem::temp_directory_path();
        for (unsigned i = 0;; ++i) {
            path = base / (std::string(prefix) + "-" +
                           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + "-" +
                           std::to_string(i));
            if (std::filesystem::create_directory(path)) break;
        }
    }
    ~temp_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
};

}  // namespace observe_support
