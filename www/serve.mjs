// A tiny static file server for localhost (WebGPU needs a secure context, and localhost is one).
// `node www/serve.mjs [port]` serves the demo and the benchmark page as pkg-tests/bench.mjs does
// (see the end of this file); pkg-tests imports `startServer` to serve its pages.
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, isAbsolute, join, relative, resolve, dirname, sep } from "node:path";
import { fileURLToPath } from "node:url";

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".css": "text/css; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".ts": "text/plain; charset=utf-8",
  ".wgsl": "text/plain; charset=utf-8",
};

/**
 * Cross-origin isolation, which pkg-tests/bench.mjs gives the benchmark page: every file here is
 * same-origin, so nothing breaks, and `performance.now()` resolves to 5 µs instead of 100 µs.
 */
export const ISOLATION_HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

/**
 * Whether `file` (absolute, normalized) is `root` or inside it. A plain prefix test is not
 * enough: `/repo/pkg-tests/x` starts with `/repo/pkg`.
 */
function inside(root, file) {
  const rel = relative(root, file);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/**
 * The URL's path, percent-decoded, or null when it is malformed (`/%E0%A4%A`): a bad request
 * must get a 400, not throw out of the request handler and take the server down.
 */
function decodedPath(url) {
  try {
    return decodeURIComponent(new URL(url, "http://localhost").pathname);
  } catch {
    return null;
  }
}

/**
 * Serves `routes` (URL prefix → directory) on 127.0.0.1, with `headers` on every response.
 * Resolves with the server and its base URL.
 * @param {{ routes: Record<string, string>, port?: number, headers?: Record<string, string> }} options
 */
export async function startServer({ routes, port = 0, headers = {} }) {
  const prefixes = Object.keys(routes).sort((a, b) => b.length - a.length);
  const server = createServer(async (req, res) => {
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    const path = decodedPath(req.url);
    if (path === null) return void res.writeHead(400).end("bad request");
    const prefix = prefixes.find((p) => path.startsWith(p));
    if (!prefix) return void res.writeHead(404).end("not found");
    const root = resolve(routes[prefix]);
    let file = join(root, path.slice(prefix.length)); // join normalizes: a decoded `..` climbs here
    if (!inside(root, file)) return void res.writeHead(403).end("forbidden");
    try {
      if ((await stat(file)).isDirectory()) file = join(file, "index.html");
      const body = await readFile(file);
      res.writeHead(200, { "content-type": MIME[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" });
      res.end(body);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  await new Promise((ok) => server.listen(port, "127.0.0.1", ok));
  return { server, url: `http://localhost:${server.address().port}` };
}

// Run as a program (`bash scripts/build.sh --serve`): this directory at / (the demo, the
// benchmark page and the package build.sh copies into www/pkg), and the repository's shaders/ at
// /shaders/, where the benchmark page's raw baseline fetches shaders/bench/raw_doubler.wgsl;
// cross-origin isolated, as pkg-tests/bench.mjs serves the same page.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const here = dirname(fileURLToPath(import.meta.url));
  const port = Number(process.argv[2] ?? 8080);
  const routes = { "/": here, "/shaders/": join(here, "..", "shaders") };
  const { url } = await startServer({ routes, port, headers: ISOLATION_HEADERS });
  console.log(`ringkernel-web demo on ${url}, the benchmark on ${url}/bench.html (Ctrl+C to stop)`);
}
