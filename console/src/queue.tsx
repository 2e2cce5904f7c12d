// The working list: filters in the page's address (so a list can be
// bookmarked and Back works), pages by the API's cursor.

import { useEffect, useState } from "preact/hooks";
import { type Client, Refused, type Summary, download, namesOfServices, unwrap } from "./api";
import { type I18n, STATUSES } from "./i18n";

const FILTERS = ["status", "service", "definition", "kind", "region", "assignee", "since", "from", "until", "overdue"] as const;
const AREAS = ["permit", "population", "tax", "complaint", "catalog"];
const PAGE = 50;

interface Props {
  i: I18n;
  api: Client;
  query: URLSearchParams;
  onRefused: (e: unknown) => void;
}

/** The API's filters from the page's address (`since` is a date, in WIB). */
export function filters(query: URLSearchParams) {
  const f: {
    kind?: string;
    service?: string;
    status?: string;
    region?: string;
    assignee?: string;
    definition?: string;
    updated_since?: number;
    submitted_since?: number;
    submitted_before?: number;
    overdue?: boolean;
  } = {};
  for (const k of ["kind", "service", "status", "region", "assignee", "definition"] as const) {
    const v = query.get(k);
    if (v) f[k] = v;
  }
  // Dates are days in WIB; "until" includes its day.
  const day = (d: string) => Date.parse(`${d}T00:00:00+07:00`);
  const since = query.get("since");
  if (since) f.updated_since = day(since);
  const from = query.get("from");
  if (from) f.submitted_since = day(from);
  const until = query.get("until");
  if (until) f.submitted_before = day(until) + 86_400_000;
  if (query.get("overdue") === "true") f.overdue = true;
  return f;
}

