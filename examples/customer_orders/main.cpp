// Immutable projections: the customer-support dashboard of an e-commerce platform.
//
// v1 (customer_orders_v1) was written when a customer could place ONE order per transaction: it
// keeps one CustomerOrder row per order that also holds the transaction's data (total, amount
// paid, payment status). Then the business starts selling several orders per transaction, and
// v1 cannot represent that: it finds "the" order of a transaction, so a payment lands on one
// order of the transaction and the others stay "awaiting payment", and each order's
// "transaction total" is its own price.
//
// v1 is never altered. v2 (customer_orders_v2) is a copy with a 1-N model: a transactions table
// and an orders table. It is deployed beside v1 over the same SQLite log with manual kick-off,
// initialized and backfilled while v1 keeps serving, verified against v1 (orders of single-order
// transactions must agree; orders of multi-order transactions must differ, in the transaction's
// fields only), and the query dispatcher's get_order is routed through a feature toggle (the
// router): internal users first, then everyone, then a rollback (the safety net), then everyone
// again; v2 is made live and v1 deleted. Every step is printed; the program checks each outcome
// and exits 1 if one is not what it prints.
//
// The SQLite file (customer-orders-demo.db in the current directory) is removed at the end.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <sqlite3.h>

#include <fmt/format.h>
#include <boost/hana/define_struct.hpp>

#include <projectionist/deploy/deployment.hpp>
#include <projectionist/deploy/router.hpp>
#include <projectionist/deploy/verify.hpp>
#include <projectionist/sqlite.hpp>

namespace pj = projectionist;
namespace verify = projectionist::verify;

// ---- the domain: two streams, the same events for every version -------------------------------
struct transaction_started {
    BOOST_HANA_DEFINE_STRUCT(transaction_started, (std::string, transaction_id), (std::string, customer_id));
    static constexpr std::string_view event_name = "transaction.started";
};
struct transaction_paid {
    BOOST_HANA_DEFINE_STRUCT(transaction_paid, (std::string, transaction_id), (std::int64_t, amount_cents));
    static constexpr std::string_view event_name = "transaction.paid";
};
struct order_placed {
    BOOST_HANA_DEFINE_STRUCT(order_placed, (std::string, order_id), (std::string, transaction_id),
                             (std::string, customer_id), (std::string, product), (std::int64_t, price_cents));
    static constexpr std::string_view event_name = "order.placed";
};
struct order_shipped {
    BOOST_HANA_DEFINE_STRUCT(order_shipped, (std::string, order_id), (std::string, carrier));
    static constexpr std::string_view event_name = "order.shipped";
};
using transaction_stream = pj::stream<"transaction", transaction_started, transaction_paid>;
using order_stream = pj::stream<"order", order_placed, order_shipped>;

// ---- the dashboard's CustomerOrder: v1's row, and the shape of every get_order answer ---------
struct customer_order {
    BOOST_HANA_DEFINE_STRUCT(customer_order, (std::string, order_id), (std::string, transaction_id),
                             (std::string, customer_id), (std::string, product), (std::int64_t, price_cents),
                             (std::int64_t, transaction_total_cents), (std::int64_t, paid_cents),
                             (std::string, payment_status), (std::string, shipping_status));
};

// ---- v2's rows: 1-N, each with its own data ---------------------------------------------------
struct order_row {
    BOOST_HANA_DEFINE_STRUCT(order_row, (std::string, order_id), (std::string, transaction_id), (std::string, product),
                             (std::int64_t, price_cents), (std::string, shipping_status));
};
struct transaction_row {
    BOOST_HANA_DEFINE_STRUCT(transaction_row, (std::string, transaction_id), (std::string, customer_id), (int, orders),
                             (std::int64_t, total_cents), (std::int64_t, paid_cents), (std::string, status));
};

/// The query of the support dashboard.
struct get_order {
    std::string order_id;
};

