#pragma once

/// The command line of blue-green deployments, embedded in the application's own executable:
/// a console for each step of a deployment, as `./app init tickets_v2`.
///
///     #include <projectionist/cli.hpp>        // link projectionist::tools
///
///     int main(int argc, char** argv) {
///         projectionist::sqlite_event_store store("app.db");
///         projectionist::sqlite_storage storage("app.db");
///         tickets_deployment versions(store, storage);           // projectionist::deployment<...>
///         projectionist::router<tickets<1>, tickets<2>> router(storage);
///         projectionist::command_line cli;
///         cli.add(versions, router, {.options = {.expected_changes = {"status", "reopened"}}});
///         return cli.main(argc, argv);                           // or cli.run(args, out, err)
///     }
///
///     $ ./app status
///     $ ./app init tickets_v2
///     $ ./app backfill tickets_v2                 # a progress bar on a terminal, plain lines otherwise
///     $ ./app verify tickets_v1 tickets_v2 --expect-change status [--json]
///     $ ./app switch tickets --to tickets_v2 --percent 10
///     $ ./app switch tickets --to tickets_v2      # every query
///     $ ./app live tickets_v2
///     $ ./app delete tickets_v1
///
/// **API.** `command_line(command_line_options)`; `add(deployment, router, verify_settings)` or
/// `add(deployment, projectionist::no_router, verify_settings)` per projection (held by
/// reference; a router over the deployment's versions or a subset, checked at compile time),
/// or `add(any_controller&)` for a controller the application drives too;
/// `main(argc, argv)` (std::cout, std::cerr, isatty, the program name from argv[0]) or
/// `run(args, out, err)` (any streams: tests capture the output) returning the exit status;
/// `general_usage()` and `command_usage(name)` give the help texts. The options inject the
/// terminal decision, the stop token of `run`, signal handling and the progress cadence.
///
/// **Commands** (`<command> --help` for each; `help` for all):
///   - `init <version>`, `backfill <version>`, `catch-up [<version>|<projection>]`, `live <version>`,
///     `reset <version>`, `delete <version>`: the deployment's life-cycle steps by name.
///   - `status [<projection>|<version>]`: per version its state, live flag, position, head, lag,
///     partitioning, the traffic the router sends it, and its error or note; then the router's line.
///   - `verify <A> <B> [--expect-change COLUMN]... [--key KEY]... [--json]`: a structural diff of
///     the two versions' main tables (their first table declaration), plus a spot check of the
///     given keys, as text or JSON; the exit status is `verify::exit_status` (0 pass, 1 fail).
///     Expected changes are those registered with `add` (for every pair, or for one pair) plus the
///     `--expect-change` columns, which must be columns of A or B.
///   - `switch <projection> --to <version> [--percent N]`: with a share below 100, the version
///     becomes the router's candidate (`rollout_basis_points`; N may have two decimals); without
///     one, or with 100, `deployment.serve(version)` then `router.switch_to(version)`. Either way
///     the version must have caught up first.
///   - `rollback <projection>`: cancels the candidate, or puts the previous primary back (marking
///     it serving again); refused when the previous primary has been deleted since.
///   - `run [--for DURATION]`: follows the log with every version until SIGINT or SIGTERM, the
///     options' stop token, or the duration; then returns 0, or 1 if a version stopped on an error.
///   - `rollout <projection> --to <version> [--steps 1,10,50,100] [--every 10m] [--max-discrepancy
///     0.1%] [--min-shadow 1000] ...`, `rollout status [<projection>]`, `rollout abort
///     [<projection>]`: a rollout plan (deploy/rollout/rollout.hpp) of a projection whose
///     `rollout` object was registered with `add(any_rollout&)`; starting one checks the
///     structural diff and applies the first step at once (exit 1 if a gate refused it).
///
/// **Exit status**: 0 success (and a passing verify); 1 an operation the life cycle refused
/// (`state_error`), any other `projectionist::error`, or a failing verify; 2 a usage error: an
/// unknown command, option, projection or version (the message lists the valid ones), a missing
/// or extra argument (the command's usage follows).
///
/// **Names** typed by a user are only ever compared with the registered deployments' names,
/// which are compile-time constants; nothing typed is ever put into SQL. (Verify keys are bound
/// as parameters by the storage, like any key.)
///
/// **Safety of traffic.** The commands are thin: each rule is the blue-green controller's
/// (deploy/controller.hpp), which an application can call directly. `reset` and `delete` are
/// refused for a version the router still sends queries to (primary or candidate), besides the
/// deployment's own refusal for a serving version; then they wait, up to `drain_timeout`, for
/// the queries in flight on that version (`router.wait_for_drain`: meaningful when the command
/// line runs inside the process that serves queries; another process's queries are not visible
/// here). Versions that are deleted are skipped by `catch-up` and `run`: catching up would
/// re-create an auto-kick-off version.
///
/// **Progress of a backfill**: the backfill runs on the calling thread; a watcher thread polls
/// the runner's `status()` every `progress_interval` (a snapshot under a mutex and one head
/// query: the backfill is not slowed down). On a terminal (`terminal`, by default: the output
/// is std::cout and isatty(1)) one line is redrawn with a bar, events/s and the ETA; otherwise a
/// plain line with the same is printed every `progress_line_interval`, plus a start and a final
/// line. `run` prints, every `run_report_interval`, a line per version that applied events or is
/// behind: events applied and events/s over the interval, position, lag and the ETA at that rate.
/// `run --metrics ADDRESS:PORT` serves /metrics, /healthz and /readyz (observe/http.hpp) while
/// it runs.
///
/// **Threads**: one command at a time per command_line object. The deployments and routers are
/// held by reference and must outlive the command line; while a command runs, nothing else may
/// drive the same deployment's runners. `run` installs SIGINT and SIGTERM handlers for its
/// duration only (and restores the previous ones) unless `handle_signals` is false; two `run`s
/// at once in one process would share the flag they set.
///
/// **Files** (cli/): options.hpp (`command_line_options`), parser.hpp (the commands' table and
/// the argument parser), progress.hpp (a backfill's progress), metrics_server.hpp (`run --metrics`), signals.hpp
/// (SIGINT/SIGTERM for `run`), commands.hpp and run.hpp (the commands over the controller), rollout_commands.hpp
/// (`rollout`), usage.hpp (the help texts), command_line.hpp (`command_line`).

#include <projectionist/cli/command_line.hpp>
#include <projectionist/cli/options.hpp>
#include <projectionist/deploy/controller.hpp>
