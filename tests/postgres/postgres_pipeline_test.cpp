// Pipelined batches on PostgreSQL (postgres_options::pipeline): the round trips a batch takes with
// and without pipelines, that a pipeline reports its first failure as the statement run alone
// would and leaves the connection usable, that a checkpoint which does not move at commit, a
// table write the server refuses and a connection lost during a pipelined commit commit nothing,
// and that a runner then resumes without losing or repeating an event.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <postgres_test_support.hpp>
#include <projectionist/postgres.hpp>
#include <tickets_domain.hpp>

namespace postgres_pipeline_test {

namespace pj = projectionist;
using namespace tickets_domain;
using Catch::Contains;
using postgres_test::pg_url;
using postgres_test::scoped_schema;

namespace {

using ticket_table = pj::table<ticket_row, &ticket_row::ticket_id>;
using pipeline = pj::detail::pg::connection::pipeline;

pj::postgres_options options_of(const scoped_schema& schema, bool pipelined) {
    auto o = schema.options();
    o.pipeline = pipelined;
    return o;
}

std::int64_t count_rows(scoped_schema& schema, const std::string& table) {
    return postgres_test::scalar(
        schema.connection(), fmt::format("SELECT count(*) FROM {}.{}", schema.quoted(), pj::detail::pg::quote(table)));
}

std::int64_t checkpoint_of(scoped_schema& schema, const std::string& projection) {
    return postgres_test::scalar(schema.connection(),
                                 fmt::format("SELECT coalesce((SELECT position FROM {}.projectionist_checkpoints WHERE "
                                             "projection = {}), -1)",
                                             schema.quoted(), pj::detail::pg::literal(projection)));
}

/// The first write of the row `ticket_id` into `table` to reach the server ends the backend that
/// sends it (a trigger, once per schema); later writes of it go through.
void kill_backend_on_write(scoped_schema& schema, std::string_view table, std::string_view ticket_id) {
    schema.connection().exec(fmt::format(
        "CREATE SEQUENCE {0}.pj_kill_once; "
        "CREATE FUNCTION {0}.pj_kill() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.ticket_id = {2} THEN IF nextval('{1}.pj_kill_once') = 1 THEN "
        "PERFORM pg_terminate_backend(pg_backend_pid()); END IF; END IF; RETURN NEW; END $$; "
        "CREATE TRIGGER pj_kill BEFORE INSERT OR UPDATE ON {0}.{3} FOR EACH ROW EXECUTE FUNCTION {0}.pj_kill()",
        schema.quoted(), schema.name(), pj::detail::pg::literal(ticket_id), pj::detail::pg::quote(table)));
}

/// The round trips of a batch like a live runner's: begin, the prefetch of the keys it touches
/// (inside begin's opening when `joined`, as a runner does on PostgreSQL, or after it), an insert,
/// an update and an erase, commit moving the checkpoint and two aggregates' positions. Measured on
/// the session's third batch, once the statements are prepared.
std::uint64_t batch_round_trips(bool pipelined, bool joined = false) {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), options_of(schema, pipelined));
    auto s = storage.open("x_v1");
    auto& t = s.create_table<ticket_table>("x_v1");
    (void)s.load_checkpoint();
    std::uint64_t position = 0;
    std::uint64_t used = 0;
    for (int round = 0; round < 3; ++round) {
        const std::string added = "n" + std::to_string(round), changed = "c" + std::to_string(round);
        const std::string gone = "c" + std::to_string(round - 1);
        const std::uint64_t before = s.round_trips();
        const std::vector<std::string> keys{added, changed, gone};
        const std::vector<const std::string*> wanted{&keys[0], &keys[1], &keys[2]};
        const auto prefetch = [&] { t.prefetch(std::span<const std::string* const>(wanted)); };
        if (joined) {
            s.begin(prefetch);
        } else {
            s.begin();
            prefetch();
        }
        // The rows read are kept for the batch: reading them costs no round trip.
        const std::uint64_t opened = s.round_trips();
        const std::optional<ticket_row> kept = t.find(gone);
        CHECK(kept.has_value() == (round > 0));
        if (kept) CHECK(kept->reopened == round - 1);
        CHECK_FALSE(t.find(added).has_value());
        CHECK(s.round_trips() == opened);
        t.insert({added, "bug", "open", 0});
        t.upsert({changed, "bug", "open", round});
        (void)t.erase(gone);
        pj::checkpoint cp;
        cp.position = ++position;
        cp.aggregate_versions = {0, position, position};
        const std::vector<std::uint64_t> aggregates{1, 2};
        s.commit(cp, aggregates);
        used = s.round_trips() - before;
    }
    CHECK(count_rows(schema, "x_v1") == 4);  // n0, n1, n2, c2
    CHECK(checkpoint_of(schema, "x_v1") == 3);
    return used;
}

