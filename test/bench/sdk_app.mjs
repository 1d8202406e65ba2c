// The comparison for test/bench/run: an application placing orders with
// Telnyx's official Node SDK and recording each in PostgreSQL with pg, the
// way it would without telnyx_orders.  Usage: node sdk_app.mjs N
import Telnyx from "telnyx";
import pg from "pg";

const n = Number(process.argv[2] || 300);
const client = new Telnyx({
  apiKey: process.env.TELNYX_API_KEY,
  baseURL: process.env.TELNYX_BASE_URL,
});
const db = new pg.Client({ host: process.env.PGHOST, port: Number(process.env.PGPORT),
                           user: process.env.PGUSER, database: "postgres" });
await db.connect();
await db.query("CREATE TABLE IF NOT EXISTS sdk_orders (id uuid PRIMARY KEY, data jsonb NOT NULL)");
await db.query("CREATE TABLE IF NOT EXISTS sdk_groups (order_id uuid REFERENCES sdk_orders, group_index int, status text, count_requested int, count_allocated int, PRIMARY KEY (order_id, group_index))");

const t0 = process.hrtime.bigint();
for (let i = 0; i < n; i++) {
  const order = await client.inexplicitNumberOrders.create({
    ordering_groups: [{ country_iso: "US", phone_number_type: "local", count_requested: "1" }],
    customer_reference: `sdk-${i}`,
  });
  // the same rows the extension writes: the order and its groups
  await db.query("INSERT INTO sdk_orders (id, data) VALUES ($1, $2)", [order.data.id, order.data]);
  let index = 0;
  for (const g of order.data.ordering_groups ?? []) {
    await db.query("INSERT INTO sdk_groups VALUES ($1, $2, $3, $4, $5)",
                   [order.data.id, ++index, g.status, g.count_requested, g.count_allocated]);
  }
}
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
console.log(JSON.stringify({ orders: n, ms_per_order: ms / n }));
await db.end();
