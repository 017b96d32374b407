#pragma once

/// The blue-green controller: the rules of a deployment (switch only to a caught-up version,
/// rollback, no reset or delete while the router sends the version queries, drain before reset
/// or delete, deleted versions skipped when catching up) for an application that drives the
/// steps itself, and the interface the command line holds for each projection.
///
///     #include <projectionist/deploy/controller.hpp>
///
///     projectionist::controller control(deployment, router);   // any_controller& works too
///     control.init("tickets_v2");
///     control.backfill("tickets_v2");
///     control.rollout("tickets_v2", 10);                        // 10% of the routing keys
///     control.switch_to("tickets_v2");
///     control.make_live("tickets_v2");
///     control.remove("tickets_v1");   // refused while the router still sends it queries
///
/// - `any_controller` (controller/any_controller.hpp): the guarded operations, written once
///   over a small virtual interface, and `status()`, `verify()`, `serving_peer()`.
/// - `controller<Deployment, Router>` (controller/controller.hpp): that interface over one
///   `deployment<...>` and its `router<...>` (or `no_router`), held by reference.

#include <projectionist/deploy/controller/any_controller.hpp>
#include <projectionist/deploy/controller/controller.hpp>
