#pragma once
// What the failover tests share: the projections the workers run, child processes (the test
// executable started again as a worker), an appender thread, the reference read model built from
// the log, and polling of the lease table.

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <postgres_test_support.hpp>
#include <projectionist/postgres.hpp>
#include <projectionist/workers/worker.hpp>
#include <tickets_domain.hpp>

namespace failover {

namespace pj = projectionist;
using namespace tickets_domain;
using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// ---- the projections ------------------------------------------------------------------------------

/// A ticket as the reference expects it, plus how many times its events were applied: a double
/// application shows as `applied` above the ticket's number of events, a missed one below.
struct counted_row {
    BOOST_HANA_DEFINE_STRUCT(counted_row, (std::string, ticket_id), (std::string, type), (std::string, status),
                             (int, reopened), (int, applied));
    friend bool operator==(const counted_row&, const counted_row&) = default;
};

template <class Ctx>
void apply_ticket(const ticket_registered& e, Ctx& table) {
    table.insert({e.ticket_id, e.type, "open", 0, 1});  // a second application throws (duplicate key)
}
template <class Ctx>
void apply_ticket(const ticket_closed& e, Ctx& table) {
    table.update(e.ticket_id, [](counted_row& r) {
        r.status = "closed";
        ++r.applied;
    });
}
template <class Ctx>
void apply_ticket(const ticket_reopened& e, Ctx& table) {
    table.update(e.ticket_id, [](counted_row& r) {
        r.status = "open";
        ++r.reopened;
        ++r.applied;
    });
}

using counted_table = pj::table<counted_row, &counted_row::ticket_id>;

/// One line per applied event: which worker applied it, under which lease (partition, epoch).
/// Keyed by position: a second application of an event fails on the duplicate key.
struct apply_row {
    BOOST_HANA_DEFINE_STRUCT(apply_row, (std::int64_t, position), (std::string, aggregate_id), (std::string, worker),
                             (std::int64_t, partition), (std::int64_t, epoch));
};
using apply_table = pj::table<apply_row, &apply_row::position, "applies">;

/// Applies `e` to the counted table and writes its line in the applies table, with the holder,
/// partition and epoch of the fence its batch commits under.
template <class E>
void apply_and_log(const E& e, auto& ctx) {
    apply_ticket(e, ctx.table(pj::rows<counted_row>));
    const auto& fence = ctx.storage().current_fence();
    ctx.table(pj::rows<apply_row>)
        .insert({static_cast<std::int64_t>(ctx.envelope().position), std::string(ctx.envelope().aggregate_id),
                 fence ? fence->holder : std::string("-"), fence ? static_cast<std::int64_t>(fence->partition) : -1,
                 fence ? static_cast<std::int64_t>(fence->epoch) : -1});
}

/// Per aggregate: what the partitioned workers run.
struct counted : pj::projection<"counted", 1, ticket_stream> {
    using tables = pj::tables<counted_table, apply_table>;
    template <class E>
    void on(const E& e, auto& ctx) {
        apply_and_log(e, ctx);
    }
};

/// Global: what the standby workers take over.
struct led : pj::projection<"led", 1, ticket_stream> {
    using tables = pj::tables<counted_table, apply_table>;
    template <class E>
    void on(const E& e, auto& ctx) {
        apply_and_log(e, ctx);
    }
};

/// The applies table of `projection` ("led_v1"), by position.
inline std::vector<apply_row> applies(pj::detail::pg::connection& db, const std::string& schema,
                                      std::string_view projection) {
    const auto r = db.query(
        fmt::format("SELECT position, aggregate_id, worker, partition, epoch FROM {}.{} ORDER BY "
                    "position",
                    pj::detail::pg::quote(schema), pj::detail::pg::quote(std::string(projection) + "_applies")));
    std::vector<apply_row> out;
    for (int i = 0; i < r.rows(); ++i)
        out.push_back(
            {r.int64(i, 0), std::string(r.text(i, 1)), std::string(r.text(i, 2)), r.int64(i, 3), r.int64(i, 4)});
    return out;
}

/// What the applies table proves, for `partitions` partitions: every position from 1 to `head`
/// applied exactly once, each in the partition its aggregate hashes to, and within each partition
/// epochs that never go down along the positions, one worker per epoch: one writer per partition
/// at a time, and no batch committed under an epoch after a later one took over. Returns the
/// problems (empty: none) and counts the leadership terms (runs of one epoch) in `terms`.
inline std::vector<std::string> check_applies(const std::vector<apply_row>& rows, std::uint64_t head,
                                              std::uint32_t partitions, std::size_t& terms) {
    std::vector<std::string> problems;
    if (rows.size() != head) problems.push_back(fmt::format("{} events applied, the log has {}", rows.size(), head));
    std::map<std::int64_t, std::int64_t> last_epoch;                      // partition -> epoch
    std::map<std::pair<std::int64_t, std::int64_t>, std::string> holder;  // (partition, epoch) -> worker
    terms = 0;
    for (std::size_t i = 0; i < rows.size() && problems.size() < 20; ++i) {
        const apply_row& r = rows[i];
        if (r.position != static_cast<std::int64_t>(i + 1))
            problems.push_back(fmt::format("position {} missing (next applied: {})", i + 1, r.position));
        const auto want = pj::partition_of("ticket", r.aggregate_id, partitions);
        if (r.partition != static_cast<std::int64_t>(want))
            problems.push_back(fmt::format("position {} ({}) applied in partition {}, it belongs to {}", r.position,
                                           r.aggregate_id, r.partition, want));
        if (r.epoch < 1) problems.push_back(fmt::format("position {} applied without a fence", r.position));
        auto [it, first] = last_epoch.emplace(r.partition, r.epoch);
        if (first || it->second != r.epoch) ++terms;
        if (r.epoch < it->second)
            problems.push_back(fmt::format("position {} applied under epoch {} of partition {}, after epoch {}",
                                           r.position, r.epoch, r.partition, it->second));
        it->second = std::max(it->second, r.epoch);
        const auto [h, new_epoch] = holder.emplace(std::pair{r.partition, r.epoch}, r.worker);
        if (h->second != r.worker)
            problems.push_back(fmt::format("epoch {} of partition {} applied by {} and by {}", r.epoch, r.partition,
                                           h->second, r.worker));
    }
    return problems;
}

// ---- the reference -------------------------------------------------------------------------------

/// Calls `fn(record)` on every record of the log, in order.
template <class F>
void for_each_record(const pj::postgres_event_store& store, F&& fn) {
    pj::postgres_event_store::batch batch;
    std::uint64_t at = 0;
    for (;;) {
        store.read(at, 5000, batch);
        if (batch.empty()) break;
        for (const auto& rec : batch) fn(rec);
        at = batch[batch.size() - 1].position();
    }
}

/// The read model a single, never interrupted runner would build from the whole log.
inline std::map<std::string, counted_row> reference(const pj::postgres_event_store& store) {
    std::map<std::string, counted_row> out;
    for_each_record(store, [&](const auto& rec) {
        const std::string id(rec.aggregate_id());
        if (rec.type_name() == "ticket.registered") {
            out[id] = {id, store.event_of<ticket_registered>(rec).type, "open", 0, 1};
            return;
        }
        counted_row& r = out.at(id);
        ++r.applied;
        if (rec.type_name() == "ticket.closed") {
            r.status = "closed";
        } else {
            r.status = "open";
            ++r.reopened;
        }
    });
    return out;
}

/// Compares the table `table` with the reference; returns the differences (empty: equal).
inline std::vector<std::string> compare_with_reference(pj::postgres_storage& storage, std::string_view table,
                                                       const std::map<std::string, counted_row>& want) {
    std::vector<std::string> problems;
    std::map<std::string, counted_row> got;
    storage.find_table<counted_table>(table)->for_each([&](const counted_row& r) { got[r.ticket_id] = r; });
    for (const auto& [id, w] : want) {
        const auto it = got.find(id);
        if (it == got.end())
            problems.push_back(fmt::format("{}: missing", id));
        else if (!(it->second == w))
            problems.push_back(
                fmt::format("{}: got ({}, {}, reopened {}, applied {}), want ({}, {}, reopened {}, "
                            "applied {})",
                            id, it->second.type, it->second.status, it->second.reopened, it->second.applied, w.type,
                            w.status, w.reopened, w.applied));
    }
    for (const auto& [id, r] : got)
        if (!want.contains(id)) problems.push_back(fmt::format("{}: not in the log", id));
    return problems;
}

// ---- appending concurrently ------------------------------------------------------------------------

/// Appends tickets' lives one event at a time on a thread of its own (its own store and
/// connection) until stopped: new tickets, closes and reopenings, each with its expected version.
class appender {
public:
    appender(const std::string& url, const pj::postgres_options& options, std::string prefix, std::size_t tickets,
             milliseconds pause)
        : store_(url, options), prefix_(std::move(prefix)), versions_(tickets, 0), pause_(pause) {}

