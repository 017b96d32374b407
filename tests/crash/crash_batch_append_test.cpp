// The batch append under SIGKILL: a child process appends batches to a SQLite log without end
// (each batch moves 100 aggregates on by 5 events: 500 events, with expected versions) and is
// killed at random instants, most of them inside `append(batch)`. After every kill the log holds
// whole batches only: every aggregate at the same version, a multiple of 5, the events exactly
// 500 per batch at dense positions, the aggregates' versions matching their events, and the file
// passes PRAGMA integrity_check. The next child goes on from there.

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include <projectionist/sqlite.hpp>

#include <tickets_domain.hpp>

namespace crash_batch_append_test {

namespace {

namespace pj = projectionist;
using namespace tickets_domain;

constexpr int aggregates = 100;
constexpr int events_per_part = 5;
constexpr std::int64_t batch_events = aggregates * events_per_part;

/// What the child tells the parent, in memory both share.
struct shared_state {
    std::atomic<int> in_call{0};         ///< 1 while the child is inside append(batch)
    std::atomic<std::int64_t> calls{0};  ///< batch appends the child returned from
};

std::string aggregate(int i) {
    return "agg-" + std::to_string(i);
}

[[noreturn]] void child(const std::string& path, shared_state& shared) {
    try {
        pj::sqlite_event_store store(path);
        auto batch = store.new_batch();
        for (;;) {
            const std::uint64_t version = store.version_of(ticket_stream{}, aggregate(0));
            for (int i = 0; i < aggregates; ++i) {
                const std::string id = aggregate(i);
                if (version == 0)
                    batch.add(ticket_stream{}, id, 0, ticket_registered{id, "bug"}, ticket_closed{id},
                              ticket_reopened{id}, ticket_closed{id}, ticket_reopened{id});
                else
                    batch.add(ticket_stream{}, id, version, ticket_closed{id}, ticket_reopened{id}, ticket_closed{id},
                              ticket_reopened{id}, ticket_closed{id});
            }
            shared.in_call.store(1);
            store.append(batch);
            shared.in_call.store(0);
            shared.calls.fetch_add(1);
        }
    } catch (...) {
        std::_Exit(3);
    }
}

std::int64_t scalar(pj::detail::sqlite::connection& db, const std::string& sql) {
    pj::detail::sqlite::statement s(db, sql);
    REQUIRE(s.step());
    return s.int64(0);
}

}  // namespace

TEST_CASE("a batch append killed mid-call leaves all of the batch or none of it", "[crash][batch]") {
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("projectionist-crash-batch-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "log.db").string();
    { pj::sqlite_event_store created(path); }

    auto* shared = static_cast<shared_state*>(
        ::mmap(nullptr, sizeof(shared_state), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    REQUIRE(shared != MAP_FAILED);
    new (shared) shared_state{};

    const int kills =
        std::getenv("PROJECTIONIST_CRASH_KILLS") ? std::atoi(std::getenv("PROJECTIONIST_CRASH_KILLS")) : 20;
    std::mt19937 rng(20261204);
    int mid_call = 0;
    std::int64_t last_batches = 0;
    for (int k = 0; k < kills; ++k) {
        const std::int64_t calls_before = shared->calls.load();
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) child(path, *shared);
        // Wait until the child has returned from one call at least, then kill it at a random instant.
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (shared->calls.load() == calls_before && std::chrono::steady_clock::now() < give_up)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 40000)(rng)));
        ::kill(pid, SIGKILL);
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        REQUIRE(WIFSIGNALED(status));  // not an exit: the child failed otherwise
        if (shared->in_call.exchange(0) == 1) ++mid_call;

        pj::detail::sqlite::connection db = pj::detail::sqlite::open_database(path, {});
        INFO("after kill " << k);
        const std::int64_t events = scalar(db, "SELECT count(*) FROM projectionist_events");
        CHECK(events % batch_events == 0);
        CHECK(scalar(db, "SELECT coalesce(max(position), 0) FROM projectionist_events") == events);
        CHECK(scalar(db, "SELECT count(*) FROM projectionist_aggregates") == (events == 0 ? 0 : aggregates));
        CHECK(scalar(db, "SELECT count(DISTINCT version) FROM projectionist_aggregates") <= 1);
        CHECK(scalar(db, "SELECT coalesce(sum(version), 0) FROM projectionist_aggregates") == events);
        CHECK(scalar(db,
                     "SELECT count(*) FROM projectionist_aggregates a WHERE a.version <> (SELECT count(*) FROM "
                     "projectionist_events e WHERE e.aggregate_number = a.number)") == 0);
        pj::detail::sqlite::statement integrity(db, "PRAGMA integrity_check");
        REQUIRE(integrity.step());
        CHECK(integrity.text(0) == "ok");
        CHECK(events / batch_events >= last_batches);  // nothing committed was lost
        last_batches = events / batch_events;
    }
    // The kills must have hit calls in progress, or the test shows nothing.
    CHECK(mid_call >= kills / 4);
    CHECK(last_batches > 0);
    WARN("killed " << kills << " times, " << mid_call << " inside append(batch); " << last_batches
                   << " batches committed");
    ::munmap(shared, sizeof(shared_state));
    std::filesystem::remove_all(dir);
}

}  // namespace crash_batch_append_test
