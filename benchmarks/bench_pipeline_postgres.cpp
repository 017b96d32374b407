// Comparison 8g, PostgreSQL: 8e's live catch-up (the read model at head - 10,000, copied in
// untimed, then the last 10,000 events in batches of 1000) by the runner with the storage
// session's pipelines (postgres_options::pipeline, the default) and without, in the same run:
//
//   proxy_pipelined   through a proxy that delays each direction by 1 ms (latency_proxy.hpp):
//   proxy_plain       the store's and the session's connections alike, as for a database on the
//                     network
//   local_pipelined   on loopback, no proxy
//   local_plain
//
// Each side counts the round trips of its session per batch (connection::round_trips). Rates are
// from wall time: through the proxy the time is spent waiting, not computing.

#include <string>

#include <fmt/format.h>

#include "bench_pipeline.hpp"

#ifndef PROJECTIONIST_BENCH_POSTGRES

namespace bench {

void bench_pipeline_postgres(const pj::memory_event_store&, const history_stats&, const pipeline_options&,
                             std::vector<comparison>&, std::vector<extra>& data) {
    fmt::print("  8g. PostgreSQL pipelines: not built (libpq was not found when the benchmarks were configured)\n");
    data.push_back({"pipeline_postgres", std::string("not built: libpq was not found at configure time")});
}

}  // namespace bench

#else

#include <libpq-fe.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include <projectionist/postgres.hpp>

#include "bench_bulk.hpp"
#include "latency_proxy.hpp"
#include "pg_client.hpp"

namespace bench {
namespace {

constexpr const char* pipeline_copy_sql =
    R"(COPY "bench_tickets_v1" ("ticket_id", "type", "status", "assignee", "last_tag", "priority", "comments", )"
    R"("reopened", "escalation") FROM STDIN (FORMAT binary))";

/// The URL with its host and port replaced by 127.0.0.1:`port` (`postgresql://user@host:port/db`).
std::string through(const std::string& url, std::uint16_t port) {
    const auto at = url.find('@');
    const auto host = at == std::string::npos ? url.find("://") + 3 : at + 1;
    const auto slash = url.find('/', host);
    return url.substr(0, host) + "127.0.0.1:" + std::to_string(port) +
           (slash == std::string::npos ? std::string() : url.substr(slash));
}

/// The port of a `postgresql://user@host:port/db` URL (5432 without one).
std::uint16_t port_of(const std::string& url) {
    const auto at = url.find('@');
    const auto host = at == std::string::npos ? url.find("://") + 3 : at + 1;
    const auto slash = url.find('/', host);
    const std::string authority = url.substr(host, slash == std::string::npos ? std::string::npos : slash - host);
    const auto colon = authority.rfind(':');
    return colon == std::string::npos ? 5432 : static_cast<std::uint16_t>(std::stoi(authority.substr(colon + 1)));
}

/// The host of such a URL, as an address the proxy can connect to.
std::string host_of(const std::string& url) {
    const auto at = url.find('@');
    const auto host = at == std::string::npos ? url.find("://") + 3 : at + 1;
    const auto end = url.find_first_of(":/", host);
    std::string h = url.substr(host, end == std::string::npos ? std::string::npos : end - host);
    return h.empty() || h == "localhost" ? "127.0.0.1" : h;
}

/// One side: the runner over its own store and storage (through `url`), the read model brought to
/// `start` untimed before each repetition, then catch_up() timed.
class pipeline_side {
public:
    using runner_type = pj::runner<bulk_tickets, pj::postgres_storage, pj::global>;

    pipeline_side(std::string admin_url, std::string url, std::string log_schema, std::string schema, bool pipelined,
                  std::uint64_t start, const std::vector<const ticket_row*>& start_rows)
        : admin_url_(std::move(admin_url)),
          url_(std::move(url)),
          log_schema_(std::move(log_schema)),
          schema_(std::move(schema)),
          pipelined_(pipelined),
          start_(start),
          start_rows_(&start_rows) {}