    /// Appends `n` events at once (the history the workers start with).
    void append_now(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) append_one();
    }
    void start() {
        thread_ = std::jthread([this](std::stop_token st) {
            try {
                while (!st.stop_requested()) {
                    append_one();
                    std::this_thread::sleep_for(pause_);
                }
            } catch (const std::exception& e) {
                error_ = e.what();
            }
        });
    }
    /// Stops the thread; rethrows what stopped it early, if anything.
    void stop() {
        thread_ = {};
        if (!error_.empty()) throw std::runtime_error("the appender failed: " + error_);
    }
    [[nodiscard]] std::uint64_t appended() const noexcept { return appended_.load(); }

private:
    void append_one() {
        const std::size_t i = next_++ % versions_.size();
        const std::string id = fmt::format("{}-{}", prefix_, i);
        std::uint64_t& v = versions_[i];
        if (v == 0)
            v = store_.append(ticket_stream{}, id, 0, ticket_registered{id, i % 3 == 0 ? "bug" : "task"}).version;
        else if (v % 2 == 1)
            v = store_.append(ticket_stream{}, id, v, ticket_closed{id}).version;
        else
            v = store_.append(ticket_stream{}, id, v, ticket_reopened{id}).version;
        ++appended_;
    }

    pj::postgres_event_store store_;
    std::string prefix_;
    std::vector<std::uint64_t> versions_;
    std::size_t next_ = 0;
    milliseconds pause_;
    std::atomic<std::uint64_t> appended_{0};
    std::string error_;
    std::jthread thread_;
};