namespace {

/// v1's assumption, in SQL on the batch's own connection: a transaction has ONE order.
std::optional<std::string> the_order_of(sqlite3* db, std::string_view table, const std::string& transaction_id) {
    const std::string sql = fmt::format("SELECT order_id FROM \"{}\" WHERE transaction_id = ? LIMIT 1", table);
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK)
        throw std::runtime_error(fmt::format("preparing '{}': {}", sql, sqlite3_errmsg(db)));
    const std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> statement(raw, &sqlite3_finalize);
    sqlite3_bind_text(raw, 1, transaction_id.data(), static_cast<int>(transaction_id.size()), SQLITE_TRANSIENT);
    const int rc = sqlite3_step(raw);
    if (rc == SQLITE_ROW) return std::string(reinterpret_cast<const char*>(sqlite3_column_text(raw, 0)));
    if (rc != SQLITE_DONE) throw std::runtime_error(fmt::format("running '{}': {}", sql, sqlite3_errmsg(db)));
    return std::nullopt;
}

/// What v2 says about an order, in the dashboard's shape: the order with its transaction's data.
customer_order dashboard_row(const order_row& o, const std::optional<transaction_row>& t) {
    return {.order_id = o.order_id,
            .transaction_id = o.transaction_id,
            .customer_id = t ? t->customer_id : "",
            .product = o.product,
            .price_cents = o.price_cents,
            .transaction_total_cents = t ? t->total_cents : 0,
            .paid_cents = t ? t->paid_cents : 0,
            .payment_status = t ? t->status : "",
            .shipping_status = o.shipping_status};
}

}  // namespace

// ---- the projection: one name, two versions; v1 is never altered ------------------------------
template <unsigned V>
struct customer_orders;

template <>
struct customer_orders<1> : pj::projection<"customer_orders", 1, transaction_stream, order_stream> {
    using table = pj::table<customer_order, &customer_order::order_id>;

    // transaction.started: no handler, the order does not exist yet (and order.placed names the customer).
    void on(const order_placed& e, auto& ctx) {
        // One order per transaction: the transaction's total is the order's price.
        ctx.table().insert({e.order_id, e.transaction_id, e.customer_id, e.product, e.price_cents, e.price_cents, 0,
                            "awaiting payment", "not shipped"});
    }
    void on(const transaction_paid& e, auto& ctx) {
        const auto order_id = the_order_of(ctx.storage().raw(), ctx.name(), e.transaction_id);
        if (!order_id) return;
        ctx.table().update(*order_id, [&](customer_order& o) {
            o.paid_cents = e.amount_cents;
            o.payment_status = "paid";
        });
    }
    void on(const order_shipped& e, auto& ctx) {
        ctx.table().update(e.order_id, [&](customer_order& o) { o.shipping_status = "shipped with " + e.carrier; });
    }

    /// The dispatcher's get_order, answered from table customer_orders_v1.
    static std::optional<customer_order> ask(const get_order& q, pj::sqlite_storage& storage) {
        auto orders = storage.find_table<table>(pj::name_of<customer_orders>);
        if (!orders) throw pj::error("customer_orders_v1 has no table: it was deleted");
        return orders->find(q.order_id);
    }
};

// Exhaustive: a v2 that forgot an event of either stream would not compile.
template <>
struct customer_orders<2> : pj::projection<"customer_orders", 2, transaction_stream, order_stream, pj::exhaustive> {
    // Two tables: "customer_orders_v2" (orders) and "customer_orders_v2_transactions".
    using order_table = pj::table<order_row, &order_row::order_id>;
    using transaction_table = pj::table<transaction_row, &transaction_row::transaction_id, "transactions">;
    using tables = pj::tables<order_table, transaction_table>;
    static constexpr std::string_view transactions_table = "customer_orders_v2_transactions";

