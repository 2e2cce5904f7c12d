// One request: its fields, its life, its attachments, and the actions an
// agency may take. Every action carries the version it was decided on
// (If-Match): a request that changed meanwhile answers 412, and the page
// shows what changed instead of overwriting it.

import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { type Client, type Definition, type DefinitionField, Refused, type View, attachment, definitionOf, save, unwrap } from "./api";
import type { I18n } from "./i18n";
import type { Identity } from "./keys";

interface Props {
  i: I18n;
  api: Client;
  identity: Identity;
  id: string;
  onRefused: (e: unknown) => void;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface Entry {
  at: number;
  by: string;
  role: string;
  from?: string;
  to?: string;
  note?: string | null;
  text?: string;
}
interface Attachment {
  sha256: string;
  role: string;
  name: string;
  mime: string;
  size: number;
}

/** Every leaf of `v` by its dotted path: what a change is measured in. */
function leaves(v: Json, path = "", out = new Map<string, string>()): Map<string, string> {
  if (v !== null && typeof v === "object") {
    for (const [k, c] of Object.entries(v)) leaves(c as Json, path ? `${path}.${k}` : k, out);
  } else {
    out.set(path, JSON.stringify(v));
  }
  return out;
}

/** The paths whose values differ between two versions of a request. */
export function changedPaths(before: Json, after: Json): string[] {
  const a = leaves(before);
  const b = leaves(after);
  const paths = new Set([...a.keys(), ...b.keys()]);
  return [...paths].filter((p) => a.get(p) !== b.get(p)).sort();
}

function Fields({ i, value }: { i: I18n; value: Json }): ComponentChildren {
  if (value === null || typeof value !== "object") {
    return <span>{value === null ? "—" : typeof value === "string" ? i.value(value) : String(value)}</span>;
  }
  if (Array.isArray(value)) {
    return (
      <ol>
        {value.map((v) => (
          <li>
            <Fields i={i} value={v} />
          </li>
        ))}
      </ol>
    );
  }
  return (
    <dl>
      {Object.entries(value).map(([k, v]) => (
        <div class="field" data-field={k}>
          <dt>{i.label(k)}</dt>
          <dd>
            <Fields i={i} value={v} />
          </dd>
        </div>
      ))}
    </dl>
  );
}

/** A value as a person reads it: yes/no, an option's label, a place. */
function shown(i: I18n, value: Json, field?: DefinitionField): ComponentChildren {
  if (typeof value === "boolean") return i.t(value ? "yes" : "no");
  if (field?.options && typeof value === "string") {
    const o = field.options.find((o) => o.value === value);
    if (o) return o.label[i.lang];
  }
  if (field?.options && Array.isArray(value)) {
    return value.map((v) => field.options?.find((o) => o.value === v)?.label[i.lang] ?? String(v)).join(", ");
  }
  if (value !== null && typeof value === "object" && !Array.isArray(value) && "lat" in value && "lon" in value) {
    const acc = typeof value.accuracy_m === "number" ? ` (± ${Math.round(value.accuracy_m)} m)` : "";
    return `${value.lat}, ${value.lon}${acc}`;
  }
  return <Fields i={i} value={value} />;
}

/** A request's details (or a catalog service's answers) under the labels of its definition. */
function Details({ i, details, definition }: { i: I18n; details: Record<string, Json>; definition?: Definition }) {
  if (!definition) return <Fields i={i} value={details} />;
  const raw = details.kind === "service" ? ((details.answers ?? {}) as Record<string, Json>) : details;
  // Answers may travel as JSON text (one per field).
  const values: Record<string, Json> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v === "string" && details.kind === "service") {
      try {
        values[k] = JSON.parse(v);
        continue;
      } catch {
        /* plain text */
      }
    }
    values[k] = v;
  }
  const known = new Set(definition.fields.map((f) => f.id));
  return (
    <dl>
      <div class="field" data-field="service">
        <dt>{i.t("definition")}</dt>
        <dd>
          {definition.name[i.lang]} (v{definition.version})
        </dd>
      </div>
      {definition.fields
        .filter((f) => f.id in values)
        .map((f) => (
          <div class="field" data-field={f.id}>
            <dt>{f.label[i.lang]}</dt>
            <dd>{shown(i, values[f.id], f)}</dd>
          </div>
        ))}
      {Object.entries(values)
        .filter(([k]) => !known.has(k) && k !== "kind")
        .map(([k, v]) => (
          <div class="field" data-field={k}>
            <dt>{i.label(k)}</dt>
            <dd>{shown(i, v)}</dd>
          </div>
        ))}
    </dl>
  );
}