/// The message of the projectionist::error `f` throws, with its kind checked.
template <class Error, class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    FAIL("no error of the expected kind");
    return {};
}

/// A batch over two tables whose second table's write is refused by a CHECK constraint when the
/// writes are sent: the error (its kind and words), that nothing was committed, that the next
/// batch fails the write where it is made, and that the session commits afterwards.
std::string refused_write(bool pipelined) {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), options_of(schema, pipelined));
    auto s = storage.open("x_v1");
    auto& a = s.create_table<ticket_table>("x_v1");
    auto& b = s.create_table<ticket_table>("y_v1");
    a.insert({"kept", "bug", "open", 0});
    schema.connection().exec(
        fmt::format("ALTER TABLE {}.y_v1 ADD CONSTRAINT y_reopened CHECK (reopened >= 0)", schema.quoted()));
    (void)s.load_checkpoint();

    s.begin();
    a.insert({"fine", "bug", "open", 0});
    CHECK(a.update("kept", [](ticket_row& r) { r.status = "closed"; }));
    b.insert({"refused", "bug", "open", -1});
    const std::string what = message_of<pj::postgres_batch_retry>([&] { s.commit(pj::checkpoint{1, {}, 0}, {}); });
    s.rollback();
    CHECK(count_rows(schema, "x_v1") == 1);
    CHECK(count_rows(schema, "y_v1") == 0);
    CHECK(checkpoint_of(schema, "x_v1") == -1);
    CHECK(s.reload_checkpoint().position == 0);
    auto status = s.connection().query("SELECT status FROM x_v1 WHERE ticket_id = 'kept'");
    CHECK(status.text(0, 0) == "open");

    // The replay sends each write at once: the refused one fails in place.
    s.begin();
    a.insert({"fine", "bug", "open", 0});
    CHECK_THROWS_AS(b.insert({"refused", "bug", "open", -1}), pj::table_error);
    s.rollback();
    // And a batch that goes through turns buffering back on.
    s.begin();
    a.insert({"fine", "bug", "open", 0});
    b.insert({"accepted", "bug", "open", 1});
    s.commit(pj::checkpoint{1, {}, 0}, {});
    CHECK(count_rows(schema, "x_v1") == 2);
    CHECK(count_rows(schema, "y_v1") == 1);
    CHECK(checkpoint_of(schema, "x_v1") == 1);
    s.begin();
    a.insert({"buffered", "bug", "open", 0});
    CHECK(a.pending_writes() == 1);
    s.commit(pj::checkpoint{2, {}, 0}, {});
    CHECK(count_rows(schema, "x_v1") == 3);
    // The schema's name is the only thing that differs between the two runs' messages.
    std::string out = what;
    for (auto at = out.find(schema.name()); at != std::string::npos; at = out.find(schema.name()))
        out.replace(at, schema.name().size(), "<schema>");
    return out;
}

}  // namespace

TEST_CASE("a pipelined batch takes four round trips: begin, prefetch, the writes with the checkpoint, commit",
          "[postgres][pipeline]") {
    const std::uint64_t pipelined = batch_round_trips(true);
    const std::uint64_t plain = batch_round_trips(false);
    // BEGIN + the checkpoint's lock; the prefetch; the erase, insert, upsert, checkpoint and
    // aggregates; COMMIT.
    CHECK(pipelined == 4);
    // BEGIN; the lock; the prefetch; erase; insert; upsert; the checkpoint; the aggregates; COMMIT.
    CHECK(plain == 9);
    CHECK(pj::postgres_options{}.pipeline);
}