    void on(const transaction_started& e, auto& ctx) {
        ctx.table(pj::rows<transaction_row>).insert({e.transaction_id, e.customer_id, 0, 0, 0, "awaiting payment"});
    }
    void on(const order_placed& e, auto& ctx) {
        ctx.table(pj::rows<order_row>).insert({e.order_id, e.transaction_id, e.product, e.price_cents, "not shipped"});
        ctx.table(pj::rows<transaction_row>).update(e.transaction_id, [&](transaction_row& t) {
            ++t.orders;
            t.total_cents += e.price_cents;
        });
    }
    void on(const transaction_paid& e, auto& ctx) {
        ctx.table(pj::rows<transaction_row>).update(e.transaction_id, [&](transaction_row& t) {
            t.paid_cents = e.amount_cents;
            t.status = "paid";
        });
    }
    void on(const order_shipped& e, auto& ctx) {
        ctx.table(pj::rows<order_row>).update(e.order_id, [&](order_row& o) {
            o.shipping_status = "shipped with " + e.carrier;
        });
    }

    /// The dispatcher's get_order, answered from the orders and transactions tables of v2.
    static std::optional<customer_order> ask(const get_order& q, pj::sqlite_storage& storage) {
        auto orders = storage.find_table<order_table>(pj::name_of<customer_orders>);
        auto transactions = storage.find_table<transaction_table>(transactions_table);
        if (!orders || !transactions) throw pj::error("customer_orders_v2 has no tables: it was deleted");
        const auto order = orders->find(q.order_id);
        if (!order) return std::nullopt;
        return dashboard_row(*order, transactions->find(order->transaction_id));
    }
};

using runner_v1 = pj::runner<customer_orders<1>, pj::sqlite_storage>;
using runner_v2 = pj::runner<customer_orders<2>, pj::sqlite_storage, pj::manual_kickoff>;
using dashboard_router = pj::router<customer_orders<1>, customer_orders<2>>;

static_assert(pj::name_of<customer_orders<1>> == "customer_orders_v1");
static_assert(pj::name_of<customer_orders<2>> == "customer_orders_v2");
static_assert(runner_v1::handler_table::size == 3 && !runner_v1::handler_table::handles<transaction_started>);
static_assert(runner_v2::handler_table::size == 4 && runner_v2::handler_table::handles<transaction_started>);
static_assert(runner_v2::kickoff::manual && !runner_v1::kickoff::manual);
static_assert(pj::deployment<runner_v1, runner_v2>::names[1] == "customer_orders_v2");
static_assert(dashboard_router::version_names[0] == "customer_orders_v1");

namespace {

int failures = 0;
void check(bool ok, std::string_view what) {
    fmt::print("  [{}] {}\n", ok ? "ok" : "FAILED", what);
    if (!ok) ++failures;
}
void step(std::string_view title) {
    fmt::print("\n== {}\n", title);
}
void print_status(const pj::runner_status& s) {
    fmt::print("  {:<18} state={:<12} live={:<5} position={:<4} head={:<4} lag={:<4} applied={}{}\n", s.name,
               pj::to_string(s.state), s.live, s.position, s.head, s.lag, s.events_applied,
               s.note.empty() ? "" : "  (" + s.note + ")");
}
std::string money(std::int64_t cents) {
    return fmt::format("{}.{:02}", cents / 100, cents % 100);
}
std::string describe(const std::optional<customer_order>& o) {
    if (!o) return "no such order";
    return fmt::format("{} {} ({}): transaction {} total {}, paid {}, {}; {}", o->order_id, o->product,
                       money(o->price_cents), o->transaction_id, money(o->transaction_total_cents),
                       money(o->paid_cents), o->payment_status, o->shipping_status);
}

/// The shop's traffic: a transaction with its orders, a payment of the whole, some shipments.
class shop {
public:
    explicit shop(pj::sqlite_event_store& store) : store_(store) {}

    struct sale {
        std::string transaction_id;
        std::vector<std::string> order_ids;
    };

