// clang-format off
// expect-error: error: static.assert(ion)? failed.*projectionist: runner<Projection, Policies\.\.\.>: this type is not a runner policy
// expect-error(GNU): In instantiation of .consteval bool projectionist::detail::require_policy\(\) \[with T = projectionist::runner_options\]
// expect-error(Clang): note: in instantiation of function template specialization .projectionist::detail::require_policy<projectionist::runner_options>. requested here
// expect-error: /runner_policy_not_a_policy\.fail\.cpp:[0-9]+:[0-9]+: +(required from here|note: in instantiation of)
// clang-format on
//
// runner_options (the runner's tuning, a constructor argument) given as a policy.
#include <string>
#include <string_view>

#include <boost/hana/define_struct.hpp>

#include <projectionist/projectionist.hpp>

namespace app {

struct ticket_registered {
    BOOST_HANA_DEFINE_STRUCT(ticket_registered, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.registered";
};
struct ticket_closed {
    BOOST_HANA_DEFINE_STRUCT(ticket_closed, (std::string, ticket_id));
    static constexpr std::string_view event_name = "ticket.closed";
};
using ticket_stream = projectionist::stream<"ticket", ticket_registered, ticket_closed>;

struct ticket_row {
    BOOST_HANA_DEFINE_STRUCT(ticket_row, (std::string, ticket_id), (std::string, status));
};

struct tickets : projectionist::projection<"tickets", 1, ticket_stream> {
    using table = projectionist::table<ticket_row, &ticket_row::ticket_id>;
    void on(const ticket_registered& e, auto& ctx) { ctx.table().insert({e.ticket_id, "open"}); }
    void on(const ticket_closed& e, auto& ctx) {
        ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
    }
};

}  // namespace app

void run(projectionist::memory_event_store& store, projectionist::memory_storage& storage) {
    projectionist::runner<app::tickets, projectionist::memory_storage, projectionist::runner_options> runner(store,
                                                                                                             storage);
    runner.catch_up();
}
