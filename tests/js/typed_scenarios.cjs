// Typed endpoints (tests/apps/typed_app.py) as the npm socket.io-client v4 sees them:
// a valid body, invalid ones (an async and a sync controller), each reply as the
// ack and as the event, and which controllers ran.
//
//   node typed_scenarios.cjs <url> <transports, comma separated>
//
// Prints one JSON object of what the client observed; tests/interop/test_typed_clients.py
// holds the assertions. Exits non-zero if a scenario throws or the run takes too long.
"use strict";

const { io } = require("socket.io-client");
const [url, transportList] = process.argv.slice(2);

setTimeout(() => {
  console.error("scenarios timed out");
  process.exit(3);
}, 20000).unref();

function within(promise, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`no ${what}`)), 5000)),
  ]);
}

async function main() {
  const socket = io(url, { transports: transportList.split(","), forceNew: true, reconnection: false });
  await within(new Promise((resolve) => socket.once("connect", resolve)), "connect");
  const events = { "order.place": [], "address.check": [] };
  for (const name of Object.keys(events)) socket.on(name, (data) => events[name].push(data));
  const ack = (endpoint, payload) =>
    within(new Promise((resolve) => socket.emit(endpoint, payload, resolve)), `${endpoint} ack`);

  const out = {};
  out.valid = await ack("order.place", {
    id: 1,
    body: { customerId: 7, lines: [{ sku: "ABC-1", qty: 2, size: "large" }, { sku: "ABC-2", qty: 1 }] },
  });
  out.invalid = await ack("order.place", {
    id: 2,
    guid: "g-2",
    body: { customerId: "seven", lines: [{ sku: "abc", qty: 0 }], secret: "hunter2" },
  });
  out.invalidSync = await ack("address.check", { id: 3, body: { street: 5 } });
  out.validSync = await ack("address.check", { id: 4, body: { street: "Main St 1", city: "Ghent" } });
  out.calls = await ack("calls", {});
  await within(
    (async () => {
      while (events["order.place"].length < 2 || events["address.check"].length < 2)
        await new Promise((r) => setTimeout(r, 10));
    })(),
    "the reply events",
  );
  out.events = events;
  socket.close();
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(2);
});
