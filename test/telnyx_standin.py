#!/usr/bin/env python3
"""A local stand-in for the Telnyx number-ordering API, for tests.

Serves, under /v2, what telnyx_orders uses:
  POST /inexplicit_number_orders        create (validated as the spec says)
  GET  /inexplicit_number_orders        list (page_number, page_size)
  GET  /inexplicit_number_orders/{id}   retrieve
  GET  /number_orders/{id}              a number order with its numbers

Orders are processed over time: their groups are "pending", then
"processing", then "success", "partial_success" or "failed", with number
orders and phone numbers for what was allocated.  A number order and its
numbers are "pending" for number_seconds, then "success".  Stock is set by the area
code (national_destination_code): "999" has no numbers, "555" has two,
every other code has plenty.

Tests drive it through /_standin (no key needed), usually with standinctl:
  POST /_standin/faults   queue faults: {"faults": [{...}, ...]}
  POST /_standin/reset    forget orders, faults and counters
  POST /_standin/reset-requests  zero the request and connection counters
  POST /_standin/forget   drop the orders of a customer_reference, as if
                          their requests had never arrived
  POST /_standin/settle   finish processing every order and number order now
                          (with {"numbers": false}, the orders only)
  POST /_standin/webhook  {"number_order_id": ..., "event_type": ...,
                           "timestamp_offset": seconds, "event_id": ...}:
                          a signed delivery for it, not sent: {"body",
                          "signature", "timestamp", "event_id"}; with
                          {"body": ...}, that body signed as it is
  GET  /_standin/webhooks the deliveries sent to "webhook_url", with the
                          status each got
  POST /_standin/config   {"api_key": ..., "process_seconds": ...,
                           "latency_ms": ... (added to every API answer),
                           "list_lag_seconds": ... (an order shows in the
                           list only this long after it was created),
                           "idempotency": true|false (honour
                           Idempotency-Key, as below; off by default:
                           Telnyx documents none for number orders, so a
                           resend buys twice),
                           "order_id_style": "uuid" (default) or "text"
                           (order ids that are not uuids, as the spec
                           allows), "list_page_cap": N (serve at most N
                           orders a page, whatever page_size asks),
                           "list_oldest_first": true (list the oldest
                           orders first; newest first by default),
                           "list_meta": false (list pages without "meta"),
                           "list_endless": "repeat" (a page past the end
                           is the last page again, or page 1 again when
                           "list_ignore_page" is true: page_number
                           ignored), "new" (a page past the end holds
                           orders never listed before, every time) or
                           null (past the end, an empty page),
                           "number_seconds": ... (how long a number order's
                           numbers stay pending; process_seconds by
                           default), "webhook_url": ... (where to POST
                           number_order.complete deliveries, signed with
                           --webhook-key, as number orders end),
                           "chaos": [fault, ...] (each with "p": a request
                           matching it gets it with that probability, when
                           no queued fault applies; [] stops it),
                           "seed": N (for chaos and mutations),
                           "rate_limit": N (answer 429, with
                           x-ratelimit-reset, to API requests beyond N in
                           any second; 0 stops it)}
  POST /_standin/bulk     {"count": N, "customer_reference": ...}: make N
                          orders at once, as another client would
  GET  /_standin/ledger   every order created, with the request that made it
  GET  /_standin/stats    API requests, and the TCP connections they came on
  GET  /_standin/mutations  every answer sent mutated: route, the
                          customer_reference (create) or id asked for, whether
                          it was still JSON, the order id it carried

A fault is a JSON object:
  match     "create", "get", "list", "number_order" or "any" (default)
  times     how many requests it applies to (default 1)
  action    "status" (default): answer "status" with a Telnyx error body
                                 ("code", "title", "detail", "pointer");
                                 with "create": true the order is made first
            "close_before":  read the request, close without creating
            "close_after":   create the order, close without answering
            "late_create":   wait "seconds", then create the order and close
                             without answering (a client that timed out
                             meanwhile cannot tell it was made)
            "delay":         handle the request, wait "seconds", then answer
            "malformed":     handle the request, answer 200 with broken JSON
            "truncated":     handle the request, send half the body, close
            "oversized":     handle the request, answer 200 with "bytes" bytes
            "mutate":        handle the request, answer its JSON changed at
                             random (values retyped, keys dropped or added,
                             the text cut, flipped, nested or not UTF-8)
  headers   extra response headers, e.g. {"Retry-After": "1"}
  body      with action "status": the exact response body to send; "{path_id}"
            in it stands for the id in the request's path; with "latin1": true
            it is sent in Latin-1 (so "\u00ff" becomes the invalid byte 0xff)
  nesting   with action "status": answer {"data": [[[...]]]} nested this deep

Idempotency-Key on the create, when "idempotency" is on, as Telnyx
documents it for other endpoints: 1 to 255 of
[A-Za-z0-9_:-] (else 400); a successful answer is stored for 24 hours and
replayed, with "Idempotent-Replayed: true", for a request with the same key
and the same body, byte for byte; the same key with another body gets 422,
and 409 while the first request is still being processed.

Listens on 127.0.0.1: plain HTTP on --http-port and, with --cert and --key,
HTTPS on --https-port (0 picks a free port).  The ports chosen, and the
stand-in's process id, are written as JSON to --ports-file.
"""