/** The content: who, where, then the details under their labels. */
function Content({ i, content, definition }: { i: I18n; content: Record<string, Json>; definition?: Definition }) {
  const order = ["region", "applicant", "contact_phone", "details", "lawful_basis"];
  const keys = [...order.filter((k) => k in content), ...Object.keys(content).filter((k) => !order.includes(k))];
  return (
    <dl>
      {keys.map((k) => (
        <div class="field" data-field={k}>
          <dt>{i.label(k)}</dt>
          <dd>
            {k === "details" ? (
              <Details i={i} details={content.details as Record<string, Json>} definition={definition} />
            ) : k === "applicant" ? (
              <Fields i={i} value={content[k]} />
            ) : (
              shown(i, content[k])
            )}
          </dd>
        </div>
      ))}
    </dl>
  );
}

interface Receipt {
  change: string;
  account: string;
  device?: string | null;
  at: number;
}
interface AuditLine {
  seq: number;
  at: number;
  account: string;
  action: string;
  endpoint: string;
}

/** Who delivered each change, and who read or acted on it (the audit trail). */
function Trail({ i, api, id, region, version }: { i: I18n; api: Client; id: string; region: string; version: string }) {
  const [receipts, setReceipts] = useState<Receipt[]>();
  const [audit, setAudit] = useState<AuditLine[] | string>();
  useEffect(() => {
    api
      .GET("/v1/agency/requests/{id}/receipts", { params: { path: { id } } })
      .then(unwrap)
      .then((r) => setReceipts(r.receipts), () => setReceipts([]));
    api
      .GET("/v1/agency/audit", { params: { query: { request: id, limit: 100 } } })
      .then(unwrap)
      .then(
        (r) => setAudit(r.entries as AuditLine[]),
        (e) => setAudit(e instanceof Refused && e.status === 403 ? i.t("auditWhole") : String(e.message ?? e)),
      );
  }, [id, version]);
  return (
    <details class="trail">
      <summary>{i.t("trail")}</summary>
      <h4>{i.t("receipts")}</h4>
      <ol id="receipts">
        {(receipts ?? []).map((r) => (
          <li>
            <time>{i.time(r.at, region)}</time> · {r.account}
            {r.device && <small> · {r.device.slice(0, 8)}</small>}
          </li>
        ))}
      </ol>
      <h4>{i.t("audit")}</h4>
      {typeof audit === "string" ? (
        <p class="hint">{audit}</p>
      ) : (
        <ol id="audit">
          {(audit ?? []).map((a) => (
            <li>
              <time>{i.time(a.at, region)}</time> · {a.account} · <code>{a.action}</code> <small>{a.endpoint}</small>
            </li>
          ))}
        </ol>
      )}
    </details>
  );
}