TEST_CASE("a batch whose prefetch is made in begin's opening takes three round trips", "[postgres][pipeline]") {
    static_assert(pj::has_prefetching_begin<pj::postgres_storage>);
    // BEGIN + the lock + the prefetch; the writes with the checkpoint and aggregates; COMMIT.
    CHECK(batch_round_trips(true, true) == 3);
    // Not pipelined, the same statements one at a time.
    CHECK(batch_round_trips(false, true) == 9);
}

TEST_CASE("a prefetch in begin's opening that fails fails begin, with the transaction rolled back",
          "[postgres][pipeline]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), options_of(schema, true));
    auto s = storage.open("x_v1");
    auto& t = s.create_table<ticket_table>("x_v1");
    (void)s.load_checkpoint();
    // The prefetch's statement, prepared by an earlier batch, now refers to a column gone.
    const std::vector<std::string> keys{"a"};
    const std::vector<const std::string*> wanted{&keys[0]};
    s.begin([&] { t.prefetch(std::span<const std::string* const>(wanted)); });
    t.insert({"a", "bug", "open", 0});
    s.commit(pj::checkpoint{1, {}, 0}, {});
    schema.connection().exec(fmt::format("ALTER TABLE {}.x_v1 RENAME COLUMN status TO state", schema.quoted()));
    CHECK_THROWS_AS(s.begin([&] { t.prefetch(std::span<const std::string* const>(wanted)); }), pj::postgres_error);
    CHECK_FALSE(s.connection().in_transaction());
    schema.connection().exec(fmt::format("ALTER TABLE {}.x_v1 RENAME COLUMN state TO status", schema.quoted()));
    // The session goes on: the next batch opens, reads the row and commits.
    s.begin([&] { t.prefetch(std::span<const std::string* const>(wanted)); });
    CHECK(t.find("a").has_value());
    s.commit(pj::checkpoint{2, {}, 0}, {});
    CHECK(checkpoint_of(schema, "x_v1") == 2);
}

TEST_CASE("a pipeline reports its first failure as the statement alone would, and leaves the connection usable",
          "[postgres][pipeline]") {
    auto db = postgres_test::raw_connection();
    const std::string alone = message_of<pj::postgres_error>([&] { (void)db.query("SELECT 1/0"); });

    SECTION("a failed statement: the rest are skipped, the handlers before it ran") {
        std::vector<int> seen;
        const std::uint64_t before = db.round_trips();
        pipeline pl(db);
        pl.add_query("BEGIN");
        pl.add_query("SELECT 7", {},
                     [&](pipeline::answer& a) { seen.push_back(static_cast<int>(a.take().int64(0, 0))); });
        pl.add_query("SELECT 1/0", {}, [&](pipeline::answer& a) {
            (void)a.take();
            seen.push_back(-1);
        });
        pl.add_query("SELECT 8", {}, [&](pipeline::answer&) { seen.push_back(8); });
        try {
            pl.run();
            FAIL("no error");
        } catch (const pj::postgres_error& e) {
            CHECK(e.sqlstate() == "22012");
            CHECK(std::string(e.what()) == alone);
        }
        CHECK(seen == std::vector<int>{7});
        CHECK(db.round_trips() == before + 1);
        CHECK(PQpipelineStatus(db.get()) == PQ_PIPELINE_OFF);
        CHECK(db.in_transaction());
        db.exec("ROLLBACK");
    }
    SECTION("a handler that throws: the answers after it are dropped") {
        pipeline pl(db);
        pl.add_query("SELECT 1", {}, [](pipeline::answer&) { throw std::runtime_error("handler"); });
        pl.add_query("SELECT 2");
        CHECK_THROWS_WITH(pl.run(), "handler");
        CHECK(PQpipelineStatus(db.get()) == PQ_PIPELINE_OFF);
    }
    SECTION("an exception before the run: the statements sent are answered and dropped") {
        try {
            pj::detail::pg::params one;
            one.add(1);
            pipeline pl(db);
            pl.add_prepared("pj_pipeline_test_probe", "SELECT $1::integer + 1", one);
            throw std::runtime_error("midway");
        } catch (const std::runtime_error&) {
        }
        CHECK(PQpipelineStatus(db.get()) == PQ_PIPELINE_OFF);
        // Prepared in the abandoned pipeline: known to the connection, not prepared twice.
        pj::detail::pg::params p;
        p.add(41);
        db.prepare("pj_pipeline_test_probe", "SELECT $1::integer + 1");
        CHECK(db.execute("pj_pipeline_test_probe", p).int64(0, 0) == 42);
    }
    SECTION("a lost connection: reported as lost, then opened again") {
        const int pid = db.backend_pid();
        pipeline pl(db);
        pl.add_query("BEGIN");
        pl.add_query("SELECT pg_terminate_backend(pg_backend_pid())");
        pl.add_query("SELECT 2");
        try {
            pl.run();
            FAIL("no error");
        } catch (const pj::postgres_storage_error& e) {
            CHECK(e.connection_lost());
        }
        // Inside a transaction: refused until rolled back, then a new connection.
        CHECK_THROWS_AS(db.query("SELECT 3"), pj::postgres_storage_error);
        db.exec("ROLLBACK");
        CHECK(postgres_test::scalar(db, "SELECT 3") == 3);
        CHECK(db.backend_pid() != pid);
    }
    CHECK(postgres_test::scalar(db, "SELECT 5") == 5);
    CHECK_FALSE(db.in_transaction());
}