import argparse
import base64
import collections
import datetime
import json
import math
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
GROUP_STRING_FIELDS = ("country_iso", "phone_number_type", "count_requested",
                       "national_destination_code", "administrative_area",
                       "locality", "strategy")
GROUP_BOOL_FIELDS = ("quickship", "exclude_held_numbers")
GROUP_FIELDS = GROUP_STRING_FIELDS + GROUP_BOOL_FIELDS + ("features",
                                                          "phone_number")
ORDER_STRING_FIELDS = ("connection_id", "messaging_profile_id",
                       "customer_reference", "billing_group_id")
IDEM_RE = re.compile(r"^[A-Za-z0-9_:-]{1,255}$")
STOCK = {"999": 0, "555": 2}
PLENTY = 1000000


def now_iso(t=None):
    t = time.time() if t is None else t
    return datetime.datetime.fromtimestamp(
        t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ApiError(Exception):
    def __init__(self, status, code, title, detail, pointer=None):
        super().__init__(detail)
        self.status = status
        self.body = {"errors": [error_object(code, title, detail, pointer)]}


def error_object(code, title, detail, pointer=None):
    """A Telnyx error; a field given as None is left out."""
    err = {}
    if code is not None:
        err["code"] = code
        err["meta"] = {"url": "https://developers.telnyx.com/docs/overview/errors/" + code}
    if title is not None:
        err["title"] = title
    if detail is not None:
        err["detail"] = detail
    if pointer is not None:
        err["source"] = {"pointer": pointer}
    return err


def unprocessable(detail, pointer):
    return ApiError(422, "10015", "Invalid parameter", detail, pointer)


class State:
    """Orders, ledger, faults and counters, behind one lock."""

    def __init__(self, api_key, process_seconds, webhook_key=None):
        self.lock = threading.RLock()
        self.id_namespace = ""
        self.api_key = api_key
        self.process_seconds = process_seconds
        self.number_seconds = process_seconds
        self.webhook_key = webhook_key  # Ed25519 private key (PEM file)
        self.webhook_url = None
        self.latency = 0.0          # seconds added to every API answer
        self.list_lag = 0.0         # seconds before an order is listed
        self.idempotency = False    # Telnyx documents none for orders
        self.order_id_style = "uuid"
        self.list_page_cap = 0
        self.list_oldest_first = False
        self.list_meta = True
        self.list_endless = None
        self.list_ignore_page = False
        self.chaos = []             # faults drawn at random, per request
        self.rate_limit = 0         # API requests a second; 0: no limit
        self.rng = random.Random(0)
        self.reset()

    def reset(self):
        self.orders = {}            # id -> order record
        self.order_ids = []         # creation order
        self.number_orders = {}     # id -> number order
        self.faults = []
        self.connections = {"http": 0, "https": 0}
        self.requests = 0
        self.requests_by_route = {}
        self.next_number = 0
        self.next_id = 0
        self.idempotent = {}        # key -> {"body", "at", "answer"}
        self.replays = 0
        self.deliveries = []        # webhook deliveries made
        self.next_event = 0
        self.next_made_up = 0       # orders made up for endless lists
        self.mutations = []         # answers sent mutated
        self.chaos_hits = {}        # chaos faults drawn, by action
        self.recent = collections.deque()  # API requests of the last second
        self.rate_limited = 0       # 429s answered for the rate limit

    def new_id(self, kind):
        """Ids are uuids, the same in every run: tests can show them.  Two
        stand-ins with other --id-namespace give other ids, as Telnyx never
        gives one id twice."""
        self.next_id += 1
        return str(uuid.uuid5(uuid.NAMESPACE_URL,
                              "telnyx-standin:%s%s:%d" % (self.id_namespace, kind, self.next_id)))

    # -- orders -------------------------------------------------------

    def create_order(self, body, headers):
        oid = self.new_id("order")
        if self.order_id_style == "text":
            oid = "ord_%d" % self.next_id
        t = time.time()
        groups = []
        for g in body["ordering_groups"]:
            groups.append({"request": g, "created_at": t, "status": None,
                           "count_allocated": 0, "error_reason": None,
                           "orders": [], "updated_at": t})
        order = {"id": oid, "created_at": t, "updated_at": t, "body": body,
                 "groups": groups, "settled": False,
                 "headers": headers, "received_at": headers.pop("received_at", t)}
        self.orders[oid] = order
        self.order_ids.append(oid)
        return order

    def advance(self, order, force=False):
        """Move order along its life: pending, processing, done."""
        if order["settled"]:
            return
        elapsed = time.time() - order["created_at"]
        if not force and elapsed < self.process_seconds:
            return
        t = time.time()
        body = order["body"]
        for g in order["groups"]:
            req = g["request"]
            wanted = int(req["count_requested"])
            stock = STOCK.get(req.get("national_destination_code"), PLENTY)
            strategy = req.get("strategy", "always")
            if stock < wanted and strategy == "never":
                g["status"], g["count_allocated"] = "failed", 0
                g["error_reason"] = ("Not enough numbers available to fill "
                                     "the order, and strategy is never.")
            elif stock == 0:
                g["status"], g["count_allocated"] = "failed", 0
                g["error_reason"] = "No numbers available."
            else:
                got = min(stock, wanted)
                g["count_allocated"] = got
                g["status"] = "success" if got == wanted else "partial_success"
                if got < wanted:
                    g["error_reason"] = ("Only %d of %d numbers were available."
                                         % (got, wanted))
                g["orders"] = self.make_number_orders(body, req, got, t)
            g["updated_at"] = t
        order["updated_at"] = t
        order["settled"] = True

    def make_number_orders(self, body, req, count, t):
        """Number orders of at most 100 numbers each for count numbers."""
        refs = []
        ndc = req.get("national_destination_code") or "312"
        while count > 0:
            n = min(count, 100)
            count -= n
            noid, sub = self.new_id("number-order"), self.new_id("sub-order")
            numbers = []
            for _ in range(n):
                self.next_number += 1
                numbers.append({
                    "id": self.new_id("phone-number"),
                    "record_type": "number_order_phone_number",
                    "phone_number": "+1%s%07d" % (ndc, self.next_number),
                    "phone_number_type": req["phone_number_type"],
                    "country_code": req["country_iso"],
                    "status": "success",
                    "requirements_met": True,
                    "regulatory_requirements": [],
                })
            for number in numbers:
                number["status"] = "pending"
                number["requirements_status"] = "pending"
                number["deadline"] = now_iso(t + 30 * 86400)
            self.number_orders[noid] = {
                "_created": t,
                "id": noid, "record_type": "number_order", "status": "pending",
                "phone_numbers": numbers, "phone_numbers_count": n,
                "sub_number_orders_ids": [sub], "requirements_met": True,
                "customer_reference": body.get("customer_reference"),
                "connection_id": body.get("connection_id"),
                "messaging_profile_id": body.get("messaging_profile_id"),
                "billing_group_id": body.get("billing_group_id"),
                "created_at": now_iso(t), "updated_at": now_iso(t),
            }
            refs.append({"number_order_id": noid, "sub_number_order_ids": [sub]})
        return refs

    def advance_number_order(self, no, force=False):
        """Numbers go from pending to success; True when it ends now."""
        if no["status"] != "pending":
            return False
        if not force and time.time() - no["_created"] < self.number_seconds:
            return False
        no["status"] = "success"
        for number in no["phone_numbers"]:
            number["status"] = "success"
            number["requirements_status"] = "approved"
        no["updated_at"] = now_iso()
        return True

    def advance_all(self, force=False):
        """Move every order and number order along; the number orders
        that ended now."""
        for o in self.orders.values():
            self.advance(o, force)
        return [no for no in self.number_orders.values()
                if self.advance_number_order(no, force)]

    @staticmethod
    def render_number_order(no):
        return {k: v for k, v in no.items() if not k.startswith("_")}

    def delivery(self, no, event_type="number_order.complete",
                 timestamp_offset=0, event_id=None):
        """A signed webhook delivery for number order no: the body, its
        telnyx-signature-ed25519 and telnyx-timestamp headers."""
        if event_id is None:
            self.next_event += 1
            event_id = str(uuid.uuid5(uuid.NAMESPACE_URL,
                                      "telnyx-standin:event:%d" % self.next_event))
        body = json.dumps({
            "data": {"event_type": event_type, "id": event_id,
                     "occurred_at": now_iso(), "record_type": "event",
                     "payload": self.render_number_order(no)},
            "meta": {"attempt": 1,
                     "delivered_to": self.webhook_url or "http://127.0.0.1/"}})
        timestamp = str(int(time.time()) + int(timestamp_offset))
        return {"body": body, "timestamp": timestamp,
                "signature": sign(self.webhook_key, timestamp + "|" + body),
                "event_id": event_id}

    def made_up_order(self):
        """An order listed once and never again (an endless list's)."""
        self.next_made_up += 1
        return {"id": str(uuid.UUID(int=(0xe0d1e55 << 96) + self.next_made_up)),
                "record_type": "inexplicit_number_order",
                "customer_reference": "endless-list",
                "created_at": now_iso(time.time()),
                "updated_at": now_iso(time.time()),
                "ordering_groups": []}

    def render(self, order):
        """The order as the API shows it."""
        self.advance(order)
        body = order["body"]
        elapsed = time.time() - order["created_at"]
        groups = []
        for g in order["groups"]:
            req = g["request"]
            status = g["status"]
            if status is None:
                status = ("pending" if elapsed < self.process_seconds / 2
                          else "processing")
            out = {
                "country_iso": req["country_iso"],
                "phone_number_type": req["phone_number_type"],
                "count_requested": int(req["count_requested"]),
                "count_allocated": g["count_allocated"],
                "status": status,
                "error_reason": g["error_reason"],
                "orders": g["orders"],
                "created_at": now_iso(g["created_at"]),
                "updated_at": now_iso(g["updated_at"]),
                "strategy": req.get("strategy", "always"),
            }
            # as the spec's response schema: locality and features are
            # not echoed
            for key in ("national_destination_code", "administrative_area",
                        "quickship", "exclude_held_numbers"):
                if key in req:
                    out[key] = req[key]
            for key, value in req.get("phone_number", {}).items():
                out["phone_number[%s]" % key] = value
            groups.append(out)
        data = {"id": order["id"], "ordering_groups": groups,
                "created_at": now_iso(order["created_at"]),
                "updated_at": now_iso(order["updated_at"])}
        for key in ORDER_STRING_FIELDS:
            if key in body:
                data[key] = body[key]
        return data

    def deliver_later(self, ended):
        """Queue number_order.complete for number orders that ended, when
        a webhook URL is configured (sent by the ticker)."""
        if self.webhook_key and self.webhook_url:
            for no in ended:
                self.deliveries.append(
                    dict(self.delivery(no), number_order_id=no["id"],
                         sent=False, answer=None))

    def take_fault(self, route):
        for i, f in enumerate(self.faults):
            if f.get("match", "any") in ("any", route):
                f["times"] = f.get("times", 1) - 1
                if f["times"] <= 0:
                    del self.faults[i]
                return f
        for f in self.chaos:
            if f.get("match", "any") in ("any", route) and \
                    self.rng.random() < float(f.get("p", 0)):
                action = f.get("action", "status")
                self.chaos_hits[action] = self.chaos_hits.get(action, 0) + 1
                return f
        return None

    def over_rate(self):
        """Is this API request over the account's rate limit (a sliding
        second)?  Counted if so; remembered if not."""
        if self.rate_limit <= 0:
            return False
        now = time.time()
        while self.recent and self.recent[0] <= now - 1.0:
            self.recent.popleft()
        if len(self.recent) >= self.rate_limit:
            self.rate_limited += 1
            return True
        self.recent.append(now)
        return False

    def record_mutation(self, route, ref, raw):
        """Remember a mutated answer: what was sent, and what it says."""
        try:
            doc = json.loads(raw.decode("utf-8"))
            valid = True
        except (ValueError, UnicodeDecodeError, RecursionError):
            doc, valid = None, False
        data = doc.get("data") if isinstance(doc, dict) else None
        oid = data.get("id") if isinstance(data, dict) else None
        if len(self.mutations) < 200000:
            self.mutations.append({"route": route, "ref": ref, "valid": valid,
                                   "id": oid if isinstance(oid, str) else None,
                                   "bytes": len(raw)})


# What a mutated answer may put where a value was.
ODD_VALUES = [None, True, False, 0, -1, 1.5, 2 ** 31, 2 ** 63, -2 ** 63,
              1e308, "", "x" * 300, "\u0000", "\u00e9\u4e2d\U0001f600", [],
              {}, [[[[[]]]]], {"id": None}, "not-a-uuid", "2026-13-45T99:99:99Z",
              "success", "pending", "-1", "9" * 40]


def mutate(obj, rng):
    """OBJ's JSON, changed at random: values retyped, keys dropped or added,
    then sometimes the text itself cut, flipped or made invalid UTF-8."""
    obj = json.loads(json.dumps(obj))
    slots = []

    def walk(node):
        if isinstance(node, dict):
            for k in list(node):
                slots.append((node, k))
                walk(node[k])
        elif isinstance(node, list):
            for i in range(len(node)):
                slots.append((node, i))
                walk(node[i])
    walk(obj)
    for _ in range(rng.randint(1, 3)):
        if not slots:
            break
        parent, key = rng.choice(slots)
        op = rng.random()
        try:
            if op < 0.5:
                parent[key] = rng.choice(ODD_VALUES)
            elif op < 0.75 and isinstance(parent, dict):
                del parent[key]
                slots = [(p, k) for p, k in slots if not (p is parent and k == key)]
            elif isinstance(parent, dict):
                parent["extra_%d" % rng.randint(0, 99)] = rng.choice(ODD_VALUES)
            else:
                parent.append(rng.choice(ODD_VALUES))
        except (KeyError, IndexError):
            pass
    raw = json.dumps(obj).encode()
    op = rng.random()
    if op < 0.15:
        raw = raw[: rng.randint(0, len(raw))]
    elif op < 0.25 and raw:
        i = rng.randrange(len(raw))
        raw = raw[:i] + bytes([rng.randrange(256)]) + raw[i + 1:]
    elif op < 0.30:
        i = rng.randint(0, len(raw))
        raw = raw[:i] + b"\xff\xc3" + raw[i:]
    elif op < 0.35:
        raw = b"[" * 3000 + raw + b"]" * 3000
    elif op < 0.40:
        raw = raw.replace(b'"count_allocated": ', b'"count_allocated": 1e999', 1)
    return raw


def sign(key_file, message):
    """Ed25519 signature of message (str) with the PEM key, in base64."""
    with tempfile.NamedTemporaryFile() as f:
        f.write(message.encode("utf-8"))
        f.flush()
        sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey",
                              key_file, "-rawin", "-in", f.name],
                             check=True, capture_output=True).stdout
    return base64.b64encode(sig).decode()


