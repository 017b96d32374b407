#pragma once

/// SIGINT and SIGTERM while `run` follows the log: a flag set by the handler, installed for the
/// duration of one scope and restored afterwards. A second signal while the flag is set puts the
/// previous handler back and raises the signal again: Ctrl-C twice ends the program at once.

#include <atomic>
#include <csignal>
#include <string_view>

#include <signal.h>

namespace projectionist::detail::cli {

static_assert(std::atomic<int>::is_always_lock_free, "projectionist: the signal flag must be lock-free");
/// The signal that asked `run` to stop, 0 if none. Set by the handler only.
inline std::atomic<int> signal_received{0};

/// The handlers of SIGINT and SIGTERM before the scope installed its own; read by the handler.
inline struct sigaction previous_on_int {};
inline struct sigaction previous_on_term {};

extern "C" inline void projectionist_cli_on_stop_signal(int signal) {
    if (signal_received.exchange(signal) == 0) return;
    // Asked twice: what the signal did before (by default, end the program), now.
    ::sigaction(signal, signal == SIGINT ? &previous_on_int : &previous_on_term, nullptr);
    ::raise(signal);
}

/// SIGINT and SIGTERM set `signal_received` while this object lives; the previous handlers are
/// put back afterwards.
class signal_scope {
public:
    explicit signal_scope(bool install) : installed_(install) {
        signal_received.store(0);
        if (!installed_) return;
        struct sigaction action {};
        action.sa_handler = &projectionist_cli_on_stop_signal;
        sigemptyset(&action.sa_mask);
        action.sa_flags = 0;
        ::sigaction(SIGINT, nullptr, &old_int_);
        ::sigaction(SIGTERM, nullptr, &old_term_);
        previous_on_int = old_int_;
        previous_on_term = old_term_;
        ::sigaction(SIGINT, &action, nullptr);
        ::sigaction(SIGTERM, &action, nullptr);
    }
    signal_scope(const signal_scope&) = delete;
    signal_scope& operator=(const signal_scope&) = delete;
    ~signal_scope() {
        if (!installed_) return;
        ::sigaction(SIGINT, &old_int_, nullptr);
        ::sigaction(SIGTERM, &old_term_, nullptr);
    }
    [[nodiscard]] int received() const noexcept { return signal_received.load(); }

private:
    bool installed_;
    struct sigaction old_int_ {};
    struct sigaction old_term_ {};
};

inline std::string_view signal_name(int signal) {
    switch (signal) {
        case SIGINT: return "SIGINT";
        case SIGTERM: return "SIGTERM";
        default: return "a signal";
    }
}

}  // namespace projectionist::detail::cli