TEST_CASE("pipelined, a checkpoint that does not move at commit commits nothing", "[postgres][pipeline]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
    auto s = storage.open("x_v1");
    REQUIRE(s.pipelined());
    auto& t = s.create_table<ticket_table>("x_v1");
    (void)s.load_checkpoint();
    s.begin();
    t.insert({"a", "bug", "open", 0});
    s.commit(pj::checkpoint{1, {}, 0}, {});
    // The compare-and-set at commit finds no row to move (as if another runner had moved it past
    // the lock): the UPDATE succeeds with no row changed, and COMMIT must not follow it.
    schema.connection().exec(fmt::format(
        "CREATE FUNCTION {0}.pj_skip() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$; "
        "CREATE TRIGGER pj_skip BEFORE UPDATE ON {0}.projectionist_checkpoints FOR EACH ROW EXECUTE FUNCTION "
        "{0}.pj_skip()",
        schema.quoted()));
    s.begin();
    t.insert({"b", "bug", "open", 0});
    CHECK(t.update("a", [](ticket_row& r) { r.status = "closed"; }));
    CHECK_THROWS_WITH(s.commit(pj::checkpoint{2, {}, 0}, {}), Contains("was moved by another runner"));
    s.rollback();
    CHECK(count_rows(schema, "x_v1") == 1);
    CHECK(checkpoint_of(schema, "x_v1") == 1);
    auto status = s.connection().query("SELECT status FROM x_v1 WHERE ticket_id = 'a'");
    CHECK(status.text(0, 0) == "open");

    schema.connection().exec(fmt::format("DROP TRIGGER pj_skip ON {}.projectionist_checkpoints", schema.quoted()));
    s.begin();
    t.insert({"b", "bug", "open", 0});
    s.commit(pj::checkpoint{2, {}, 0}, {});
    CHECK(count_rows(schema, "x_v1") == 2);
    CHECK(checkpoint_of(schema, "x_v1") == 2);
}

TEST_CASE("a table write refused inside the pipeline is the same error as without one, and commits nothing",
          "[postgres][pipeline]") {
    const std::string pipelined = refused_write(true);
    const std::string plain = refused_write(false);
    CHECK_THAT(pipelined, Contains("'y_v1'") && Contains("y_reopened") && Contains("nothing was committed"));
    CHECK(pipelined == plain);
}

