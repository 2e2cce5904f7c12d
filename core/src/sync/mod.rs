//! The sync client: enrollment, and exchanges with the server until nothing
//! is pending (protocol in `docs/protocol.md`). HTTPS through reqwest with
//! rustls on the ring provider; plain HTTP only to this machine's loopback.

mod engine;

pub use engine::{EngineConfig, EngineStatus, SyncEngine, backoff};

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::model::RequestId;
use crate::protocol::{self, DocPush, ErrorBody, ErrorCode, SYNC_PATH, SyncRequest, SyncResponse};
use crate::store::{Enrollment, Store};

/// Settings of the sync client.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Largest request body, and the response size asked for: sized so an
    /// exchange fits between the outages of an EDGE link (64 KiB ≈ 5 s at
    /// 100 kbit/s).
    pub budget_bytes: usize,
    /// Timeout of one HTTP exchange.
    pub timeout: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            budget_bytes: 64 * 1024,
            timeout: Duration::from_secs(60),
        }
    }
}

/// What one `sync` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncSummary {
    /// Request bodies sent, bytes.
    pub bytes_up: u64,
    /// Response bodies received, bytes.
    pub bytes_down: u64,
    /// HTTP exchanges.
    pub round_trips: u32,
    /// Documents the server acknowledged.
    pub pushed: u32,
    /// Document updates applied from the server.
    pub pulled: u32,
    /// Documents the server refused, with its reason.
    pub refused: Vec<(String, String)>,
}

/// An HTTP client for one server.
pub struct Client {
    http: reqwest::Client,
    base: String,
}

#[derive(Serialize)]
struct EnrollBody<'a> {
    code: &'a str,
    device: String,
    public_key: String,
}

#[cfg(test)]
mod tests {
    use super::check_server_url;

