#pragma once
// The lease protocol of workers on PostgreSQL: which worker holds which partition of a projection,
// with a fencing epoch. See include/projectionist/workers/worker.hpp for how a worker uses it.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <projectionist/detail/pg_api.hpp>
#include <projectionist/detail/pg_schema.hpp>
#include <projectionist/error.hpp>
#include <projectionist/storage/postgres_storage.hpp>
#include <projectionist/workers/worker_status.hpp>

namespace projectionist {

/// A row of projectionist_leases as it is now (for status and tests).
struct lease_state {
    std::uint32_t partition = 0;
    std::optional<std::string> holder;  ///< nullopt: released or never claimed
    std::uint64_t epoch = 0;
    bool expired = false;  ///< by the server's clock
};

/// The leases of one projection's partitions, as one worker sees and changes them, over a
/// connection of its own. Every operation is one autocommit statement, timed by the server's
/// clock (`clock_timestamp()`), never by the workers' own clocks, so that a worker never holds a
/// row lock between two calls (a frozen worker blocks nobody).
///
/// The protocol, on the rows `(projection, partition, partitions, holder, epoch, expires_at)`:
///  - claim: a row that is released (holder NULL) or expired gets holder = this worker,
///    epoch + 1, expires_at = now + ttl (`FOR UPDATE SKIP LOCKED`: two claimants never get one
///    row, and a row whose fenced commit is under way is left alone);
///  - renew: this worker's unexpired rows get expires_at = now + ttl; a lease that expired is not
///    renewed: it must be claimed again, with a new epoch;
///  - release: holder NULL and expired now, if the row still has this worker and epoch;
///  - workers: a row per live worker in projectionist_workers, renewed by `heartbeat()`; the fair
///    share of a worker is ceil(partitions / live workers).
///
///     projectionist::postgres_lease_table leases(url, {}, "tickets_v2", 8, "host-a:42", 10s);
///     leases.heartbeat();
///     auto mine = leases.claim(leases.fair_share());   // [{partition, epoch}, ...]
class postgres_lease_table {
public:
    /// Advisory lock class id ("PRJL") of the creation of a projection's lease rows.
    static constexpr std::int32_t lease_lock_class = 0x50524A4C;

    /// Connects, creates the projection's lease rows if missing (partitions 0 .. partitions-1)
    /// and checks that they were created with this partition count; throws projectionist::error
    /// if not (another count would split aggregates differently and apply events twice).
    postgres_lease_table(const std::string& conninfo, const postgres_options& options, std::string projection,
                         std::uint32_t partitions, std::string worker, std::chrono::milliseconds ttl)
        : db_(detail::pg::open_database(conninfo, options)),
          projection_(std::move(projection)),
          worker_(std::move(worker)),
          partitions_(partitions),
          ttl_(ttl) {
        if (partitions_ == 0)
            throw error(
                fmt::format("projectionist: workers of '{}': the partition count must be at least 1", projection_));
        if (worker_.empty()) throw error(fmt::format("projectionist: a worker of '{}' needs an id", projection_));
        if (ttl_.count() <= 0)
            throw error(fmt::format("projectionist: workers of '{}': the lease time must be positive", projection_));
        // Never wait long for a row: the heartbeat must come round within the lease time. Set up
        // again whenever the connection is opened anew.
        db_.setup(fmt::format("SET lock_timeout = {}; SET idle_in_transaction_session_timeout = {}",
                              std::max<std::int64_t>(1, ttl_.count() / 4), ttl_.count()));
        // Checked, then created, under a lock: workers starting together with different counts
        // must not leave rows of both.
        detail::pg::in_locked_transaction(db_, lease_lock_class, detail::pg::schema_name_key(projection_), [&] {
            detail::pg::params q;
            q.add(projection_);
            const auto r = db_.query(
                "SELECT count(*), min(partitions), max(partitions) FROM projectionist_leases WHERE projection = $1", q);
            const auto rows = r.int64(0, 0);
            if (rows != 0 &&
                (rows != static_cast<std::int64_t>(partitions_) || r.int64(0, 1) != rows || r.int64(0, 2) != rows))
                throw error(fmt::format(
                    "projectionist: workers of '{0}': its lease rows (projectionist_leases) are for {1} partitions, "
                    "this worker was given {2}; every worker of a projection must use the same count. To change "
                    "it, stop every worker of '{0}', reset it (its partitions' checkpoints are for {1}), and delete "
                    "its lease rows: DELETE FROM projectionist_leases WHERE projection = '{0}'",
                    projection_, r.int64(0, 2), partitions_));
            if (rows == 0) {
                detail::pg::params p;
                p.add(projection_).add(static_cast<std::int64_t>(partitions_));
                db_.query(
                    "INSERT INTO projectionist_leases(projection, partition, partitions, holder, epoch, expires_at) "
                    "SELECT $1, g, $2::integer, NULL, 0, clock_timestamp() FROM generate_series(0, $2::integer - 1) "
                    "AS g",
                    p);
            }
        });
    }

