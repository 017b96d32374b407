// What the bulk sizing tests of each backend share (unit_runner_bulk on SQLite, postgres_bulk):
// a projection that notes the room its row store has at each event, and the check that a pass
// reserved its stores once, after the first read.
#pragma once

#include <catch2/catch.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <set>
#include <utility>
#include <vector>

#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

namespace bulk_sizing {

/// Each handler call notes the position it applies and the room its row store has then
/// (`row_capacity`: in a bulk pass only), in the list of its apply thread. The log registers
/// ticket i at position i + 1 as aggregate i, and a pass on several threads gives aggregate i to
/// thread i % threads.
struct capacity_log {
    std::size_t threads = 1;
    std::array<std::vector<std::pair<std::uint64_t, std::size_t>>, 2> seen;  ///< (position, room) per thread
};

/// A ticket's row per registration, noting the row store's room in `log`.
struct noted : projectionist::projection<"noted", 1, tickets_domain::ticket_stream> {
    using table = projectionist::table<tickets_domain::ticket_row, &tickets_domain::ticket_row::ticket_id>;
    capacity_log* log = nullptr;

    void on(const tickets_domain::ticket_registered& e, auto& ctx) {
        if constexpr (requires { ctx.table().row_capacity(); }) {
            const std::uint64_t position = ctx.envelope().position;
            log->seen[(position - 1) % log->threads].emplace_back(position, ctx.table().row_capacity());
        }
        ctx.table().insert({e.ticket_id, e.type, "open", 0});
    }
};

/// Each thread's store held room for its share of the `tickets` rows from the second read (of
/// `read` events) on, and never grew again; unsized, it would have doubled its way there during
/// the pass.
inline void check_reserved_once(const capacity_log& log, std::size_t tickets, std::size_t read) {
    const std::size_t share = tickets / log.threads;
    for (std::size_t t = 0; t < log.threads; ++t) {
        INFO("thread " << t);
        const auto& seen = log.seen[t];
        REQUIRE(seen.size() == share);
        std::set<std::size_t> later;
        for (const auto& [position, room] : seen)
            if (position > read) later.insert(room);
        REQUIRE_FALSE(later.empty());
        CHECK(later.size() == 1);
        CHECK(*later.begin() >= share);
        CHECK(seen.front().second < *later.begin());  // the first read started small
    }
}

}  // namespace bulk_sizing
