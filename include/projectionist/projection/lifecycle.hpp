#pragma once

namespace projectionist::detail {

/// Optional lifecycle members of a projection, found at compile time. Each runs inside the
/// same transaction as the storage's own work for that step, after the declared tables were
/// created (init), before they are emptied (reset) or dropped (remove).
template <class P, class Ctx>
concept has_init_hook = requires(P& p, Ctx& ctx) {
    p.init(ctx);
};
template <class P, class Ctx>
concept has_reset_hook = requires(P& p, Ctx& ctx) {
    p.reset(ctx);
};
template <class P, class Ctx>
concept has_remove_hook = requires(P& p, Ctx& ctx) {
    p.remove(ctx);
};

}  // namespace projectionist::detail
