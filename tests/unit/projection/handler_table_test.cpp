// The compile-time handler table: which (stream, event) pairs a projection handles, found
// from its on(...) overloads, and the lifecycle hooks it declares.

#include <catch2/catch.hpp>

#include <string>
#include <type_traits>
#include <vector>

#include <boost/hana/define_struct.hpp>
#include <boost/mp11/list.hpp>

#include <projectionist/projectionist.hpp>
#include <tickets_domain.hpp>

namespace handler_table_test {

namespace pj = projectionist;
using namespace tickets_domain;
using boost::mp11::mp_list;

// tickets<1> ignores reopening; tickets<2> handles it (a requires-clause on the version).
static_assert(pj::handler_table<tickets<1>>::size == 2);
static_assert(pj::handler_table<tickets<2>>::size == 3);
static_assert(std::is_same_v<pj::handler_table<tickets<1>>::events, mp_list<ticket_registered, ticket_closed>>);
static_assert(pj::handler_table<tickets<2>>::handles<ticket_reopened>);
static_assert(!pj::handler_table<tickets<1>>::handles<ticket_reopened>);
static_assert(std::is_same_v<pj::handler_table<tickets<1>>::missing,
                             mp_list<pj::detail::subscription<ticket_stream, ticket_reopened>>>);
static_assert(boost::mp11::mp_empty<pj::handler_table<tickets<2>>::missing>::value);
static_assert(!pj::handler_table<tickets<1>>::has_foreign_handler);
// handler_table<P, Policies...> is the table the runner with those policies dispatches on.
static_assert(std::is_same_v<pj::handler_table<tickets<2>>, pj::runner<tickets<2>>::handler_table>);
static_assert(std::is_same_v<pj::handler_table<tickets<2>, pj::emit_always, pj::per_aggregate>,
                             pj::runner<tickets<2>, pj::per_aggregate, pj::emit_always>::handler_table>);

// A handler that takes the envelope too is found, and called with it.
struct audit : pj::projection<"audit", 1, ticket_stream> {
    std::vector<std::uint64_t> seen;
    void on(const ticket_registered&, const pj::envelope& env, auto&) { seen.push_back(env.position); }
};
static_assert(pj::handler_table<audit>::size == 1);
static_assert(pj::handler_table<audit>::handles<ticket_registered>);

// Two streams: dispatch entries keep (stream, event) pairs in stream order.
struct comment_added {
    BOOST_HANA_DEFINE_STRUCT(comment_added, (std::string, ticket_id), (std::string, text));
    static constexpr std::string_view event_name = "comment.added";
};
using comment_stream = pj::stream<"comment", comment_added>;
struct activity : pj::projection<"activity", 1, ticket_stream, comment_stream> {
    void on(const comment_added&, auto&) {}
    void on(const ticket_closed&, auto&) {}
};
static_assert(std::is_same_v<pj::handler_table<activity>::entries,
                             mp_list<pj::detail::subscription<ticket_stream, ticket_closed>,
                                     pj::detail::subscription<comment_stream, comment_added>>>);

// A handler for an event outside the projection's streams is detected (the runner turns this
// into a compile error; see tests/compile_fail). One and several foreign handlers alike.
struct unrelated {
    BOOST_HANA_DEFINE_STRUCT(unrelated, (int, x));
    static constexpr std::string_view event_name = "unrelated.happened";
};
struct another_unrelated {
    BOOST_HANA_DEFINE_STRUCT(another_unrelated, (int, y));
    static constexpr std::string_view event_name = "unrelated.again";
};
struct one_foreign : pj::projection<"one_foreign", 1, ticket_stream> {
    void on(const ticket_closed&, auto&) {}
    void on(const unrelated&, auto&) {}
};
struct two_foreign : pj::projection<"two_foreign", 1, ticket_stream> {
    void on(const ticket_closed&, auto&) {}
    void on(const unrelated&, auto&) {}
    void on(const another_unrelated&, const pj::envelope&, auto&) {}
};
struct foreign_with_envelope : pj::projection<"foreign_env", 1, ticket_stream> {
    void on(const unrelated&, const pj::envelope&, auto&) {}
};
struct no_handlers : pj::projection<"no_handlers", 1, ticket_stream> {};
static_assert(pj::handler_table<one_foreign>::has_foreign_handler);
static_assert(pj::handler_table<two_foreign>::has_foreign_handler);
static_assert(pj::handler_table<foreign_with_envelope>::has_foreign_handler);
static_assert(!pj::handler_table<no_handlers>::has_foreign_handler);
static_assert(pj::handler_table<no_handlers>::size == 0);
static_assert(!pj::handler_table<audit>::has_foreign_handler);
// A handler for a stream event that takes the event by value is still a handler.
struct by_value : pj::projection<"by_value", 1, ticket_stream> {
    void on(ticket_closed, auto&) {}
};
static_assert(pj::handler_table<by_value>::handles<ticket_closed>);
static_assert(!pj::handler_table<by_value>::has_foreign_handler);

// ---- lifecycle hooks ------------------------------------------------------------------------
struct with_hooks : pj::projection<"with_hooks", 1, ticket_stream> {
    void init(auto&) {}
    void reset(auto&) {}
    void remove(auto&) {}
};
using hooks_ctx = pj::handler_context<with_hooks, pj::memory_storage, pj::emit_always>;
using plain_ctx = pj::handler_context<tickets<1>, pj::memory_storage, pj::emit_always>;
static_assert(pj::detail::has_init_hook<with_hooks, hooks_ctx>);
static_assert(pj::detail::has_reset_hook<with_hooks, hooks_ctx>);
static_assert(pj::detail::has_remove_hook<with_hooks, hooks_ctx>);
static_assert(!pj::detail::has_init_hook<tickets<1>, plain_ctx>);
static_assert(!pj::detail::has_reset_hook<tickets<1>, plain_ctx>);
static_assert(!pj::detail::has_remove_hook<tickets<1>, plain_ctx>);

// ---- no runtime dispatch in the pieces on the event path -------------------------------------
static_assert(!std::is_polymorphic_v<plain_ctx>);
static_assert(!std::is_polymorphic_v<pj::memory_table<tickets<1>::table>>);
static_assert(!std::is_polymorphic_v<pj::runner<tickets<2>, pj::per_aggregate>>);

TEST_CASE("invoke_handler passes the envelope to handlers that take it", "[projection]") {
    audit p;
    pj::memory_storage storage;
    auto session = storage.open("audit_v1");
    using audit_ctx = pj::handler_context<audit, pj::memory_storage, pj::emit_always>;
    std::vector<audit_ctx::pending_event> pending;
    pj::detail::emission_counters counters;
    audit_ctx ctx(session, pending, counters);
    pj::envelope env;
    env.position = 42;
    ctx.set_record(&env, env);  // the record being applied, with its envelope
    pj::detail::invoke_handler(p, ticket_registered{"t-1", "bug"}, ctx);
    REQUIRE(p.seen.size() == 1);
    CHECK(p.seen[0] == 42);
}

TEST_CASE("the handler context names the projection", "[projection]") {
    STATIC_REQUIRE(plain_ctx::name() == "tickets_v1");
    CHECK(std::string(hooks_ctx::name()) == "with_hooks_v1");
}

// A catch-all handler is allowed: it handles every event of the streams, and is not mistaken
// for a handler of a foreign event.
struct catch_all : pj::projection<"catch_all", 1, ticket_stream> {
    template <class E>
    void on(const E&, auto&) {}
};
static_assert(!pj::handler_table<catch_all>::has_foreign_handler);
static_assert(pj::handler_table<catch_all>::size == 3);

}  // namespace handler_table_test
