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
// Transactional batch as Cosmos DB documents it, which the server's own batch handler
// does not keep (it applies operations one by one and leaves the earlier ones applied
// when a later one fails): all or nothing within the partition the request's
// x-ms-documentdb-partitionkey header names, at most 100 operations (400 beyond),
// every body in that partition (400 otherwise). A failed batch changes nothing and
// answers 207 Multi-Status: the failed operation with its own status (409 for a create
// of an existing id, 412 for a stale ifMatch, 404 for a missing document), every other
// one 424 Failed Dependency. Patch operations are not emulated (400).
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

const batchDocuments = require(path.join(lib, "handler", "batch-documents"));
const applyBatch = batchDocuments.default;
const documentOperations = require(path.join(lib, "handler", "_document-operations"));
const OPERATIONS = {
  Create: documentOperations.createOperation,
  Upsert: documentOperations.upsertOperation,
  Read: documentOperations.readOperation,
  Delete: documentOperations.deleteOperation,
  Replace: documentOperations.replaceOperation,
};
const MAX_BATCH_OPERATIONS = 100;

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => resolve(body));
    req.on("error", reject);
  });
}

function valueAt(doc, keyPath) {
  return keyPath.slice(1).split("/").reduce((node, part) => (node == null ? undefined : node[part]), doc);
}

batchDocuments.default = async (account, req, res, params) => {
  const atomic = String(req.headers["x-ms-cosmos-batch-atomic"]).toLowerCase() === "true";
  if (!atomic) return applyBatch(account, req, res, params);
  const raw = await readBody(req);
  let operations;
  try {
    operations = JSON.parse(raw);
  } catch (err) {
    res.statusCode = 400;
    return { code: "BadRequest", message: "Invalid request body" };
  }
  const collection = account.database(params.dbId).collection(params.collId);
  const definition = collection.read();
  if (!definition) {
    res.statusCode = 404;
    return {};
  }
  if (!Array.isArray(operations) || operations.length === 0 || operations.length > MAX_BATCH_OPERATIONS) {
    res.statusCode = 400;
    return { code: "BadRequest", message: `A batch takes 1 to ${MAX_BATCH_OPERATIONS} operations.` };
  }
  const header = req.headers["x-ms-documentdb-partitionkey"];
  const key = JSON.parse(header || "null");
  const values = Array.isArray(key) ? key : [key];
  const paths = ((definition.partitionKey || {}).paths) || ["/id"];
  for (const operation of operations) {
    if (!operation || !OPERATIONS[operation.operationType]) {
      res.statusCode = 400;
      const type = operation && operation.operationType;
      return { code: "BadRequest", message: `Operation type '${type}' is not emulated in a batch here.` };
    }
    const body = operation.resourceBody;
    if (body && paths.some((p, i) => valueAt(body, p) !== values[i])) {
      res.statusCode = 400;
      return { code: "BadRequest", message: "Every operation of a batch must be in its partition." };
    }
    operation.partitionKey = header; // what the server's operations read the key from
  }
  // All or nothing: keep the collection's items as they are, apply in turn, and put
  // them back if an operation fails (the server is single-threaded: nothing else
  // runs in between).
  const items = collection.documents;
  const saved = { data: new Map(items._data), index: new Map(items._index), rids: items._ridCount };
  const results = [];
  let failedAt = -1;
  for (let i = 0; i < operations.length && failedAt < 0; i += 1) {
    const operation = operations[i];
    const result = OPERATIONS[operation.operationType](collection, operation);
    if (result.statusCode >= 400) failedAt = i;
    results.push(result);
  }
  if (failedAt < 0) {
    return results.map((r) => ({
      statusCode: r.statusCode,
      requestCharge: 1,
      eTag: r.body ? r.body._etag : undefined,
      resourceBody: r.body,
    }));
  }
  items._data = saved.data;
  items._index = saved.index;
  items._ridCount = saved.rids;
  res.statusCode = 207;
  return operations.map((_, i) => ({
    statusCode: i === failedAt ? results[i].statusCode : 424,
    requestCharge: 0,
  }));
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
