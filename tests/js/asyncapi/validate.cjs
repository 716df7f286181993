// Validates AsyncAPI documents with the official parser (@asyncapi/parser v3).
// Usage: node validate.cjs FILE...   ("-" reads one document from standard input)
// Prints one JSON line per document: {"file", "errors": [...], "warnings": n};
// exits 1 when any document has an error (a diagnostic of severity 0).
"use strict";
const fs = require("node:fs");
const { Parser } = require("@asyncapi/parser");

async function main() {
  const parser = new Parser();
  let failed = false;
  for (const file of process.argv.slice(2)) {
    const text = fs.readFileSync(file === "-" ? 0 : file, "utf8");
    const { document, diagnostics } = await parser.parse(text);
    const errors = diagnostics
      .filter((d) => d.severity === 0)
      .map((d) => ({ code: d.code, message: d.message, path: d.path.join(".") }));
    if (!document && !errors.length) errors.push({ code: "no-document", message: "not parsed", path: "" });
    failed = failed || errors.length > 0;
    const warnings = diagnostics.filter((d) => d.severity === 1).map((d) => `${d.path.join(".")}: ${d.message}`);
    console.log(JSON.stringify({ file, errors, warnings }));
  }
  process.exit(failed ? 1 : 0);
}
main().catch((err) => { console.error(err); process.exit(2); });
