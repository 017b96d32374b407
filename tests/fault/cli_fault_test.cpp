// The command line when the work fails: a handler that throws, a database file the process may
// not write. `backfill` and `run` exit with status 1 and say on one line of stderr (`run`: one per
// version that stopped) what the real cause is; `status` works on a file it may only read. The
// tests run as root, whom file modes do not stop: a read-only case runs its command in a child
// process that became the unprivileged user `nobody`.

#include <catch2/catch.hpp>

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <cli_test_support.hpp>
#include <projectionist/cli.hpp>
#include <projectionist/deploy.hpp>
#include <projectionist/sqlite.hpp>
#include <sqlite_test_support.hpp>
#include <tickets_domain.hpp>

namespace cli_fault_test {

namespace pj = projectionist;
using namespace tickets_domain;
using namespace std::chrono_literals;
using Catch::Contains;
using cli_test::outcome;

namespace {

/// Version 2 of the tickets, whose handler refuses one ticket.
struct refusing : pj::projection<"tickets", 2, ticket_stream> {
    using table = pj::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) {
        if (e.ticket_id == "t-3") throw std::runtime_error("the ticket service refused t-3");
        ctx.table().insert({e.ticket_id, e.type, "open", 0});
    }
};

using deployment_type = pj::deployment<pj::runner<tickets<1>, pj::sqlite_storage>,
                                       pj::runner<refusing, pj::sqlite_storage, pj::manual_kickoff>>;

/// One "process" over one file: its store, storage, deployment and command line.
struct app {
    explicit app(const std::string& file)
        : store(file), storage(file), deployment(store, storage, {.batch_size = 4}), cli(cli_test::test_options()) {
        cli.add(deployment);
    }
    pj::sqlite_event_store store;
    pj::sqlite_storage storage;
    deployment_type deployment;
    pj::command_line cli;
};

/// A file with 10 tickets, v1 caught up, v2 initialized.
void prepare(const std::string& file) {
    app a(file);
    for (int i = 0; i < 10; ++i) {
        const std::string id = fmt::format("t-{}", i);
        a.store.append(ticket_stream{}, id, 0, ticket_registered{id, "bug"});
    }
    REQUIRE(cli_test::run(a.cli, {"catch-up"}).status == 0);
    REQUIRE(cli_test::run(a.cli, {"init", "tickets_v2"}).status == 0);
}

/// Whether `text` is exactly one line.
bool one_line(const std::string& text) {
    return !text.empty() && text.back() == '\n' && std::count(text.begin(), text.end(), '\n') == 1;
}

/// The outcome of `args` run by a command line over `file`, in a child process that became the
/// user nobody; nullopt (and a WARN saying why) when this process cannot become another user.
/// A failure to open the application (before the command line) is status -1 with the cause in
/// `err`.
std::optional<outcome> run_as_nobody(const std::string& file, const std::vector<std::string>& args) {
    if (::geteuid() != 0) {
        WARN("not run as nobody: the test is not root (its own file modes stop it already)");
        return std::nullopt;
    }
    const passwd* pw = ::getpwnam("nobody");
    if (pw == nullptr) {
        WARN("not run as nobody: this system has no user 'nobody'");
        return std::nullopt;
    }
    const uid_t uid = pw->pw_uid;
    const gid_t gid = pw->pw_gid;
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        outcome o;
        if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) {
            o.err = fmt::format("cannot become nobody: {}", std::strerror(errno));
            o.status = -2;
        } else {
            try {
                app a(file);
                o = cli_test::run(a.cli, args);
            } catch (const std::exception& e) {
                o.status = -1;
                o.err = e.what();
            }
        }
        const std::string message = fmt::format("{}\n{}\n{}{}", o.status, o.out.size(), o.out, o.err);
        std::size_t written = 0;
        while (written < message.size()) {
            const ssize_t n = ::write(fds[1], message.data() + written, message.size() - written);
            if (n <= 0) break;
            written += static_cast<std::size_t>(n);
        }
        ::_exit(0);
    }
    ::close(fds[1]);
    std::string message;
    char buffer[4096];
    for (;;) {
        const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        message.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    REQUIRE(WIFEXITED(status));
    const auto first = message.find('\n');
    const auto second = message.find('\n', first + 1);
    REQUIRE(second != std::string::npos);
    outcome o;
    o.status = std::stoi(message.substr(0, first));
    const std::size_t out_size = std::stoul(message.substr(first + 1, second - first - 1));
    o.out = message.substr(second + 1, out_size);
    o.err = message.substr(second + 1 + out_size);
    if (o.status == -2) {
        WARN("not run as nobody: " << o.err);
        return std::nullopt;
    }
    return o;
}

