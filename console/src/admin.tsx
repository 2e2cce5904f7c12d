// Administration, for an agency account without region limits (the data
// protection officer): enrolled keys and their revocation, webhook
// subscriptions, and a person's export and erasure (UU PDP). Each is a
// call of the back-office API; the server records each in the audit trail.

import { useEffect, useState } from "preact/hooks";
import { type Client, Refused, save, today, unwrap } from "./api";
import type { I18n } from "./i18n";

interface Props {
  i: I18n;
  api: Client;
  /** This browser's own key (it cannot revoke itself: sign out instead). */
  device: string;
  onRefused: (e: unknown) => void;
}

type Device = { id: string; account: string; role: string; enrolled_at: number; revoked_at?: number | null };
type Hook = {
  id: string;
  url: string;
  events: string[];
  secret?: string | null;
  delivered: number;
  pending: number;
  failed: number;
  last_error?: string | null;
};
const EVENTS = ["request.submitted", "request.status_changed", "request.note_added", "attachment.received"] as const;

function useFailure(i: I18n, onRefused: (e: unknown) => void) {
  const [error, setError] = useState<string>();
  const fail = (e: unknown) => {
    setError(e instanceof Refused && e.status === 403 && e.code === "forbidden" ? i.t("wholeOnly") : String((e as Error).message ?? e));
    onRefused(e);
  };
  return [error, fail, setError] as const;
}

