#pragma once

/// What every storage of the library declares, in one place: the storage category, the event
/// store a runner over it reads unless it names one (declared by the storage's own header, so the
/// choice never depends on which headers a translation unit includes, or in which order), its
/// table handle, and the query path (`table<P>()`, storage/version_table.hpp).
///
///     class my_storage : public projectionist::detail::storage_base<my_storage, my_event_store, my_table> { ... };

#include <projectionist/storage/records.hpp>
#include <projectionist/storage/version_table.hpp>

namespace projectionist::detail {

template <class Storage, class EventStore, template <class> class Handle>
class storage_base : public version_tables<Storage> {
public:
    using storage_category = detail::storage_category;
    using default_event_store = EventStore;
    template <class Table>
    using table_handle = Handle<Table>;
};

}  // namespace projectionist::detail
