// A minimal in-memory SCIM server on SCIMMY (npm `scimmy`, `scimmy-routers`),
// the way its README wires it, for side-by-side measurements only
// (BENCHMARKS.md). Users live in a Map. SCIMMY parses the filter but leaves
// matching to the egress handler, which runs it over every stored user with
// SCIMMY's own matcher (`resource.filter.match(values)`).
//
//   node scimmy-server.mjs PORT TOKEN
import express from "express";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";
import { randomUUID } from "node:crypto";

const [port, token] = [Number(process.argv[2] ?? 8090), process.argv[3] ?? "bench"];
const users = new Map();
const groups = new Map();

function store(map) {
    return {
        ingress: (resource, instance) => {
            const id = resource.id ?? randomUUID();
            const now = new Date();
            const created = map.get(id)?.meta?.created ?? now;
            const record = { ...instance, id, meta: { created, lastModified: now } };
            map.set(id, record);
            return record;
        },
        egress: (resource) => {
            if (resource.id) return map.get(resource.id);
            const all = [...map.values()];
            return resource.filter ? resource.filter.match(all) : all;
        },
        degress: (resource) => {
            map.delete(resource.id);
        },
    };
}

for (const [type, map] of [[SCIMMY.Resources.User, users], [SCIMMY.Resources.Group, groups]]) {
    const s = store(map);
    SCIMMY.Resources.declare(type).ingress(s.ingress).egress(s.egress).degress(s.degress);
}

const app = express();
app.use("/scim/v2", new SCIMMYRouters({
    type: "bearer",
    handler: (request) => {
        if (request.header("Authorization") !== `Bearer ${token}`) {
            throw new Error("Authorization not detected!");
        }
        return "bench";
    },
}));
app.listen(port, "127.0.0.1", () => console.log(`scimmy listening on ${port}`));
