// The working list: filters in the page's address (so a list can be
// bookmarked and Back works), pages by the API's cursor.

import { useEffect, useState } from "preact/hooks";
import { type Client, type Summary, unwrap } from "./api";
import { type I18n, STATUSES } from "./i18n";

const FILTERS = ["status", "service", "kind", "region", "assignee"] as const;
const AREAS = ["permit", "population", "tax", "complaint", "catalog"];
const PAGE = 50;

interface Props {
  i: I18n;
  api: Client;
  query: URLSearchParams;
  onRefused: (e: unknown) => void;
}

export function Queue({ i, api, query, onRefused }: Props) {
  const [rows, setRows] = useState<Summary[]>();
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string>();
  const key = query.toString();

  async function fetchPage(cursor?: string) {
    const filter: Record<string, string> = {};
    for (const f of FILTERS) {
      const v = query.get(f);
      if (v) filter[f] = v;
    }
    const page = unwrap(
      await api.GET("/v1/agency/requests", { params: { query: { ...filter, cursor, limit: PAGE } } }),
    );
    setNext(page.next_cursor ?? null);
    return page.items;
  }

  useEffect(() => {
    setRows(undefined);
    setError(undefined);
    fetchPage().then(setRows, (e) => {
      setError(String(e.message ?? e));
      onRefused(e);
    });
  }, [key]);

  return (
    <section aria-labelledby="queue-title">
      <h2 id="queue-title">{i.t("queue")}</h2>
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
          {i.t("kind")}
          <input name="kind" value={query.get("kind") ?? ""} placeholder="complaint" />
        </label>
        <label>
          {i.t("region")}
          <input name="region" value={query.get("region") ?? ""} placeholder="32.73" />
        </label>
        <label>
          {i.t("assignee")}
          <input name="assignee" value={query.get("assignee") ?? ""} />
        </label>
        <button type="submit">{i.t("filter")}</button>
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
              <th scope="col">{i.t("updated")}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr data-id={r.id}>
                <td>
                  <a href={`#/r/${r.id}`}>{r.id.slice(0, 8)}</a>
                </td>
                <td>{i.label(r.kind)}</td>
                <td>
                  <span class={`status ${r.status}`}>{i.status(r.status)}</span>
                </td>
                <td>{r.region}</td>
                <td>{r.assignee ?? ""}</td>
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
              setError(String((e as Error).message ?? e));
              onRefused(e);
            }
          }}
        >
          {i.t("more")}
        </button>
      )}
    </section>
  );
}
