#pragma once
// The benchmark domain: a ticket desk with eight event types in one stream, the handler work
// every side of a comparison shares, and the generator of the benchmark history.
//
// Every event carries the ticket's string id (the read model's key) and its dense ticket number
// (what the dispatch benchmarks index a flat counter array with).

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>
#include <boost/mp11/algorithm.hpp>

#include <projectionist/projectionist.hpp>

namespace bench {

namespace pj = projectionist;

// ---- events ---------------------------------------------------------------------------------
struct ticket_registered {
    BOOST_HANA_DEFINE_STRUCT(ticket_registered, (std::string, ticket_id), (std::uint32_t, ticket_no),
                             (std::string, type));
    static constexpr std::string_view event_name = "ticket.registered";
};
struct ticket_assigned {
    BOOST_HANA_DEFINE_STRUCT(ticket_assigned, (std::string, ticket_id), (std::uint32_t, ticket_no),
                             (std::string, assignee));
    static constexpr std::string_view event_name = "ticket.assigned";
};
struct ticket_prioritized {
    BOOST_HANA_DEFINE_STRUCT(ticket_prioritized, (std::string, ticket_id), (std::uint32_t, ticket_no), (int, priority));
    static constexpr std::string_view event_name = "ticket.prioritized";
};
struct ticket_commented {
    BOOST_HANA_DEFINE_STRUCT(ticket_commented, (std::string, ticket_id), (std::uint32_t, ticket_no),
                             (std::string, author));
    static constexpr std::string_view event_name = "ticket.commented";
};
struct ticket_closed {
    BOOST_HANA_DEFINE_STRUCT(ticket_closed, (std::string, ticket_id), (std::uint32_t, ticket_no));
    static constexpr std::string_view event_name = "ticket.closed";
};
struct ticket_reopened {
    BOOST_HANA_DEFINE_STRUCT(ticket_reopened, (std::string, ticket_id), (std::uint32_t, ticket_no));
    static constexpr std::string_view event_name = "ticket.reopened";
};
struct ticket_escalated {
    BOOST_HANA_DEFINE_STRUCT(ticket_escalated, (std::string, ticket_id), (std::uint32_t, ticket_no), (int, level));
    static constexpr std::string_view event_name = "ticket.escalated";
};
struct ticket_tagged {
    BOOST_HANA_DEFINE_STRUCT(ticket_tagged, (std::string, ticket_id), (std::uint32_t, ticket_no), (std::string, tag));
    static constexpr std::string_view event_name = "ticket.tagged";
};

using ticket_stream = pj::stream<"ticket", ticket_registered, ticket_assigned, ticket_prioritized, ticket_commented,
                                 ticket_closed, ticket_reopened, ticket_escalated, ticket_tagged>;
/// The events in stream order: the "variant index" of the hand-written switch.
using ticket_events = ticket_stream::events;
inline constexpr std::size_t event_type_count = boost::mp11::mp_size<ticket_events>::value;
static_assert(event_type_count >= 8);
/// An event's index in the stream's list: the case label of the hand-written switches.
template <class E>
inline constexpr std::uint8_t alternative = static_cast<std::uint8_t>(boost::mp11::mp_find<ticket_events, E>::value);
inline constexpr std::uint8_t no_alternative = 0xFF;

// ---- dispatch work: add a per-type weight to a flat counter indexed by ticket number ---------
//
// The same functions are called by every dispatch mechanism; the weights differ per type so
// that a wrong dispatch changes the result.
struct tally {
    std::vector<std::uint64_t> counts;
};
inline void count(const ticket_registered& e, tally& t) noexcept {
    t.counts[e.ticket_no] += 1;
}
inline void count(const ticket_assigned& e, tally& t) noexcept {
    t.counts[e.ticket_no] += 3;
}
inline void count(const ticket_prioritized& e, tally& t) noexcept {
    t.counts[e.ticket_no] += 7;
}
inline void count(const ticket_commented& e, tally& t) noexcept {
    t.counts[e.ticket_no] += 15;
}
inline void count(const ticket_closed& e, tally& t) noexcept {
    t.counts[e.ticket_no] += 31;
}
inline void count(const ticket_reopened& e, tally& t) noexcept {
    t.counts[e.ticket_no] += 63;
}
inline void count(const ticket_escalated& e, tally& t) noexcept {
    t.counts[e.ticket_no] += 127;
}
inline void count(const ticket_tagged& e, tally& t) noexcept {
    t.counts[e.ticket_no] += 255;
}

// ---- the read model of the rebuild benchmarks ---------------------------------------------------
struct ticket_row {
    BOOST_HANA_DEFINE_STRUCT(ticket_row, (std::string, ticket_id), (std::string, type), (std::string, status),
                             (std::string, assignee), (std::string, last_tag), (int, priority), (int, comments),
                             (int, reopened), (int, escalation));
    friend bool operator==(const ticket_row&, const ticket_row&) = default;
};

/// The row a registration creates; every other event changes an existing row (`apply`).
inline ticket_row make_row(const ticket_registered& e) {
    return {e.ticket_id, e.type, "open", {}, {}, 0, 0, 0, 0};
}
inline void apply(const ticket_assigned& e, ticket_row& r) {
    r.assignee = e.assignee;
}
inline void apply(const ticket_prioritized& e, ticket_row& r) {
    r.priority = e.priority;
}
inline void apply(const ticket_commented&, ticket_row& r) {
    ++r.comments;
}
inline void apply(const ticket_closed&, ticket_row& r) {
    r.status = "closed";
}
inline void apply(const ticket_reopened&, ticket_row& r) {
    r.status = "open";
    ++r.reopened;
}
inline void apply(const ticket_escalated& e, ticket_row& r) {
    r.status = "escalated";
    r.escalation = e.level;
}
inline void apply(const ticket_tagged& e, ticket_row& r) {
    r.last_tag = e.tag;
}

/// An order-independent digest of a table's rows, to check that two sides built the same model.
inline std::uint64_t digest(const ticket_row& r) noexcept {
    std::uint64_t h = std::hash<std::string>{}(r.ticket_id);
    h ^= std::hash<std::string>{}(r.type) * 3 + std::hash<std::string>{}(r.status) * 5 +
         std::hash<std::string>{}(r.assignee) * 7 + std::hash<std::string>{}(r.last_tag) * 11;
    h += static_cast<std::uint64_t>(r.priority) * 13 + static_cast<std::uint64_t>(r.comments) * 17 +
         static_cast<std::uint64_t>(r.reopened) * 19 + static_cast<std::uint64_t>(r.escalation) * 23;
    return h * 0x9e3779b97f4a7c15ULL;
}

// ---- the history ----------------------------------------------------------------------------

struct history_spec {
    std::size_t events = 1'000'000;
    std::size_t aggregates = 125'000;
    std::uint64_t seed = 20240601;
};

struct history_stats {
    std::size_t events = 0;
    std::size_t aggregates = 0;
    std::array<std::size_t, event_type_count> per_type{};
};

namespace detail {
/// Uniform in [0, n) for n far below 2^64 (the modulo bias is below 1e-12 here); deterministic
/// across standard libraries, unlike std::uniform_int_distribution.
inline std::uint64_t below(std::mt19937_64& rng, std::uint64_t n) noexcept {
    return rng() % n;
}
}  // namespace detail

/// Appends a mixed, randomly ordered history to `store`: every aggregate is registered by its
/// first event, then receives a random mix of the seven other types; the aggregates' events are
/// interleaved in a random global order (Fisher-Yates with a fixed seed).
inline history_stats generate_history(pj::memory_event_store& store, const history_spec& spec) {
    std::mt19937_64 rng(spec.seed);
    const std::size_t aggregates = spec.aggregates;
    const std::size_t events = spec.events < aggregates ? aggregates : spec.events;

    // One slot per event: every aggregate once, the rest drawn uniformly; then shuffled.
    std::vector<std::uint32_t> order;
    order.reserve(events);
    for (std::size_t a = 0; a < aggregates; ++a) order.push_back(static_cast<std::uint32_t>(a));
    for (std::size_t i = aggregates; i < events; ++i)
        order.push_back(static_cast<std::uint32_t>(detail::below(rng, aggregates)));
    for (std::size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[detail::below(rng, i + 1)]);

    // Weights of the seven follow-up types, in per mille.
    static constexpr std::array<unsigned, 7> weights{150, 100, 350, 150, 80, 70, 100};
    static constexpr std::array<std::string_view, 4> kinds{"bug", "incident", "question", "feature"};
    static constexpr std::array<std::string_view, 6> people{"ana", "bo", "chen", "dara", "eli", "femi"};
    static constexpr std::array<std::string_view, 5> tags{"backend", "ui", "billing", "urgent", "docs"};

    std::vector<std::uint64_t> version(aggregates, 0);
    std::vector<std::string> ids(aggregates);
    for (std::size_t a = 0; a < aggregates; ++a) ids[a] = fmt::format("ticket-{:07}", a);

    history_stats stats;
    stats.events = events;
    stats.aggregates = aggregates;
    const auto pick = [&](auto& list) { return std::string(list[detail::below(rng, list.size())]); };
    for (const std::uint32_t a : order) {
        const std::string& id = ids[a];
        std::uint64_t& v = version[a];
        std::size_t type = 0;
        if (v != 0) {
            unsigned roll = static_cast<unsigned>(detail::below(rng, 1000));
            type = 1;
            for (unsigned w : weights) {
                if (roll < w) break;
                roll -= w;
                ++type;
            }
        }
        ++stats.per_type[type];
        switch (type) {
            case 0: v = store.append(ticket_stream{}, id, v, ticket_registered{id, a, pick(kinds)}).version; break;
            case 1: v = store.append(ticket_stream{}, id, v, ticket_assigned{id, a, pick(people)}).version; break;
            case 2:
                v = store.append(ticket_stream{}, id, v, ticket_prioritized{id, a, static_cast<int>(rng() % 5)})
                        .version;
                break;
            case 3: v = store.append(ticket_stream{}, id, v, ticket_commented{id, a, pick(people)}).version; break;
            case 4: v = store.append(ticket_stream{}, id, v, ticket_closed{id, a}).version; break;
            case 5: v = store.append(ticket_stream{}, id, v, ticket_reopened{id, a}).version; break;
            case 6:
                v = store.append(ticket_stream{}, id, v, ticket_escalated{id, a, static_cast<int>(1 + rng() % 3)})
                        .version;
                break;
            default: v = store.append(ticket_stream{}, id, v, ticket_tagged{id, a, pick(tags)}).version; break;
        }
    }
    return stats;
}

/// Store type id -> alternative index, built once by stream and stored name (the runner builds
/// its own map once too).
inline std::vector<std::uint8_t> alternatives_of(const pj::memory_event_store& store) {
    std::vector<std::uint8_t> out(store.type_count(), no_alternative);
    for (std::uint32_t id = 0; id < out.size(); ++id) {
        const pj::event_type_info info = store.type_info(id);
        boost::mp11::mp_for_each<ticket_events>([&](auto e) {
            using E = decltype(e);
            if (info.stream == ticket_stream::name && info.name == pj::event_name_of<E>) out[id] = alternative<E>;
        });
    }
    return out;
}

}  // namespace bench