// ---- child processes -------------------------------------------------------------------------------

inline std::string self_exe() {
    std::error_code ec;
    const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) throw std::runtime_error("cannot read /proc/self/exe: " + ec.message());
    return p.string();
}

/// A worker process: this executable started again with `args`. The destructor kills it with
/// SIGKILL (after SIGCONT, should it be stopped) and reaps it, so that a failed check leaves no
/// process behind. Only this pid is ever signalled.
class child_process {
public:
    explicit child_process(const std::vector<std::string>& args) {
        std::vector<std::string> all{self_exe()};
        all.insert(all.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : all) argv.push_back(a.data());
        argv.push_back(nullptr);
        std::fflush(stdout);
        std::fflush(stderr);
        pid_ = ::fork();
        if (pid_ == 0) {  // the child: async-signal-safe calls only
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        if (pid_ < 0) throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
    }
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process() {
        if (pid_ > 0 && !reaped_) {
            ::kill(pid_, SIGCONT);
            ::kill(pid_, SIGKILL);
            int status = 0;
            while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
            }
        }
    }

    void signal(int sig) const {
        if (!reaped_) ::kill(pid_, sig);
    }
    /// Whether it is still running (or stopped); reaps it if it ended.
    bool alive() {
        if (reaped_) return false;
        int status = 0;
        const pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            reaped_ = true;
            status_ = status;
            return false;
        }
        return true;
    }
    /// Waits up to `timeout` for it to end; returns its wait status, or nullopt if it did not.
    std::optional<int> wait(milliseconds timeout) {
        const auto until = clock::now() + timeout;
        while (alive()) {
            if (clock::now() >= until) return std::nullopt;
            std::this_thread::sleep_for(milliseconds(10));
        }
        return status_;
    }
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

private:
    pid_t pid_ = -1;
    bool reaped_ = false;
    int status_ = 0;
};

