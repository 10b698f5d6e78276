// Runs @vercel/cosmosdb-server (the local Cosmos DB server of our tests) over plain
// HTTP on 127.0.0.1:<port>, keeping connections alive.
//
// Deviation mended here, not in the adapter: a point read of a missing item makes
// that server's read-document handler throw a TypeError (it answers 500); real
// Cosmos DB answers 404, so this wrapper answers 404 for it.
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
server.listen(Number(port), "127.0.0.1", () => {
  process.stdout.write(`listening on ${server.address().port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
