#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <fmt/format.h>
#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>

#include <projectionist/detail/seqlock.hpp>
#include <projectionist/error.hpp>
#include <projectionist/event/envelope.hpp>
#include <projectionist/meta/with_index.hpp>
#include <projectionist/policy/policies.hpp>
#include <projectionist/projection/context.hpp>
#include <projectionist/projection/fingerprint.hpp>
#include <projectionist/projection/handler_table.hpp>
#include <projectionist/projection/lifecycle.hpp>
#include <projectionist/projection/projection.hpp>
#include <projectionist/projection/retention.hpp>
#include <projectionist/runner/bulk_passes.hpp>
#include <projectionist/runner/failure.hpp>
#include <projectionist/runner/options.hpp>
#include <projectionist/runner/status.hpp>
#include <projectionist/storage/abilities.hpp>
#include <projectionist/storage/bulk_table.hpp>
#include <projectionist/storage/catalog.hpp>
#include <projectionist/storage/concepts.hpp>
#include <projectionist/storage/emission_window.hpp>
#include <projectionist/store/aggregate_numbers.hpp>
#include <projectionist/store/concepts.hpp>
#include <projectionist/store/event_type.hpp>
#include <projectionist/store/expected_version.hpp>
#include <projectionist/store/partition.hpp>

namespace projectionist {

namespace detail {

template <class T>
decltype(auto) deref(T&& item) noexcept {
    if constexpr (std::is_pointer_v<std::remove_cvref_t<T>>)
        return *item;
    else
        return std::forward<T>(item);
}

/// A projection opts out of bulk backfills (its handlers are then compiled for batch mode only)
/// with `static constexpr bool bulk_backfill = false;`: for handlers that call members of one
/// backend's table handles that a bulk backfill's in-memory rows do not have.
template <class Projection>
inline constexpr bool allows_bulk_backfill = [] {
    if constexpr (requires { Projection::bulk_backfill; })
        return static_cast<bool>(Projection::bulk_backfill);
    else
        return true;
}();

/// The backend contract, checked where the runner takes its storage and event store: one message
/// per missing member (storage/concepts.hpp, store/concepts.hpp).
template <class Storage, class Tables>
struct storage_checked;
template <class Storage, class... Tables>
struct storage_checked<Storage, boost::mp11::mp_list<Tables...>> {
    static constexpr bool value = require_storage<Storage, Tables...>();
};
template <class Store, class Streams>
struct event_store_checked;
template <class Store, class... Streams>
struct event_store_checked<Store, boost::mp11::mp_list<Streams...>> {
    static constexpr bool value = require_event_store<Store, Streams...>();
};

template <class Projection>
consteval bool require_projection() {
    static_assert(projection_type<Projection>,
                  "projectionist: runner<Projection, Policies...>: Projection must derive from "
                  "projectionist::projection<Name, Version, Streams...>");
    return true;
}

template <class P, class Tables>
struct table_names_fit;
template <class P, class... Tables>
struct table_names_fit<P, boost::mp11::mp_list<Tables...>> {
    static constexpr bool value = (require_table_name_fits<P, Tables>() && ...);
};

}  // namespace detail

/// Compiles a runner in one translation unit instead of every one that uses it: the standard
/// `extern template`, spelled once for a runner's template arguments. In a header that the
/// runner's users include:
///
///     PROJECTIONIST_EXTERN_RUNNER(tickets<2>, projectionist::sqlite_storage, projectionist::per_aggregate);
///
/// and in exactly one .cpp file (which includes that header):
///
///     PROJECTIONIST_INSTANTIATE_RUNNER(tickets<2>, projectionist::sqlite_storage, projectionist::per_aggregate);
///
/// The users' translation units then compile no runner code beyond a few inline accessors: the
/// event pass, the batch transaction and the operations are compiled in that one file. Use the
/// same arguments, in the same order, in both places and where the runner is named.
#define PROJECTIONIST_EXTERN_RUNNER(...) extern template class ::projectionist::runner<__VA_ARGS__>
/// The explicit instantiation that goes with PROJECTIONIST_EXTERN_RUNNER, in one .cpp file.
#define PROJECTIONIST_INSTANTIATE_RUNNER(...) template class ::projectionist::runner<__VA_ARGS__>

/// Runs one projection version over an event store into a storage, as its policies say.
///
///     namespace pj = projectionist;
///     pj::memory_event_store store;
///     pj::memory_storage storage;
///     pj::runner<tickets<2>, pj::per_aggregate, pj::manual_kickoff> v2(store, storage);
///     v2.init();
///     v2.backfill();  // replays the history; v1 keeps serving meanwhile
///
/// Policies (any order, each optional, each at most once):
///   - a storage: memory_storage (the default), sqlite_storage, postgres_storage, or any type
///     that models the `storage` concept (docs/backends.md);
///   - an event store: by default the one the storage declares as its own;
///   - partitioning: global (the default) or per_aggregate;
///   - emission: emit_when_live (the default), emit_always or no_emission;
///   - kick-off: auto_kickoff (the default) or manual_kickoff;
///   - failure handling: stop_on_error (the default) or skip_to_dead_letter.
///
/// The event path has no virtual call, std::function or map keyed by type: a record's interned
/// type id indexes a small array built once, and one `switch` over that index (`with_index`)
/// calls the handler overload, inlined in its case. One runner is driven by one thread;
/// `status()` may be called from any thread.
///
/// The class declares the runner's parts; their definitions are in operations.hpp (the public
/// operations), catalog_sync.hpp (the catalog, tables and life cycle), batch.hpp (the batch
/// transaction and its failures) and event_pass.hpp (the per-event work).
template <class Projection, class... Policies>
class runner {
    static_assert(detail::require_projection<Projection>());
    using config = detail::runner_config<Policies...>;
    static_assert(config::valid);
    static_assert(detail::storage_checked<typename config::storage, detail::tables_of<Projection>>::value);
    static_assert(detail::event_store_checked<typename config::event_store, typename Projection::streams>::value);

public:
    using projection_type = Projection;
    using storage_type = typename config::storage;
    using event_store_type = typename config::event_store;
    using partitioning = typename config::partitioning;
    using emission = typename config::emission;
    using kickoff = typename config::kickoff;
    using failure = typename config::failure;
    using context_type = handler_context<Projection, storage_type, emission>;
    using handler_table = basic_handler_table<Projection, context_type>;

