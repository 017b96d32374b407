#pragma once

/// How a PostgreSQL storage session buffers its tables' writes during a batch (write-behind) and
/// sends them at commit: the session's view of a table handle and the list of its tables.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <projectionist/detail/pg_api.hpp>

namespace projectionist::detail::pg {

/// The part of a table handle its session sees: the name, and how to send or drop its buffer.
/// Plain function pointers rather than virtual functions: called at batch boundaries only.
class buffered_table {
public:
    buffered_table(const buffered_table&) = delete;
    buffered_table& operator=(const buffered_table&) = delete;
    [[nodiscard]] std::string_view table_name() const noexcept { return name_; }
    /// Sends the buffered writes; the rows read stay cached until the batch ends.
    void flush_buffer() { flush_(this); }
    /// Adds the buffered writes to `pl`: they are sent with it, and its run checks their answers
    /// as `flush_buffer` would (the same errors), then marks them sent.
    void queue_buffer(connection::pipeline& pl) { queue_(this, pl); }
    /// Drops the buffered writes and cached rows.
    void forget_buffer() noexcept { forget_(this); }

protected:
    buffered_table(std::string name, void (*flush)(buffered_table*),
                   void (*queue)(buffered_table*, connection::pipeline&), void (*forget)(buffered_table*) noexcept)
        : name_(std::move(name)), flush_(flush), queue_(queue), forget_(forget) {}
    ~buffered_table() = default;
    buffered_table(buffered_table&&) = default;
    buffered_table& operator=(buffered_table&&) = default;

    std::string name_;

private:
    void (*flush_)(buffered_table*);
    void (*queue_)(buffered_table*, connection::pipeline&);
    void (*forget_)(buffered_table*) noexcept;
};

/// A storage session's tables, as seen at batch boundaries: while a batch is open (`active`),
/// table writes are buffered and sent as multi-row statements; `flush_all` sends them,
/// `forget_all` drops them (and the rows read meanwhile).
struct write_behind {
    std::vector<buffered_table*> tables;
    bool active = false;     ///< a batch is open: buffer writes
    bool eager = false;      ///< send every write at once (the replay after a refused flush)
    bool immediate = false;  ///< this transaction sends every write at once (init, reset, remove)
    /// The batch's checkpoint was moved by another runner (seen at begin): its commit will
    /// throw checkpoint_conflict before it sends anything.
    std::optional<std::string> conflict;
    /// While a batch's opening is assembled (session::begin with an opening): the pipeline that
    /// sends BEGIN and the checkpoint's lock, to which the tables add their prefetch.
    connection::pipeline* opening = nullptr;

    [[nodiscard]] bool buffering() const noexcept { return active && !eager && !immediate; }
    void flush_all() {
        for (auto* t : tables) t->flush_buffer();
    }
    /// `flush_all`, its statements added to `pl` (one round trip with what else it holds).
    void queue_all(connection::pipeline& pl) {
        for (auto* t : tables) t->queue_buffer(pl);
    }
    void forget_all() noexcept {
        for (auto* t : tables) t->forget_buffer();
    }
    void remove(const buffered_table* t) noexcept { std::erase(tables, t); }
};

}  // namespace projectionist::detail::pg
