#pragma once
// The histories of the bulk backfill tests (SQLite and PostgreSQL) and the rows they compare.

#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <tickets_domain.hpp>

namespace bulk_test {

using namespace tickets_domain;

/// A random interleaving of tickets' lives (registered, closed, reopened, ...), continued by each
/// call: later calls add new tickets and new events of old ones.
class history {
public:
    explicit history(unsigned seed) : rng_(seed) {}

    template <class Store>
    void append(Store& store, int tickets, int steps) {
        version_.resize(static_cast<std::size_t>(tickets), 0);
        status_.resize(static_cast<std::size_t>(tickets), 0);
        for (int step = 0; step < steps; ++step) {
            const auto i = static_cast<std::size_t>(rng_() % static_cast<unsigned>(tickets));
            const std::string id = "t-" + std::to_string(i);
            if (status_[i] == 0) {
                version_[i] = store.append(ticket_stream{}, id, version_[i], ticket_registered{id, "bug"}).version;
                status_[i] = 1;
            } else if (status_[i] == 1) {
                version_[i] = store.append(ticket_stream{}, id, version_[i], ticket_closed{id}).version;
                status_[i] = 2;
            } else {
                version_[i] = store.append(ticket_stream{}, id, version_[i], ticket_reopened{id}).version;
                status_[i] = 1;
            }
        }
    }

private:
    std::mt19937 rng_;
    std::vector<std::uint64_t> version_;
    std::vector<int> status_;
};

template <class Store>
void append_history(Store& store, int tickets, int steps, unsigned seed) {
    history(seed).append(store, tickets, steps);
}

/// A committed checkpoint: the position, and the aggregates' positions without trailing zeros
/// (their vector grows ahead of the aggregates).
struct committed {
    std::uint64_t position = 0;
    std::uint64_t tracked = 0;
    std::vector<std::uint64_t> versions;
    friend bool operator==(const committed&, const committed&) = default;
};

/// What `storage` has committed for the version `name`, read back from it.
template <class Storage>
committed committed_of(Storage& storage, std::string_view name) {
    auto session = storage.open(name);
    const auto& cp = session.reload_checkpoint();
    committed out{cp.position, cp.aggregates_tracked, cp.aggregate_versions};
    while (!out.versions.empty() && out.versions.back() == 0) out.versions.pop_back();
    return out;
}

template <class Storage>
std::map<std::string, ticket_row> rows_of(Storage& storage, std::string_view name) {
    std::map<std::string, ticket_row> out;
    auto table = storage.template find_table<tickets<2>::table>(name);
    REQUIRE(table);
    table->for_each([&](const ticket_row& r) { out.emplace(r.ticket_id, r); });
    return out;
}

}  // namespace bulk_test
