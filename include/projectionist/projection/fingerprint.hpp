#pragma once

/// The definition of a projection version's data, computed at compile time: the events it
/// handles (by stream and stored name), its partitioning, its tables with their keys, columns and
/// C++ column types, and an optional revision string given by the user. `init` records it in the
/// catalog; a process whose code defines an initialized version differently refuses to run,
/// backfill, serve or make that version live, and names what changed (`definition_changes`).
///
/// The definition is a few lines of text, one fact per line:
///
///     projection tickets_v2
///     revision 2024-05-01 reopen counts
///     partitioning per_aggregate
///     event ticket ticket.registered
///     table tickets_v2 key ticket_id
///     column tickets_v2 ticket_id string
///     column tickets_v2 reopened int32
///
/// and the fingerprint is its 64-bit FNV-1a hash, the same on every platform and build. Column
/// types are spelled by kind (bool, int8 ... int64, uint8 ... uint64, float32, float64, string,
/// optional<T>, vector<T>, time_point<...>, duration<...>, nested reflected structs as
/// {name:type,...}), an enum by its underlying type (enum<uint8>). Any other column type says
/// how it is spelled, the same for every compiler and release, either as a member of the type
/// (`static constexpr std::string_view column_spelling = "money(cents int64)";`) or, for a type
/// one cannot change, by specializing `projectionist::column_spelling<T>` with a member `name`;
/// without one it does not compile (the error names the type). Handler bodies cannot be
/// fingerprinted: a projection whose handlers
/// change what they write, with the same events and tables, says so with a revision:
///
///     template <unsigned V>
///     struct tickets : projectionist::projection<"tickets", V, ticket_stream> {
///         static constexpr std::string_view revision = "counts reopenings";
///         ...
///     };

#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <ratio>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/hana/accessors.hpp>
#include <boost/hana/at.hpp>
#include <boost/hana/detail/struct_macros.hpp>
#include <boost/hana/pair.hpp>
#include <boost/mp11/algorithm.hpp>

#include <projectionist/event/event.hpp>
#include <projectionist/meta/fnv1a.hpp>
#include <projectionist/meta/reflection.hpp>
#include <projectionist/meta/type_traits.hpp>
#include <projectionist/projection/projection.hpp>

