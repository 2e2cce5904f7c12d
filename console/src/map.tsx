// Requests plotted where they are about (complaints, business locations,
// field visits), over Indonesia's coastline and, when the deployment gave
// one, its region's outline; clustered, each a link to its page. No tiles
// from outside: the base map is served with the console.

import { useEffect, useMemo, useState } from "preact/hooks";
import { type Client, type Summary, unwrap } from "./api";
import { type I18n, STATUSES } from "./i18n";
import { filters } from "./queue";

/** Rows the map reads at most (pages of 500): the filters narrow it. */
const MAX_POINTS = 2000;
const WIDTH = 960;
const HEIGHT = 600;
/** Points closer than this (pixels) are drawn as one cluster. */
const CELL = 40;

interface Props {
  i: I18n;
  api: Client;
  query: URLSearchParams;
  onRefused: (e: unknown) => void;
}

type Box = { west: number; south: number; east: number; north: number };
/** One outlined area of the deployment's boundaries: its name and rings. */
type Outline = { name?: string; rings: [number, number][][] };

/** The outer rings of a GeoJSON's polygons (the server checked its shape). */
function outlines(g: any): Outline[] {
  const out: Outline[] = [];
  const walk = (v: any, name?: string) => {
    if (v?.type === "FeatureCollection") v.features.forEach((f: any) => walk(f));
    else if (v?.type === "Feature") walk(v.geometry, v.properties?.name ?? v.properties?.NAME);
    else if (v?.type === "Polygon") out.push({ name, rings: [v.coordinates[0]] });
    else if (v?.type === "MultiPolygon") out.push({ name, rings: v.coordinates.map((p: any) => p[0]) });
  };
  walk(g);
  return out;
}
type Located = Summary & { location: { lat: number; lon: number } };

/** The box around `points`, a little wider; Indonesia when there are none. */
export function around(points: { lat: number; lon: number }[]): Box {
  if (points.length === 0) return { west: 94.5, south: -11.5, east: 141.5, north: 6.5 };
  let b = { west: 180, south: 90, east: -180, north: -90 };
  for (const p of points) {
    b = { west: Math.min(b.west, p.lon), south: Math.min(b.south, p.lat), east: Math.max(b.east, p.lon), north: Math.max(b.north, p.lat) };
  }
  // At least ~2 km across, and a tenth more on each side.
  const padLon = Math.max((b.east - b.west) * 0.1, 0.01);
  const padLat = Math.max((b.north - b.south) * 0.1, 0.01);
  return { west: b.west - padLon, south: b.south - padLat, east: b.east + padLon, north: b.north + padLat };
}

/** An equirectangular projection of `box` into the drawing, shape kept. */
function projection(box: Box) {
  const mid = ((box.north + box.south) / 2) * (Math.PI / 180);
  const kx = Math.cos(mid);
  const scale = Math.min(WIDTH / ((box.east - box.west) * kx), HEIGHT / (box.north - box.south));
  const cx = (box.west + box.east) / 2;
  const cy = (box.north + box.south) / 2;
  return (lon: number, lat: number): [number, number] => [WIDTH / 2 + (lon - cx) * kx * scale, HEIGHT / 2 - (lat - cy) * scale];
}