    static_assert(detail::check_handlers<Projection, context_type>());
    static_assert(detail::table_names_fit<Projection, detail::tables_of<Projection>>::value);
    static_assert(
        detail::declared_retention<Projection>().empty() || detail::is_day(detail::declared_retention<Projection>()),
        "projectionist: a projection's retain_until must be a day written \"YYYY-MM-DD\", e.g. \"2027-01-31\"");

    /// The fingerprint of this version's definition (projection/fingerprint.hpp): its handled
    /// events, partitioning, tables, keys, columns, column types and revision. `init` records it;
    /// an initialized version whose recorded fingerprint differs is refused (see
    /// `require_same_definition`).
    static constexpr std::uint64_t fingerprint =
        fingerprint_of<Projection, typename handler_table::entries, partitioning>;
    /// The text the fingerprint hashes, one fact per line.
    [[nodiscard]] static std::string definition() {
        return definition_of<Projection, typename handler_table::entries, partitioning>();
    }

    runner(event_store_type& store, storage_type& storage, runner_options options = {})
        : runner(store, storage, Projection{}, options) {}

    runner(event_store_type& store, storage_type& storage, Projection projection, runner_options options = {});

    runner(const runner&) = delete;
    runner& operator=(const runner&) = delete;

    /// Creates the projection's tables (if missing) and its catalog row, and runs its `init`
    /// member if it has one. Ends a manual projection's dormancy. Idempotent. A deleted version is
    /// re-created only by an explicit init, which says so in its result.
    init_result init();

    /// Replays history: from the checkpoint (0 for a new projection) to the head as of this
    /// call, in batches. Returns the number of events applied. A manual projection must be
    /// initialized first. `options` overrides the runner's memory budget and backfill mode for
    /// this call only.
    std::uint64_t backfill(const backfill_options& options = {});

    /// Applies every event up to the current head. With manual kick-off and no init yet, does
    /// nothing and says so in status(); with auto kick-off, initializes first if needed.
    std::uint64_t catch_up();

    /// Catches up, then follows new events until `stop` is requested or the projection fails
    /// (the error is then in status()). Waits `poll_interval` between looks when idle; a dormant
    /// projection (manual kick-off, no init yet) only looks again every `poll_interval`.
    void run(std::stop_token stop);

    /// Empties the projection's tables and checkpoint (running its `reset` member if it has
    /// one) so that it replays from the start. The live flag is cleared too: a replay must not
    /// re-emit history; make it live again once it has caught up. Refused (state_error) while
    /// the version still owes downstream the source positions of a hand-over
    /// (storage/emission_window.hpp): the replay would not emit them; let it catch up first.
    void reset();

