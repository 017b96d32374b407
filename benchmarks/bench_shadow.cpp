// Comparison 7: the cost of the query router and of shadow reads on the primary path.
//
// Two versions of a tickets read model (100k rows each, in memory) answer "what is the status of
// ticket K" for routing key "user-K". Three sides do the same lookups, one per query:
//   direct   the serving version's table, looked up by hand (what an application without a
//            router does);
//   routed   router.query(user, ...) with all traffic on v1: one snapshot of the routing state,
//            the routing decision, one lookup;
//   shadow   router.shadow_query(user, ...) with v2 as a candidate at 0%: the lookup on v1 (the
//            answer) plus the lookup on v2 and the comparison of the two answers;
//   shadow1  the same with shadow reads sampled at 1% (router_options::shadow_sampling = 100):
//            one query in a hundred also runs on v2.
// 7a is routed / direct; 7b is shadow / routed (every query shadowed) and 7c shadow1 / routed:
// the added cost on the primary path of turning shadow reads on, at 100% and at 1% sampling.
// None has a target; all are reported as measured, with queries/s.

#include "bench_shadow.hpp"

#include <optional>
#include <string>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>

#include <projectionist/deploy/router.hpp>
#include <projectionist/projectionist.hpp>

namespace {

namespace pj = projectionist;

struct shadow_registered {
    BOOST_HANA_DEFINE_STRUCT(shadow_registered, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.registered";
};
using shadow_stream = pj::stream<"ticket", shadow_registered>;

struct status_row {
    BOOST_HANA_DEFINE_STRUCT(status_row, (std::string, ticket_id), (std::string, status));
};

template <unsigned V>
struct ticket_status : pj::projection<"ticket_status", V, shadow_stream> {
    using table = pj::table<status_row, &status_row::ticket_id>;
    void on(const shadow_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, "open"}); }
};

constexpr std::size_t rows = 100'000;
constexpr std::size_t queries = 200'000;

}  // namespace

namespace bench {

void bench_shadow(const measure_options& measure, std::vector<comparison>& out) {
    pj::memory_storage storage;
    auto s1 = storage.open("ticket_status_v1");
    auto s2 = storage.open("ticket_status_v2");
    auto& v1 = s1.create_table<ticket_status<1>::table>("ticket_status_v1");
    auto& v2 = s2.create_table<ticket_status<2>::table>("ticket_status_v2");
    std::vector<std::string> tickets;
    std::vector<std::string> users;
    for (std::size_t i = 0; i < rows; ++i) {
        tickets.push_back(fmt::format("T-{:07}", i));
        users.push_back(fmt::format("user-{}", i));
        v1.insert({tickets.back(), i % 5 ? "closed" : "open"});
        v2.insert({tickets.back(), i % 5 ? "closed" : "open"});
    }
    pj::router<ticket_status<1>, ticket_status<2>> router(storage);
    router.switch_to<ticket_status<1>>();
    router.rollout<ticket_status<2>>(0);  // a candidate that gets no traffic: shadow reads only
    pj::router<ticket_status<1>, ticket_status<2>> sampled(storage, {.shadow_sampling = 100});  // the same state

    const auto lookup = [&]<class P>(std::type_identity<P>, std::size_t i) -> std::optional<std::string> {
        const auto& table = [&]() -> const auto& {
            if constexpr (P::version == 1)
                return v1;
            else
                return v2;
        }
        ();
        const auto row = table.find(tickets[i]);
        return row ? std::optional<std::string>(row->status) : std::nullopt;
    };

    std::size_t answers = 0;
    std::vector<side> sides{
        {"direct", [] {},
         [&] {
             std::size_t n = 0;
             for (std::size_t q = 0; q < queries; ++q)
                 n += lookup(std::type_identity<ticket_status<1>>{}, q % rows) ? 1 : 0;
             keep(n);
             answers = n;
         }},
        {"routed", [] {},
         [&] {
             std::size_t n = 0;
             for (std::size_t q = 0; q < queries; ++q) {
                 const std::size_t i = q % rows;
                 n += router.query(users[i], [&](auto version) { return lookup(version, i); }) ? 1 : 0;
             }
             keep(n);
         }},
        {"shadow", [] {},
         [&] {
             std::size_t n = 0;
             for (std::size_t q = 0; q < queries; ++q) {
                 const std::size_t i = q % rows;
                 n += router.shadow_query(users[i], [&](auto version) { return lookup(version, i); }) ? 1 : 0;
             }
             keep(n);
         }},
        {"shadow1", [] {},
         [&] {
             std::size_t n = 0;
             for (std::size_t q = 0; q < queries; ++q) {
                 const std::size_t i = q % rows;
                 n += sampled.shadow_query(users[i], [&](auto version) { return lookup(version, i); }) ? 1 : 0;
             }
             keep(n);
         }},
    };
    const auto s = measure_interleaved(sides, measure);
    const double per_query = 1e9 / static_cast<double>(queries);
    const double direct = s[0].median() * per_query;
    const double routed = s[1].median() * per_query;
    const double shadow = s[2].median() * per_query;
    const double shadow1 = s[3].median() * per_query;
    const auto stats = router.shadow_stats();
    const auto stats1 = sampled.shadow_stats();
    const auto qps = [](double ns) { return 1e9 / ns; };

    comparison a{"7a. routing: router.query / direct lookup (time)",
                 routed / direct,
                 "(measured)",
                 false,
                 fmt::format("direct {:.1f} ns/query, routed {:.1f}", direct, routed),
                 {{"direct_ns_per_query", direct},
                  {"routed_ns_per_query", routed},
                  {"queries", static_cast<double>(queries)},
                  {"rows_per_version", static_cast<double>(rows)}}};
    a.informational = true;
    comparison b{
        "7b. shadow reads: shadow_query / router.query (time)",
        shadow / routed,
        "(measured)",
        false,
        fmt::format("routed {:.1f} ns/query ({:.2f} M/s), shadow at 100% {:.1f} (+{:.1f}, {:.2f} M/s); "
                    "{} discrepancies",
                    routed, qps(routed) / 1e6, shadow, shadow - routed, qps(shadow) / 1e6, stats.discrepancies),
        {{"shadow_ns_per_query", shadow},
         {"added_ns_per_query", shadow - routed},
         {"discrepancies", static_cast<double>(stats.discrepancies)},
         {"routed_queries_per_second", qps(routed)},
         {"shadow_queries_per_second", qps(shadow)},
         {"answers", static_cast<double>(answers)}}};
    b.informational = true;
    const double share = stats1.queries == 0 ? 0 : double(stats1.compared) / double(stats1.queries);
    comparison c{"7c. shadow reads sampled at 1%: shadow_query / router.query (time)",
                 shadow1 / routed,
                 "(measured)",
                 false,
                 fmt::format("routed {:.1f} ns/query ({:.2f} M/s), shadow at 1% {:.1f} (+{:.1f}, {:.2f} M/s); "
                             "{:.2f}% of calls compared",
                             routed, qps(routed) / 1e6, shadow1, shadow1 - routed, qps(shadow1) / 1e6, share * 100),
                 {{"shadow_1pct_ns_per_query", shadow1},
                  {"added_ns_per_query", shadow1 - routed},
                  {"shadow_1pct_queries_per_second", qps(shadow1)},
                  {"compared_share", share}}};
    c.informational = true;
    out.push_back(std::move(a));
    out.push_back(std::move(b));
    out.push_back(std::move(c));
}

}  // namespace bench
