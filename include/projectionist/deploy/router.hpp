#pragma once

/// The query router: a query dispatcher behind a feature toggle, for the versions of
/// one projection.
///
///     pj::router<tickets<1>, tickets<2>> router(storage);          // any storage with settings
///     router.rollout<tickets<2>>(10);                              // 10% of users see v2
///     router.prefer_candidate_when([](std::string_view user) { return user.starts_with("internal-"); });
///     auto row = router.query(user_id, [&]<class P>(std::type_identity<P>) {
///         return find_ticket<P>(storage, ticket_id);               // reads table "tickets_v<N>"
///     });
///     router.switch_to<tickets<2>>();                              // everyone; persisted at once
///     router.rollback();                                           // everyone back on v1
///
/// **Queries.** v1 and v2 may have different row types, so a query is a generic callable that is
/// invoked once with `std::type_identity<P>` of the version chosen for its routing key. It must
/// be callable for every version and return the same type for each (both are static_asserts).
/// `route(key)` tells which versioned name a key is routed to.
///
/// **Routing state.** A primary version serves every key by default. An optional candidate gets
/// (a) every key whose bucket is below the rollout share, and (b) every key the predicate
/// registered with `prefer_candidate_when` accepts, whatever the share (internal users first;
/// a rollout of 0% plus a predicate is the "internal users only" stage). Without a candidate the
/// predicate does nothing.
///
/// **Stable buckets.** A key's bucket is `fmix64(fnv1a_64(key)) % 10000`, so the share has a
/// resolution of one basis point (0.01%): the same key lands in the same bucket in every process,
/// run and platform (the values are tested). Raising the share only adds keys: a user who saw
/// the candidate at 10% still sees it at 30%. The bucket depends on the key only, not on the
/// projection: at equal shares the same users see the new versions of all projections together,
/// which keeps related read models consistent for a user (use different keys to decorrelate).
/// The FNV-1a low bits depend only on the low bits of the input bytes, hence the fmix64 step.
///
/// **Operations** (each persisted before it takes effect; each starts from the persisted state,
/// so a router whose snapshot is stale does not undo what another process changed):
///   - `switch_to<P>()` / `switch_to(name)`: all traffic to P. P becomes primary (the old primary
///     is remembered as the version to roll back to), the candidate is cleared. Switching to the
///     current primary only clears the candidate.
///   - `rollout<P>(percent)` / `rollout(name, percent)` (0 to 100), or `rollout_basis_points`
///     (0 to 10000): P becomes the candidate with that share. P must not be the primary.
///   - `rollback()`: undoes the most recent kind of change: cancels the candidate if there is
///     one, otherwise puts the previous primary back (and forgets it, so a second rollback does
///     not flip forward again: it throws `state_error`, as does a rollback with nothing to undo).
///   - `refresh()`: re-reads the persisted state (the command line, or another router object,
///     may have changed it). Call it periodically in long-running processes.
/// Names typed by a user are looked up among this router's versions; an unknown name throws
/// `projectionist::error` listing the valid ones.
///
/// **Persisted format.** `save_setting("projectionist.router.<base_name>", value)` with one line
/// of space-separated `key=value` pairs, readable in `sqlite3 app.db "select * from
/// projectionist_settings"`:
///
///     format=1 primary=tickets_v2 candidate=tickets_v3 basis_points=1000 previous=tickets_v1
///
/// `format` comes first; `candidate` (with `basis_points`) and `previous` are optional. Anything
/// else (an unknown key, a name this router does not know, a share above 10000, a newer format)
/// is an error that quotes the key and the value and says how to repair it; it is never ignored.
/// No saved value means the first version is primary. The predicate is code: not persisted.
///
/// **Threads and in-flight queries.** The routing state is an immutable snapshot: a
/// `std::shared_ptr<const state>` copied under a mutex held only for the copy (not
/// `std::atomic<std::shared_ptr>`, see `current_state`). A query takes one snapshot, decides, and
/// runs to the end on that version: a flip during a query never moves it, and flips never wait
/// for queries. Each version counts the queries running on it (`in_flight`), and
/// `wait_for_drain(name, timeout)` waits until a version that no longer receives traffic has
/// finished its last query: call it after `switch_to` and before removing the old version's
/// tables. (A query increments the counter, then checks that no flip was published meanwhile,
/// and re-decides if one was; so once a flip is published and the counter reads zero, no query
/// can still start on the old version.) State changes are serialized by a mutex; the settings
/// object is used only in the constructor and in state changes, under that mutex. The router
/// holds a reference to the settings object, which must outlive it.
///
/// **Shadow reads.** `shadow_query(key, fn, compare)` runs fn on the version that serves the key
/// and, when there is a candidate and the call is sampled (`router_options::shadow_sampling`,
/// every call by default; see router/shadow.hpp), also on the other one, with the same snapshot;
/// it returns the serving version's answer. With the usual shadowing setup (a candidate at 0%), that is the
/// primary's answer; keys already rolled out keep getting the candidate's answer, as with
/// `query`, so turning shadow reads on never changes what a user sees. When `compare(primary
/// answer, candidate answer)` is false (and stays false when both versions are read again a
/// moment later, `router_options::shadow_rereads`: two versions apply a new event at different
/// moments), or when the shadow run (or the comparison) throws, a `discrepancy` is recorded (key, both names, both
/// answers formatted, the error) in a list that keeps the last `router_options::max_discrepancies`, and counted in
/// `shadow_stats()`. An exception in the shadow run never reaches the caller; one in the serving run does, as with
/// `query`. Answers are spelled by the library's one value text (detail/value_text.hpp): strings
/// quoted, an empty optional as "(none)", pairs, ranges (at most 16 elements), time points
/// (ISO-8601 UTC) and Hana-reflected structs (`{ticket_id: "t-1", status: "open"}`) spelled out
/// whether or not fmt could format them, other types with fmt, anything else "(unformattable)".
///
/// The parts, one job each, under deploy/router/: `bucket.hpp` (the stable bucket of a key),
/// `state.hpp` (the routing state, its persisted text, the status a router reports),
/// `shadow.hpp` (discrepancies and counters of shadow reads) and `routing.hpp` (the router:
/// routing, toggles, in-flight counting). This header includes them all.

#include <projectionist/deploy/router/bucket.hpp>
#include <projectionist/deploy/router/routing.hpp>
#include <projectionist/deploy/router/shadow.hpp>
#include <projectionist/deploy/router/state.hpp>