function Keys({ i, api, device, onRefused }: Props) {
  const [devices, setDevices] = useState<Device[]>();
  const [error, fail, setError] = useFailure(i, onRefused);
  const load = () =>
    api
      .GET("/v1/agency/devices", {})
      .then(unwrap)
      .then((r) => setDevices(r.devices), fail);
  useEffect(() => void load(), []);
  return (
    <section aria-labelledby="keys-title">
      <h3 id="keys-title">{i.t("keys")}</h3>
      <p class="hint">{i.t("keysHelp")}</p>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {devices && (
        <table id="devices">
          <thead>
            <tr>
              <th scope="col">{i.t("key")}</th>
              <th scope="col">{i.t("account")}</th>
              <th scope="col">{i.t("role")}</th>
              <th scope="col">{i.t("enrolled")}</th>
              <th scope="col">{i.t("state")}</th>
            </tr>
          </thead>
          <tbody>
            {devices.map((d) => (
              <tr data-device={d.id}>
                <td>
                  <code>{d.id.slice(0, 12)}…</code>
                </td>
                <td>{d.account}</td>
                <td>{d.role}</td>
                <td>{i.time(d.enrolled_at * 1000)}</td>
                <td>
                  {d.revoked_at ? (
                    `${i.t("revokedAt")} ${i.time(d.revoked_at * 1000)}`
                  ) : d.id === device ? (
                    <em>{i.t("thisBrowser")}</em>
                  ) : (
                    <>
                      <button
                        type="button"
                        class="revoke"
                        onClick={async () => {
                          if (!confirm(`${i.t("revokeConfirm")} ${d.account} (${d.id.slice(0, 12)}…)`)) return;
                          setError(undefined);
                          try {
                            unwrap(await api.POST("/v1/agency/devices/{id}/revoke", { params: { path: { id: d.id } }, body: {} }));
                            await load();
                          } catch (e) {
                            fail(e);
                          }
                        }}
                      >
                        {i.t("revoke")}
                      </button>{" "}
                      <button
                        type="button"
                        class="revoke-wipe"
                        onClick={async () => {
                          if (!confirm(`${i.t("wipeConfirm")} ${d.account} (${d.id.slice(0, 12)}…)`)) return;
                          setError(undefined);
                          try {
                            unwrap(
                              await api.POST("/v1/agency/devices/{id}/revoke", {
                                params: { path: { id: d.id } },
                                body: { wipe: true, push_first: true },
                              }),
                            );
                            await load();
                          } catch (e) {
                            fail(e);
                          }
                        }}
                      >
                        {i.t("revokeWipe")}
                      </button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Webhooks({ i, api, onRefused }: Props) {
  const [hooks, setHooks] = useState<Hook[]>();
  const [secret, setSecret] = useState<string>();
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState<string[]>([...EVENTS]);
  const [error, fail, setError] = useFailure(i, onRefused);
  const load = () =>
    api
      .GET("/v1/agency/webhooks", {})
      .then(unwrap)
      .then((r) => setHooks(r as Hook[]), fail);
  useEffect(() => void load(), []);
  return (
    <section aria-labelledby="hooks-title">
      <h3 id="hooks-title">{i.t("webhooks")}</h3>
      <p class="hint">{i.t("webhooksHelp")}</p>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {secret && (
        <p class="ok" id="webhook-secret">
          {i.t("secretOnce")} <code>{secret}</code>
        </p>
      )}
      <ul id="webhooks">
        {(hooks ?? []).map((h) => (
          <li data-webhook={h.id}>
            <code>{h.url}</code> · {h.events.join(", ")}
            <br />
            <span class="deliveries">
              {i.t("delivered")}: {h.delivered} · {i.t("pending")}: {h.pending} · {i.t("failedDeliveries")}: {h.failed}
              {h.last_error && (
                <>
                  {" "}
                  · {i.t("lastError")}: <code>{h.last_error}</code>
                </>
              )}
            </span>{" "}
            <button
              type="button"
              onClick={async () => {
                setError(undefined);
                try {
                  const r = await api.DELETE("/v1/agency/webhooks/{id}", { params: { path: { id: h.id } } });
                  if (!r.response.ok) unwrap(r);
                  await load();
                } catch (e) {
                  fail(e);
                }
              }}
            >
              {i.t("remove")}
            </button>
          </li>
        ))}
      </ul>
      <form
        id="webhook-form"
        onSubmit={async (ev) => {
          ev.preventDefault();
          setError(undefined);
          setSecret(undefined);
          try {
            const made = unwrap(
              await api.POST("/v1/agency/webhooks", { body: { url: url.trim(), events: events as (typeof EVENTS)[number][] } }),
            ) as Hook;
            setSecret(made.secret ?? undefined);
            setUrl("");
            await load();
          } catch (e) {
            fail(e);
          }
        }}
      >
        <label for="webhook-url">{i.t("address")}</label>
        <input id="webhook-url" type="url" required value={url} onInput={(e) => setUrl(e.currentTarget.value)} placeholder="https://" />
        <fieldset>
          <legend>{i.t("events")}</legend>
          {EVENTS.map((e) => (
            <label class="check">
              <input
                type="checkbox"
                checked={events.includes(e)}
                onChange={(ev) => setEvents(ev.currentTarget.checked ? [...events, e] : events.filter((x) => x !== e))}
              />{" "}
              <code>{e}</code>
            </label>
          ))}
        </fieldset>
        <button type="submit">{i.t("subscribe")}</button>
      </form>
    </section>
  );
}

function Person({ i, api, onRefused }: Props) {
  const [nik, setNik] = useState("");
  const [result, setResult] = useState<string>();
  const [error, fail, setError] = useFailure(i, onRefused);
  const valid = /^[0-9]{16}$/.test(nik);
  return (
    <section aria-labelledby="person-title">
      <h3 id="person-title">{i.t("person")}</h3>
      <p class="hint">{i.t("personHelp")}</p>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <label for="nik">NIK</label>
      <input id="nik" inputMode="numeric" autocomplete="off" maxLength={16} value={nik} onInput={(e) => setNik(e.currentTarget.value.trim())} />{" "}
      <button
        type="button"
        id="person-export"
        disabled={!valid}
        onClick={async () => {
          setError(undefined);
          setResult(undefined);
          try {
            const data = unwrap(await api.POST("/v1/agency/persons/export", { body: { nik } }));
            save(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }), `data-pribadi-${today()}.json`);
            setResult(`${i.t("exported")}: ${data.requests.length} ${i.t("requests")}`);
          } catch (e) {
            fail(e);
          }
        }}
      >
        {i.t("exportPerson")}
      </button>{" "}
      <button
        type="button"
        id="person-erase"
        class="danger"
        disabled={!valid}
        onClick={async () => {
          if (prompt(i.t("eraseConfirm")) !== nik) return;
          setError(undefined);
          setResult(undefined);
          try {
            const r = unwrap(await api.POST("/v1/agency/persons/erase", { body: { nik } }));
            setResult(`${i.t("erased")}: ${r.erased.length}; ${i.t("alreadyErased")}: ${r.already_erased.length}. ${r.kept}`);
          } catch (e) {
            fail(e);
          }
        }}
      >
        {i.t("erasePerson")}
      </button>
      {result && (
        <p class="ok" id="person-result" aria-live="polite">
          {result}
        </p>
      )}
    </section>
  );
}

export function AdminPage(props: Props) {
  return (
    <section aria-labelledby="admin-title">
      <p>
        <a href="#/">← {props.i.t("back")}</a>
      </p>
      <h2 id="admin-title">{props.i.t("admin")}</h2>
      <Keys {...props} />
      <Webhooks {...props} />
      <Person {...props} />
    </section>
  );
}