export function Queue({ i, api, query, onRefused }: Props) {
  const [rows, setRows] = useState<Summary[]>();
  const [counts, setCounts] = useState<{ counts: Record<string, number>; total: number }>();
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string>();
  const [names, setNames] = useState<Map<string, { id: string; en: string }>>(new Map());
  const key = query.toString();
  useEffect(() => void namesOfServices(api).then(setNames), []);
  const filter = filters(query);

  async function fetchPage(cursor?: string) {
    const page = unwrap(await api.GET("/v1/agency/requests", { params: { query: { ...filter, cursor, limit: PAGE } } }));
    setNext(page.next_cursor ?? null);
    return page.items;
  }

  const fail = (e: unknown) => {
    // An officer's or resident's key: the back office is the agency's.
    const notAgency = e instanceof Refused && e.status === 403 && e.code === "forbidden";
    setError(notAgency ? i.t("agencyOnly") : String((e as Error).message ?? e));
    onRefused(e);
  };

  useEffect(() => {
    setRows(undefined);
    setError(undefined);
    fetchPage().then(setRows, fail);
    // The tabs count every status under the other filters.
    const { status: _, ...others } = filter;
    api
      .GET("/v1/agency/requests/counts", { params: { query: others } })
      .then(unwrap)
      .then(setCounts, fail);
  }, [key]);

  /** The address of the queue with `status` as its tab. */
  const tab = (status?: string) => {
    const q = new URLSearchParams(query);
    if (status) q.set("status", status);
    else q.delete("status");
    return `#/?${q}`;
  };

  return (
    <section aria-labelledby="queue-title">
      <h2 id="queue-title">{i.t("queue")}</h2>
      <p>
        <a href={`#/map?${query}`} id="to-map">
          {i.t("map")}
        </a>
      </p>
      {counts && (
        <nav aria-label={i.t("status")} class="tabs" id="counts">
          <a href={tab()} aria-current={query.get("status") ? undefined : "page"}>
            {i.t("any")} <span class="count">{counts.total}</span>
          </a>
          {STATUSES.filter((s) => s !== "draft").map((s) => (
            <a href={tab(s)} data-status={s} aria-current={query.get("status") === s ? "page" : undefined}>
              {i.status(s)} <span class="count">{counts.counts[s] ?? 0}</span>
            </a>
          ))}
        </nav>
      )}
      <form
        class="filters"
        onSubmit={(ev) => {
          ev.preventDefault();
          const data = new FormData(ev.currentTarget);
          const q = new URLSearchParams();
          for (const f of FILTERS) {
            const v = String(data.get(f) ?? "").trim();
            if (v) q.set(f, v);
          }
          // Keep the tab the clerk was on unless the status was chosen here.
          location.hash = `#/?${q}`;
        }}
      >
        <label>
          {i.t("status")}
          <select name="status" value={query.get("status") ?? ""}>
            <option value="">{i.t("any")}</option>
            {STATUSES.filter((s) => s !== "draft").map((s) => (
              <option value={s}>{i.status(s)}</option>
            ))}
          </select>
        </label>
        <label>
          {i.t("service")}
          <select name="service" value={query.get("service") ?? ""}>
            <option value="">{i.t("any")}</option>
            {AREAS.map((a) => (
              <option value={a}>{i.label(a)}</option>
            ))}
          </select>
        </label>
        <label>
          {i.t("definition")}
          <select name="definition" value={query.get("definition") ?? ""}>
            <option value="">{i.t("any")}</option>
            {[...names.entries()]
              .sort((a, b) => a[1][i.lang].localeCompare(b[1][i.lang]))
              .map(([id, name]) => (
                <option value={id}>{name[i.lang]}</option>
              ))}
          </select>
        </label>
        <label>
          {i.t("region")}
          <input name="region" value={query.get("region") ?? ""} placeholder="32.73" />
        </label>
        <label>
          {i.t("assignee")}
          <input name="assignee" value={query.get("assignee") ?? ""} />
        </label>
        <label>
          {i.t("submittedFrom")}
          <input name="from" type="date" value={query.get("from") ?? ""} />
        </label>
        <label>
          {i.t("submittedUntil")}
          <input name="until" type="date" value={query.get("until") ?? ""} />
        </label>
        <label>
          {i.t("since")}
          <input name="since" type="date" value={query.get("since") ?? ""} />
        </label>
        <label class="check">
          <input name="overdue" type="checkbox" value="true" checked={query.get("overdue") === "true"} /> {i.t("overdue")}
        </label>
        <button type="submit">{i.t("filter")}</button>
        <button
          type="button"
          id="export"
          onClick={async () => {
            try {
              await download(api, filter);
            } catch (e) {
              fail(e);
            }
          }}
        >
          {i.t("exportCsv")}
        </button>
      </form>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {!rows && !error && <p>{i.t("loading")}</p>}
      {rows && rows.length === 0 && <p>{i.t("none")}</p>}
      {rows && rows.length > 0 && (
        <table id="queue">
          <thead>
            <tr>
              <th scope="col">{i.t("request")}</th>
              <th scope="col">{i.t("kind")}</th>
              <th scope="col">{i.t("status")}</th>
              <th scope="col">{i.t("region")}</th>
              <th scope="col">{i.t("assignee")}</th>
              <th scope="col">{i.t("submitted")}</th>
              <th scope="col">{i.t("updated")}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr data-id={r.id}>
                <td>
                  <a href={`#/r/${r.id}`}>{r.id.slice(0, 8)}</a>
                </td>
                <td>{names.get(r.definition)?.[i.lang] ?? i.label(r.kind)}</td>
                <td>
                  <span class={`status ${r.status}`}>{i.status(r.status)}</span>
                  {r.overdue && <span class="late"> {i.t("late")}</span>}
                </td>
                <td>{r.region}</td>
                <td>{r.assignee ?? ""}</td>
                <td>{r.submitted_at ? i.time(r.submitted_at, r.region) : ""}</td>
                <td>{i.time(r.updated_at, r.region)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {rows && next && (
        <button
          type="button"
          onClick={async () => {
            try {
              const more = await fetchPage(next);
              setRows([...rows, ...more]);
            } catch (e) {
              fail(e);
            }
          }}
        >
          {i.t("more")}
        </button>
      )}
    </section>
  );
}
