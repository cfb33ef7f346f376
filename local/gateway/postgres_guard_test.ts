import assert from "node:assert/strict";
import { join } from "./path.ts";

/**
 * Runs a script that installs the guard and then lets an immediate throw, as postgres.js's
 * nextWrite() does when its connection closed first; the throwing function lives in a file
 * at postgres.js's path (node_modules/postgres/src/connection.js). Returns the exit code and
 * output.
 */
async function run(thrower: "nextWrite" | "otherWrite"): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = await Deno.makeTempDir({ prefix: "postgres-guard-" });
  try {
    await Deno.mkdir(join(dir, "node_modules/postgres/src"), { recursive: true });
    await Deno.writeTextFile(join(dir, "node_modules/postgres/src/connection.js"), `
      export function queueWriteThenClose() {
        let socket = { write() { return true; } };
        function ${thrower}() { return socket.write("x"); }
        setImmediate(${thrower});
        socket = null;
      }`);
    await Deno.writeTextFile(join(dir, "main.ts"), `
      import { surviveClosedSocketWrites } from ${JSON.stringify(new URL("./postgres_guard.ts", import.meta.url).href)};
      import { queueWriteThenClose } from "./node_modules/postgres/src/connection.js";
      surviveClosedSocketWrites((line) => console.log(JSON.stringify(line)));
      queueWriteThenClose();
      // Queued after the throwing immediate, so the timer starts only once it has run: a
      // timer set here directly could fire first on a loaded machine (timers before immediates).
      setImmediate(() => setTimeout(() => console.log("still serving"), 100));`);
    const out = await new Deno.Command(Deno.execPath(), { args: ["run", "--allow-read", join(dir, "main.ts")], stdout: "piped", stderr: "piped" }).output();
    return { code: out.code, stdout: new TextDecoder().decode(out.stdout), stderr: new TextDecoder().decode(out.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the gateway survives postgres.js writing to a closed connection from an immediate, and logs it", async () => {
  const { code, stdout } = await run("nextWrite");
  assert.equal(code, 0);
  assert.match(stdout, /"level":"warn","msg":"postgres\.js wrote to a closed connection \(porsager\/postgres#1154\)/);
  assert.match(stdout, /still serving/);
});

Deno.test("any other uncaught error still ends the process", async () => {
  const { code, stdout, stderr } = await run("otherWrite");
  assert.equal(code, 1);
  assert.doesNotMatch(stdout, /still serving/);
  assert.match(stderr, /Cannot read properties of null \(reading 'write'\)/);
});
