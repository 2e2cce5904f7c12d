import { useState } from "preact/hooks";
import type { I18n } from "./i18n";
import { EnrollError, type Identity, enroll } from "./keys";

export function Enroll({ i, onEnrolled }: { i: I18n; onEnrolled: (id: Identity) => void }) {
  const [code, setCode] = useState("");
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  return (
    <section aria-labelledby="enroll-title">
      <h2 id="enroll-title">{i.t("enrollTitle")}</h2>
      <p>{i.t("enrollHelp")}</p>
      <form
        onSubmit={async (ev) => {
          ev.preventDefault();
          setBusy(true);
          setError(undefined);
          try {
            onEnrolled(await enroll(code));
          } catch (e) {
            setError(e instanceof EnrollError ? `${e.message} (${e.code})` : String(e));
          } finally {
            setBusy(false);
          }
        }}
      >
        <label for="code">{i.t("code")}</label>
        <input
          id="code"
          name="code"
          autocomplete="off"
          spellcheck={false}
          required
          value={code}
          onInput={(e) => setCode(e.currentTarget.value)}
        />
        <button type="submit" disabled={busy}>
          {i.t("enroll")}
        </button>
      </form>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
    </section>
  );
}