def ticker(state, stop):
    """Fill orders as time passes, and send the webhook deliveries due."""
    while not stop.wait(0.2):
        with state.lock:
            if state.webhook_url:
                state.deliver_later(state.advance_all())
            todo = [d for d in state.deliveries if not d["sent"]]
            url = state.webhook_url
        for d in todo:
            d["sent"] = True
            req = urllib.request.Request(
                url, data=d["body"].encode("utf-8"), method="POST",
                headers={"Content-Type": "application/json",
                         "telnyx-signature-ed25519": d["signature"],
                         "telnyx-timestamp": d["timestamp"]})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    d["answer"] = resp.status
            except Exception as e:          # noqa: BLE001 - record any failure
                d["answer"] = str(e)


def validate_create(body):
    """Reject what the spec says the API rejects, and, as policy, more:
    an integer count_requested (the spec types it a string), unknown
    fields (the spec does not forbid them) and over 10,000 numbers (in
    Telnyx's prose, not the schema), so that a request that bends the
    spec fails here rather than at Telnyx."""
    if not isinstance(body, dict):
        raise unprocessable("The request body must be a JSON object.", "/")
    for key in body:
        if key not in ORDER_STRING_FIELDS + ("ordering_groups",):
            raise unprocessable("Unrecognized parameter %s." % key, "/" + key)
    for key in ORDER_STRING_FIELDS:
        if key in body and not isinstance(body[key], str):
            raise unprocessable("%s must be a string." % key, "/" + key)
    groups = body.get("ordering_groups")
    if groups is None:
        raise ApiError(422, "10004", "Missing required parameter",
                       "The 'ordering_groups' parameter is required.",
                       "/ordering_groups")
    if not isinstance(groups, list) or not groups:
        raise unprocessable("ordering_groups must be a non-empty array.",
                            "/ordering_groups")
    total = 0
    for i, g in enumerate(groups):
        ptr = "/ordering_groups/%d" % i
        if not isinstance(g, dict):
            raise unprocessable("An ordering group must be an object.", ptr)
        for key in g:
            if key not in GROUP_FIELDS:
                raise unprocessable("Unrecognized parameter %s." % key,
                                    "%s/%s" % (ptr, key))
        for key in ("country_iso", "phone_number_type", "count_requested"):
            if key not in g:
                raise ApiError(422, "10004", "Missing required parameter",
                               "The '%s' parameter is required." % key,
                               "%s/%s" % (ptr, key))
        for key in GROUP_STRING_FIELDS:
            if key in g and not isinstance(g[key], str):
                raise unprocessable("%s must be a string." % key,
                                    "%s/%s" % (ptr, key))
        for key in GROUP_BOOL_FIELDS:
            if key in g and not isinstance(g[key], bool):
                raise unprocessable("%s must be a boolean." % key,
                                    "%s/%s" % (ptr, key))
        if g["country_iso"] not in ("US", "CA"):
            raise unprocessable("Country %s is not supported; use US or CA."
                                % g["country_iso"], ptr + "/country_iso")
        if "strategy" in g and g["strategy"] not in ("always", "never"):
            raise unprocessable("strategy must be always or never.",
                                ptr + "/strategy")
        if not g["count_requested"].isdigit() or not (
                1 <= int(g["count_requested"]) <= 10000):
            raise unprocessable("count_requested must be between 1 and 10000.",
                                ptr + "/count_requested")
        total += int(g["count_requested"])
        if "features" in g and not (isinstance(g["features"], list) and all(
                isinstance(x, str) for x in g["features"])):
            raise unprocessable("features must be an array of strings.",
                                ptr + "/features")
        if "phone_number" in g:
            pn = g["phone_number"]
            if not isinstance(pn, dict) or any(
                    k not in ("starts_with", "ends_with", "contains")
                    or not isinstance(v, str) for k, v in pn.items()):
                raise unprocessable("phone_number must be an object of "
                                    "starts_with, ends_with and contains.",
                                    ptr + "/phone_number")
    if total > 10000:
        raise unprocessable("An order buys at most 10000 numbers.",
                            "/ordering_groups")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "telnyx-standin"
    timeout = 120

    def log_message(self, fmt, *args):
        if self.server.state_verbose:
            sys.stderr.write("standin: " + (fmt % args) + "\n")

    def setup(self):
        super().setup()
        self.counted = False
        # answers go out in two writes (head, body): do not let Nagle's
        # algorithm hold the second one back for a delayed ACK
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    @property
    def state(self):
        return self.server.state

    # -- plumbing ------------------------------------------------------

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status, obj, extra_headers=None, raw=None):
        data = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        st = self.state
        if st.rate_limit > 0:
            with st.lock:
                left = max(0, st.rate_limit - len(st.recent))
                reset = (1.0 - (time.time() - st.recent[0])) if st.recent else 0
            self.send_header("x-ratelimit-limit", str(st.rate_limit))
            self.send_header("x-ratelimit-remaining", str(left))
            if "x-ratelimit-reset" not in (extra_headers or {}):
                self.send_header("x-ratelimit-reset", str(max(1, math.ceil(reset))))
        else:
            self.send_header("x-ratelimit-limit", "100")
        for k, v in (extra_headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def abort_connection(self):
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def dispatch(self, method):
        url = urlsplit(self.path)
        body = self.read_body()
        self.received_at = time.time()
        if url.path.startswith("/_standin/"):
            return self.control(method, url.path[len("/_standin/"):], body)
        route, arg = self.route(method, url.path)
        self.path_id = arg
        self.route_name = route
        self.request_body = body
        with self.state.lock:
            # count the TCP connections that carry API requests
            if not self.counted:
                self.counted = True
                self.state.connections[self.server.scheme] += 1
            self.state.requests += 1
            self.state.requests_by_route[route or "other"] = (
                self.state.requests_by_route.get(route or "other", 0) + 1)
            fault = self.state.take_fault(route) if route else None
            over_rate = route is not None and self.state.over_rate()
        if route is None:
            return self.send_json(404, ApiError(
                404, "10005", "Resource not found",
                "No route for %s %s." % (method, url.path)).body)
        if over_rate:
            return self.send_json(429, ApiError(
                429, "10011", "Too many requests",
                "Rate limit exceeded.").body, {"x-ratelimit-reset": "1"})
        try:
            self.check_auth()
            if fault and fault.get("action", "status") == "close_before":
                return self.abort_connection()
            if fault and fault.get("action") == "late_create":
                # the client has long given up when the order is made
                time.sleep(float(fault.get("seconds", 5)))
                self.handle_api(route, arg, url, body)
                return self.abort_connection()
            if fault and fault.get("action", "status") == "status" and \
                    not fault.get("create"):
                return self.send_fault_status(fault)
            status, obj = self.handle_api(route, arg, url, body)
        except ApiError as e:
            return self.send_json(e.status, e.body)
        if self.state.latency > 0:
            time.sleep(self.state.latency)
        if fault:
            return self.send_with_fault(fault, status, obj)
        if getattr(self, "replayed", False):
            self.replayed = False
            return self.send_json(status, obj, {"Idempotent-Replayed": "true"})
        return self.send_json(status, obj)

    def route(self, method, path):
        if not path.startswith("/v2/"):
            return None, None
        parts = path[len("/v2/"):].strip("/").split("/")
        if parts == ["inexplicit_number_orders"]:
            return ("create" if method == "POST" else "list"), None
        if len(parts) == 2 and method == "GET":
            if parts[0] == "inexplicit_number_orders":
                return "get", parts[1]
            if parts[0] == "number_orders":
                return "number_order", parts[1]
        return None, None

    def check_auth(self):
        auth = self.headers.get("Authorization", "")
        if auth != "Bearer " + self.state.api_key:
            raise ApiError(401, "10009", "Authentication failed",
                           "Could not understand the provided credentials.")

    def send_fault_status(self, fault):
        status = fault.get("status", 500)
        if "nesting" in fault:
            depth = int(fault["nesting"])
            body = '{"data": ' + "[" * depth + "]" * depth + "}"
            return self.send_json(status, None, fault.get("headers"),
                                  raw=body.encode())
        if "body" in fault:
            body = fault["body"].replace("{path_id}", self.path_id or "")
            raw = body.encode("latin-1" if fault.get("latin1") else "utf-8")
            return self.send_json(status, None, fault.get("headers"), raw=raw)
        err = ApiError(status, fault.get("code", "10007"),
                       fault.get("title", "Unexpected error"),
                       fault.get("detail", "An unexpected error occurred."),
                       fault.get("pointer"))
        self.send_json(status, err.body, fault.get("headers"))

    def send_with_fault(self, fault, status, obj):
        action = fault.get("action", "status")
        headers = fault.get("headers")
        if action == "status":
            return self.send_fault_status(fault)
        if action == "close_after":
            return self.abort_connection()
        if action == "delay":
            time.sleep(float(fault.get("seconds", 1)))
            return self.send_json(status, obj, headers)
        if action == "malformed":
            return self.send_json(200, None, headers, raw=b'{"data": {"id": "')
        if action == "truncated":
            data = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            return self.abort_connection()
        if action == "mutate":
            raw = mutate(obj, self.state.rng)
            ref = None
            if self.route_name == "create":
                try:
                    ref = json.loads(self.request_body).get("customer_reference")
                except ValueError:
                    pass
            with self.state.lock:
                self.state.record_mutation(self.route_name,
                                           ref or self.path_id, raw)
            return self.send_json(200 if status < 300 else status, None,
                                  headers, raw=raw)
        if action == "oversized":
            size = int(fault.get("bytes", 20 * 1024 * 1024))
            pad = "x" * max(0, size - 64)
            raw = json.dumps({"data": obj.get("data"), "padding": pad}).encode()
            return self.send_json(200, None, headers, raw=raw)
        return self.send_json(status, obj, headers)

    # -- the API -------------------------------------------------------

    def handle_api(self, route, arg, url, body):
        st = self.state
        if route == "create":
            ctype = self.headers.get("Content-Type", "")
            if ctype.split(";")[0].strip() != "application/json":
                raise ApiError(415, "10015", "Unsupported media type",
                               "Content-Type must be application/json.")
            try:
                parsed = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise ApiError(400, "10015", "Bad Request",
                               "The request body is not valid JSON.")
            validate_create(parsed)
            key = self.headers.get("Idempotency-Key")
            if key is not None and st.idempotency and not IDEM_RE.match(key):
                raise ApiError(400, "10015", "Bad Request",
                               "Idempotency-Key must be 1 to 255 of "
                               "[A-Za-z0-9_:-].")
            headers = {"received_at": self.received_at,
                       "idempotency_key": self.headers.get("Idempotency-Key"),
                       "user_agent": self.headers.get("User-Agent"),
                       "content_type": self.headers.get("Content-Type"),
                       "accept": self.headers.get("Accept")}
            with st.lock:
                entry = st.idempotent.get(key) if (key and st.idempotency) \
                    else None
                if entry and time.time() - entry["at"] < 86400:
                    if entry["body"] != body:
                        raise ApiError(422, "10015", "Idempotency key reused",
                                       "This Idempotency-Key was used with "
                                       "another request body.")
                    st.replays += 1
                    self.replayed = True
                    return 200, entry["answer"]
                order = st.create_order(parsed, headers)
                answer = {"data": st.render(order)}
                if key and st.idempotency:
                    st.idempotent[key] = {"body": body, "at": time.time(),
                                          "order": order["id"],
                                          "answer": answer}
                return 200, answer
        if route == "get":
            if st.order_id_style == "uuid" and not UUID_RE.match(arg):
                raise ApiError(400, "10006", "Invalid ID",
                               "The id is not a valid UUID.", None)
            with st.lock:
                order = st.orders.get(arg.lower() if UUID_RE.match(arg)
                                      else arg)
                if order is None:
                    raise ApiError(404, "10005", "Resource not found",
                                   "The requested resource or URL could "
                                   "not be found.")
                return 200, {"data": st.render(order)}
        if route == "number_order":
            with st.lock:
                ended = st.advance_all()
                st.deliver_later(ended)
                no = st.number_orders.get(arg.lower())
                if no is None:
                    raise ApiError(404, "10005", "Resource not found",
                                   "The requested resource or URL could "
                                   "not be found.")
                return 200, {"data": st.render_number_order(no)}
        if route == "list":
            q = parse_qs(url.query)
            try:
                page = int(q.get("page_number", ["1"])[0])
                size = int(q.get("page_size", ["20"])[0])
            except ValueError:
                page = size = 0
            if page < 1 or not 1 <= size <= 250:
                err = ApiError(400, "10015", "Bad Request",
                               "page_number must be at least 1 and page_size "
                               "between 1 and 250.")
                err.body["errors"][0]["source"] = {"parameter": "page_size"}
                raise err
            with st.lock:
                listed_before = time.time() - st.list_lag
                ids = [i for i in (st.order_ids if st.list_oldest_first
                                   else reversed(st.order_ids))
                       if st.orders[i]["created_at"] <= listed_before]
                if st.list_page_cap:
                    size = min(size, st.list_page_cap)
                total = len(ids)
                pages = (total + size - 1) // size
                if st.list_endless == "repeat" and pages > 0:
                    page = 1 if st.list_ignore_page else min(page, pages)
                chunk = ids[(page - 1) * size: page * size]
                data = [st.render(st.orders[i]) for i in chunk]
                if not data and st.list_endless == "new":
                    data = [st.made_up_order() for _ in range(size)]
                answer = {"data": data}
                if st.list_meta:
                    answer["meta"] = {"page_number": page, "page_size": size,
                                      "total_results": total,
                                      "total_pages": pages}
                return 200, answer
        raise ApiError(404, "10005", "Resource not found", "No such route.")

    # -- test control ----------------------------------------------------

    def control(self, method, what, body):
        st = self.state
        try:
            arg = json.loads(body.decode()) if body else {}
        except ValueError:
            return self.send_json(400, {"error": "bad JSON"})
        with st.lock:
            if what == "faults" and method == "POST":
                st.faults.extend(arg.get("faults", []))
                return self.send_json(200, {"queued": len(st.faults)})
            if what == "reset" and method == "POST":
                key, secs = st.api_key, st.process_seconds
                st.reset()
                st.api_key, st.process_seconds = key, secs
                st.latency, st.list_lag = 0.0, 0.0
                st.idempotency, st.order_id_style = False, "uuid"
                st.list_page_cap, st.list_oldest_first = 0, False
                st.list_meta, st.list_endless = True, None
                st.list_ignore_page = False
                st.number_seconds, st.webhook_url = secs, None
                st.chaos = []
                st.rate_limit = 0
                return self.send_json(200, {"ok": True})
            if what == "reset-requests" and method == "POST":
                st.connections = {"http": 0, "https": 0}
                st.requests = 0
                st.requests_by_route = {}
                return self.send_json(200, {"ok": True})
            if what == "forget" and method == "POST":
                ref = arg.get("customer_reference")
                gone = [i for i in st.order_ids
                        if st.orders[i]["body"].get("customer_reference") == ref]
                for i in gone:
                    del st.orders[i]
                st.idempotent = {k: e for k, e in st.idempotent.items()
                                 if e["order"] not in gone}
                st.order_ids = [i for i in st.order_ids if i not in gone]
                return self.send_json(200, {"forgotten": len(gone)})
            if what == "bulk" and method == "POST":
                body = {"ordering_groups": [{"country_iso": "US",
                                             "phone_number_type": "local",
                                             "count_requested": "1"}],
                        "customer_reference": arg.get("customer_reference",
                                                      "bulk")}
                for _ in range(int(arg.get("count", 1))):
                    st.create_order(json.loads(json.dumps(body)),
                                    {"received_at": time.time()})
                return self.send_json(200, {"created": int(arg["count"])})
            if what == "settle" and method == "POST":
                if arg.get("numbers", True):
                    st.deliver_later(st.advance_all(force=True))
                else:
                    for o in st.orders.values():
                        st.advance(o, force=True)
                return self.send_json(200, {"settled": len(st.orders)})
            if what == "webhook" and method == "POST":
                if not st.webhook_key:
                    return self.send_json(400, {"error": "no webhook key"})
                if "body" in arg:
                    ts = str(int(time.time()) + int(arg.get("timestamp_offset", 0)))
                    return self.send_json(200, {
                        "body": arg["body"], "timestamp": ts,
                        "signature": sign(st.webhook_key, ts + "|" + arg["body"])})
                no = st.number_orders.get(arg.get("number_order_id", ""))
                if no is None:
                    return self.send_json(404, {"error": "no such number order"})
                return self.send_json(200, st.delivery(
                    no, arg.get("event_type", "number_order.complete"),
                    arg.get("timestamp_offset", 0), arg.get("event_id")))
            if what == "mutations" and method == "GET":
                return self.send_json(200, {"mutations": st.mutations})
            if what == "webhooks" and method == "GET":
                return self.send_json(200, {"deliveries": st.deliveries})
            if what == "config" and method == "POST":
                if "api_key" in arg:
                    st.api_key = arg["api_key"]
                if "process_seconds" in arg:
                    st.process_seconds = float(arg["process_seconds"])
                if "latency_ms" in arg:
                    st.latency = float(arg["latency_ms"]) / 1000.0
                if "list_lag_seconds" in arg:
                    st.list_lag = float(arg["list_lag_seconds"])
                if "idempotency" in arg:
                    st.idempotency = bool(arg["idempotency"])
                if "order_id_style" in arg:
                    st.order_id_style = arg["order_id_style"]
                if "list_page_cap" in arg:
                    st.list_page_cap = int(arg["list_page_cap"])
                if "list_oldest_first" in arg:
                    st.list_oldest_first = bool(arg["list_oldest_first"])
                if "list_meta" in arg:
                    st.list_meta = bool(arg["list_meta"])
                if "list_endless" in arg:
                    st.list_endless = arg["list_endless"]
                if "list_ignore_page" in arg:
                    st.list_ignore_page = bool(arg["list_ignore_page"])
                if "number_seconds" in arg:
                    st.number_seconds = float(arg["number_seconds"])
                if "webhook_url" in arg:
                    st.webhook_url = arg["webhook_url"]
                if "chaos" in arg:
                    st.chaos = list(arg["chaos"])
                if "rate_limit" in arg:
                    st.rate_limit = int(arg["rate_limit"])
                    st.recent.clear()
                if "seed" in arg:
                    st.rng = random.Random(arg["seed"])
                return self.send_json(200, {"ok": True})
            if what == "ledger" and method == "GET":
                entries = []
                for oid in st.order_ids:
                    o = st.orders[oid]
                    entries.append({"id": oid, "request": o["body"],
                                    "headers": o["headers"],
                                    "received_at": o["received_at"],
                                    "customer_reference":
                                        o["body"].get("customer_reference")})
                return self.send_json(200, {"orders": entries})
            if what == "stats" and method == "GET":
                return self.send_json(200, {
                    "connections": dict(st.connections),
                    "requests": st.requests,
                    "requests_by_route": dict(st.requests_by_route),
                    "replays": st.replays,
                    "faults_pending": len(st.faults),
                    "chaos_hits": dict(st.chaos_hits),
                    "rate_limited": st.rate_limited})
        return self.send_json(404, {"error": "no such control"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, state, scheme, tls_context=None, verbose=False):
        super().__init__(addr, Handler)
        self.state = state
        self.scheme = scheme
        self.tls_context = tls_context
        self.state_verbose = verbose

    def finish_request(self, request, client_address):
        if self.tls_context is not None:
            try:
                request.settimeout(30)
                request = self.tls_context.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError):
                request.close()
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        # a client that goes away mid-request is part of the tests
        if self.state_verbose:
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--http-port", type=int, default=0)
    ap.add_argument("--https-port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--api-key", default=os.environ.get("TELNYX_STANDIN_KEY",
                                                        "KEYstandin"))
    ap.add_argument("--process-seconds", type=float, default=2.0,
                    help="time an order takes to be filled")
    ap.add_argument("--webhook-key",
                    help="Ed25519 private key (PEM) to sign webhook deliveries")
    ap.add_argument("--wrong-name-cert",
                    help="a certificate for another host name, served on a "
                    "port of its own (\"https_wrong_name\" in the ports)")
    ap.add_argument("--wrong-name-key")
    ap.add_argument("--ports-file")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--id-namespace", default="",
                    help="ids unlike those of a stand-in with another one")
    args = ap.parse_args()

    state = State(args.api_key, args.process_seconds, args.webhook_key)
    state.id_namespace = args.id_namespace + ":" if args.id_namespace else ""
    servers = [Server(("127.0.0.1", args.http_port), state, "http",
                      verbose=args.verbose)]
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        servers.append(Server(("127.0.0.1", args.https_port), state, "https",
                              ctx, verbose=args.verbose))
    ports = {s.scheme: s.server_address[1] for s in servers}
    if args.wrong_name_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.wrong_name_cert, args.wrong_name_key)
        wrong = Server(("127.0.0.1", 0), state, "https", ctx,
                       verbose=args.verbose)
        servers.append(wrong)
        ports["https_wrong_name"] = wrong.server_address[1]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    if args.ports_file:
        tmp = args.ports_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(dict(ports, pid=os.getpid()), f)
        os.rename(tmp, args.ports_file)
    else:
        print(json.dumps(ports), flush=True)

    stop = threading.Event()
    threading.Thread(target=ticker, args=(state, stop), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1):
        pass
    for s in servers:
        s.shutdown()


if __name__ == "__main__":
    main()
