// Versions of one projection made live at the same time from several threads, on the memory
// storage: each hand-over locks its own version's rows and then those of the versions that are
// live, so two of them that each find the other live (A makes v2 live while v3 is live, B makes
// v3 live while v2 is live) would wait for each other forever, and two that read the catalog before
// either committed would leave two versions live. Checked: every round ends (a watchdog ends the
// process with a failure instead of a hang), one version is live after each, and the emission
// windows say the same.

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

namespace memory_handoff_race_test {

namespace pj = projectionist;
using namespace tickets_domain;

namespace {

/// Ends the process with a failure if the test has not finished within `limit`: a deadlock is
/// a failure, not a hang.
class deadlock_watchdog {
public:
    explicit deadlock_watchdog(std::chrono::seconds limit)
        : thread_([limit](std::stop_token stop) {
              const auto until = std::chrono::steady_clock::now() + limit;
              while (!stop.stop_requested()) {
                  if (std::chrono::steady_clock::now() > until) {
                      std::fputs("FAILED: hand-overs made at once did not end: they wait for each other's locks\n",
                                 stderr);
                      std::_Exit(3);
                  }
                  std::this_thread::sleep_for(std::chrono::milliseconds(20));
              }
          }) {}

private:
    std::jthread thread_;
};

/// The versions the catalog says are live.
std::vector<std::string> live_versions(pj::memory_storage& storage) {
    std::vector<std::string> out;
    for (const auto& e : storage.catalog())
        if (e.live) out.push_back(e.name);
    return out;
}

}  // namespace

TEST_CASE("versions made live at once from several threads neither deadlock nor end up both live",
          "[fault][emission][handoff]") {
    deadlock_watchdog watchdog(std::chrono::seconds(120));
    pj::memory_event_store store;
    pj::memory_storage storage;
    for (int i = 0; i < 20; ++i) {
        const std::string id = fmt::format("t-{}", i);
        store.append(ticket_stream{}, id, 0, ticket_registered{id, "bug"});
    }
    // Each version's runner is its own "process" on the shared storage.
    pj::runner<position_announcer<1>> v1(store, storage);
    pj::runner<position_announcer<2>> v2(store, storage);
    pj::runner<position_announcer<3>> v3(store, storage);
    v1.catch_up();
    v2.catch_up();
    v3.catch_up();
    v1.make_live();

    // Each round, two threads make two versions live at the same instant: in turn v2 and v3 (a
    // third version was live), then v1 and v2 in opposite directions, and so on; every other
    // round starts with both of them live.
    std::array<std::function<void()>, 3> make_live{[&] { v1.make_live(); }, [&] { v2.make_live(); },
                                                   [&] { v3.make_live(); }};
    constexpr int rounds = 20000;
    std::atomic<int> failures{0};
    std::string first_failure;
    std::mutex failure_mutex;
    for (int round = 0; round < rounds; ++round) {
        const std::size_t a = static_cast<std::size_t>(round) % 3;
        const std::size_t b = (a + 1 + static_cast<std::size_t>(round / 3) % 2) % 3;
        if (round % 2 == 1) {
            // Both live before they race, as the lost update above would leave them (or a catalog
            // written before hand-overs were kept): each hand-over locks the other's version.
            for (const std::size_t i : {a, b}) {
                auto e = storage.find_catalog(fmt::format("announced_v{}", i + 1));
                REQUIRE(e);
                e->live = true;
                storage.save_catalog(*e);
            }
        }
        std::barrier start(2);
        auto body = [&](std::size_t which) {
            start.arrive_and_wait();
            try {
                make_live[which]();
            } catch (const std::exception& e) {
                std::lock_guard lock(failure_mutex);
                if (failures++ == 0) first_failure = e.what();
            }
        };
        {
            std::jthread ta(body, a);
            std::jthread tb(body, b);
        }
        INFO("round " << round);
        const auto live = live_versions(storage);
        CHECK(live.size() == 1);
        // The windows agree: only the live version's is open.
        const auto windows = pj::detail::parse_windows(
            storage.find_setting("projectionist.emission.announced").value_or(""), "projectionist.emission.announced");
        std::vector<std::string> open;
        for (const auto& [name, w] : windows)
            if (!w.through) open.push_back(name);
        CHECK(open == live);
    }
    INFO("the first failure: " << first_failure);
    CHECK(failures == 0);
}

}  // namespace memory_handoff_race_test
