// The stand-ins' own capacity: N POSTs kept CONCURRENCY in flight on
// keep-alive connections.  node load.mjs URL N CONCURRENCY -> {"per_s": ...}
import http from "node:http";

const [url, n, conc] = [new URL(process.argv[2]), Number(process.argv[3]), Number(process.argv[4])];
const agent = new http.Agent({ keepAlive: true, maxSockets: conc });
const body = '{"ordering_groups":[{"country_iso":"US","phone_number_type":"local","count_requested":"1"}]}';
let started = 0, finished = 0;
const t0 = process.hrtime.bigint();
await new Promise((resolve) => {
  const one = () => {
    if (started >= n) return;
    started++;
    const req = http.request(url, { method: "POST", agent, headers: { "content-type": "application/json",
      "content-length": Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on("end", () => { if (++finished === n) resolve(); else one(); });
    });
    req.end(body);
  };
  for (let i = 0; i < conc; i++) one();
});
const s = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(JSON.stringify({ requests: n, seconds: s, per_s: n / s }));
agent.destroy();
