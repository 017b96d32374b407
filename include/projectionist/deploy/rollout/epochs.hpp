#pragma once

/// Shadow reads counted by the epoch they began in. A rollout judges the reads of one step under
/// one plan's settings (its expected changes); when the step or the settings change, it starts a
/// new epoch and waits for the reads of the old one to end before it takes the counts the new step
/// starts from. A read compared under the old settings, or begun at the old step, is then never
/// counted at the new one.
///
///     auto in = epochs.enter();   // every shadow read, for as long as it runs
///     epochs.advance();           // the judge: returns once the reads begun before it have ended
///
/// Two counters, one per parity of the epoch, as the router counts its queries in flight: a read
/// adds itself to its epoch's counter and checks that the epoch did not move meanwhile (else it
/// moves to the new one), so `advance` never misses a read that it should wait for.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace projectionist::detail::rollout {

class query_epochs {
public:
    /// One read in its epoch, until destroyed.
    class guard {
    public:
        explicit guard(std::atomic<std::uint64_t>& count) noexcept : count_(&count) {}
        guard(const guard&) = delete;
        guard& operator=(const guard&) = delete;
        ~guard() { count_->fetch_sub(1); }

    private:
        std::atomic<std::uint64_t>* count_;
    };

    [[nodiscard]] guard enter() const noexcept {
        for (;;) {
            const std::uint64_t epoch = epoch_.load();
            auto& count = counts_[epoch & 1];
            count.fetch_add(1);
            if (epoch_.load() == epoch) return guard(count);
            count.fetch_sub(1);  // the epoch moved before the read was counted: count it in the new one
        }
    }

    /// Starts a new epoch and waits until every read begun in the old one has ended. One caller
    /// at a time (the rollout's judgment).
    void advance() {
        const std::uint64_t old = epoch_.fetch_add(1);
        while (counts_[old & 1].load() != 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }

    [[nodiscard]] std::uint64_t epoch() const noexcept { return epoch_.load(); }
    /// Reads running now, in either epoch.
    [[nodiscard]] std::uint64_t running() const noexcept { return counts_[0].load() + counts_[1].load(); }

private:
    mutable std::atomic<std::uint64_t> epoch_{0};
    mutable std::array<std::atomic<std::uint64_t>, 2> counts_{};
};

}  // namespace projectionist::detail::rollout
