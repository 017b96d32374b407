#pragma once

/// The projection catalog's records (storage/records.hpp: checkpoint, dead_letter, catalog_entry)
/// and the deployment states they record (storage/projection_state.hpp), for the includes that
/// want both.

#include <projectionist/storage/projection_state.hpp>
#include <projectionist/storage/records.hpp>
