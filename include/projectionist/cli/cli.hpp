#pragma once

/// The command line; include <projectionist/cli.hpp>, which this forwards to.

#include <projectionist/cli.hpp>