/// The database `file` readable, not writable, by anyone but root; the directory it is in
/// open to all, as SQLite needs it for the WAL's shared-memory file of a reader.
void make_read_only(const sqlite_test::temp_dir& dir, const std::string& file) {
    namespace fs = std::filesystem;
    fs::permissions(dir.path(), fs::perms::all);
    for (const std::string& f : {file, file + "-wal", file + "-shm"})
        if (fs::exists(f)) fs::permissions(f, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
}

}  // namespace

TEST_CASE("cli: a handler that throws fails backfill and run with status 1 and the cause on one line", "[fault][cli]") {
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("app.db");
    prepare(file);
    app a(file);

    const outcome backfill = cli_test::run(a.cli, {"backfill", "tickets_v2"});
    INFO("stderr: " << backfill.err);
    CHECK(backfill.status == 1);
    CHECK(one_line(backfill.err));
    CHECK_THAT(backfill.err, Contains("the ticket service refused t-3") && Contains("tickets_v2"));

    const outcome run = cli_test::run(a.cli, {"run", "--for", "200ms"});
    INFO("stderr: " << run.err);
    CHECK(run.status == 1);
    CHECK(one_line(run.err));
    CHECK_THAT(run.err, Contains("the ticket service refused t-3") && Contains("tickets_v2"));
}

TEST_CASE("cli: on a database file it may not write, backfill and run fail naming it; status works",
          "[fault][cli][readonly]") {
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("app.db");
    prepare(file);
    {
        // Events v1 has not applied yet, so that run has work to write.
        pj::sqlite_event_store store(file);
        store.append(ticket_stream{}, "t-20", 0, ticket_registered{"t-20", "task"});
    }
    make_read_only(dir, file);

    const auto status = run_as_nobody(file, {"status"});
    if (!status) return;
    INFO("status: " << status->status << "\nstdout:\n" << status->out << "stderr:\n" << status->err);
    CHECK(status->status == 0);
    CHECK_THAT(status->out, Contains("tickets_v1") && Contains("tickets_v2"));
    CHECK(status->err.empty());

    const auto backfill = run_as_nobody(file, {"backfill", "tickets_v2"});
    REQUIRE(backfill);
    INFO("backfill: " << backfill->status << "\nstdout:\n" << backfill->out << "stderr:\n" << backfill->err);
    CHECK(backfill->status == 1);
    CHECK(one_line(backfill->err));
    CHECK_THAT(backfill->err, Contains("read-only") && Contains(file));

    const auto run = run_as_nobody(file, {"run", "--for", "200ms"});
    REQUIRE(run);
    INFO("run: " << run->status << "\nstdout:\n" << run->out << "stderr:\n" << run->err);
    CHECK(run->status == 1);
    // One line for each version that stopped (both had events to write), each with the cause.
    std::istringstream lines(run->err);
    std::vector<std::string> stopped;
    for (std::string line; std::getline(lines, line);) stopped.push_back(line);
    REQUIRE(stopped.size() == 2);
    CHECK_THAT(stopped[0], Contains("tickets_v1: stopped:") && Contains("read-only") && Contains(file));
    CHECK_THAT(stopped[1], Contains("tickets_v2: stopped:") && Contains("read-only") && Contains(file));
}

TEST_CASE("cli: status on a database in a directory it may not write names the directory, not a damaged file",
          "[fault][cli][readonly]") {
    namespace fs = std::filesystem;
    sqlite_test::temp_dir dir(sqlite_test::fast_temp_base());
    const std::string file = dir.file("app.db");
    prepare(file);  // closed: SQLite removed the -wal and -shm files
    REQUIRE_FALSE(fs::exists(file + "-shm"));
    fs::permissions(file, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
    const auto open_to_read = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec;
    fs::permissions(dir.path(), open_to_read);

    const auto status = run_as_nobody(file, {"status"});
    fs::permissions(dir.path(), fs::perms::all);
    if (!status) return;
    INFO("status: " << status->status << "\nstdout:\n" << status->out << "stderr:\n" << status->err);
    CHECK(status->status == -1);  // the application could not open its database, before the command line
    CHECK(status->err.find('\n') == std::string::npos);  // what() of one error: one line
    CHECK_THAT(status->err, Contains(file) && Contains("cannot be read") && Contains("directory"));
    CHECK_THAT(status->err, !Contains("not a SQLite database"));
}

}  // namespace cli_fault_test