    /// Drops the tables the catalog lists as this version's own (running its `remove` member
    /// first, if it has one) and its checkpoint, and leaves a tombstone in the catalog (state
    /// deleted, when, by which command) so that every process sees it deleted; the router's saved
    /// setting forgets it in the same transaction. Refused (state_error) before the version's
    /// retention date unless `options.force`, and while the router's setting sends it queries.
    void remove(remove_options options = {});

    /// Keeps the version until `date` ("YYYY-MM-DD", UTC): a delete before that day is refused
    /// unless forced (remove_options::force). Persisted in the catalog; "" clears it. A projection
    /// may also declare `static constexpr std::string_view retain_until = "2027-01-31";`, which
    /// init records. Throws `error` for a malformed date, state_error before init.
    void retain_until(std::string_view date);

    /// Lets emitted events through (with emit_when_live). Persisted in the catalog. With a storage
    /// that can hand emission over (`hands_over_emission`), the versions of the projection that
    /// were live stop being live in the same transaction, and a hand-over position p is recorded:
    /// they emit for the source positions up to p, this version only after p, so that downstream
    /// hears each position once whichever version lags, even from another process that has not
    /// seen the switch yet (storage/emission_window.hpp). Refused (state_error) while this version
    /// still owes the positions of an earlier hand-over away from it.
    void make_live() { set_live(true); }

    /// Sets the live flag: with emit_when_live, emitted events pass only while it is set.
    /// Persisted in the catalog, so a command-line process can flip it for the application.
    /// Clearing it ends this version's share of emission at its committed position.
    void set_live(bool live);

    /// Whether making this version live hands emission over as `make_live` says: a storage with
    /// the ability (has_emission_handoff), emit_when_live and a stream to emit to.
    static constexpr bool hands_over_emission = has_emission_handoff<storage_type> &&
                                                std::is_same_v<emission, emit_when_live> &&
                                                !std::is_void_v<typename Projection::emission_stream>;

    /// The source positions this version emits for, as this runner last read them; none when it
    /// was never live since its init or reset (then the live flag alone decides).
    [[nodiscard]] const std::optional<emission_window>& emission_share() const noexcept { return window_; }

    /// Takes in what other processes changed in the catalog (state, live flag, reset, delete).
    void refresh();

    /// The version's state, as this runner last saw it in the catalog.
    [[nodiscard]] projection_state state() const noexcept { return state_; }

    /// Records that the version now serves queries, or no longer does (`serving`, `retired`), or
    /// is back to following without serving (`caught_up`, `live`). The deployment decides when;
    /// the runner only persists it. Throws state_error for any other state or before init.
    void mark(projection_state s);

    /// Marks the version serving and every other version of the projection that serves in the
    /// catalog retired, in one write (a storage with has_serving_switch): exactly one version
    /// serves afterwards, or nothing changed. Throws state_error, nothing changed, before init,
    /// when the version was defined differently, or when the catalog says it has not caught up
    /// (another process reset it, say). Other runners of the projection see the change on their
    /// next refresh().
    void serve_exclusively();

    /// Throws state_error if the version was initialized with another definition than this
    /// code's ("tickets_v2 changed since it was initialized: column 'reopened' is new; deploy it
    /// as tickets_v3, or reset tickets_v2 to rebuild it"). Backfill, catch-up, run, init, live
    /// and serving call it; reset rebuilds the version with this code's definition.
    void require_same_definition() const {
        if (changed_) throw state_error(*changed_);
    }

    /// Clears a stopped projection's error so that the next catch-up retries from the last
    /// committed position (after the cause, e.g. a bug in a handler, was fixed).
    void resume() {
        error_.reset();
        connection_lost_ = false;
        reconnect_note_.clear();
        publish_status();
    }

    /// Whether this runner stopped because the connection to its database was lost (the server
    /// restarted, its backend was terminated): `reconnect()` may then bring it back.
    [[nodiscard]] bool connection_lost() const noexcept { return error_.has_value() && connection_lost_; }

    /// One attempt to go on after a lost connection: reads the catalog and the committed
    /// checkpoint again over the session's connection and the store's head over the store's
    /// (each opened anew on its first statement), then clears the stop. Returns false, still
    /// stopped with the new cause in status(), while the database cannot be reached; another
    /// failure stops the runner as a batch's would (projection_error). `run` calls it with the
    /// backoff of runner_options::reconnect.
    bool reconnect();