function AttachmentView({ identity, request, a, i }: { identity: Identity; request: string; a: Attachment; i: I18n }) {
  const [url, setUrl] = useState<string>();
  const image = a.mime.startsWith("image/");
  useEffect(() => {
    if (!image) return;
    let made: string | undefined;
    attachment(identity, request, a.sha256).then((b) => setUrl((made = URL.createObjectURL(b))), () => undefined);
    return () => made && URL.revokeObjectURL(made);
  }, [a.sha256]);
  return (
    <figure>
      {image && url && <img src={url} alt={a.name} class="photo" />}
      <figcaption>
        {a.name} · {i.label(a.role)} · {Math.ceil(a.size / 1024)} KB{" "}
        {!image && (
          <button
            type="button"
            onClick={async () => {
              // Saved under its name for the office's own PDF reader: a
              // document opened in a tab from here inherits this page's
              // strict policy (no plugins), which can keep a PDF viewer
              // from showing it.
              save(await attachment(identity, request, a.sha256), a.name);
            }}
          >
            {i.t("open")}
          </button>
        )}
      </figcaption>
    </figure>
  );
}

export function RequestPage({ i, api, identity, id, onRefused }: Props) {
  const [view, setView] = useState<View>();
  const [error, setError] = useState<string>();
  const [saved, setSaved] = useState<string>();
  const [changed, setChanged] = useState<string[]>();
  const [message, setMessage] = useState("");
  const [note, setNote] = useState("");
  const [officer, setOfficer] = useState("");
  const [definition, setDefinition] = useState<Definition>();
  const [officers, setOfficers] = useState<{ id: string; regions: string[] }[]>();

  async function reload(): Promise<View> {
    const v = unwrap(await api.GET("/v1/agency/requests/{id}", { params: { path: { id } } }));
    setView(v);
    const details = (v.request as Record<string, Json>).content as Record<string, Json> | undefined;
    if (details?.details) definitionOf(api, details.details as Record<string, unknown>).then(setDefinition);
    const assignee = (v.request as Record<string, Json>).assignee;
    setOfficer(typeof assignee === "string" ? assignee : "");
    if (typeof details?.region === "string" && !officers) {
      api
        .GET("/v1/agency/officers", { params: { query: { region: details.region } } })
        .then(unwrap)
        .then((l) => setOfficers(l.officers), () => setOfficers([]));
    }
    return v;
  }
  useEffect(() => {
    reload().catch((e) => {
      setError(String(e.message ?? e));
      onRefused(e);
    });
  }, [id]);

  /** Runs an action on the version shown; a 412 shows what changed. */
  async function act(run: (etag: string) => Promise<{ error?: unknown; response: Response; data?: unknown }>) {
    if (!view) return;
    setError(undefined);
    setSaved(undefined);
    setChanged(undefined);
    try {
      unwrap(await run(view.etag));
      await reload();
      setSaved(i.t("done"));
      setMessage("");
      setNote("");
    } catch (e) {
      if (e instanceof Refused && e.status === 412) {
        const before = view.request as Json;
        const after = await reload();
        setChanged(changedPaths(before, after.request as Json));
        setError(i.t("stale"));
      } else {
        setError(String((e as Error).message ?? e));
        onRefused(e);
      }
    }
  }

  if (!view) {
    return error ? (
      <p role="alert" class="error">
        {error}
      </p>
    ) : (
      <p>{i.t("loading")}</p>
    );
  }
  const r = view.request as Record<string, Json>;
  const content = r.content as Record<string, Json>;
  const region = String(content?.region ?? "");
  const history = (r.history ?? []) as unknown as Entry[];
  const notes = (r.notes ?? []) as unknown as Entry[];
  const attachments = (r.attachments ?? []) as unknown as Attachment[];

  return (
    <article aria-labelledby="request-title">
      <p>
        <a href="#/">← {i.t("back")}</a>
      </p>
      <h2 id="request-title">
        {i.t("request")} {id.slice(0, 8)} ·{" "}
        <span class={`status ${view.status}`} id="status">
          {i.status(view.status)}
        </span>
      </h2>
      <div aria-live="polite">
        {saved && <p class="ok">{saved}</p>}
        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
        {changed && (
          <section id="changed" aria-label={i.t("changed")}>
            <h3>{i.t("changed")}</h3>
            <ul>
              {changed.map((p) => (
                <li>{p}</li>
              ))}
            </ul>
          </section>
        )}
      </div>
      <div class="columns">
        <section aria-labelledby="fields-title">
          <h3 id="fields-title">{i.t("fields")}</h3>
          <Content i={i} content={content} definition={definition} />
          {typeof r.assignee === "string" && (
            <p>
              {i.t("assignee")}: <strong>{r.assignee}</strong>
            </p>
          )}
          <h3>{i.t("attachments")}</h3>
          {attachments.length === 0 && <p>{i.t("noneYet")}</p>}
          {attachments.map((a) => (
            <AttachmentView identity={identity} request={id} a={a} i={i} />
          ))}
        </section>
        <section aria-labelledby="life-title">
          <Trail i={i} api={api} id={id} region={region} version={view.etag} />
          <h3 id="life-title">{i.t("history")}</h3>
          <ol class="timeline" id="history">
            {history.map((h) => (
              <li>
                <strong>
                  {i.status(h.from ?? "")} → {i.status(h.to ?? "")}
                </strong>{" "}
                {i.t("by")} {h.by} ({h.role}) · <time>{i.time(h.at, region)}</time>
                {h.note && <p>{h.note}</p>}
              </li>
            ))}
          </ol>
          <h3>{i.t("notes")}</h3>
          {notes.length === 0 && <p>{i.t("noneYet")}</p>}
          <ul class="notes" id="notes">
            {notes.map((n) => (
              <li>
                <p>{n.text}</p>
                <small>
                  {n.by} ({n.role}) · <time>{i.time(n.at, region)}</time>
                </small>
              </li>
            ))}
          </ul>
          <h3>{i.t("act")}</h3>
          {view.next_statuses.length > 0 && (
            <form
              id="status-form"
              onSubmit={(ev) => {
                ev.preventDefault();
                const to = ((ev as SubmitEvent).submitter as HTMLButtonElement | null)?.value;
                if (!to) return;
                act((etag) =>
                  api.POST("/v1/agency/requests/{id}/status", {
                    params: { path: { id } },
                    headers: { "If-Match": etag },
                    body: message.trim() ? { to, note: message.trim() } : { to },
                  }),
                );
              }}
            >
              <p class="hint">{i.t("askHelp")}</p>
              <label for="message">{i.t("reason")}</label>
              <textarea id="message" value={message} maxLength={5000} onInput={(e) => setMessage(e.currentTarget.value)} />
              <fieldset>
                <legend>{i.t("moveTo")}</legend>
                {view.next_statuses.map((s) => (
                  <button type="submit" name="to" value={s} class={`to ${s}`}>
                    {i.status(s)}
                  </button>
                ))}
              </fieldset>
            </form>
          )}
          <form
            id="note-form"
            onSubmit={(ev) => {
              ev.preventDefault();
              act((etag) =>
                api.POST("/v1/agency/requests/{id}/notes", {
                  params: { path: { id } },
                  headers: { "If-Match": etag },
                  body: { text: note.trim() },
                }),
              );
            }}
          >
            <label for="note">{i.t("noteText")}</label>
            <textarea id="note" required value={note} maxLength={5000} onInput={(e) => setNote(e.currentTarget.value)} />
            <button type="submit">{i.t("addNote")}</button>
          </form>
          <form
            id="assign-form"
            onSubmit={(ev) => {
              ev.preventDefault();
              act((etag) =>
                api.POST("/v1/agency/requests/{id}/assignee", {
                  params: { path: { id } },
                  headers: { "If-Match": etag },
                  body: { officer: officer.trim() || null },
                }),
              );
            }}
          >
            <label for="officer">{i.t("officer")}</label>
            <select id="officer" value={officer} onChange={(e) => setOfficer(e.currentTarget.value)}>
              <option value="">{i.t("unassign")}</option>
              {(officers ?? []).map((o) => (
                <option value={o.id}>
                  {o.id} ({o.regions.join(", ")})
                </option>
              ))}
            </select>
            <button type="submit">{i.t("assign")}</button>
          </form>
        </section>
      </div>
    </article>
  );
}
