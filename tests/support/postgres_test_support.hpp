#pragma once
// Helpers for the PostgreSQL tests: the server's URL, a schema of the test's own (dropped at
// the end), and a plain connection for looking behind projectionist's back.
//
// The server: PROJECTIONIST_PG_URL if set, else the private cluster that the CTest fixture
// `postgres` started (tests/support/pg_cluster.sh wrote its URL to PROJECTIONIST_PG_URL_FILE).
// Without either a test fails, saying how to get a server: a PostgreSQL test never skips.

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

#include <unistd.h>

#include <projectionist/detail/pg_api.hpp>
#include <projectionist/detail/pg_schema.hpp>

namespace postgres_test {

/// The URL of the server the tests use. Throws (the test fails) when there is none.
inline std::string pg_url() {
    if (const char* env = std::getenv("PROJECTIONIST_PG_URL"); env && *env) return env;
#ifdef PROJECTIONIST_PG_URL_FILE
    std::ifstream in(PROJECTIONIST_PG_URL_FILE);
    std::string url;
    if (in && std::getline(in, url) && !url.empty()) return url;
    throw std::runtime_error(
        "projectionist postgres tests: no server. Run them through ctest (the fixture postgres_cluster_start "
        "starts a private PostgreSQL and writes its URL to " PROJECTIONIST_PG_URL_FILE
        "), e.g. `ctest -L postgres`, or set PROJECTIONIST_PG_URL=postgresql://user@host:port/db to use a "
        "running server");
#else
    throw std::runtime_error(
        "projectionist postgres tests: no server. Set PROJECTIONIST_PG_URL=postgresql://user@host:port/db, or run "
        "the tests through ctest, whose fixture starts one");
#endif
}

/// A plain connection to the test server (no schema set up): for SQL behind projectionist's back.
inline projectionist::detail::pg::connection raw_connection() {
    return projectionist::detail::pg::connection(pg_url());
}

/// The URL of the test server for a superuser role of the test's own, `role`, created if needed and
/// allowed to log in: a test can then refuse its logins (`ALTER ROLE ... NOLOGIN`) to make a lost
/// connection stay lost, with the server running.
inline std::string login_role_url(const projectionist::detail::pg::connection& admin, const std::string& role) {
    admin.exec("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '" + role + "') THEN CREATE ROLE " +
               role + " SUPERUSER LOGIN; END IF; END $$");
    admin.exec("ALTER ROLE " + role + " LOGIN");
    const std::string url = pg_url();
    return "postgresql://" + role + "@" + url.substr(url.find('@') + 1);
}

/// One integer from `sql` on `db`.
inline std::int64_t scalar(const projectionist::detail::pg::connection& db, const std::string& sql) {
    auto r = db.query(sql);
    if (r.rows() != 1 || r.is_null(0, 0)) throw std::runtime_error("postgres_test::scalar: no single value: " + sql);
    return r.int64(0, 0);
}

/// A schema of the test's own, unique on the server (pid, a counter and random bits in its
/// name, after `stem`), created empty and dropped with everything in it (CASCADE) at scope
/// exit, so that tests running at once on one server never see each other's tables.
///
///     postgres_test::scoped_schema schema;
///     projectionist::postgres_event_store store(postgres_test::pg_url(), schema.options());
class scoped_schema {
public:
    explicit scoped_schema(std::string_view stem = "pj_test") : db_(pg_url()) {
        static std::atomic<unsigned> counter{0};
        std::random_device rd;
        name_ = std::string(stem) + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
                std::to_string(rd() % 1000000);
        db_.exec("CREATE SCHEMA " + projectionist::detail::pg::quote(name_));
    }
    scoped_schema(const scoped_schema&) = delete;
    scoped_schema& operator=(const scoped_schema&) = delete;
    ~scoped_schema() {
        try {
            db_.exec("DROP SCHEMA IF EXISTS " + projectionist::detail::pg::quote(name_) + " CASCADE");
        } catch (...) {
            // The server went away: nothing to clean up on it.
        }
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    /// `name()`, quoted for SQL.
    [[nodiscard]] std::string quoted() const { return projectionist::detail::pg::quote(name_); }
    /// Options that put projectionist's tables into this schema.
    [[nodiscard]] projectionist::postgres_options options() const {
        projectionist::postgres_options o;
        o.schema = name_;
        return o;
    }
    /// The schema's connection (search_path not set): for SQL behind projectionist's back.
    [[nodiscard]] projectionist::detail::pg::connection& connection() noexcept { return db_; }

private:
    projectionist::detail::pg::connection db_;
    std::string name_;
};

}  // namespace postgres_test