TEST_CASE("a connection lost during a pipelined commit is reported as lost; the session goes on on a new one",
          "[postgres][pipeline]") {
    scoped_schema schema;
    pj::postgres_storage storage(pg_url(), schema.options());
    auto s = storage.open("x_v1");
    auto& t = s.create_table<ticket_table>("x_v1");
    (void)s.load_checkpoint();
    s.begin();
    t.insert({"a", "bug", "open", 0});
    s.commit(pj::checkpoint{1, {}, 0}, {});
    // A write of "doomed" ends the backend that sends it, once.
    kill_backend_on_write(schema, "x_v1", "doomed");
    const int pid = PQbackendPID(s.raw());
    s.begin();
    t.insert({"doomed", "bug", "open", 0});
    CHECK(t.update("a", [](ticket_row& r) { r.status = "closed"; }));
    try {
        s.commit(pj::checkpoint{2, {}, 0}, {});
        FAIL("the commit went through");
    } catch (const pj::postgres_storage_error& e) {
        CHECK(e.connection_lost());
    }
    CHECK(PQpipelineStatus(s.raw()) == PQ_PIPELINE_OFF);
    s.rollback();
    CHECK(count_rows(schema, "x_v1") == 1);
    CHECK(checkpoint_of(schema, "x_v1") == 1);
    // The next batch opens a new connection and commits what the lost one did not.
    s.begin();
    t.insert({"doomed", "bug", "open", 0});
    CHECK(t.update("a", [](ticket_row& r) { r.status = "closed"; }));
    s.commit(pj::checkpoint{2, {}, 0}, {});
    CHECK(PQbackendPID(s.raw()) != pid);
    CHECK(count_rows(schema, "x_v1") == 2);
    CHECK(checkpoint_of(schema, "x_v1") == 2);
}

TEST_CASE("a connection lost during a pipelined commit stops the runner; a new one applies every event once",
          "[postgres][pipeline]") {
    scoped_schema schema;
    pj::postgres_event_store store(pg_url(), schema.options());
    constexpr int tickets_count = 12;
    for (int i = 0; i < tickets_count; ++i) append_ticket(store, "t-" + std::to_string(i), "bug", i % 3, false);
    const auto head = static_cast<std::int64_t>(store.head());
    pj::runner_options o;
    o.batch_size = 5;
    o.backfill = pj::backfill_mode::batch;
    std::uint64_t stopped_at = 0;
    {
        pj::postgres_storage storage(pg_url(), schema.options());
        pj::runner<tickets<2>, pj::postgres_storage> r(store, storage, o);
        (void)r.init();
        // The first write of t-7 reaching the server ends the session's backend, once: in the
        // middle of the commit's pipeline.
        kill_backend_on_write(schema, "tickets_v2", "t-7");
        CHECK_THROWS_AS(r.catch_up(), pj::error);
        REQUIRE(r.status().error);
        CHECK_THAT(*r.status().error, Contains("connection"));
        stopped_at = r.position();
        CHECK(stopped_at < static_cast<std::uint64_t>(head));
        CHECK(checkpoint_of(schema, "tickets_v2") == static_cast<std::int64_t>(stopped_at));
    }
    pj::postgres_storage storage(pg_url(), schema.options());
    pj::runner<tickets<2>, pj::postgres_storage> r(store, storage, o);
    CHECK(r.position() == stopped_at);
    r.catch_up();
    CHECK(checkpoint_of(schema, "tickets_v2") == head);
    auto table = storage.find_table<ticket_table>("tickets_v2");
    REQUIRE(table.has_value());
    std::vector<ticket_row> rows;
    table->for_each([&](const ticket_row& row) { rows.push_back(row); });
    std::vector<ticket_row> expected;
    for (int i = 0; i < tickets_count; ++i) expected.push_back({"t-" + std::to_string(i), "bug", "open", i % 3});
    std::sort(expected.begin(), expected.end(),
              [](const ticket_row& x, const ticket_row& y) { return x.ticket_id < y.ticket_id; });
    CHECK(rows == expected);
}

}  // namespace postgres_pipeline_test
