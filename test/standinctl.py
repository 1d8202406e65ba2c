#!/usr/bin/env python3
"""Drive the Telnyx stand-in from a test (test/standinctl runs the commands
that print nothing with curl, and this for the rest).

  standinctl fault JSON...      queue faults (each JSON is one fault object)
  standinctl reset              forget orders, faults and counters
  standinctl reset-requests     zero the request and connection counters
  standinctl forget [REF]        drop the orders of a customer_reference (or of none)
  standinctl settle [orders]    finish processing every order (and number order, unless
                                "orders") now
  standinctl config JSON        change the stand-in's key or timing
  standinctl ledger             print every created order, one JSON per line
  standinctl count              print "ledger: N orders"
  standinctl last               print the last order's request body and headers
  standinctl keys               print how many distinct idempotency keys orders carried
  standinctl connections        print "connections: N"
  standinctl requests [ROUTE]   print "requests: N" (all, or one route)
  standinctl create JSON        create an order directly, as another client of the account would
  standinctl bulk N REF         make N orders with customer_reference REF at once
  standinctl replays            print "replays: N" (answers replayed for an Idempotency-Key)
  standinctl webhook ID [OFFSET [TYPE [EVENT_ID]]]
                                print a signed delivery for number order ID as one line of
                                JSON: {"body", "signature", "timestamp", "event_id"}; its
                                timestamp OFFSET seconds from now
  standinctl sign BODY [OFFSET] print BODY signed as a delivery, like webhook
  standinctl webhooks           print "webhooks: N sent, N answered 200"
  standinctl ratelimited        print "rate limited: N" (429s answered for the rate limit)
  standinctl chaos              print the chaos faults drawn so far, by action
  standinctl mutations          print every answer sent mutated, one JSON per line

The stand-in's control URL comes from $TELNYX_STANDIN_URL.
Output is deterministic, for pg_regress expected files.
"""
import json
import os
import re
import sys
import urllib.request

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def call(method, what, payload=None):
    base = os.environ.get("TELNYX_STANDIN_URL", "http://127.0.0.1:8089")
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(base + "/_standin/" + what, data=data,
                                 method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read().decode())


def main(argv):
    if not argv:
        sys.exit(__doc__)
    cmd, rest = argv[0], argv[1:]
    if cmd == "fault":
        call("POST", "faults", {"faults": [json.loads(a) for a in rest]})
    elif cmd == "reset":
        call("POST", "reset", {})
    elif cmd == "reset-requests":
        call("POST", "reset-requests", {})
    elif cmd == "forget":
        call("POST", "forget", {"customer_reference": rest[0] if rest else None})
    elif cmd == "settle":
        call("POST", "settle", {"numbers": rest[0] != "orders"} if rest else {})
    elif cmd == "config":
        call("POST", "config", json.loads(rest[0]))
    elif cmd == "ledger":
        for o in call("GET", "ledger")["orders"]:
            print(json.dumps(o, sort_keys=True))
    elif cmd == "last":
        orders = call("GET", "ledger")["orders"]
        if not orders:
            print("no order")
            return
        o = orders[-1]
        print("body: " + json.dumps(o["request"], sort_keys=True))
        h = o["headers"]
        key = h.get("idempotency_key") or ""
        print("content-type: %s" % h.get("content_type"))
        print("accept: %s" % h.get("accept"))
        print("idempotency-key: %s" % (
            "a uuid" if UUID_RE.match(key) else repr(key)))
        product = (h.get("user_agent") or "").split(" ")[0]
        print("user-agent: %s" % re.sub(r"/[0-9]+(\.[0-9]+)*$", "/<version>", product))
    elif cmd == "keys":
        orders = call("GET", "ledger")["orders"]
        keys = {o["headers"].get("idempotency_key") for o in orders}
        print("idempotency keys: %d distinct in %d orders" % (len(keys), len(orders)))
    elif cmd == "count":
        n = len(call("GET", "ledger")["orders"])
        print("ledger: %d order%s" % (n, "" if n == 1 else "s"))
    elif cmd == "connections":
        c = call("GET", "stats")["connections"]
        print("connections: %d" % (c["http"] + c["https"]))
    elif cmd == "create":
        base = os.environ.get("TELNYX_STANDIN_URL", "http://127.0.0.1:8089")
        req = urllib.request.Request(
            base + "/v2/inexplicit_number_orders", data=rest[0].encode(),
            method="POST", headers={
                "Content-Type": "application/json",
                "Authorization": "Bearer " + os.environ["TELNYX_TEST_KEY"]})
        with urllib.request.urlopen(req, timeout=30) as resp:
            json.loads(resp.read().decode())
        print("created")
    elif cmd == "bulk":
        n = call("POST", "bulk", {"count": int(rest[0]), "customer_reference": rest[1]})["created"]
        print("bulk: %d orders" % n)
    elif cmd == "webhook":
        arg = {"number_order_id": rest[0]}
        if len(rest) > 1:
            arg["timestamp_offset"] = int(rest[1])
        if len(rest) > 2:
            arg["event_type"] = rest[2]
        if len(rest) > 3:
            arg["event_id"] = rest[3]
        print(json.dumps(call("POST", "webhook", arg)))
    elif cmd == "sign":
        arg = {"body": rest[0]}
        if len(rest) > 1:
            arg["timestamp_offset"] = int(rest[1])
        print(json.dumps(call("POST", "webhook", arg)))
    elif cmd == "webhooks":
        d = call("GET", "webhooks")["deliveries"]
        print("webhooks: %d sent, %d answered 200" % (
            sum(1 for x in d if x["sent"]), sum(1 for x in d if x["answer"] == 200)))
    elif cmd == "ratelimited":
        print("rate limited: %d" % call("GET", "stats")["rate_limited"])
    elif cmd == "chaos":
        hits = call("GET", "stats")["chaos_hits"]
        print(" ".join("%s=%d" % (k, hits[k]) for k in sorted(hits)))
    elif cmd == "mutations":
        for m in call("GET", "mutations")["mutations"]:
            print(json.dumps(m, sort_keys=True))
    elif cmd == "replays":
        print("replays: %d" % call("GET", "stats")["replays"])
    elif cmd == "requests":
        stats = call("GET", "stats")
        if rest:
            n = stats["requests_by_route"].get(rest[0], 0)
        else:
            n = stats["requests"]
        print("requests: %d" % n)
    else:
        sys.exit("standinctl: unrecognized command \"%s\"" % cmd)
    sys.stdout.flush()


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except OSError as e:
        sys.exit("standinctl: could not reach the stand-in: %s" % e)
