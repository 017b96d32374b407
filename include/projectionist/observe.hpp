#pragma once

/// Observability: metrics an operator scrapes and readiness an orchestrator probes, read from
/// the runners' and routers' status snapshots at scrape time (nothing runs on the event path).
/// The HTTP endpoint, which needs Boost.Beast, is included on its own:
/// `#include <projectionist/observe/http.hpp>`.
///
///     projectionist::metrics_exporter metrics;
///     metrics.add(runner);
///     std::string page = metrics.render();  // Prometheus text format 0.0.4

#include <projectionist/observe/exporter.hpp>
#include <projectionist/observe/metrics.hpp>