    void prepare() {
        runner_.reset();
        storage_.reset();
        {
            const pq_conn admin(admin_url_);
            admin.exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", quote(schema_)));
        }
        if (!log_) {
            pj::postgres_options lo;
            lo.schema = log_schema_;
            log_ = std::make_unique<pj::postgres_event_store>(url_, lo);
        }
        pj::postgres_options options;
        options.schema = schema_;
        options.pipeline = pipelined_;
        storage_ = std::make_unique<pj::postgres_storage>(url_, options);
        runner_ = std::make_unique<runner_type>(*log_, *storage_, batch_runner_options());
        (void)runner_->init();
        runner_.reset();
        {
            const pq_conn admin(admin_url_);
            admin.exec(session_settings(schema_));
            admin.exec("BEGIN");
            copy_in(admin, pipeline_copy_sql, [&](std::string& out, auto&& flush) {
                for (const ticket_row* r : *start_rows_) {
                    put_be<std::int16_t>(out, 9);
                    field(out, r->ticket_id);
                    field(out, r->type);
                    field(out, r->status);
                    field(out, r->assignee);
                    field(out, r->last_tag);
                    field32(out, r->priority);
                    field32(out, r->comments);
                    field32(out, r->reopened);
                    field32(out, r->escalation);
                    flush();
                }
            });
            admin.exec(fmt::format("UPDATE projectionist_checkpoints SET position = {} WHERE projection = '{}'", start_,
                                   bulk_model_table));
            admin.exec("COMMIT");
            admin.exec(R"(VACUUM (ANALYZE) "bench_tickets_v1")");
        }
        runner_ = std::make_unique<runner_type>(*log_, *storage_, batch_runner_options());
        (void)runner_->init();
        if (runner_->position() != start_)
            mismatch("8g. PostgreSQL pipelines: the runner did not start at the checkpoint");
        // A long-lived session's warm caches, as 8e gives its sides.
        for (const char* sql :
             {R"(SELECT sum(priority) FROM "bench_tickets_v1")",
              R"(SELECT count(*) FROM "bench_tickets_v1" WHERE "ticket_id" >= '' AND "priority" >= 0)"})
            (void)runner_->session().connection().query(sql);
        round_trips_at_start_ = runner_->session().round_trips();
        log_round_trips_at_start_ = log_->connection().round_trips();
    }

    std::uint64_t run() {
        const std::uint64_t events = runner_->catch_up();
        round_trips_.push_back(runner_->session().round_trips() - round_trips_at_start_);
        log_round_trips_.push_back(log_->connection().round_trips() - log_round_trips_at_start_);
        return events;
    }

    [[nodiscard]] std::vector<int> backends() const {
        return {log_->connection().backend_pid(), PQbackendPID(runner_->session().raw()),
                storage_->connection().backend_pid()};
    }
    [[nodiscard]] const std::string& schema() const noexcept { return schema_; }
    /// The session's round trips per batch, over every timed repetition.
    [[nodiscard]] double round_trips_per_batch(std::size_t batches) const { return per_batch(round_trips_, batches); }
    /// The same of the store's connection (the log's reads).
    [[nodiscard]] double log_round_trips_per_batch(std::size_t batches) const {
        return per_batch(log_round_trips_, batches);
    }
    void close() {
        runner_.reset();
        storage_.reset();
        log_.reset();
    }

private:
    static double per_batch(const std::vector<std::uint64_t>& counts, std::size_t batches) {
        if (counts.empty() || batches == 0) return 0;
        std::uint64_t sum = 0;
        for (const std::uint64_t n : counts) sum += n;
        return static_cast<double>(sum) / static_cast<double>(counts.size()) / static_cast<double>(batches);
    }