    [[nodiscard]] const std::string& projection() const noexcept { return projection_; }
    [[nodiscard]] const std::string& worker() const noexcept { return worker_; }
    [[nodiscard]] std::uint32_t partitions() const noexcept { return partitions_; }
    [[nodiscard]] std::chrono::milliseconds ttl() const noexcept { return ttl_; }
    [[nodiscard]] detail::pg::connection& connection() noexcept { return db_; }

    /// Registers this worker as live until now + ttl (or renews its registration).
    void heartbeat() {
        detail::pg::params p;
        p.add(projection_).add(worker_).add(ttl_.count());
        run("pj_lease_heartbeat",
            "INSERT INTO projectionist_workers(projection, worker, expires_at) VALUES ($1, $2, clock_timestamp() + "
            "$3::double precision "
            "* interval '1 millisecond') ON CONFLICT (projection, worker) DO UPDATE SET expires_at = "
            "excluded.expires_at",
            p);
    }

    /// The workers of the projection whose registration has not expired (this one included, once
    /// it has sent a heartbeat). Forgets those expired for longer than ten lease times.
    [[nodiscard]] std::uint32_t live_workers() {
        detail::pg::params p;
        p.add(projection_).add(ttl_.count());
        run("pj_lease_forget_workers",
            "DELETE FROM projectionist_workers WHERE projection = $1 AND expires_at < clock_timestamp() - 10 * "
            "$2::double precision * "
            "interval '1 millisecond'",
            p);
        const auto r = run("pj_lease_live_workers",
                           "SELECT count(*) FROM projectionist_workers WHERE projection = $1 AND expires_at > "
                           "clock_timestamp()");
        return static_cast<std::uint32_t>(r.int64(0, 0));
    }

    /// How many partitions one worker should hold: ceil(partitions / live workers), at least 1.
    [[nodiscard]] std::uint32_t fair_share() { return share_of(partitions_, live_workers()); }
    [[nodiscard]] static constexpr std::uint32_t share_of(std::uint32_t partitions, std::uint32_t workers) noexcept {
        return workers == 0 ? partitions : (partitions + workers - 1) / workers;
    }

    /// Renews every unexpired lease this worker holds; returns them, by partition. A lease missing
    /// from the answer was lost (expired, or claimed by another worker after it expired).
    std::vector<lease> renew() {
        detail::pg::params p;
        p.add(projection_).add(worker_).add(ttl_.count());
        return leases_of(
            run("pj_lease_renew",
                "UPDATE projectionist_leases SET expires_at = clock_timestamp() + $3::double precision * interval '1 "
                "millisecond' WHERE projection = $1 AND holder = $2 AND expires_at > clock_timestamp() "
                "RETURNING partition, epoch",
                p));
    }

