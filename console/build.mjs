// Builds the console into dist/ (embedded in the server binary). The
// output depends only on the sources and the pinned packages: the test
// command rebuilds it and fails if dist/ differs from what is committed.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { feature } from "topojson-client";

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

// The map's base: Indonesia's coastline from Natural Earth (public
// domain; world-atlas, 1:10m), as rings of [lon, lat, lon, lat, …] to a
// thousandth of a degree (about 110 m, finer than the data itself). Served
// by the server with the console: no tile server, no internet needed.
const topo = JSON.parse(readFileSync("node_modules/world-atlas/countries-10m.json", "utf8"));
const indonesia = feature(topo, topo.objects.countries).features.find((f) => f.id === "360");
const rings = indonesia.geometry.coordinates.map((polygon) =>
  polygon[0].flatMap(([lon, lat]) => [Math.round(lon * 1000) / 1000, Math.round(lat * 1000) / 1000]),
);
writeFileSync("dist/indonesia.json", JSON.stringify(rings));