    std::string admin_url_;
    std::string url_;
    std::string log_schema_;
    std::string schema_;
    bool pipelined_;
    std::uint64_t start_;
    const std::vector<const ticket_row*>* start_rows_;
    std::unique_ptr<pj::postgres_event_store> log_;
    std::unique_ptr<pj::postgres_storage> storage_;
    std::unique_ptr<runner_type> runner_;
    std::uint64_t round_trips_at_start_ = 0;
    std::vector<std::uint64_t> round_trips_;
    std::uint64_t log_round_trips_at_start_ = 0;
    std::vector<std::uint64_t> log_round_trips_;
};

}  // namespace

void bench_pipeline_postgres(const pj::memory_event_store& history, const history_stats& stats,
                             const pipeline_options& o, std::vector<comparison>& out, std::vector<extra>& data) {
    const std::string url = env_text("PROJECTIONIST_BENCH_PG_URL", "");
    if (url.empty()) {
        fmt::print(
            "  8g. PostgreSQL pipelines: skipped, PROJECTIONIST_BENCH_PG_URL is not set (run.sh starts a server)\n");
        data.push_back({"pipeline_postgres", std::string("skipped: no server (PROJECTIONIST_BENCH_PG_URL not set)")});
        return;
    }
    const std::size_t n = stats.events;
    const std::string stem = fmt::format("projectionist_bench_pipe_{}", ::getpid());
    const std::string log_schema = stem + "_log";
    const drop_schemas cleanup{url,
                               {log_schema, stem + "_proxy_pipelined", stem + "_proxy_plain", stem + "_local_pipelined",
                                stem + "_local_plain"}};
    const pq_conn admin(url);
    const pg_server server = probe_server(admin);
    admin.exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", quote(log_schema)));
    {
        pj::postgres_options lo;
        lo.schema = log_schema;
        const pj::postgres_event_store create(url, lo);  // the log's tables, then the history by COPY
    }
    fmt::print("  8g. PostgreSQL pipelines ({}): writing the history into schema {} ...\n",
               server.version.substr(0, server.version.find(" on ")), log_schema);
    std::fflush(stdout);
    const double write_s = write_log(history, url, log_schema, "8g. PostgreSQL pipelines").total_s();

    const std::size_t live = o.live_events < n ? o.live_events : n / 10;
    const std::uint64_t start = n - live;
    const bulk_row_map start_map = rows_at(history, start);
    const std::vector<const ticket_row*> start_rows = sorted_rows(start_map);
    const std::uint64_t expected = rows_digest(rows_at(history));
    const std::size_t batch_size = pj::runner_options{}.batch_size;
    const std::size_t batches = (live + batch_size - 1) / batch_size;

    latency_proxy proxy(host_of(url), port_of(url), o.delay);
    const std::string slow_url = through(url, proxy.port());
    {
        // The link's round trip, as a prepared statement sees it (the median of 200).
        const pq_conn probe(slow_url);
        probe.prepare("pj_bench_ping", "SELECT 1");
        std::vector<double> rtt;
        for (int i = 0; i < 200; ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            (void)probe.run("pj_bench_ping", PGRES_TUPLES_OK, 0, nullptr);
            rtt.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        data.push_back({"pipeline_postgres_proxy_round_trip_ms", median_of(rtt) * 1e3});
        fmt::print("     through the proxy ({} us each way) a prepared SELECT 1 takes {:.2f} ms (median of 200)\n",
                   o.delay.count(), median_of(rtt) * 1e3);
    }
    pipeline_side proxy_pipelined(url, slow_url, log_schema, stem + "_proxy_pipelined", true, start, start_rows);
    pipeline_side proxy_plain(url, slow_url, log_schema, stem + "_proxy_plain", false, start, start_rows);
    pipeline_side local_pipelined(url, url, log_schema, stem + "_local_pipelined", true, start, start_rows);
    pipeline_side local_plain(url, url, log_schema, stem + "_local_plain", false, start, start_rows);
    // As 8e: a CHECKPOINT after each side's untimed part, so that no side's timed part writes out
    // another's dirty pages.
    const auto checkpoint = [&] {
        if (server.can_checkpoint) admin.exec("CHECKPOINT");
    };
    const auto side = [&checkpoint](const std::string& name, pipeline_side& s, const std::string& what) {
        return bulk_side{name,
                         [&s, &checkpoint] {
                             s.prepare();
                             checkpoint();
                         },
                         [&s] { return s.run(); },
                         [&s] { return s.backends(); },
                         0,
                         what};
    };
    const std::vector<bulk_side> sides{
        side("proxy_pipelined", proxy_pipelined,
             "runner catch_up(), batch mode, pipelines on (the default), store and session through the proxy"),
        side("proxy_plain", proxy_plain,
             "the same with postgres_options::pipeline = false: a round trip per statement"),
        side("local_pipelined", local_pipelined, "runner catch_up(), batch mode, pipelines on, loopback"),
        side("local_plain", local_plain, "the same with postgres_options::pipeline = false, loopback"),
    };
    fmt::print(
        "  8g. PostgreSQL live catch-up with and without pipelines: the read model at position {} ({} rows, copied "
        "in untimed), then {} events in batches of {}; {} repetitions per side "
        "(PROJECTIONIST_BENCH_PG_PIPELINE_REPS)\n",
        start, start_rows.size(), live, batch_size, o.repetitions);
    std::fflush(stdout);
    const std::vector<bulk_samples> s = measure_bulk(sides, o.repetitions, live, "8g. PostgreSQL pipelines");
    print_bulk_samples(fmt::format("8g. PostgreSQL live catch-up, pipelines on and off ({} new events)", live), s, live,
                       time_basis::wall);
    for (pipeline_side* x : {&proxy_pipelined, &proxy_plain, &local_pipelined, &local_plain}) {
        if (schema_digest(admin, x->schema()) != expected)
            mismatch(fmt::format("8g. PostgreSQL pipelines: the rows in {}", x->schema()));
        if (schema_checkpoint(admin, x->schema()) != static_cast<std::int64_t>(n))
            mismatch(fmt::format("8g. PostgreSQL pipelines: the checkpoint in {}", x->schema()));
    }
    const auto wall_rate = [&](std::string_view name) {
        return events_per_second(median_of(side_named(s, name).wall), live);
    };
    const double trips_proxy_pipelined = proxy_pipelined.round_trips_per_batch(batches);
    const double trips_proxy_plain = proxy_plain.round_trips_per_batch(batches);
    const double trips_local_pipelined = local_pipelined.round_trips_per_batch(batches);
    const double trips_local_plain = local_plain.round_trips_per_batch(batches);
    fmt::print("    session round trips per batch: proxy {:.2f} pipelined / {:.2f} not; loopback {:.2f} / {:.2f}\n",
               trips_proxy_pipelined, trips_proxy_plain, trips_local_pipelined, trips_local_plain);
    const double log_trips = proxy_pipelined.log_round_trips_per_batch(batches);
    fmt::print("    the store's connection: {:.2f} round trips per batch (every side alike: {:.2f}, {:.2f}, {:.2f})\n",
               log_trips, proxy_plain.log_round_trips_per_batch(batches),
               local_pipelined.log_round_trips_per_batch(batches), local_plain.log_round_trips_per_batch(batches));
    std::fflush(stdout);
    proxy_pipelined.close();
    proxy_plain.close();
    local_pipelined.close();
    local_plain.close();

    std::vector<extra> extras{
        {"events", static_cast<double>(live)},
        {"runner_batch_mode", runner_batch_mode()},
        {"start_position", static_cast<double>(start)},
        {"start_rows", static_cast<double>(start_rows.size())},
        {"batch_size", static_cast<double>(batch_size)},
        {"batches", static_cast<double>(batches)},
        {"runs", static_cast<double>(o.repetitions)},
        {"proxy_delay_each_way_us", static_cast<double>(o.delay.count())},
        {"proxy_pipelined_round_trips_per_batch", trips_proxy_pipelined},
        {"proxy_plain_round_trips_per_batch", trips_proxy_plain},
        {"local_pipelined_round_trips_per_batch", trips_local_pipelined},
        {"local_plain_round_trips_per_batch", trips_local_plain},
        {"store_round_trips_per_batch", log_trips},
        {"server", server.version},
        {"server_settings", server.settings},
        {"time", std::string("events/s from the median of wall time (the proxy's delay is waiting, not CPU); CPU "
                             "time beside them")},
    };
    for (extra& x : bulk_side_extras(s, live, time_basis::wall)) extras.push_back(std::move(x));
    const auto line = [&](std::string_view a, std::string_view b, double ta, double tb) {
        return fmt::format("{} {}ev/s ({:.1f} round trips/batch), {} {}ev/s ({:.1f})", a, si(wall_rate(a)), ta, b,
                           si(wall_rate(b)), tb);
    };
    const double proxy_ratio = wall_rate("proxy_pipelined") / wall_rate("proxy_plain");
    const double local_ratio = wall_rate("local_pipelined") / wall_rate("local_plain");
    out.push_back(comparison{"8g. PostgreSQL live over a 1 ms link: pipelined / not pipelined (events/s, wall)",
                             proxy_ratio, "> 1", proxy_ratio > 1.0,
                             line("proxy_pipelined", "proxy_plain", trips_proxy_pipelined, trips_proxy_plain), extras});
    comparison local{"8g'. PostgreSQL live on loopback: pipelined / not pipelined (events/s, wall)",
                     local_ratio,
                     "none (loopback round trips are cheap)",
                     false,
                     line("local_pipelined", "local_plain", trips_local_pipelined, trips_local_plain),
                     std::move(extras)};
    local.informational = true;
    out.push_back(std::move(local));
    data.push_back({"pipeline_postgres_log_write_s", write_s});
}

}  // namespace bench

#endif  // PROJECTIONIST_BENCH_POSTGRES