    /// After `cause` (thrown by an operation of this runner): if the connection to the database
    /// was lost, reconnects with the backoff of runner_options::reconnect, calling
    /// `report(detail::reconnect_attempt)` before each attempt and giving up when `should_stop()`
    /// says so. Returns whether the runner goes on; if not, status() holds why it stopped.
    template <class Report, class ShouldStop>
    bool recover(const error& cause, Report&& report, ShouldStop&& should_stop);

    [[nodiscard]] runner_status status() const;

    /// Per-aggregate: the last applied version of an aggregate, 0 if none.
    template <stream_type Stream>
    [[nodiscard]] std::uint64_t aggregate_position(Stream s, std::string_view aggregate_id) const {
        static_assert(partitioning::partitioned,
                      "projectionist: runner::aggregate_position: only per_aggregate runners keep a position per "
                      "aggregate");
        auto number = store_->aggregate_number(s, aggregate_id);
        return number ? checkpoint_->version_of(*number) : 0;
    }

    [[nodiscard]] std::uint64_t position() const noexcept { return checkpoint_->position; }

    /// The events this projection skipped (skip_to_dead_letter), oldest first, with reasons.
    [[nodiscard]] std::vector<dead_letter> dead_letters() const { return session_.dead_letters(); }
    [[nodiscard]] Projection& projection() noexcept { return projection_; }
    [[nodiscard]] typename storage_type::session& session() noexcept { return session_; }
    /// The partition of the aggregates this runner applies (every aggregate unless sliced).
    [[nodiscard]] const partition_slice& slice() const noexcept { return options_.slice; }

private:
    using entries = typename handler_table::entries;
    static constexpr std::size_t entry_count = handler_table::size;
    // A record's slot: its handler table entry, or one of three more cases right after the
    // entries, so that one switch over [0, slot_count) covers every record.
    static constexpr std::uint16_t subscribed_unhandled = entry_count;   // ours, no handler: tracked, not applied
    static constexpr std::uint16_t not_subscribed = entry_count + 1;     // another stream's event: ignored
    static constexpr std::uint16_t unknown_in_stream = entry_count + 2;  // a stream we read, an event it does not list
    static constexpr std::size_t slot_count = entry_count + 3;
    static_assert(slot_count <= 0xFFFF, "projectionist: too many handled events in one projection");

    /// Every (stream, event) pair the projection reads, with its handler table entry or
    /// subscribed_unhandled: the table the store's type names are matched against.
    struct type_key {
        std::string_view stream;
        std::string_view name;
        const void* identity;
        std::uint16_t entry;
    };
    template <class Sub>
    static constexpr std::uint16_t entry_of() {
        constexpr std::size_t i = boost::mp11::mp_find<entries, Sub>::value;
        return i < entry_count ? static_cast<std::uint16_t>(i) : subscribed_unhandled;
    }
    template <class... Subs>
    static constexpr auto make_subscription_keys(boost::mp11::mp_list<Subs...>) {
        return std::array<type_key, sizeof...(Subs)>{type_key{Subs::stream::name, event_name_of<typename Subs::event>,
                                                              detail::type_identity<typename Subs::event>(),
                                                              entry_of<Subs>()}...};
    }
    static constexpr auto subscription_keys = make_subscription_keys(detail::subscriptions_of<Projection>{});
    template <class... Streams>
    static constexpr auto make_stream_names(boost::mp11::mp_list<Streams...>) {
        return std::array<std::string_view, sizeof...(Streams)>{Streams::name...};
    }
    static constexpr auto stream_names = make_stream_names(typename Projection::streams{});

    using record_type =
        std::remove_cvref_t<decltype(detail::deref(*std::declval<typename event_store_type::batch&>().begin()))>;
    using pending_event = typename context_type::pending_event;
    /// SQL sessions read the committed checkpoint back after a rollback and write the positions of
    /// the aggregates a batch changed; memory sessions hand out the live object instead.
    static constexpr bool session_reloads_checkpoint = has_persisted_checkpoint<storage_type>;
    static constexpr bool has_emit_writer = has_transactional_emission<event_store_type, storage_type>;
    template <class Store, bool>
    struct emit_writer_of {
        using type = int;  // no writer: the member stays empty
    };
    template <class Store>
    struct emit_writer_of<Store, true> {
        using type = decltype(std::declval<const Store&>().writer_on(
            std::declval<typename storage_type::session&>().connection()));
    };

    [[nodiscard]] bool initialized() const noexcept {
        return state_ != projection_state::declared && state_ != projection_state::deleted;
    }

    static void sleep_for(std::chrono::milliseconds duration, std::stop_token stop);

