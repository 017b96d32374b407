#pragma once
// What the exporter reads from a worker (workers/worker.hpp needs PostgreSQL; its status does not):
// a worker_status with fixed values the tests look for.

#include <chrono>
#include <optional>
#include <string>

#include <projectionist/projectionist.hpp>
#include <projectionist/workers/worker_status.hpp>
#include <tickets_domain.hpp>

namespace observe_support {

struct fake_worker {
    using runner_type = projectionist::runner<tickets_domain::tickets<2>>;
    std::string id_ = "host:42:0000abcd";
    /// When the last renewal went through; none: the worker has not renewed yet.
    std::optional<std::chrono::system_clock::time_point> last_renewal =
        std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));

    [[nodiscard]] const std::string& id() const noexcept { return id_; }
    [[nodiscard]] projectionist::worker_status status() const {
        projectionist::worker_status s;
        s.id = id_;
        s.held = {{0, 3}, {2, 1}};
        s.live_workers = 2;
        s.claims = 4;
        s.takeovers = 1;
        s.releases = 1;
        s.leases_lost = 1;
        s.renewals = last_renewal ? 17 : 0;
        s.renewal_failures = 3;
        s.last_renewal = last_renewal;
        s.fenced_commits = 1;
        s.events_applied = 99;
        s.errors.add(projectionist::error_kind::fenced);
        s.errors.add(projectionist::error_kind::handler, 2);
        return s;
    }
};

}  // namespace observe_support