    sale sell(const std::string& customer, const std::vector<std::pair<std::string, std::int64_t>>& items, bool pay,
              std::size_t shipped) {
        sale s{fmt::format("tx-{:04}", next_transaction_++), {}};
        const auto started =
            store_.append(transaction_stream{}, s.transaction_id, 0, transaction_started{s.transaction_id, customer});
        std::int64_t total = 0;
        for (const auto& [product, price] : items) {
            s.order_ids.push_back(fmt::format("o-{:04}", next_order_++));
            store_.append(order_stream{}, s.order_ids.back(), 0,
                          order_placed{s.order_ids.back(), s.transaction_id, customer, product, price});
            total += price;
        }
        if (pay)
            store_.append(transaction_stream{}, s.transaction_id, started.version,
                          transaction_paid{s.transaction_id, total});
        for (std::size_t i = 0; i < shipped && i < s.order_ids.size(); ++i)
            store_.append(order_stream{}, s.order_ids[i], 1, order_shipped{s.order_ids[i], i % 2 ? "DHL" : "UPS"});
        if (s.order_ids.size() > 1) multi_order_transactions.insert(s.transaction_id);
        ++transactions;
        orders += s.order_ids.size();
        return s;
    }

    /// `n` transactions of the single-order era (or of customers who still buy one thing).
    std::vector<sale> single_orders(int n) {
        static constexpr std::pair<std::string_view, std::int64_t> catalog[] = {
            {"espresso machine", 24900}, {"coffee beans 1kg", 1850}, {"milk frother", 3999}, {"grinder", 8950}};
        std::vector<sale> out;
        for (int i = 0; i < n; ++i) {
            const auto& [product, price] = catalog[static_cast<std::size_t>(i) % 4];
            out.push_back(sell(fmt::format("cust-{}", 1000 + i % 17), {{std::string(product), price}}, i % 5 != 4,
                               i % 3 == 0 ? 1 : 0));
        }
        return out;
    }

    /// `n` transactions of the new business: two or three orders each.
    std::vector<sale> multi_orders(int n) {
        std::vector<sale> out;
        for (int i = 0; i < n; ++i) {
            std::vector<std::pair<std::string, std::int64_t>> items{{"coffee beans 1kg", 1850}, {"milk frother", 3999}};
            if (i % 2 == 1) items.emplace_back("descaler", 1299);
            out.push_back(
                sell(fmt::format("cust-{}", 2000 + i % 7), items, i % 4 != 3, static_cast<std::size_t>(i % 3)));
        }
        return out;
    }

    std::set<std::string> multi_order_transactions;
    std::size_t transactions = 0;
    std::size_t orders = 0;

private:
    pj::sqlite_event_store& store_;
    int next_transaction_ = 1;
    int next_order_ = 1;
};

/// What v2 says about every order, in the dashboard's shape (v1's row): its orders joined with
/// their transactions. A table handle for projectionist::verify (for_each, find, table_type).
class v2_dashboard_view {
public:
    using table_type = pj::table<customer_order, &customer_order::order_id>;
    using row_type = customer_order;
    using key_type = std::string;

    explicit v2_dashboard_view(pj::sqlite_storage& storage) {
        auto orders = storage.find_table<customer_orders<2>::order_table>("customer_orders_v2");
        auto transactions =
            storage.find_table<customer_orders<2>::transaction_table>(customer_orders<2>::transactions_table);
        if (!orders || !transactions) throw pj::error("customer_orders_v2 has no tables");
        orders->for_each([&](const order_row& o) {
            rows_.emplace(o.order_id, dashboard_row(o, transactions->find(o.transaction_id)));
        });
    }
    [[nodiscard]] std::string_view name() const noexcept { return "customer_orders_v2 (orders + transactions)"; }
    [[nodiscard]] const customer_order* find(const std::string& order_id) const {
        const auto it = rows_.find(order_id);
        return it == rows_.end() ? nullptr : &it->second;
    }
    template <class F>
    void for_each(F&& fn) const {
        for (const auto& [id, row] : rows_) fn(row);
    }

private:
    std::map<std::string, customer_order> rows_;
};

/// The dashboard's query dispatcher: get_order goes to the version the feature toggle picks for the user.
struct answer {
    std::string_view version;
    std::optional<customer_order> order;
};
class query_dispatcher {
public:
    query_dispatcher(pj::sqlite_storage& storage, dashboard_router& router) : storage_(storage), router_(router) {}

