// Builds the console into dist/ (embedded in the server binary). The
// output depends only on the sources and the pinned packages: the test
// command rebuilds it and fails if dist/ differs from what is committed.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

mkdirSync("dist", { recursive: true });
await build({
  entryPoints: ["src/main.tsx"],
  bundle: true,
  minify: true,
  format: "esm",
  target: "chrome110",
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "eof",
  outfile: "dist/console.js",
  logLevel: "warning",
});
copyFileSync("src/console.css", "dist/console.css");
copyFileSync("index.html", "dist/index.html");
