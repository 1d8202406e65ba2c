// A stand-in that answers every create after a fixed delay, for the
// streaming benchmark: node slow_server.mjs PORT DELAY_MS
import http from "node:http";
import { randomUUID } from "node:crypto";

const [port, delay] = [Number(process.argv[2]), Number(process.argv[3] || 50)];
const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => setTimeout(() => {
    const body = JSON.stringify({ data: { id: randomUUID(), customer_reference: "bench",
      created_at: "2026-01-01T00:00:00.000000Z", ordering_groups: [{ country_iso: "US",
      phone_number_type: "local", count_requested: 1, count_allocated: 1, status: "success",
      orders: [] }] } });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  }, delay));
});
server.keepAliveTimeout = 600000;
server.listen(port, "127.0.0.1");
