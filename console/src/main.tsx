// The agency's console: enrollment, the queue, one request and the actions
// on it. Every call goes through the signed, typed client (api.ts).

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Refused, client } from "./api";
import { I18n, type Lang } from "./i18n";
import { type Identity, forget, load } from "./keys";
import { Enroll } from "./enroll";
import { AdminPage } from "./admin";
import { MapPage } from "./map";
import { Queue } from "./queue";
import { RequestPage } from "./request";

/** Where the page is: `#/` the queue (filters in the query), `#/r/ID` a request. */
export type Route =
  | { page: "queue"; query: URLSearchParams }
  | { page: "map"; query: URLSearchParams }
  | { page: "admin" }
  | { page: "request"; id: string };

function route(): Route {
  const h = location.hash.replace(/^#/, "") || "/";
  const [path, query] = h.split("?", 2);
  const m = /^\/r\/([0-9a-fA-F-]{36})$/.exec(path);
  if (m) return { page: "request", id: m[1] };
  if (path === "/admin") return { page: "admin" };
  return { page: path === "/map" ? "map" : "queue", query: new URLSearchParams(query ?? "") };
}

function savedLang(): Lang {
  return localStorage.getItem("lang") === "en" ? "en" : "id";
}

function App() {
  const [identity, setIdentity] = useState<Identity | null | undefined>(undefined);
  const [lang, setLang] = useState<Lang>(savedLang());
  const [where, setWhere] = useState<Route>(route());
  const [locked, setLocked] = useState(false);
  const i = new I18n(lang);

  useEffect(() => {
    load().then((id) => setIdentity(id ?? null), () => setIdentity(null));
    const onHash = () => setWhere(route());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  useEffect(() => {
    document.documentElement.lang = lang;
    document.title = `Sambung — ${i.t("title")}`;
    localStorage.setItem("lang", lang);
  }, [lang]);

  if (identity === undefined) return <p>{i.t("loading")}</p>;
  const header = (
    <header>
      <h1>
        <a href="#/">Sambung · {i.t("title")}</a>
      </h1>
      <nav aria-label={i.t("title")}>
        {identity && <a href="#/admin">{i.t("admin")}</a>}
        {identity && (
          <span class="who">
            {i.t("signedInAs")} <strong>{identity.account}</strong>
          </span>
        )}
        <button type="button" onClick={() => setLang(lang === "id" ? "en" : "id")} lang={lang === "id" ? "en" : "id"}>
          {i.t("language")}
        </button>
        {identity && (
          <button
            type="button"
            onClick={async () => {
              await forget();
              setLocked(false);
              setIdentity(null);
            }}
          >
            {i.t("signOut")}
          </button>
        )}
      </nav>
    </header>
  );
  if (!identity) {
    return (
      <>
        {header}
        <main>
          <Enroll i={i} onEnrolled={setIdentity} />
        </main>
      </>
    );
  }
  const api = client(identity);
  // A refusal of the key itself (revoked, unknown): every page says so.
  const onRefused = (e: unknown) => {
    if (e instanceof Refused && e.lockedOut) setLocked(true);
  };
  return (
    <>
      {header}
      <main>
        {locked ? (
          <p role="alert" class="error" id="locked-out">
            {i.t("lockedOut")}
          </p>
        ) : where.page === "queue" ? (
          <Queue i={i} api={api} query={where.query} onRefused={onRefused} />
        ) : where.page === "admin" ? (
          <AdminPage i={i} api={api} device={identity.device} onRefused={onRefused} />
        ) : where.page === "map" ? (
          <MapPage i={i} api={api} query={where.query} onRefused={onRefused} />
        ) : (
          <RequestPage i={i} api={api} identity={identity} id={where.id} onRefused={onRefused} />
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