    /// Takes in what another process (the command line, another instance) changed in the catalog:
    /// init, the live flag, reset (a new generation: reload the checkpoint), delete.

    // ---- the catalog, the tables and the life cycle: runner/catalog_sync.hpp -----------------

    /// Takes in what another process (the command line, another instance) changed in the catalog:
    /// init, the live flag, reset (a new generation: reload the checkpoint), delete.
    void sync_catalog();
    /// Per aggregate with skip_to_dead_letter: the aggregates parked by earlier failures.
    void load_parked();
    /// Auto kick-off initializes on first use; manual kick-off stays dormant until init.
    bool start_if_needed();
    void require_not_failed(std::string_view what) const;
    template <std::size_t... I>
    void create_tables_impl(std::index_sequence<I...>);
    void create_tables();
    /// At the init of a version that has no tables yet: refuses a table of its name that already
    /// holds rows (created by something else; a backfill would mix them into the read model).
    template <std::size_t... I>
    void require_no_foreign_rows_impl(std::index_sequence<I...>);
    void require_no_foreign_rows();
    template <std::size_t... I>
    void open_tables_impl(std::index_sequence<I...>);
    void open_tables();
    void bind_tables(const typename context_type::handle_tuple& handles);
    void clear_tables();
    catalog_entry make_catalog_entry(projection_state state, bool live) const;
    void set_state(projection_state s);
    /// Compares the catalog row's recorded definition with this code's (sets `changed_`).
    void check_definition(const catalog_entry& entry);
    /// Opens the transaction of init, reset or remove. A storage that buffers a batch's writes
    /// until commit sends these at once instead, so that a refused write fails in its hook.
    void begin_lifecycle();
    /// In init's transaction: whether another process initialized the version since this
    /// runner last looked at the catalog.
    [[nodiscard]] bool initialized_meanwhile() const;
    /// After a failed batch: why the version is gone, if another process deleted it.
    [[nodiscard]] std::optional<std::string> deleted_elsewhere() const;
    /// Drops the tables `entry` lists, refusing (before dropping any) a name that is not the
    /// version's own.
    void drop_recorded_tables(const catalog_entry& entry);
    /// The runner's session: the projection's, or with a slice, its partition's.
    static typename storage_type::session open_session(storage_type& storage, const runner_options& options);
    void save_catalog() { session_.save_catalog(make_catalog_entry(state_, live_)); }

    // ---- the hand-over of emission between versions: runner/emission_handoff.hpp -------------

    /// Reads this version's emission window from the storage (inside a batch: the batch's view).
    void load_window();
    /// Whether the handlers' emitted events are queued: live, or still owing a window.
    [[nodiscard]] bool may_emit() const noexcept;
    /// Drops the queued events whose source position is outside the version's window as the
    /// batch's transaction read it (a hand-over committed elsewhere before the batch began).
    void filter_emissions();
    /// set_live with the hand-over, in one transaction.
    void hand_over(bool live);
    /// Inside a reset's or remove's transaction: forgets this version's window.
    void forget_window();
    /// Refuses to remove or reset a version that still owes downstream events of a hand-over.
    void require_no_debt(std::string_view what) const;

    // ---- the batch transaction, its rollback strategies and failures: runner/batch.hpp -------

    std::uint64_t process_until(std::uint64_t target);
    /// Applies the batch in one transaction. With skip_to_dead_letter, a failing event is
    /// marked, the batch rolled back and replayed with that event (per aggregate: the rest of its
    /// aggregate) recorded as a dead letter instead: the happy path pays nothing for it, and the
    /// dead letters commit with the batch.
    std::uint64_t apply_batch();
    /// Brings the tables back to the committed state at `position` by replaying the log from the
    /// start into emptied tables (storages that do not journal, e.g. memory_storage's default),
    /// skipping the recorded dead letters. Emission is off and nothing is counted: this history
    /// was applied (and emitted) before. A handler that fails now, where it succeeded before, is
    /// not deterministic: the projection stops.
    void rebuild_to(std::uint64_t position, const record_type* failed, std::exception_ptr cause);
    void mark_failed(const record_type& rec, std::string reason);
    /// Reads the catalog, then throws state_error unless the version may be marked `s` (see mark).
    void require_markable(projection_state s);
    /// Records `rec` as a dead letter if it failed in an earlier attempt of this batch, or if its
    /// aggregate is parked (per aggregate); returns whether it did.
    bool dead_letter_if_marked(const record_type& rec);
    bool reads_type(const record_type& rec);
    dead_letter make_dead_letter(const record_type& rec, std::string reason, bool parked) const;
    /// Stops the runner with `cause` (at `rec`, when one event is at fault), counting it as
    /// `kind`, or as `detail::kind_of` reads the cause.
    [[noreturn]] void fail(const record_type* rec, std::exception_ptr cause,
                           std::optional<error_kind> kind = std::nullopt);
    /// Counts an error the runner goes on after (a conflict, a dead-lettered event, a lost lease).
    void count_error(error_kind kind) noexcept { errors_.add(kind); }
    /// Appends the batch's emitted events through `target` (the store, or a writer on the
    /// session's connection) and forgets them.
    template <class Target>
    void append_emitted(Target& target);
    struct batch_failure {
        std::uint64_t position;
        std::string reason;
    };