inline std::string describe(int status) {
    if (WIFEXITED(status)) return fmt::format("exited with code {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return fmt::format("was killed by signal {}", WTERMSIG(status));
    return fmt::format("ended with wait status {}", status);
}

/// Polls `condition` every 10 ms until it holds (true) or `timeout` passes (false).
template <class F>
bool wait_until(milliseconds timeout, F&& condition) {
    const auto until = clock::now() + timeout;
    for (;;) {
        if (condition()) return true;
        if (clock::now() >= until) return false;
        std::this_thread::sleep_for(milliseconds(10));
    }
}

// ---- the child's side ------------------------------------------------------------------------------

/// Timings of the workers in these tests: short, so that the whole label runs in well under two
/// minutes, and the heartbeat a sixth of the lease, so that a loaded machine does not lose leases.
inline constexpr milliseconds lease_ttl{1500};
inline constexpr milliseconds heartbeat{250};

/// The body of a worker process: `<program> <its flag> <url> <schema> <id> <partitions>`. Runs a
/// worker of `Projection` until SIGTERM, then writes its final status into failover_stats.
template <class Projection, class Partitioning>
int worker_main(int argc, char** argv) {
    if (argc != 6) {
        std::fprintf(stderr, "failover worker: expected 4 arguments, got %d\n", argc - 2);
        return 2;
    }
    const std::string url = argv[2];
    pj::postgres_options options;
    options.schema = argv[3];
    const std::string id = argv[4];
    const auto partitions = static_cast<std::uint32_t>(std::stoul(argv[5]));
    // SIGTERM ends the worker cleanly: blocked in every thread, awaited by one.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    try {
        pj::postgres_event_store store(url, options);
        pj::postgres_storage storage(url, options);
        pj::worker_options wo;
        wo.partitions = partitions;
        wo.lease_ttl = lease_ttl;
        wo.heartbeat = heartbeat;
        wo.poll_interval = milliseconds(50);
        wo.id = id;
        wo.runner.batch_size = 10;  // many small batches: many commits for the fence to judge
        pj::worker<Projection, pj::postgres_storage, Partitioning> w(store, storage, wo);
        std::stop_source stop;
        std::thread waiter([&] {
            int sig = 0;
            sigwait(&set, &sig);
            stop.request_stop();
        });
        w.run(stop.get_token());
        waiter.join();
        const pj::worker_status s = w.status();
        pj::detail::pg::params p;
        p.add(id)
            .add(s.claims)
            .add(s.releases)
            .add(s.leases_lost)
            .add(s.fenced_commits)
            .add(s.runner_restarts)
            .add(s.events_applied)
            .add(s.error.value_or(""));
        storage.connection().query("INSERT INTO failover_stats VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", p);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "failover worker %s: %s\n", id.c_str(), e.what());
        return 2;
    }
}

// ---- the parent's side -----------------------------------------------------------------------------

/// Where the workers write their final reports: created before they start (concurrent CREATE
/// TABLEs of one name can fail in PostgreSQL).
inline void create_reports_table(pj::detail::pg::connection& db, const std::string& schema) {
    db.exec(fmt::format(
        "CREATE TABLE {}.failover_stats(worker text PRIMARY KEY, claims bigint, releases bigint, lost bigint, "
        "fenced bigint, restarts bigint, applied bigint, last_error text)",
        pj::detail::pg::quote(schema)));
}

/// One worker's final report (from failover_stats).
struct worker_report {
    std::string worker;
    std::int64_t claims = 0, releases = 0, lost = 0, fenced = 0, restarts = 0, applied = 0;
    std::string last_error;
};

inline std::map<std::string, worker_report> reports(pj::detail::pg::connection& db, const std::string& schema) {
    std::map<std::string, worker_report> out;
    const auto r = db.query(fmt::format(
        "SELECT worker, claims, releases, lost, fenced, restarts, applied, last_error FROM {}.failover_stats",
        pj::detail::pg::quote(schema)));
    for (int i = 0; i < r.rows(); ++i)
        out[std::string(r.text(i, 0))] = {std::string(r.text(i, 0)),
                                          r.int64(i, 1),
                                          r.int64(i, 2),
                                          r.int64(i, 3),
                                          r.int64(i, 4),
                                          r.int64(i, 5),
                                          r.int64(i, 6),
                                          std::string(r.text(i, 7))};
    return out;
}

/// The lease rows of `projection`, read behind the workers' backs.
inline std::vector<pj::lease_state> lease_states(pj::detail::pg::connection& db, const std::string& schema,
                                                 const std::string& projection) {
    pj::detail::pg::params p;
    p.add(projection);
    const auto r = db.query(fmt::format("SELECT partition, holder, epoch, expires_at <= clock_timestamp() FROM "
                                        "{}.projectionist_leases WHERE projection = $1 ORDER BY partition",
                                        pj::detail::pg::quote(schema)),
                            p);
    std::vector<pj::lease_state> out;
    for (int i = 0; i < r.rows(); ++i)
        out.push_back({static_cast<std::uint32_t>(r.int64(i, 0)),
                       r.is_null(i, 1) ? std::nullopt : std::optional<std::string>(r.text(i, 1)),
                       static_cast<std::uint64_t>(r.int64(i, 2)), r.boolean(i, 3)});
    return out;
}

/// The p-th percentile (0..100) of `samples`, nearest rank.
inline double percentile(std::vector<double> samples, double p) {
    if (samples.empty()) return 0;
    std::sort(samples.begin(), samples.end());
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(samples.size())));
    return samples[std::min(samples.size(), std::max<std::size_t>(rank, 1)) - 1];
}

}  // namespace failover
