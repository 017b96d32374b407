#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>

#include <projectionist/error.hpp>
#include <projectionist/event/envelope.hpp>
#include <projectionist/event/stream.hpp>
#include <projectionist/projection/projection.hpp>
#include <projectionist/projection/table.hpp>

namespace projectionist {

namespace detail {
template <class Stream>
struct emitted_variant {
    using type = boost::mp11::mp_rename<typename Stream::events, std::variant>;
};
template <>
struct emitted_variant<void> {
    using type = std::monostate;
};

template <class Table>
struct row_of {
    using type = typename Table::row_type;
};

struct emission_counters {
    std::uint64_t dropped = 0;
};

/// An emitted event waiting for its batch to commit: one type per projection, whatever the
/// context (a runner's batch and bulk contexts share one queue).
template <class Projection>
struct pending_event {
    std::string aggregate_id;
    typename emitted_variant<typename Projection::emission_stream>::type event;
    std::uint64_t source_position = 0;  ///< the position of the event whose handler emitted it
};
}  // namespace detail

/// What a handler receives besides the event: the projection's name, its typed tables,
/// `emit`, the envelope of the event being applied, and the storage session (for SQL backends,
/// the raw connection) as an escape hatch.
///
///     void on(const ticket_closed& e, auto& ctx) {
///         ctx.table().update(e.ticket_id, [](ticket_row& r) { r.status = "closed"; });
///         ctx.emit(ticket_summary_changed{e.ticket_id});
///     }
template <class Projection, class Storage, class Emission>
class handler_context {
public:
    using projection_type = Projection;
    using session_type = typename Storage::session;
    using table_list = detail::tables_of<Projection>;
    template <class Table>
    using handle_ptr = typename Storage::template table_handle<Table>*;
    using handle_tuple = boost::mp11::mp_rename<boost::mp11::mp_transform<handle_ptr, table_list>, std::tuple>;
    using emission_stream = typename Projection::emission_stream;
    using emitted_event = typename detail::emitted_variant<emission_stream>::type;

    /// An emitted event waiting for its batch to commit.
    using pending_event = detail::pending_event<Projection>;

    handler_context(session_type& session, std::vector<pending_event>& pending, detail::emission_counters& counters)
        : session_(&session), pending_(&pending), counters_(&counters) {}

    /// The versioned name, e.g. "tickets_v2": the table name of the projection's main table.
    [[nodiscard]] static constexpr std::string_view name() noexcept { return Projection::versioned_name; }

    /// The projection's first (or only) table.
    [[nodiscard]] auto& table() noexcept {
        static_assert(std::tuple_size_v<handle_tuple> > 0,
                      "projectionist: ctx.table(): the projection declares no table; add "
                      "'using table = projectionist::table<Row, &Row::key>;' to it");
        return *std::get<0>(handles_);
    }

    /// The projection's table of rows of type `Row`: `ctx.table(projectionist::rows<order_row>)`.
    template <class Row>
    [[nodiscard]] auto& table(rows_t<Row>) noexcept {
        using rows = boost::mp11::mp_transform_q<boost::mp11::mp_quote_trait<detail::row_of>, table_list>;
        constexpr std::size_t index = boost::mp11::mp_find<rows, Row>::value;
        static_assert(index < boost::mp11::mp_size<rows>::value,
                      "projectionist: ctx.table(rows<Row>): the projection declares no table of this row type");
        return *std::get<index>(handles_);
    }

    /// The envelope of the event being applied. Built on first use within a handler call: the
    /// runner does not pay for it on events whose handlers never look.
    [[nodiscard]] const projectionist::envelope& envelope() const noexcept {
        if (!envelope_ready_) {
            envelope_ = make_envelope_(record_);
            envelope_ready_ = true;
        }
        return envelope_;
    }

    /// Emits `event` downstream for the current event's aggregate; see `emit(event, id)`.
    template <class Event>
    void emit(Event&& event) {
        emit(std::forward<Event>(event), envelope().aggregate_id);
    }

