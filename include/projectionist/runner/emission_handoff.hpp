#pragma once

/// The hand-over of downstream emission between the versions of a projection
/// (storage/emission_window.hpp): the transaction that makes a version live or not live, the
/// window a batch reads inside its own transaction, and what reset and remove do with it.

#include <projectionist/runner/runner.hpp>

namespace projectionist {

template <class Projection, class... Policies>
void runner<Projection, Policies...>::load_window() {
    if constexpr (hands_over_emission) {
        const std::string key = detail::emission_setting_key(Projection::base_name);
        window_.reset();
        if (const auto text = session_.find_setting(key)) {
            const emission_windows windows = detail::parse_windows(*text, key);
            if (const auto it = windows.find(name_of<Projection>); it != windows.end()) window_ = it->second;
        }
    }
}

template <class Projection, class... Policies>
bool runner<Projection, Policies...>::may_emit() const noexcept {
    if constexpr (hands_over_emission) {
        if (window_) return window_->open_after(checkpoint_->position);
    }
    return live_;
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::filter_emissions() {
    if constexpr (hands_over_emission) {
        // Never handed over: the live flag decided when the events were queued.
        if (pending_.empty() || !window_) return;
        const std::size_t queued = pending_.size();
        std::erase_if(pending_, [&](const pending_event& p) { return !window_->covers(p.source_position); });
        counters_.dropped += queued - pending_.size();
    }
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::require_no_debt(std::string_view what) const {
    if constexpr (hands_over_emission) {
        if (!window_ || !window_->through) return;
        // Run in partitions (workers), the version is as far as its lowest partition, whatever
        // this runner's own checkpoint says.
        std::uint64_t at = checkpoint_->position;
        if constexpr (requires { session_.lowest_position(name_of<Projection>); })
            at = session_.lowest_position(name_of<Projection>);
        if (*window_->through > at)
            throw state_error(fmt::format(
                "projectionist: cannot {} {}: it still emits downstream for the source positions up to {} (its "
                "hand-over to the live version) and is at {}; let it catch up first (catch-up or run){}",
                what, name_of<Projection>, *window_->through, at,
                recorded_ ? ", with the release that initialized it: this one defines it differently" : ""));
    }
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::forget_window() {
    if constexpr (hands_over_emission) {
        const std::string key = detail::emission_setting_key(Projection::base_name);
        if (const auto text = session_.find_setting(key)) {
            emission_windows windows = detail::parse_windows(*text, key);
            if (windows.erase(std::string(name_of<Projection>)) != 0)
                session_.save_setting(key, detail::format_windows(windows));
        }
        window_.reset();
    }
}

template <class Projection, class... Policies>
void runner<Projection, Policies...>::hand_over(bool live) {
    const std::string key = detail::emission_setting_key(Projection::base_name);
    const std::string self(name_of<Projection>);
    // Another runner of this version (another process) may commit a batch between reading the
    // checkpoint and locking it: then this transaction's compare-and-set fails, and it is retried
    // from the checkpoint read again.
    for (int attempt = 0;; ++attempt) {
        begin_lifecycle();
        try {
            // Locked first: the windows and live flags are read as the hand-over before this one left them.
            const std::uint64_t own = session_.lock_position(self);
            emission_windows windows;
            if (const auto text = session_.find_setting(key)) windows = detail::parse_windows(*text, key);
            const auto mine = windows.find(self);
            if (live) {
                // Run in partitions (workers), the version is only as far as its lowest partition.
                std::uint64_t applied_to = own;
                if constexpr (requires { session_.lowest_position(self); }) applied_to = session_.lowest_position(self);
                if (mine != windows.end() && mine->second.through && *mine->second.through > applied_to)
                    throw state_error(fmt::format(
                        "projectionist: cannot make {} live: it still emits downstream for the source positions up "
                        "to {} (its earlier hand-over) and is at {}; let it catch up first (catch-up or run)",
                        self, *mine->second.through, applied_to));
                // p: past every position a version emitted or dropped, and every earlier share.
                std::uint64_t p = own;
                for (const auto& [name, w] : windows) {
                    if (name == self) continue;
                    p = std::max({p, w.after, w.through.value_or(0)});
                }
                std::vector<std::pair<std::string, std::uint64_t>> previous;
                for (std::string& name : session_.live_versions(Projection::base_name)) {
                    const std::uint64_t at = session_.lock_position(name);
                    p = std::max(p, at);
                    previous.emplace_back(std::move(name), at);
                }
                for (const auto& [name, at] : previous) {
                    // A version live before windows were kept emitted everything up to where it is.
                    auto [it, fresh] = windows.try_emplace(name, emission_window{at, std::nullopt});
                    if (!it->second.through) it->second.through = p;
                    session_.clear_live(name);
                }
                for (auto& [name, w] : windows)
                    if (name != self && !w.through) w.through = p;  // live once, its flag cleared elsewhere
                windows.insert_or_assign(self, emission_window{p, std::nullopt});
            } else if (mine != windows.end() && !mine->second.through) {
                mine->second.through = std::max(own, mine->second.after);
            }
            session_.save_setting(key, detail::format_windows(windows));
            live_ = live;
            save_catalog();
            session_.commit(*checkpoint_, {});
            const auto it = windows.find(self);
            window_ = it == windows.end() ? std::nullopt : std::optional<emission_window>(it->second);
            return;
        } catch (...) {
            session_.rollback();  // the live flag and state are read back from the catalog below
            const bool conflict = detail::is_checkpoint_conflict(std::current_exception());
            checkpoint_ = &session_.reload_checkpoint();
            sync_catalog();
            if (!conflict || attempt >= 20) throw;
        }
    }
}

}  // namespace projectionist