    // ---- one pass over records, the per-event work: runner/event_pass.hpp ---------------------

    // ---- one pass over records: the per-event work ---------------------------------------------
    //
    // A pass keeps what it needs in locals (the type map's bounds, the per-aggregate positions,
    // counters, a copy of the handler context), and each record is one lookup in the type map and
    // one switch over its slot, with the handler's body inlined in the case: the code of a
    // hand-written switch. What only failures and growth need stays out of the loop: a try block
    // around the whole pass records which record threw, a record that needs the type map or the
    // positions to grow leaves the inner loop, and the error paths are out-of-line functions.

    struct pass_totals {
        std::uint64_t applied = 0;  ///< events whose handler ran
        std::uint64_t skipped = 0;  ///< per aggregate: events applied before (duplicates)
        std::uint64_t dead = 0;     ///< events recorded as dead letters
    };

    struct pass_state;
    template <class Ctx>
    struct slot_visitor;
    /// Maps store type ids [known, count) to entries of the handler table, by stream and stored
    /// name (and C++ type, when the store knows it). Runs once per new type, never per event.
    void refresh_type_map();
    /// Applies the records [first, last). If one throws, `failed_` points at it. With
    /// `check_failures` (not on a rebuild's replay, which skips the recorded dead letters instead),
    /// skip_to_dead_letter records the batch's failed events and parked aggregates' events as dead
    /// letters instead of applying them.
    template <class It>
    pass_totals apply_records(It first, const It last, bool check_failures = true);
    /// Replays the records [first, last) except those at the sorted positions `dead`.
    template <class It>
    void replay_records(It first, const It last, const std::vector<std::uint64_t>& dead);
    /// The pass itself, with handlers given a copy of `context` (the runner's, or a bulk one).
    template <bool Journaled, bool Filtered, class It, class Ctx>
    pass_totals apply_records_as(It first, const It last, const Ctx& context);
    /// Where a pass records what it does besides the tables: the aggregates it moved (per
    /// aggregate, on a storage that persists them), the record that threw, the aggregates it
    /// applied for the first time. The runner's own members, or a bulk apply thread's. A bulk
    /// pass marks the aggregates it moved in `marks` (a bit per aggregate number) instead of
    /// listing them in `changed`: listed at its flush, each once.
    struct pass_outputs {
        std::vector<std::uint64_t>* changed;
        const record_type** failed;
        std::uint64_t* tracked;
        std::vector<std::uint64_t>* marks;
        /// Set to each event's aggregate number before its handler runs (per aggregate, in a bulk
        /// pass, which has `marks`; null: not kept). A bulk pass by aggregate reads it to know
        /// which aggregate touched a row.
        std::uint64_t* current_aggregate = nullptr;
    };
    /// apply_records_as with its outputs elsewhere.
    template <bool Journaled, bool Filtered, class It, class Ctx>
    pass_totals apply_records_into(It first, const It last, const Ctx& context, pass_outputs out);
    PROJECTIONIST_ALWAYS_INLINE void load_bounds(pass_state& st) const;
    /// One record: its slot from the type map, per aggregate the position check, then the switch.
    /// False, with nothing done, when the type map or the positions must grow first. `Sliced`
    /// (a runner of one partition slice) passes over other slices' aggregates first; the pass
    /// picks it once, so that an unsliced runner has no slice check on its path (with cheap
    /// handlers the benchmark measured the check, and the registers it took, at a tenth of a pass).
    template <bool Journaled, bool Sliced, class Ctx>
    PROJECTIONIST_ALWAYS_INLINE bool apply_record(const record_type& rec, Ctx& ctx, pass_state& st);
    /// What `apply_record` needs before it can take `rec`: a type id mapped (the store interned
    /// a type after the batch was read), the aggregate's position in range. Out of the loop.
    PROJECTIONIST_ALWAYS_INLINE void make_room(const record_type& rec, pass_state& st);
    /// Per aggregate: moves the record's aggregate to the record's version. False for an event
    /// applied before; a gap in the versions is an error.
    template <bool Journaled>
    PROJECTIONIST_ALWAYS_INLINE bool advance_aggregate(const record_type& rec, std::uint64_t number, pass_state& st);
    /// A type id beyond the map: maps the store's new types, or throws if it does not list it.
    [[gnu::noinline]] void map_new_type(std::uint32_t type);
    [[gnu::noinline]] void grow_versions(std::uint64_t number);
    [[noreturn, gnu::noinline]] void unknown_event(const record_type& rec) const;