    #[test]
    fn plain_http_only_to_loopback_and_no_tricks() {
        for ok in [
            "https://sambung.example.go.id",
            "https://10.1.2.3:8443/",
            "http://127.0.0.1:8480",
            "http://localhost:1",
            "http://[::1]:80",
        ] {
            assert!(check_server_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://sambung.example.go.id",
            "http://localhost:80@evil.example",
            "http://127.0.0.1@evil.example",
            "https://user:pw@sambung.example.go.id",
            "ftp://127.0.0.1",
            "http://127.0.0.1.evil.example",
            "https://sambung.example.go.id/?x=1",
            "not a url",
            "",
        ] {
            assert!(check_server_url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_server_url("https://a.example/").unwrap(),
            "https://a.example"
        );
    }
}

#[derive(Deserialize)]
struct EnrollAnswer {
    account: String,
    role: crate::lifecycle::Role,
    regions: Vec<String>,
}

/// Checks a server URL: `https://…`, or `http://` to loopback only. Parsed
/// as a URL (not split by hand), so `http://localhost:80@elsewhere` is seen
/// for what it is; user info, queries and fragments are refused.
pub fn check_server_url(url: &str) -> Result<String, Error> {
    let bad = |why: &str| {
        Error::BadServerUrl(format!(
            "{why}; use https://host[:port] (plain http only to this machine)"
        ))
    };
    let parsed = reqwest::Url::parse(url.trim()).map_err(|_| bad("not a URL"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("user names and passwords do not belong in the address"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("no query or fragment"));
    }
    let host = parsed.host_str().ok_or_else(|| bad("no host"))?;
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(bad("not https")),
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

fn network(e: reqwest::Error) -> Error {
    // reqwest's message names the failure (connect, timeout, TLS), never a
    // body or a header value.
    Error::Network {
        retryable: true,
        message: e.without_url().to_string(),
    }
}

/// Installs ring as the process's TLS crypto provider (once; later calls
/// do nothing). Any reqwest client built in the process needs it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Client {
    /// A client for the server at `base`.
    pub fn new(base: &str, config: &SyncConfig) -> Result<Client, Error> {
        // One crypto provider for the whole process: ring, as for storage.
        install_crypto_provider();
        let base = check_server_url(base)?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(20))
            .build()
            .map_err(network)?;
        Ok(Client { http, base })
    }

    async fn refusal(resp: reqwest::Response) -> Error {
        let status = resp.status().as_u16();
        match resp.json::<ErrorBody>().await {
            Ok(b) => Error::Server {
                status,
                code: b.code,
                message: b.message,
            },
            Err(_) => Error::Server {
                status,
                code: ErrorCode::Internal,
                message: format!("HTTP {status}"),
            },
        }
    }

    /// Enrolls the store's device with a one-time code.
    pub async fn enroll(&self, store: &mut Store, code: &str) -> Result<Enrollment, Error> {
        let key = store.device_key()?;
        let body = EnrollBody {
            code,
            device: hex::encode(store.device_id()),
            public_key: hex::encode(key.public_key()),
        };
        let resp = self
            .http
            .post(format!("{}/v1/enroll", self.base))
            .json(&body)
            .send()
            .await
            .map_err(network)?;
        if !resp.status().is_success() {
            return Err(Self::refusal(resp).await);
        }
        let answer: EnrollAnswer = resp.json().await.map_err(network)?;
        let enrollment = Enrollment {
            server: self.base.clone(),
            account: answer.account,
            role: answer.role,
            regions: answer.regions,
        };
        store.set_enrollment(&enrollment)?;
        Ok(enrollment)
    }

    async fn exchange(&self, store: &Store, body: Vec<u8>) -> Result<Vec<u8>, Error> {
        let key = store.device_key()?;
        let now = crate::time::Timestamp::now().as_millis() / 1000;
        let signed = key
            .sign(store.device_id(), "POST", SYNC_PATH, &body, now)
            .map_err(|_| Error::Crypto("signing failed"))?;
        let mut req = self
            .http
            .post(format!("{}{SYNC_PATH}", self.base))
            .header("content-type", "application/vnd.sambung.sync")
            .body(body);
        for (name, value) in signed.pairs() {
            req = req.header(name, value);
        }
        let resp = req.send().await.map_err(network)?;
        if !resp.status().is_success() {
            return Err(Self::refusal(resp).await);
        }
        Ok(resp.bytes().await.map_err(network)?.to_vec())
    }

    /// Exchanges with the server until nothing is pending and nothing more
    /// is to be pulled; `progress` sees the summary after every exchange.
    /// Every step is recorded in the store as it happens, so a cut at any
    /// point loses nothing: the next sync resends what was not acknowledged.
    pub async fn sync(
        &self,
        store: &Store,
        config: &SyncConfig,
        mut progress: impl FnMut(&SyncSummary),
    ) -> Result<SyncSummary, Error> {
        if store.enrollment()?.is_none() {
            return Err(Error::NotEnrolled);
        }
        let mut summary = SyncSummary::default();
        let mut skip: HashSet<RequestId> = HashSet::new();
        loop {
            let cursor = store.cursor()?;
            // Everything pending, then halved until the compressed body
            // fits the budget (changes compress well across documents, so
            // the budget is applied to what actually goes on the wire).
            let mut push = Vec::new();
            let mut pushed_heads = std::collections::HashMap::new();
            let mut raw = 0usize;
            let mut left_out = false;
            for p in store.pending()? {
                if skip.contains(&p.id) {
                    continue;
                }
                if raw > config.budget_bytes.saturating_mul(16) {
                    left_out = true;
                    break;
                }
                let changes = store.unacked_changes(&p.id)?;
                raw += changes.len();
                let id = p.id.to_bytes().ok_or(Error::NotFound { what: "request" })?;
                push.push(DocPush {
                    id,
                    since: p.acked_heads.into_iter().map(Into::into).collect(),
                    changes,
                    heads: p.heads.iter().copied().map(Into::into).collect(),
                });
                pushed_heads.insert(id, p.heads);
            }
            let mut request = SyncRequest {
                cursor,
                push,
                repair: Vec::new(),
                max_response_bytes: config.budget_bytes.min(u32::MAX as usize) as u32,
            };
            let mut body =
                protocol::encode(&request).map_err(|_| Error::Crypto("encoding failed"))?;
            while body.len() > config.budget_bytes && request.push.len() > 1 {
                let keep = request.push.len() / 2;
                request.push.truncate(keep);
                left_out = true;
                body = protocol::encode(&request).map_err(|_| Error::Crypto("encoding failed"))?;
            }
            summary.bytes_up += body.len() as u64;
            let answer = self.exchange(store, body).await?;
            summary.round_trips += 1;
            summary.bytes_down += answer.len() as u64;
            let response: SyncResponse = protocol::decode(&answer).map_err(|e| Error::Network {
                retryable: false,
                message: e.to_string(),
            })?;
            let progressed =
                !response.acks.is_empty() || !response.pull.is_empty() || response.cursor != cursor;
            for ack in &response.acks {
                let id = RequestId::from_bytes(ack.id);
                // No heads: exactly the heads this device pushed.
                let heads: Vec<automerge::ChangeHash> = if ack.heads.is_empty() {
                    pushed_heads.get(&ack.id).cloned().unwrap_or_default()
                } else {
                    ack.heads.iter().map(|h| (*h).into()).collect()
                };
                if !heads.is_empty() {
                    store.mark_acked(&id, &heads)?;
                }
                store.set_refusal(&id, None)?;
                summary.pushed += 1;
            }
            for r in &response.refused {
                let id = RequestId::from_bytes(r.id);
                let reason = format!("{:?}: {}", r.code, r.reason);
                store.set_refusal(&id, Some(&reason))?;
                summary.refused.push((id.to_string(), reason));
                skip.insert(id);
            }
            for unknown in &response.unknown_heads {
                // Repair with Automerge's sync protocol is not built yet:
                // the document is kept, marked, and left out of this sync.
                let id = RequestId::from_bytes(unknown.0);
                let reason = "the server does not know this document's history; it needs a repair"
                    .to_owned();
                store.set_refusal(&id, Some(&reason))?;
                summary.refused.push((id.to_string(), reason));
                skip.insert(id);
            }
            for pull in &response.pull {
                // One document that cannot be applied must not stop the
                // others: it is marked (when it is here) and left for repair.
                match store.apply_pull(pull) {
                    Ok(_) => summary.pulled += 1,
                    Err(e @ (Error::Document(_) | Error::Corrupt(_))) => {
                        let id = RequestId::from_bytes(pull.id);
                        tracing::warn!(error = %e, "pulled changes could not be applied");
                        let reason = "changes from the server could not be applied; the request needs a repair";
                        let _ = store.set_refusal(&id, Some(reason));
                        summary.refused.push((id.to_string(), reason.to_owned()));
                    }
                    Err(e) => return Err(e),
                }
            }
            store.set_cursor(response.cursor)?;
            progress(&summary);
            let pending_left = store.pending()?.iter().any(|p| !skip.contains(&p.id));
            if !(response.more || left_out || pending_left) {
                break;
            }
            if !progressed && !response.more {
                break;
            }
        }
        Ok(summary)
    }
}