    /// Emits `event` to the projection's `emits_to<Stream>` stream, for aggregate `aggregate_id`.
    /// The event is appended when the batch commits, if the emission policy lets it through
    /// (with emit_when_live: only once the projection is live); otherwise it is counted as dropped.
    template <class Event>
    void emit(Event&& event, std::string_view aggregate_id) {
        using E = std::remove_cvref_t<Event>;
        static_assert(Emission::allowed,
                      "projectionist: ctx.emit(): the runner's emission policy is no_emission; use emit_when_live "
                      "or emit_always to emit events");
        if constexpr (Emission::allowed) {
            static_assert(!std::is_void_v<emission_stream>,
                          "projectionist: ctx.emit(): the projection declares no stream to emit to; add "
                          "projectionist::emits_to<Stream> to its projection<Name, Version, ...> arguments");
            if constexpr (!std::is_void_v<emission_stream>) {
                static_assert(stream_has_event<emission_stream, E>,
                              "projectionist: ctx.emit(event): the event is not one of the events of the projection's "
                              "emits_to<Stream> stream");
                if constexpr (stream_has_event<emission_stream, E>) {
                    if (replaying_) return;  // rebuilding committed history: emitted long ago
                    if (Emission::pass(live_))
                        pending_->push_back(
                            {std::string(aggregate_id), emitted_event(std::forward<Event>(event)), source_position()});
                    else
                        ++counters_->dropped;
                }
            }
        }
    }

    /// The storage session: for SQL backends, the raw connection and quoted table names. During
    /// a bulk backfill the tables live in memory, so the first call makes the runner go on in
    /// batch mode from its last flush (it throws `bulk_fallback`, which the runner catches).
    [[nodiscard]] session_type& storage() {
        if (storage_blocked_) [[unlikely]]
            throw bulk_fallback(
                "projectionist: a handler used ctx.storage() (the raw connection), which a bulk backfill cannot "
                "serve from memory");
        return *session_;
    }

    // ---- set by the runner ----
    /// The position of the record being applied (0 outside a handler call).
    [[nodiscard]] std::uint64_t source_position() const noexcept {
        if (envelope_ready_) return envelope_.position;
        return record_ != nullptr && position_of_ != nullptr ? position_of_(record_) : 0;
    }
    void bind_tables(const handle_tuple& handles) noexcept { handles_ = handles; }
    /// How to build an envelope from the store's records (set once by the runner).
    void set_envelope_source(projectionist::envelope (*make)(const void*) noexcept) noexcept { make_envelope_ = make; }
    /// How to read a record's position without building its envelope (set once by the runner).
    void set_position_source(std::uint64_t (*position)(const void*) noexcept) noexcept { position_of_ = position; }
    /// The record being applied; its envelope is built only if asked for.
    void set_record(const void* record) noexcept {
        record_ = record;
        envelope_ready_ = false;
    }
    /// The record being applied, with its envelope already built.
    void set_record(const void* record, const projectionist::envelope& env) noexcept {
        record_ = record;
        envelope_ = env;
        envelope_ready_ = true;
    }
    void set_live(bool live) noexcept { live_ = live; }
    void set_replaying(bool replaying) noexcept { replaying_ = replaying; }
    /// During a bulk backfill: storage() throws bulk_fallback.
    void block_storage(bool blocked) noexcept { storage_blocked_ = blocked; }

private:
    session_type* session_;
    std::vector<pending_event>* pending_;
    detail::emission_counters* counters_;
    handle_tuple handles_{};
    const void* record_ = nullptr;
    projectionist::envelope (*make_envelope_)(const void*) noexcept = nullptr;
    std::uint64_t (*position_of_)(const void*) noexcept = nullptr;
    mutable projectionist::envelope envelope_{};
    mutable bool envelope_ready_ = false;
    bool live_ = false;
    bool replaying_ = false;
    bool storage_blocked_ = false;
};

}  // namespace projectionist