    // ---- bulk backfill: runner/bulk.hpp -----------------------------------------------------

    template <class Table>
    using bulk_table_of = bulk_table<Table, typename storage_type::template table_handle<Table>>;
    /// The handlers' view of the storage during a bulk backfill: the same session, tables in memory.
    struct bulk_view {
        using session = typename storage_type::session;
        template <class Table>
        using table_handle = bulk_table_of<Table>;
    };
    using bulk_context_type = handler_context<Projection, bulk_view, emission>;
    using bulk_tables =
        boost::mp11::mp_rename<boost::mp11::mp_transform<bulk_table_of, detail::tables_of<Projection>>, std::tuple>;
    /// Bulk backfills are compiled for storages that keep their tables outside the process (a
    /// database: memory's tables are an in-memory row store already), unless the projection opts
    /// out, and when every handler can be called with the bulk context (a handler that names the
    /// runner's own context type cannot: that projection always runs in batch mode).
    static constexpr bool bulk_capable =
        has_persisted_checkpoint<storage_type> && detail::allows_bulk_backfill<Projection> &&
        std::is_same_v<typename basic_handler_table<Projection, bulk_context_type>::entries, entries>;
    /// Whether the next catch-up or backfill starts in bulk mode.
    [[nodiscard]] bool bulk_eligible() const;
    /// Applies history up to `target` in bulk mode; returns the events applied and flushed. Stops
    /// early, at its last flush, if a handler fails or needs what bulk mode cannot serve: the
    /// batch loop then goes on from there.
    std::uint64_t bulk_until(std::uint64_t target);
    /// The row stores and handler context of one thread that applies events in a bulk backfill
    /// (runner_options::bulk_apply_threads), and what its last pass did.
    struct bulk_lane;
    /// bulk_until with `lanes` apply threads. Sets `diverged` (and the note) when handlers on
    /// different threads touched one row: it then stops at its last flush.
    std::uint64_t bulk_pass(std::uint64_t target, std::size_t lanes, bool& diverged);
    /// The log's next read, made while the last one was applied: in `bulk_next_` when `ready`,
    /// or, when `error` is set, what it threw (thrown when the pass gets to that read).
    struct bulk_read_ahead {
        bool ready = false;
        std::exception_ptr error;
        void forget() noexcept {
            ready = false;
            error = nullptr;
        }
    };
    /// The apply phase of one read on this thread, with one lane. Meanwhile, with a store that
    /// has_concurrent_read, reads the log's next events (up to `target`) on another thread into
    /// `bulk_next_` and fills `ahead`.
    pass_totals bulk_apply_alone(bulk_lane& lane, std::uint64_t target, bulk_read_ahead& ahead);
    /// The apply phase of one read on several threads: the records routed by aggregate, each
    /// thread's pass, their outputs merged. Meanwhile, with a store that has_concurrent_read,
    /// reads the log's next events (up to `target`) into `bulk_next_` and fills `ahead`.
    pass_totals bulk_apply_lanes(std::vector<std::unique_ptr<bulk_lane>>& lanes, std::uint64_t target,
                                 bulk_read_ahead& ahead);
    /// One lane's pass over its records, on its own thread.
    void bulk_apply_lane(bulk_lane& lane) noexcept;
    /// The lane threads' entry: `call` is a std::pair<runner*, bulk_lane*>.
    static void bulk_lane_entry(void* call) noexcept;
    /// A read on a thread of its own while the events read before are applied: where it starts
    /// and ends, and what it threw.
    struct bulk_read_call {
        runner* self;
        std::uint64_t after;
        std::uint64_t target;
        std::exception_ptr error;
    };
    /// The reading thread's entry: `call` is a bulk_read_call.
    static void bulk_read_entry(void* call) noexcept;
    /// Writes the changed rows and moves the checkpoint, in one transaction. `from` > 0: only the
    /// rows the aggregates numbered `from` or higher touched last, and their positions (a split of
    /// a pass by aggregate).
    void bulk_flush(std::vector<std::unique_ptr<bulk_lane>>& lanes, std::uint64_t from = 0);
    /// Reads the log's next events after `after` (up to `target`) into `out`: those of the current
    /// pass's aggregates (bulk_plan_).
    void bulk_read(std::uint64_t after, std::uint64_t target, typename event_store_type::batch& out);

