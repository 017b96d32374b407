#pragma once

#include <chrono>
#include <cstddef>

#include <projectionist/workers/partition.hpp>

namespace projectionist {

/// Tuning of a runner; the defaults suit most projections.
///
///     projectionist::runner<tickets<2>> v2(store, storage, {.batch_size = 5000});
struct runner_options {
    std::size_t batch_size = 1000;                 ///< events per transaction; the checkpoint moves once per batch
    std::chrono::milliseconds poll_interval{100};  ///< how long `run` waits for new events before looking again
    /// Per aggregate only: apply just the aggregates of this partition (workers run one runner
    /// per partition they hold). The runner's checkpoint is then the partition's own, while its
    /// tables, catalog entry and settings stay the projection's; the storage must keep
    /// checkpoints per partition (`storage.open(name, slice)`, e.g. postgres_storage). The
    /// default, one partition, is every aggregate.
    partition_slice slice{};
};

}  // namespace projectionist
