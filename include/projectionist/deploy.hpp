#pragma once

/// The deploy layer in one include: the deployment of several versions of a projection, the
/// blue-green controller over it, the query router and verification (whose JSON output needs
/// Boost.JSON: link projectionist::tools).
///
///     #include <projectionist/deploy.hpp>

#include <projectionist/deploy/controller.hpp>
#include <projectionist/deploy/deployment.hpp>
#include <projectionist/deploy/router.hpp>
#include <projectionist/deploy/verify.hpp>