    /// Claims up to `max` partitions that are released or expired, in random order (so that
    /// workers starting together spread out); returns those claimed, each with its new epoch.
    /// `taken_over`, if given, is set to how many of them had expired in a worker's hands (it
    /// stopped renewing: it died, froze or lost the database) rather than been released.
    std::vector<lease> claim(std::uint32_t max, std::uint32_t* taken_over = nullptr) {
        if (taken_over != nullptr) *taken_over = 0;
        if (max == 0) return {};
        detail::pg::params p;
        p.add(projection_).add(worker_).add(ttl_.count()).add(static_cast<std::int64_t>(max));
        const auto r =
            run("pj_lease_claim",
                "WITH free AS (SELECT partition, holder IS NOT NULL AS expired FROM projectionist_leases WHERE "
                "projection = $1 AND (holder IS NULL OR expires_at <= clock_timestamp()) ORDER BY random() LIMIT $4 "
                "FOR UPDATE SKIP LOCKED) UPDATE projectionist_leases l SET holder = $2, epoch = l.epoch + 1, "
                "expires_at = clock_timestamp() + $3::double precision * interval '1 millisecond' FROM free WHERE "
                "l.projection = $1 AND l.partition = free.partition RETURNING l.partition, l.epoch, free.expired",
                p);
        if (taken_over != nullptr)
            for (int i = 0; i < r.rows(); ++i)
                if (r.boolean(i, 2)) ++*taken_over;
        return leases_of(r);
    }

    /// Gives a lease back at once (if this worker still holds it with that epoch), so that another
    /// worker may claim it without waiting for it to expire. Returns whether it did.
    bool release(const lease& l) {
        detail::pg::params p;
        p.add(projection_)
            .add(static_cast<std::int64_t>(l.partition))
            .add(worker_)
            .add(static_cast<std::int64_t>(l.epoch));
        return run("pj_lease_release",
                   "UPDATE projectionist_leases SET holder = NULL, expires_at = clock_timestamp() WHERE projection = "
                   "$1 AND partition = $2 AND holder = $3 AND epoch = $4",
                   p)
                   .affected() == 1;
    }

    /// Releases every lease of this worker and removes its registration: a clean leave, after
    /// which the other workers take its partitions over without waiting for the lease time.
    void leave() {
        detail::pg::params p;
        p.add(projection_).add(worker_);
        run("pj_lease_leave",
            "UPDATE projectionist_leases SET holder = NULL, expires_at = clock_timestamp() WHERE projection = $1 AND "
            "holder = $2",
            p);
        run("pj_lease_unregister", "DELETE FROM projectionist_workers WHERE projection = $1 AND worker = $2", p);
    }

    /// What a commit fenced by `l` must prove (postgres_storage::session::fence).
    [[nodiscard]] lease_fence fence_for(const lease& l) const { return {projection_, l.partition, worker_, l.epoch}; }

    /// Every lease row of the projection, by partition.
    [[nodiscard]] std::vector<lease_state> states() {
        const auto r = run("pj_lease_states",
                           "SELECT partition, holder, epoch, expires_at <= clock_timestamp() FROM projectionist_leases "
                           "WHERE projection = $1 ORDER BY partition");
        std::vector<lease_state> out;
        for (int i = 0; i < r.rows(); ++i)
            out.push_back({static_cast<std::uint32_t>(r.int64(i, 0)),
                           r.is_null(i, 1) ? std::nullopt : std::optional<std::string>(r.text(i, 1)),
                           static_cast<std::uint64_t>(r.int64(i, 2)), r.boolean(i, 3)});
        return out;
    }

private:
    detail::pg::result run(const char* name, const char* sql, const detail::pg::params& p) {
        db_.prepare(name, sql);
        return db_.execute(name, p);
    }

    /// `run` with the projection as the only parameter ($1).
    detail::pg::result run(const char* name, const char* sql) {
        detail::pg::params p;
        p.add(projection_);
        return run(name, sql, p);
    }

    static std::vector<lease> leases_of(const detail::pg::result& r) {
        std::vector<lease> out;
        for (int i = 0; i < r.rows(); ++i)
            out.push_back({static_cast<std::uint32_t>(r.int64(i, 0)), static_cast<std::uint64_t>(r.int64(i, 1))});
        std::sort(out.begin(), out.end(), [](const lease& a, const lease& b) { return a.partition < b.partition; });
        return out;
    }

    detail::pg::connection db_;
    std::string projection_;
    std::string worker_;
    std::uint32_t partitions_;
    std::chrono::milliseconds ttl_;
};

}  // namespace projectionist
