// Runs @vercel/cosmosdb-server (the local Cosmos DB server of our tests) over plain
// HTTP on 127.0.0.1:<port>, keeping connections alive.
//
// Deviation mended here, not in the adapter: a point read of a missing item makes
// that server's read-document handler throw a TypeError (it answers 500); real
// Cosmos DB answers 404, so this wrapper answers 404 for it.
//
// Throttling on a schedule, as Cosmos DB answers when a container's request units
// are spent: `POST /_test/throttle {"count": n, "retry_after_ms": ms}` makes the next
// n document requests (paths with /docs) answer 429 TooManyRequests with
// x-ms-retry-after-ms and x-ms-substatus 3200; `GET /_test/throttle` tells how many
// are left and how many were answered so.
//
// usage: node cosmos_server.js <node_modules dir> <port>
"use strict";
const path = require("path");

const [modules, port] = process.argv.slice(2);
const lib = path.join(modules, "@vercel", "cosmosdb-server", "lib");

const readDocument = require(path.join(lib, "handler", "read-document"));
const original = readDocument.default;
readDocument.default = (account, req, res, params) => {
  try {
    return original(account, req, res, params);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    res.statusCode = 404;
    return { code: "NotFound", message: "Entity with the specified id does not exist in the system." };
  }
};

const { createHttpServer } = require(lib); // loads the routes, which take the wrapper
const server = createHttpServer({ keepAlive: true });

const throttle = { count: 0, retryAfterMs: 100, answered: 0 };
const handlers = server.listeners("request");
server.removeAllListeners("request");
server.on("request", (req, res) => {
  if (req.url === "/_test/throttle") {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      if (req.method === "POST") {
        const asked = JSON.parse(body || "{}");
        throttle.count = asked.count || 0;
        throttle.retryAfterMs = asked.retry_after_ms || 100;
        throttle.answered = 0;
      }
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ left: throttle.count, answered: throttle.answered }));
    });
    return;
  }
  if (throttle.count > 0 && /\/docs(\/|$)/.test(req.url)) {
    throttle.count -= 1;
    throttle.answered += 1;
    req.resume();
    res.statusCode = 429;
    res.setHeader("content-type", "application/json");
    res.setHeader("x-ms-retry-after-ms", String(throttle.retryAfterMs));
    res.setHeader("x-ms-substatus", "3200");
    res.setHeader("x-ms-request-charge", "0");
    res.end(JSON.stringify({
      code: "TooManyRequests",
      message: "Request rate is large. More Request Units may be needed, so no changes were made.",
    }));
    return;
  }
  for (const handler of handlers) handler.call(server, req, res);
});

server.listen(Number(port), "127.0.0.1", () => {
  process.stdout.write(`listening on ${server.address().port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
