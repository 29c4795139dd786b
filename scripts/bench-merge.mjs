// The one document scripts/bench.sh writes, from the parts it left in a folder: each report as it
// came, the ones that failed under `failures`, and `issue19`: the five ratios issue 19 sets goals
// for, side by side for every report (each from its own run on one adapter), read from the keys
// the README's goals table uses, null with the reason where a run did not measure one.
//
//   node scripts/bench-merge.mjs PARTS_DIR OUT_FILE
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Issue 19's goals: a ratio's name, how to read it, and the bound it is held to. */
export const ISSUE_19_GOALS = [
  { name: "batchedOverRaw100k", goal: ">= 0.8", what: "batched / raw hand-written doubler, 100,000 messages (msgs/s ÷ msgs/s)" },
  { name: "batchedOverRaw1M", goal: ">= 0.9", what: "batched / raw hand-written doubler, 1,000,000 messages" },
  { name: "roundTripOverRawSingle", goal: "<= 1.1", what: "one-message round trip / raw single dispatch, p50s" },
  { name: "pipelineOverSingleStage", goal: "<= 1.1", what: "4-stage connected (fused) pipeline / one stage, p50s" },
  { name: "tick16OverTick1", goal: "<= 1.5", what: "16 kernels' round / 1 kernel's round, p50s" },
];

/**
 * Issue 19's ratios from one report (`native`: ringkernel-native bench's JSON, else the browser
 * bench's): `{ values, from, missing }`. Natively the paired ratios (alternating blocks) are the
 * ones compared, in the browser those of lanes taking turns; a browser round trip over a raw
 * floor its report calls suspect is left out (see rawFloorCheck in www/bench-stats.js).
 */
export function issue19Ratios(report, native) {
  const r = report?.ratios ?? {};
  const values = {};
  const from = {};
  const missing = {};
  const put = (name, key, value, why) => {
    if (typeof value === "number" && Number.isFinite(value)) {
      values[name] = value;
      from[name] = key;
    } else {
      values[name] = null;
      missing[name] = why ?? `ratios.${key} is ${JSON.stringify(value ?? null)}`;
    }
  };
  for (const [name, messages] of [["batchedOverRaw100k", 100_000], ["batchedOverRaw1M", 1_000_000]]) {
    const sized = (r.batchedOverRaw ?? []).find((s) => s.messages === messages);
    put(name, `batchedOverRaw[messages=${messages}]`, sized?.value,
      sized ? undefined : `no batch of ${messages} (batch sizes ${JSON.stringify(report?.config?.batchSizes ?? [])}; --quick stops at 10,000)`);
  }
  if (native) put("roundTripOverRawSingle", "roundTripOverRawSinglePaired", r.roundTripOverRawSinglePaired);
  else if (r.rawSingleFloor?.suspect) put("roundTripOverRawSingle", "roundTripOverRawSingle", null, "the raw floor is suspect here (ratios.rawSingleFloor)");
  else put("roundTripOverRawSingle", "roundTripOverRawSingle", r.roundTripOverRawSingle);
  put("pipelineOverSingleStage", native ? "pipelineOverSingleStagePaired" : "pipelineOverSingleStage",
    native ? r.pipelineOverSingleStagePaired : r.pipelineOverSingleStage);
  put("tick16OverTick1", "tick16OverTick1Paired", r.tick16OverTick1Paired);
  return { values, from, ...(Object.keys(missing).length && { missing }) };
}

/** The document from the parts in `parts`: `{ document, failures }`. */
export function merge(parts) {
  const read = (name) => {
    const file = path.join(parts, name);
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  };
  const failures = [];
  // A report is good when it parses and carries no `error` (bench.mjs writes what it measured
  // before an error with the error beside it).
  const report = (name, label) => {
    let parsed;
    try { parsed = JSON.parse(read(`${name}.json`)); } catch { parsed = undefined; }
    if (parsed === undefined || parsed === null || parsed.error) {
      const said = (parsed?.error ?? read(`${name}.err`).trim().split("\n").slice(-3).join(" | ")) || "no output";
      failures.push({ bench: label, error: said });
    }
    return parsed ?? null;
  };
  let info;
  try { info = JSON.parse(read("info.json")); } catch { info = { adapters: [] }; }
  const native = {};
  for (const file of fs.readdirSync(parts).sort()) {
    const match = /^native-(.+)\.json$/.exec(file);
    if (match) native[match[1]] = report(`native-${match[1]}`, `native ${match[1]}`);
  }
  if (fs.existsSync(path.join(parts, "native-none.err"))) failures.push({ bench: "native", error: read("native-none.err").trim() });
  const browser = report("browser", "browser");
  const issue19 = { goals: ISSUE_19_GOALS, reports: {} };
  const measured = [...Object.entries(native).map(([api, r]) => [`native ${api}`, r, true]), ["browser", browser, false]];
  for (const [label, r, isNative] of measured) {
    if (!r?.ratios) continue;
    issue19.reports[label] = { adapter: r.adapter ? `${r.adapter.name} (${r.adapter.backend}, ${r.adapter.deviceType})` : null, ...issue19Ratios(r, isNative) };
  }
  const document = {
    machine: { host: os.hostname(), cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? "", date: new Date().toISOString() },
    adapters: info.adapters ?? [],
    native,
    browser,
    issue19,
    failures,
  };
  return { document, failures };
}

/** Issue 19's ratios as lines for people: one row per ratio, one column per report. */
export function formatIssue19(issue19) {
  const labels = Object.keys(issue19.reports);
  if (labels.length === 0) return ["issue 19's ratios: no report measured them"];
  const lines = [`issue 19's ratios (each column one run on one adapter): ${labels.map((l) => `${l}: ${issue19.reports[l].adapter}`).join("; ")}`];
  lines.push(`  ${"ratio".padEnd(26)}${"goal".padStart(8)}${labels.map((l) => l.padStart(16)).join("")}`);
  for (const { name, goal } of issue19.goals) {
    const cells = labels.map((l) => {
      const v = issue19.reports[l].values[name];
      return (v === null ? "n/a" : v.toFixed(3)).padStart(16);
    });
    lines.push(`  ${name.padEnd(26)}${goal.padStart(8)}${cells.join("")}`);
  }
  return lines;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [parts, out] = process.argv.slice(2);
  const { document, failures } = merge(parts);
  fs.writeFileSync(out, JSON.stringify(document, null, 2) + "\n");
  for (const line of formatIssue19(document.issue19)) console.error(line);
  const nativeApis = Object.keys(document.native).join(", ") || "no adapter";
  console.error(`bench.sh: wrote ${out} (native on ${nativeApis}; browser ${document.browser?.adapter?.name ?? "not measured"}); ${failures.length} failed`);
  for (const f of failures) console.error(`  failed: ${f.bench}: ${f.error}`);
  process.exitCode = failures.length ? 1 : 0;
}
