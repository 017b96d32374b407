#pragma once

/// The bookkeeping of a per-aggregate bulk backfill in passes by aggregate
/// (runner_options::bulk_passes_by_aggregate): which aggregate numbers the current pass applies,
/// the passes still to run, and the position a flush may commit. No I/O: runner/bulk.hpp reads,
/// applies and flushes, and asks this what to do.
///
///     detail::aggregate_passes passes(0);      // a backfill from position 0
///     passes.saw(99);                          // the pass read aggregate 99 (numbers 0-99 met)
///     passes.split(5000);                      // budget: keep [0, 75), leave [75, ...) from 5000
///     passes.commit_position(6000, false);     // 0: the pass's own aggregates are uncommitted
///     passes.flushed(6000, true);              // everything applied up to 6000 is committed
///     passes.commit_position(7000, true);      // 5000: the pass left at 5000 has not run
///     passes.next();                           // 5000: [75, ...) runs from there

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include <projectionist/store/aggregate_numbers.hpp>

namespace projectionist::detail {

class aggregate_passes {
public:
    /// A backfill whose checkpoint is at `start`: one pass, every aggregate.
    explicit aggregate_passes(std::uint64_t start) noexcept : committed_through_(start) {}

    /// The aggregate numbers the current pass applies (and reads).
    [[nodiscard]] const aggregate_numbers& range() const noexcept { return range_; }
    /// Later passes begun so far.
    [[nodiscard]] std::uint64_t begun() const noexcept { return begun_; }
    /// Whether passes are still to run.
    [[nodiscard]] bool pending() const noexcept { return !later_.empty(); }

    /// The current pass read an event of aggregate `number`.
    void saw(std::uint64_t number) noexcept { highest_ = std::max(highest_, number + 1); }

    /// The budget is reached at `cursor`: the pass goes on with the lower three quarters of the
    /// numbers it met, and leaves the rest (and the numbers it has not met) to a later pass from
    /// `cursor`. Returns where the numbers left start; 0 if the pass met only one aggregate
    /// (nothing to split: its rows are flushed and evicted as without passes).
    std::uint64_t split(std::uint64_t cursor) {
        const std::uint64_t end = std::min(range_.last, std::max(highest_, range_.first));
        if (end - range_.first < 2) return 0;
        const std::uint64_t middle = range_.first + std::max<std::uint64_t>((end - range_.first) / 4 * 3, 1);
        later_.push_back({cursor, {middle, range_.last}});
        range_.last = middle;
        return middle;
    }

    /// The position a flush at `cursor` commits: everything before it must be committed. `full`:
    /// the flush writes everything applied (else only a split's aggregates, and the current pass's
    /// own stay as they were committed). Never past the start of a pass still to run.
    [[nodiscard]] std::uint64_t commit_position(std::uint64_t cursor, bool full) const noexcept {
        std::uint64_t at = full ? cursor : committed_through_;
        for (const later_pass& p : later_) at = std::min(at, p.from);
        return at;
    }

    /// A flush at `cursor` committed; `full` as for commit_position.
    void flushed(std::uint64_t cursor, bool full) noexcept {
        if (full) committed_through_ = cursor;
    }

    /// The current pass reached the end (and was flushed in full): the oldest pass still to run
    /// becomes the current one. Returns the position it reads from, nullopt if none is left.
    std::optional<std::uint64_t> next() {
        if (later_.empty()) return std::nullopt;
        const auto oldest = std::min_element(later_.begin(), later_.end(),
                                             [](const later_pass& a, const later_pass& b) { return a.from < b.from; });
        const later_pass pass = *oldest;
        later_.erase(oldest);
        range_ = pass.range;
        highest_ = pass.range.first;
        committed_through_ = pass.from;
        ++begun_;
        return pass.from;
    }

private:
    struct later_pass {
        std::uint64_t from;  ///< where the pass that left these aggregates was when it split
        aggregate_numbers range;
    };
    aggregate_numbers range_{};
    std::vector<later_pass> later_;
    std::uint64_t highest_ = 0;            ///< the highest number the current pass met, plus one
    std::uint64_t committed_through_ = 0;  ///< the current pass's aggregates are committed up to here
    std::uint64_t begun_ = 0;
};

}  // namespace projectionist::detail