    answer dispatch(std::string_view user, const get_order& q) const {
        return router_.query(user, [&]<class P>(std::type_identity<P>) {
            return answer{pj::name_of<P>, P::ask(q, storage_)};
        });
    }

private:
    pj::sqlite_storage& storage_;
    dashboard_router& router_;
};

const std::vector<std::string> users{"staff-ana", "staff-ben", "cust-1001", "cust-2003", "cust-2005"};
bool internal(std::string_view user) {
    return user.starts_with("staff-");
}

/// Every user asks for `order_id`; prints who got which version's answer; returns user -> version.
std::map<std::string, std::string> ask_everyone(const query_dispatcher& dispatcher, const std::string& order_id) {
    std::map<std::string, std::string> seen;
    for (const auto& user : users) {
        const answer a = dispatcher.dispatch(user, get_order{order_id});
        fmt::print("  {:<10} -> {:<18} {}\n", user, a.version, describe(a.order));
        seen[user] = std::string(a.version);
    }
    return seen;
}
bool all_got(const std::map<std::string, std::string>& seen, std::string_view version) {
    for (const auto& [user, v] : seen)
        if (v != version) return false;
    return true;
}

void remove_database(const std::string& path) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

}  // namespace

int main() {
    const std::string path = "customer-orders-demo.db";
    remove_database(path);
    try {
        pj::sqlite_event_store store(path);
        pj::sqlite_storage storage(path);
        shop traffic(store);
        fmt::print("event log and read models: {}\n", path);

        step("the single-order era: v1 serves the support dashboard");
        // The release before v2 existed: a deployment of one version.
        auto release_1 = std::make_unique<pj::deployment<runner_v1>>(store, storage);
        traffic.single_orders(40);
        release_1->catch_up();
        release_1->make_live("customer_orders_v1");
        release_1->serve("customer_orders_v1");
        for (const auto& s : release_1->status()) print_status(s);
        {
            const auto o = customer_orders<1>::ask(get_order{"o-0001"}, storage);
            fmt::print("  get_order o-0001 (v1): {}\n", describe(o));
            check(o && o->payment_status == "paid" && o->transaction_total_cents == o->price_cents,
                  "v1 answers correctly while every transaction has one order");
        }

        step("the business starts selling several orders per transaction: v1 cannot represent them");
        traffic.single_orders(5);
        const auto multi = traffic.multi_orders(12);
        traffic.single_orders(5);
        release_1->catch_up();
        const auto featured = multi.front();  // two orders (18.50 + 39.99), paid in one payment of 58.49
        int v1_right = 0;
        for (const auto& id : featured.order_ids) {
            const auto o = customer_orders<1>::ask(get_order{id}, storage);
            fmt::print("  v1 says {}\n", describe(o));
            if (o && o->payment_status == "paid" && o->transaction_total_cents == 1850 + 3999) ++v1_right;
        }
        fmt::print("  ... but the customer paid {} for the {} orders of transaction {}\n", money(1850 + 3999),
                   featured.order_ids.size(), featured.transaction_id);
        check(v1_right == 0, "v1 shows no order of that transaction with its real total and payment");

        step("release 2 ships customer_orders_v2 beside v1 (manual kick-off): dormant");
        release_1.reset();  // the application restarts with the new release
        pj::deployment<runner_v1, runner_v2> d(store, storage);
        traffic.single_orders(3);
        d.catch_up();  // v1 follows; v2 does nothing until it is initialized
        for (const auto& s : d.status()) print_status(s);
        check(d.status()[0].state == pj::projection_state::serving, "v1 is still serving (from the catalog)");
        check(d.status()[1].dormant && !storage.has_table("customer_orders_v2"),
              "v2 created nothing and processed nothing");

        step("init customer_orders_v2, backfill it while v1 keeps serving");
        d.init("customer_orders_v2");
        traffic.multi_orders(4);
        traffic.single_orders(4);
        d.get<customer_orders<1>>().catch_up();  // v1 serves on, untouched
        const auto backfilled = d.backfill("customer_orders_v2");
        for (const auto& s : d.status()) print_status(s);
        const auto catalog = storage.find_catalog("customer_orders_v2");
        fmt::print("  v2 applied {} events; its tables: {}\n", backfilled,
                   catalog ? fmt::format("{}", fmt::join(catalog->tables, ", ")) : "(none)");
        check(d.status()[1].lag == 0 && d.status()[1].state == pj::projection_state::caught_up, "v2 caught up");
        check(catalog &&
                  catalog->tables == std::vector<std::string>{"customer_orders_v2", "customer_orders_v2_transactions"},
              "v2 owns two tables: orders and transactions");

        step("verify v2 against v1");
        {
            auto v1_table = storage.find_table<customer_orders<1>::table>("customer_orders_v1");
            auto v2_orders = storage.find_table<customer_orders<2>::order_table>("customer_orders_v2");
            auto v2_transactions =
                storage.find_table<customer_orders<2>::transaction_table>(customer_orders<2>::transactions_table);
            const v2_dashboard_view v2_view(storage);
            const auto in_multi = [&](const customer_order& o) {
                return traffic.multi_order_transactions.contains(o.transaction_id);
            };
            std::vector<std::string> single_order_ids;
            v1_table->for_each([&](const customer_order& o) {
                if (!in_multi(o) && single_order_ids.size() < 4) single_order_ids.push_back(o.order_id);
            });

            verify::report report;
            // Every order is in v2's orders table; the transaction's columns moved to the transactions table.
            report.structure = verify::structural_diff(
                v1_table, v2_orders,
                {.expected_changes = {"customer_id", "transaction_total_cents", "paid_cents", "payment_status"}});
            // What both versions say about orders of single-order transactions: the same.
            report.spot_checks.push_back(verify::spot_check(v1_table, v2_view, single_order_ids));
            report.samples.push_back(verify::sample(
                v1_table, v2_view, [&](const customer_order& o) { return !in_multi(o); }, 1000, {},
                {.name = "orders of single-order transactions", .expect = verify::sample_expectation::equal}));
            // Orders of multi-order transactions: each differs, in the transaction's fields only.
            report.samples.push_back(verify::sample(
                v1_table, v2_view, in_multi, 1000,
                {.expected_changes = {"transaction_total_cents", "paid_cents", "payment_status"}},
                {.name = "orders of multi-order transactions", .expect = verify::sample_expectation::differ}));

            fmt::print("{}\n", verify::to_text(*report.structure));
            fmt::print("{}\n", verify::to_text(report.spot_checks.front()));
            for (const auto& s : report.samples)
                fmt::print("sample '{}': matched {}, compared {}: equal {}, differ {}, missing in v1 {} -> {}\n",
                           s.name, s.matched, s.compared, s.equal, s.differs, s.missing_in_a, s.pass ? "PASS" : "FAIL");
            const auto& differing = report.samples.back().differing_fields;
            for (const auto& f : differing) fmt::print("  multi-order orders differing in {}: {}\n", f.field, f.rows);
            for (const auto& f : verify::failures(report)) fmt::print("  failure: {}\n", f);

            check(verify::passed(report), "the verification passes");
            check(v1_table->size() == traffic.orders && v2_orders->size() == traffic.orders,
                  fmt::format("v1 and v2 each hold all {} orders", traffic.orders));
            check(v2_transactions->size() == traffic.transactions,
                  fmt::format("v2 holds all {} transactions", traffic.transactions));
            check(report.samples.front().equal == report.samples.front().matched &&
                      report.samples.front().matched + report.samples.back().matched == traffic.orders,
                  "single-order orders agree; every multi-order order differs");
        }

        dashboard_router router(storage);
        const query_dispatcher dispatcher(storage, router);
        const std::string asked = featured.order_ids.back();  // an order v1 shows as unpaid

        step("internal users first: staff-* see v2, customers still see v1");
        router.rollout<customer_orders<2>>(0);
        router.prefer_candidate_when(internal);
        fmt::print("  router: {}\n", router.status().to_string());
        {
            const auto seen = ask_everyone(dispatcher, asked);
            bool ok = true;
            for (const auto& [user, version] : seen)
                ok = ok && version == (internal(user) ? "customer_orders_v2" : "customer_orders_v1");
            check(ok, "internal users got v2, customers got v1");
            const auto v2_answer = dispatcher.dispatch("staff-ana", get_order{asked});
            check(v2_answer.order && v2_answer.order->payment_status == "paid" &&
                      v2_answer.order->transaction_total_cents == 1850 + 3999,
                  "v2 shows the order paid, with its transaction's real total");
        }

        step("everyone: switch_to v2 (the deployment records v2 serving, v1 retired)");
        router.switch_to<customer_orders<2>>();
        d.serve("customer_orders_v2");
        fmt::print("  router: {}\n", router.status().to_string());
        check(all_got(ask_everyone(dispatcher, asked), "customer_orders_v2"), "every user got v2");
        check(d.get<customer_orders<1>>().state() == pj::projection_state::retired &&
                  d.get<customer_orders<2>>().state() == pj::projection_state::serving,
              "v1 retired (kept, following the log), v2 serving");

        step("support requests pour in: roll back to v1");
        router.rollback();
        d.serve("customer_orders_v1");
        fmt::print("  router: {}\n", router.status().to_string());
        const auto late = traffic.single_orders(1).front();
        d.catch_up();
        check(all_got(ask_everyone(dispatcher, asked), "customer_orders_v1"), "every user is back on v1");
        check(dispatcher.dispatch("cust-1001", get_order{late.order_ids.front()}).order.has_value(),
              "v1 kept following while retired: it knows the order placed just now");

        step("the requests were unrelated: everyone on v2 again, make it live, delete v1");
        router.switch_to<customer_orders<2>>();
        d.serve("customer_orders_v2");
        d.make_live("customer_orders_v2");
        check(router.wait_for_drain("customer_orders_v1", std::chrono::seconds(1)), "no query is running on v1");
        d.remove("customer_orders_v1");
        for (const auto& s : d.status()) print_status(s);
        check(!storage.has_table("customer_orders_v1") && storage.has_table("customer_orders_v2") &&
                  storage.has_table("customer_orders_v2_transactions"),
              "only v1's table was dropped");
        check(d.get<customer_orders<2>>().status().live && storage.find_catalog("customer_orders_v2")->live,
              "v2 is live in the catalog");

        step("new multi-order transactions: v2 follows them");
        const auto after = traffic.multi_orders(1).front();
        d.catch_up();
        const auto seen = ask_everyone(dispatcher, after.order_ids.back());
        const auto a = dispatcher.dispatch("cust-2003", get_order{after.order_ids.back()});
        check(all_got(seen, "customer_orders_v2") && a.order && a.order->transaction_total_cents == 1850 + 3999,
              "every user gets v2's answer, with the transaction's total");
        print_status(d.get<customer_orders<2>>().status());
    } catch (const std::exception& e) {
        fmt::print(stderr, "customer_orders: {}\n", e.what());
        ++failures;
    }

    remove_database(path);
    fmt::print("\n{}\n", failures == 0 ? "customer orders, v1 to v2: done" : "customer orders, v1 to v2: FAILED");
    return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