namespace projectionist {

/// The spelling of a column type that is none of the kinds the fingerprint knows (see above), for
/// a type that cannot say it itself: specialize it with
/// `static constexpr std::string_view name = "...";`, a name that stays the same across compilers
/// and releases as long as the column's stored values mean the same.
///
///     template <>
///     struct projectionist::column_spelling<boost::uuids::uuid> {
///         static constexpr std::string_view name = "uuid";
///     };
template <class T>
struct column_spelling {};

namespace detail::fingerprint {

/// Folds the definition into a hash (constant-evaluated for the fingerprint).
struct hasher {
    std::uint64_t value = fnv1a_offset_basis;
    constexpr void put(std::string_view s) noexcept { value = fnv1a_64(s, value); }
};

/// Spells the definition out (at run time, for the catalog and for messages).
struct writer {
    std::string text;
    void put(std::string_view s) { text += s; }
};

template <class Sink>
constexpr void put_number(Sink& out, std::uintmax_t n) {
    char digits[24]{};
    std::size_t i = sizeof digits;
    do {
        digits[--i] = static_cast<char>('0' + n % 10);
        n /= 10;
    } while (n != 0);
    out.put(std::string_view(digits + i, sizeof digits - i));
}

template <class T>
concept spelled_by_trait = requires {
    { column_spelling<T>::name } -> std::convertible_to<std::string_view>;
};
template <class T>
concept spelled_by_member = requires {
    { T::column_spelling } -> std::convertible_to<std::string_view>;
};
template <class>
inline constexpr bool no_spelling = false;

/// Instantiated for a column type that has no spelling: the error names the type in its
/// instantiation context ("column_type_without_spelling<app::money>").
template <class T>
struct column_type_without_spelling {
    static_assert(no_spelling<T>,
                  "projectionist: a column's C++ type has no spelling for the version's fingerprint (the type is "
                  "named in the instantiation of column_type_without_spelling<T>); give it one that every compiler "
                  "and release shares: 'static constexpr std::string_view column_spelling = \"...\";' in the type, or "
                  "a specialization of projectionist::column_spelling<T> with 'static constexpr std::string_view "
                  "name = \"...\";'");
    static constexpr std::string_view name = "";
};

/// The spelling the user gave a type (trait first, then member).
template <class T>
constexpr std::string_view user_spelling() noexcept {
    if constexpr (spelled_by_trait<T>)
        return column_spelling<T>::name;
    else if constexpr (spelled_by_member<T>)
        return T::column_spelling;
    else
        return column_type_without_spelling<T>::name;
}

template <class T, class Sink>
constexpr void put_type(Sink& out) {
    if constexpr (std::is_same_v<T, bool>) {
        out.put("bool");
    } else if constexpr (std::is_same_v<T, char>) {
        out.put("char");
    } else if constexpr (std::is_integral_v<T>) {
        out.put(std::is_signed_v<T> ? "int" : "uint");
        put_number(out, sizeof(T) * 8);
    } else if constexpr (std::is_floating_point_v<T>) {
        out.put("float");
        put_number(out, sizeof(T) * 8);
    } else if constexpr (std::is_same_v<T, std::string>) {
        out.put("string");
    } else if constexpr (spelled_by_trait<T> || spelled_by_member<T>) {
        out.put(user_spelling<T>());
    } else if constexpr (std::is_enum_v<T>) {
        out.put("enum<");
        put_type<std::underlying_type_t<T>>(out);
        out.put(">");
    } else if constexpr (is_optional<T>::value) {
        out.put("optional<");
        put_type<typename T::value_type>(out);
        out.put(">");
    } else if constexpr (is_vector<T>::value) {
        out.put("vector<");
        put_type<typename T::value_type>(out);
        out.put(">");
    } else if constexpr (is_duration<T>::value) {
        out.put("duration<");
        put_type<typename T::rep>(out);
        out.put(",");
        put_number(out, static_cast<std::uintmax_t>(T::period::num));
        out.put("/");
        put_number(out, static_cast<std::uintmax_t>(T::period::den));
        out.put(">");
    } else if constexpr (is_time_point<T>::value) {
        out.put("time_point<");
        put_type<typename T::duration>(out);
        out.put(">");
    } else if constexpr (is_reflected<T>) {
        out.put("{");
        bool first = true;
        for_each_field_type<T>([&](std::string_view name, auto field) {
            if (!first) out.put(",");
            first = false;
            out.put(name);
            out.put(":");
            put_type<typename decltype(field)::type>(out);
        });
        out.put("}");
    } else {
        out.put(user_spelling<T>());
    }
}

/// The index of the field that `Table::key` points to, or the field count if the reflection does
/// not tell (Hana's struct macros give each accessor the member pointer as a template argument).
template <class Table>
consteval std::size_t key_field() {
    using row = typename Table::row_type;
    return []<std::size_t... I>(std::index_sequence<I...>) {
        std::size_t found = sizeof...(I);
        ((std::is_same_v<
              std::remove_cvref_t<decltype(boost::hana::second(boost::hana::at_c<I>(boost::hana::accessors<row>())))>,
              boost::hana::struct_detail::member_ptr<std::remove_const_t<decltype(Table::key)>, Table::key>>
              ? (found = I, 0)
              : 0),
         ...);
        return found;
    }
    (std::make_index_sequence<field_count<row>>{});
}

/// Writes the definition of projection P, whose handled (stream, event) pairs are `Entries`
/// and whose partitioning is named `partitioning`, into `out`.
template <class P, class Entries, class Sink>
constexpr void put_definition(Sink& out, std::string_view partitioning) {
    out.put("projection ");
    out.put(name_of<P>);
    out.put("\n");
    if constexpr (requires { std::string_view(P::revision); }) {
        if constexpr (!std::string_view(P::revision).empty()) {
            out.put("revision ");
            out.put(std::string_view(P::revision));
            out.put("\n");
        }
    }
    out.put("partitioning ");
    out.put(partitioning);
    out.put("\n");
    boost::mp11::mp_for_each<boost::mp11::mp_transform<boost::mp11::mp_identity, Entries>>([&](auto entry) {
        using sub = typename decltype(entry)::type;
        out.put("event ");
        out.put(sub::stream::name);
        out.put(" ");
        out.put(event_name_of<typename sub::event>);
        out.put("\n");
    });
    boost::mp11::mp_for_each<boost::mp11::mp_transform<boost::mp11::mp_identity, tables_of<P>>>([&](auto table) {
        using t = typename decltype(table)::type;
        using row = typename t::row_type;
        const std::string_view name = table_name_v<P, t>;
        out.put("table ");
        out.put(name);
        out.put(" key ");
        if constexpr (key_field<t>() < field_count<row>) {
            out.put(field_name<row, key_field<t>()>());
        } else {
            put_type<typename t::key_type>(out);
        }
        out.put("\n");
        for_each_field_type<row>([&](std::string_view field, auto type) {
            out.put("column ");
            out.put(name);
            out.put(" ");
            out.put(field);
            out.put(" ");
            put_type<typename decltype(type)::type>(out);
            out.put("\n");
        });
    });
}

/// The definition's lines that start with `kind ` (without it), in order.
inline std::vector<std::string_view> lines_of(std::string_view text, std::string_view kind) {
    std::vector<std::string_view> out;
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        if (line.size() > kind.size() && line.substr(0, kind.size()) == kind && line[kind.size()] == ' ')
            out.push_back(line.substr(kind.size() + 1));
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return out;
}

/// "a b c" split at its first space: {"a", "b c"}.
inline std::pair<std::string_view, std::string_view> split_first(std::string_view s) {
    const std::size_t sp = s.find(' ');
    if (sp == std::string_view::npos) return {s, {}};
    return {s.substr(0, sp), s.substr(sp + 1)};
}

}  // namespace detail::fingerprint

/// The fingerprint of a projection version's definition (see the top of this file), as the
/// catalog stores it: 16 lowercase hex digits.
[[nodiscard]] inline std::string fingerprint_text(std::uint64_t fingerprint) {
    return fmt::format("{:016x}", fingerprint);
}

/// The definition of projection P whose handled (stream, event) pairs are `Entries` and whose
/// partitioning policy is `Partitioning`; `runner<P, ...>::definition()` gives a runner's.
template <class P, class Entries, class Partitioning>
[[nodiscard]] std::string definition_of() {
    detail::fingerprint::writer w;
    detail::fingerprint::put_definition<P, Entries>(w, Partitioning::name);
    return std::move(w.text);
}

/// The 64-bit FNV-1a hash of `definition_of<P, Entries, Partitioning>()`, at compile time.
template <class P, class Entries, class Partitioning>
inline constexpr std::uint64_t fingerprint_of = [] {
    detail::fingerprint::hasher h;
    detail::fingerprint::put_definition<P, Entries>(h, Partitioning::name);
    return h.value;
}();

/// What differs between two definitions, in words, "; "-separated: "column 'reopened' is new;
/// event 'ticket.merged' is no longer handled". Column names are qualified by their table when
/// the projection has more than one. Empty if the texts are equal.
[[nodiscard]] inline std::string definition_changes(std::string_view recorded, std::string_view current) {
    using detail::fingerprint::lines_of;
    using detail::fingerprint::split_first;
    std::vector<std::string> out;
    auto contains = [](const std::vector<std::string_view>& v, std::string_view x) {
        for (auto y : v)
            if (y == x) return true;
        return false;
    };
    auto single = [](std::string_view kind, std::string_view what, std::string_view before, std::string_view after,
                     std::vector<std::string>& into) {
        if (before != after)
            into.push_back(before.empty()  ? fmt::format("the {} '{}' is new", kind, after)
                           : after.empty() ? fmt::format("the {} '{}' was removed", kind, before)
                                           : fmt::format("the {} changed from '{}' to '{}'", what, before, after));
    };
    auto first = [&](std::string_view text, std::string_view kind) {
        const auto l = lines_of(text, kind);
        return l.empty() ? std::string_view{} : l.front();
    };
    single("revision", "revision", first(recorded, "revision"), first(current, "revision"), out);
    single("partitioning", "partitioning", first(recorded, "partitioning"), first(current, "partitioning"), out);
    const auto events_before = lines_of(recorded, "event"), events_now = lines_of(current, "event");
    for (auto e : events_now)
        if (!contains(events_before, e))
            out.push_back(fmt::format("event '{}' is newly handled", split_first(e).second));
    for (auto e : events_before)
        if (!contains(events_now, e))
            out.push_back(fmt::format("event '{}' is no longer handled", split_first(e).second));
    const auto tables_before = lines_of(recorded, "table"), tables_now = lines_of(current, "table");
    std::vector<std::string_view> names_before, names_now;
    for (auto t : tables_before) names_before.push_back(split_first(t).first);
    for (auto t : tables_now) names_now.push_back(split_first(t).first);
    for (std::size_t i = 0; i < tables_now.size(); ++i) {
        const auto [name, key] = split_first(tables_now[i]);
        if (!contains(names_before, name)) {
            out.push_back(fmt::format("table {} is new", name));
            continue;
        }
        for (auto before : tables_before)
            if (split_first(before).first == name && before != tables_now[i])
                out.push_back(fmt::format("the key of table {} changed from '{}' to '{}'", name,
                                          split_first(before).second.substr(4), key.substr(4)));
    }
    for (auto name : names_before)
        if (!contains(names_now, name)) out.push_back(fmt::format("table {} was removed", name));
    const bool qualify = names_now.size() > 1 || names_before.size() > 1;
    const auto columns_before = lines_of(recorded, "column"), columns_now = lines_of(current, "column");
    auto column = [&](std::string_view table, std::string_view name) {
        return qualify ? fmt::format("column '{}' of table {}", name, table) : fmt::format("column '{}'", name);
    };
    auto find_column = [](const std::vector<std::string_view>& in, std::string_view table_and_name) {
        for (auto c : in) {
            const auto [table, rest] = split_first(c);
            const auto [name, type] = split_first(rest);
            if (c.substr(0, table.size() + 1 + name.size()) == table_and_name) return std::optional(type);
        }
        return std::optional<std::string_view>{};
    };
    for (auto c : columns_now) {
        const auto [table, rest] = split_first(c);
        const auto [name, type] = split_first(rest);
        if (!contains(names_before, table)) continue;  // a new table: said above
        const auto before = find_column(columns_before, c.substr(0, table.size() + 1 + name.size()));
        if (!before)
            out.push_back(fmt::format("{} is new", column(table, name)));
        else if (*before != type)
            out.push_back(fmt::format("{} changed type from {} to {}", column(table, name), *before, type));
    }
    for (auto c : columns_before) {
        const auto [table, rest] = split_first(c);
        const auto [name, type] = split_first(rest);
        if (contains(names_now, table) && !find_column(columns_now, c.substr(0, table.size() + 1 + name.size())))
            out.push_back(fmt::format("{} was removed", column(table, name)));
    }
    std::string joined;
    for (const auto& o : out) joined += (joined.empty() ? "" : "; ") + o;
    if (joined.empty() && recorded != current) joined = "its definition differs";
    return joined;
}

}  // namespace projectionist