export function MapPage({ i, api, query, onRefused }: Props) {
  const [points, setPoints] = useState<Located[]>();
  const [coast, setCoast] = useState<number[][]>([]);
  const [outline, setOutline] = useState<Outline[]>([]);
  // A cluster chosen zooms in; none: the whole view (the points, and the
  // region's outline when there is one).
  const [zoom, setZoom] = useState<Box>();
  const [more, setMore] = useState(false);
  const [error, setError] = useState<string>();
  const key = query.toString();

  useEffect(() => {
    setPoints(undefined);
    (async () => {
      const found: Located[] = [];
      let cursor: string | undefined;
      let read = 0;
      do {
        const page = unwrap(
          await api.GET("/v1/agency/requests", { params: { query: { ...filters(query), cursor, limit: 500 } } }),
        );
        read += page.items.length;
        found.push(...(page.items.filter((r) => r.location) as Located[]));
        cursor = page.next_cursor ?? undefined;
      } while (cursor && read < MAX_POINTS);
      setMore(cursor !== undefined);
      setPoints(found);
      setZoom(undefined);
    })().catch((e) => {
      setError(String(e.message ?? e));
      onRefused(e);
    });
  }, [key]);
  useEffect(() => {
    fetch("indonesia.json")
      .then((r) => r.json())
      .then(setCoast, () => setCoast([]));
    // The deployment's region outline, when it gave one (404 otherwise).
    fetch("boundaries.json")
      .then((r) => (r.ok ? r.json() : undefined))
      .then((g) => setOutline(g ? outlines(g) : []), () => setOutline([]));
  }, []);

  const box = useMemo(() => {
    if (!points) return undefined;
    if (zoom) return zoom;
    const corners = outline.flatMap((o) => o.rings.flat()).map(([lon, lat]) => ({ lon, lat }));
    return around([...points.map((p) => p.location), ...corners]);
  }, [points, outline, zoom]);

  const drawn = useMemo(() => {
    if (!points || !box) return undefined;
    const at = projection(box);
    // The coastline's rings that reach into the box.
    const paths: string[] = [];
    for (const ring of coast) {
      let inside = false;
      for (let k = 0; k < ring.length && !inside; k += 2) {
        inside = ring[k] >= box.west - 1 && ring[k] <= box.east + 1 && ring[k + 1] >= box.south - 1 && ring[k + 1] <= box.north + 1;
      }
      if (!inside) continue;
      let d = "";
      for (let k = 0; k < ring.length; k += 2) {
        const [x, y] = at(ring[k], ring[k + 1]);
        d += `${k ? "L" : "M"}${x.toFixed(1)} ${y.toFixed(1)}`;
      }
      paths.push(`${d}Z`);
    }
    // Clusters: the points of one grid cell of the drawing.
    const cells = new Map<string, Located[]>();
    for (const p of points) {
      const [x, y] = at(p.location.lon, p.location.lat);
      if (x < 0 || y < 0 || x > WIDTH || y > HEIGHT) continue;
      const cell = `${Math.floor(x / CELL)},${Math.floor(y / CELL)}`;
      cells.set(cell, [...(cells.get(cell) ?? []), p]);
    }
    const groups = [...cells.values()].map((members) => {
      const xy = members.map((m) => at(m.location.lon, m.location.lat));
      return {
        members,
        x: xy.reduce((s, p) => s + p[0], 0) / xy.length,
        y: xy.reduce((s, p) => s + p[1], 0) / xy.length,
      };
    });
    // A graticule at a round step (about five lines across) and a scale
    // bar: the place has no other landmarks without boundary data.
    const span = box.east - box.west;
    const step = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10].find((s) => span / s <= 6) ?? 10;
    const digits = Math.max(0, -Math.floor(Math.log10(step)));
    const lines: { d: string; label: string; x: number; y: number }[] = [];
    for (let lon = Math.ceil(box.west / step) * step; lon <= box.east; lon += step) {
      const [x0, y0] = at(lon, box.north);
      const [, y1] = at(lon, box.south);
      lines.push({ d: `M${x0.toFixed(1)} ${Math.max(0, y0).toFixed(1)}V${Math.min(HEIGHT, y1).toFixed(1)}`, label: `${lon.toFixed(digits)}°E`, x: x0 + 3, y: HEIGHT - 6 });
    }
    for (let lat = Math.ceil(box.south / step) * step; lat <= box.north; lat += step) {
      const [, y] = at(box.west, lat);
      lines.push({ d: `M0 ${y.toFixed(1)}H${WIDTH}`, label: `${Math.abs(lat).toFixed(digits)}°${lat < 0 ? "S" : "N"}`, x: 4, y: y - 3 });
    }
    // km per pixel along the middle latitude, for a bar of a round length.
    const [ax] = at(box.west, (box.north + box.south) / 2);
    const [bx] = at(box.east, (box.north + box.south) / 2);
    const kmPerPx = (span * 111.32 * Math.cos((((box.north + box.south) / 2) * Math.PI) / 180)) / (bx - ax);
    const barKm = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500].find((k) => k / kmPerPx >= 80) ?? 500;
    const scale = { px: barKm / kmPerPx, label: barKm < 1 ? `${barKm * 1000} m` : `${barKm} km` };
    const regions = outline.map((o) => ({
      name: o.name,
      d: o.rings
        .map((ring) => `${ring.map(([lon, lat], k) => `${k ? "L" : "M"}${at(lon, lat).map((v) => v.toFixed(1)).join(" ")}`).join("")}Z`)
        .join(""),
    }));
    return { paths, groups, lines, scale, regions };
  }, [points, coast, box, outline]);

  const back = `#/?${query}`;
  return (
    <section aria-labelledby="map-title">
      <p>
        <a href={back}>← {i.t("back")}</a>
      </p>
      <h2 id="map-title">{i.t("map")}</h2>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {!points && !error && <p>{i.t("loading")}</p>}
      {points && (
        <p>
          {i.t("onMap")}: <strong id="plotted">{points.length}</strong>
          {more && ` · ${i.t("narrow")}`}{" "}
          <button type="button" onClick={() => setZoom(undefined)}>
            {i.t("wholeView")}
          </button>
        </p>
      )}
      {drawn && (
        <svg id="map" viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="group" aria-label={i.t("map")}>
          <rect width={WIDTH} height={HEIGHT} class="sea" />
          {drawn.paths.map((d) => (
            <path d={d} class="land" />
          ))}
          {drawn.regions.map((r) => (
            <path d={r.d} class="boundary">
              {r.name && <title>{r.name}</title>}
            </path>
          ))}
          {drawn.lines.map((l) => (
            <g class="graticule">
              <path d={l.d} />
              <text x={l.x} y={l.y}>
                {l.label}
              </text>
            </g>
          ))}
          <g class="scale" transform={`translate(${WIDTH - drawn.scale.px - 20} ${HEIGHT - 40})`}>
            <rect x={-6} y={-18} width={drawn.scale.px + 12} height={30} />
            <path d={`M0 0H${drawn.scale.px.toFixed(1)}`} />
            <text x={drawn.scale.px / 2} y={-5} text-anchor="middle">
              {drawn.scale.label}
            </text>
          </g>
          {drawn.groups.map((g) =>
            g.members.length === 1 ? (
              <a href={`#/r/${g.members[0].id}`} data-id={g.members[0].id} aria-label={`${i.label(g.members[0].kind)} ${g.members[0].id.slice(0, 8)}, ${i.status(g.members[0].status)}`}>
                <title>{`${i.label(g.members[0].kind)} · ${i.status(g.members[0].status)} · ${g.members[0].region}`}</title>
                <circle cx={g.x} cy={g.y} r={9} class={`pin ${g.members[0].status}`} />
              </a>
            ) : (
              <g
                class="cluster"
                role="button"
                tabIndex={0}
                aria-label={`${g.members.length} ${i.t("requests")}: ${i.t("zoomIn")}`}
                data-count={g.members.length}
                onClick={() => setZoom(around(g.members.map((m) => m.location)))}
                onKeyDown={(e) => (e.key === "Enter" || e.key === " ") && setZoom(around(g.members.map((m) => m.location)))}
              >
                <circle cx={g.x} cy={g.y} r={12 + Math.log2(g.members.length) * 3} />
                <text x={g.x} y={g.y} dy="0.35em" text-anchor="middle">
                  {g.members.length}
                </text>
              </g>
            ),
          )}
        </svg>
      )}
      <ul class="legend">
        {STATUSES.filter((s) => s !== "draft").map((s) => (
          <li>
            <svg width="14" height="14" aria-hidden="true">
              <circle cx="7" cy="7" r="6" class={`pin ${s}`} />
            </svg>{" "}
            {i.status(s)}
          </li>
        ))}
      </ul>
      <p class="hint">{i.t("coastNote")}</p>
    </section>
  );
}