    /// After a committed reset or remove: the committed checkpoint, no failures, not live.
    void settle_lifecycle(projection_state state);
    /// Everything status() shows: the text under the status mutex, then the numbers.
    void publish_status();
    /// The numbers and the state alone, without a lock: after each batch (and bulk read).
    void publish_progress() noexcept;
    /// run(): an attempt to reconnect is about to be made; status().note says so.
    void note_reconnect(const detail::reconnect_attempt& a);
    /// Stops the runner with `cause`, a lost connection, as a failed batch would.
    void stop_on_lost_connection(const error& cause);

    event_store_type* store_;
    typename storage_type::session session_;
    Projection projection_;
    runner_options options_;
    std::vector<pending_event> pending_;
    detail::emission_counters counters_;
    context_type context_;
    checkpoint* checkpoint_ = nullptr;
    typename context_type::handle_tuple handles_{};
    bool tables_open_ = false;
    std::optional<catalog_entry> tombstone_;                       ///< the catalog row of a deleted version
    std::optional<std::string> changed_;                           ///< why the recorded definition is not this code's
    std::optional<std::pair<std::string, std::string>> recorded_;  ///< then: the recorded fingerprint and definition
    std::string retain_until_;                                     ///< the catalog's retention date
    projection_state state_ = projection_state::declared;
    std::uint64_t generation_ = 0;
    bool live_ = false;
    std::optional<emission_window> window_;  ///< this version's share of emission (hands_over_emission)
    std::optional<projection_error> error_;
    bool connection_lost_ = false;  ///< error_ is a lost connection to the database
    std::string reconnect_note_;    ///< run(): the reconnection under way, or why it gave up
    std::string_view mode_ = "batch";
    bool tables_private_ = false;  ///< set by backfill and catch_up: the version served nothing when they started
    std::string bulk_note_;        ///< why the last bulk backfill went on in batch mode, if it did
    std::uint64_t bulk_flushes_ = 0;
    std::uint64_t batches_committed_ = 0;
    duration_histogram batch_seconds_;
    duration_histogram flush_seconds_;
    std::optional<std::chrono::system_clock::time_point> last_event_recorded_at_;
    std::uint64_t bulk_rows_flushed_ = 0;
    std::uint64_t bulk_rows_read_ = 0;
    std::uint64_t bulk_passes_ = 0;
    detail::aggregate_passes bulk_plan_{0};  ///< bulk passes by aggregate: what the pass reads, what is left

    typename event_store_type::batch batch_;
    typename event_store_type::batch bulk_next_;  ///< bulk backfill: the next read, read while the last is applied
    // Declared after session_: destroyed before the connection its statements were prepared on.
    std::optional<typename emit_writer_of<event_store_type, has_emit_writer>::type> emit_writer_;
    std::vector<std::uint16_t> type_map_;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> aggregate_undo_;
    std::vector<std::uint64_t> changed_aggregates_;
    const record_type* failed_ = nullptr;  // the record whose handler (or decoding) threw in the last pass
    bool journaled_ = false;               // memory storage in journal mode: per-aggregate positions are undone too

    std::uint64_t events_applied_ = 0;
    std::uint64_t events_skipped_ = 0;
    std::uint64_t events_dead_lettered_ = 0;
    std::vector<batch_failure> batch_failures_;
    std::map<std::uint64_t, std::uint64_t> parked_;  // aggregate number -> position of its failure
    std::uint64_t emitted_ = 0;
    double last_rate_ = 0;
    error_counts errors_;  ///< counted where each error is met: never on the event path

    mutable std::mutex status_mutex_;
    runner_status status_;  ///< its text; the numbers are in progress_
    detail::seqlock<detail::runner_progress> progress_;
};

}  // namespace projectionist

// The definitions of the runner's private parts, one file per job.
#include <projectionist/runner/batch.hpp>
#include <projectionist/runner/bulk.hpp>
#include <projectionist/runner/catalog_sync.hpp>
#include <projectionist/runner/emission_handoff.hpp>
#include <projectionist/runner/event_pass.hpp>
#include <projectionist/runner/operations.hpp>
