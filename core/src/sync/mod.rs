//! The sync client: enrollment, and exchanges with the server until nothing
//! is pending (protocol in `docs/protocol.md`). HTTPS through reqwest with
//! rustls on the ring provider; plain HTTP only to this machine's loopback.

mod engine;
mod trust;

pub use engine::{EngineConfig, EngineStatus, SyncEngine, backoff};
pub use trust::{ServerTrust, spki_sha256};

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::model::RequestId;
use crate::protocol::{
    self, DocId, DocPush, DocRepair, ErrorBody, ErrorCode, SYNC_PATH, SyncRequest, SyncResponse,
};
use crate::store::{Enrollment, Pending, RepairStep, Store};

/// Repair messages one document may exchange in one sync before it is
/// left for the next (Automerge's protocol needs two or three; a bound
/// keeps a confused peer from looping).
const MAX_REPAIR_ROUNDS: u32 = 8;

/// A repair under way in this sync.
struct Repair {
    state: automerge::sync::State,
    /// The message to send in the next exchange.
    next: Option<Vec<u8>>,
    rounds: u32,
}

/// Settings of the sync client.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Largest request body, and the response size asked for: sized so an
    /// exchange fits between the outages of an EDGE link (64 KiB ≈ 5 s at
    /// 100 kbit/s).
    pub budget_bytes: usize,
    /// Timeout of one HTTP exchange.
    pub timeout: Duration,
    /// Which servers to trust over HTTPS.
    pub trust: ServerTrust,
    /// Whether the link is metered (the platform says so): attachments
    /// above `metered_max_bytes` wait unless `large_on_metered`.
    pub metered: bool,
    /// The largest attachment sent over a metered link without leave.
    pub metered_max_bytes: u64,
    /// The user's leave to send large attachments over a metered link.
    pub large_on_metered: bool,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            budget_bytes: 64 * 1024,
            timeout: Duration::from_secs(60),
            trust: ServerTrust::default(),
            metered: false,
            metered_max_bytes: crate::attachment_limits::METERED_MAX_BYTES,
            large_on_metered: false,
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
    /// Requests changed here by what came from the server (pulls and
    /// repairs), for observers.
    pub changed: Vec<RequestId>,
    /// Attachments now held whole by the server (sent or found there).
    pub attachments_uploaded: u32,
    /// Attachment bytes sent.
    pub attachment_bytes_up: u64,
    /// Attachments still to upload after this sync (a cut, a refusal):
    /// tried again at the next one. Text never waits for them.
    pub attachments_waiting: u32,
    /// Attachments the server will not take (content address, reason).
    pub attachments_refused: Vec<(String, String)>,
    /// Whether the uploads stopped on a network failure (the text synced):
    /// the engine tries again after a backoff, not at the next write.
    pub attachments_interrupted: bool,
}

/// An HTTP client for one server.
pub struct Client {
    http: reqwest::Client,
    base: String,
    trust: ServerTrust,
    /// Upload chunk size, learnt from the link: halved after a chunk is
    /// cut, doubled after a few in a row go through (between
    /// [`MIN_CHUNK`] and [`MAX_CHUNK`]).
    chunk: std::sync::atomic::AtomicUsize,
    chunk_streak: std::sync::atomic::AtomicU32,
}

pub use crate::attachment_limits::{MAX_UPLOAD_CHUNK as MAX_CHUNK, MIN_UPLOAD_CHUNK as MIN_CHUNK};

#[derive(Serialize)]
struct EnrollBody<'a> {
    code: &'a str,
    device: String,
    public_key: String,
    /// The device's signature over the code: it holds the key it registers.
    proof: String,
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
    audience: String,
}

/// Checks a server URL against the one rule (`crate::url_rule`):
/// `https://…`, or `http://` to loopback only; no user info, query or
/// fragment. Returns the address as the client keeps it (no trailing `/`,
/// so paths append cleanly). Surrounding spaces are dropped first: what is
/// kept is the parsed form, never the typed text.
pub fn check_server_url(url: &str) -> Result<String, Error> {
    let parsed = crate::url_rule::https_or_loopback(url.trim()).map_err(|why| {
        Error::BadServerUrl(format!(
            "{why}; use https://host[:port] (plain http only to this machine)"
        ))
    })?;
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

fn network(e: reqwest::Error) -> Error {
    // reqwest's message names the failure (connect, timeout, TLS), never a
    // body or a header value; a refused server certificate is said plainly
    // (reqwest's own words are only "error sending request").
    let message = match refused_certificate(&e) {
        Some(why) => why.to_owned(),
        None => e.without_url().to_string(),
    };
    Error::Network {
        retryable: true,
        message,
    }
}

/// Why the server's certificate was refused, when that is what failed:
/// rustls' error, found down the chain of causes.
fn refused_certificate(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    use rustls::CertificateError as C;
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(rustls::Error::InvalidCertificate(c)) = err.downcast_ref::<rustls::Error>() {
            return Some(match c {
                // Our verifier's answer when the chain is valid but the key
                // is none of the pins (`trust::Pinned`).
                C::ApplicationVerificationFailure => {
                    "server certificate does not match the pinned key"
                }
                C::UnknownIssuer | C::BadSignature => {
                    "server certificate is not issued by a trusted authority (check the app's CA)"
                }
                C::Expired | C::ExpiredContext { .. } => "server certificate has expired",
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    "server certificate is not for this server's name"
                }
                _ => "server certificate refused",
            });
        }
        // An `io::Error` wrapping another error reports that error's
        // cause as its own source, skipping the error itself.
        next = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
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
            .tls_backend_preconfigured(config.trust.client_config()?)
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(20))
            .build()
            .map_err(network)?;
        Ok(Client {
            http,
            base,
            trust: config.trust.clone(),
            chunk: std::sync::atomic::AtomicUsize::new(MAX_CHUNK),
            chunk_streak: std::sync::atomic::AtomicU32::new(0),
        })
    }

    async fn refusal(resp: reqwest::Response) -> Error {
        let status = resp.status().as_u16();
        match resp.json::<ErrorBody>().await {
            // `wiped` here means "asked to wipe"; `sync` does it.
            Ok(b) if b.code == ErrorCode::Revoked => Error::Revoked { wiped: b.wipe },
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
            proof: key.prove_enrollment(code),
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
        let status = resp.status().as_u16();
        let answer: EnrollAnswer = resp.json().await.map_err(network)?;
        if crate::protocol::check_audience(&answer.audience).is_err() {
            return Err(Error::Server {
                status,
                code: ErrorCode::Internal,
                message: "the enrollment answer names no valid audience (32 hex digits)".into(),
            });
        }
        let enrollment = Enrollment {
            server: self.base.clone(),
            account: answer.account,
            role: answer.role,
            regions: answer.regions,
            audience: answer.audience,
            // Kept with the enrollment, so later syncs trust the same way.
            ca_roots: self.trust.roots.clone(),
            pins: self.trust.pins.clone(),
        };
        store.set_enrollment(&enrollment)?;
        Ok(enrollment)
    }

    /// A request signed by the device's key for the server's audience over
    /// its method, path, body and `headers` (which it carries).
    fn signed(
        &self,
        store: &Store,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        headers: &[(crate::protocol::SignedHeader, String)],
    ) -> Result<reqwest::RequestBuilder, Error> {
        let key = store.device_key()?;
        // Enrolled before servers named themselves: not enrolled with
        // this protocol; enrolling again is the way on.
        let audience = store
            .enrollment()?
            .map(|e| e.audience)
            .filter(|a| crate::protocol::check_audience(a).is_ok())
            .ok_or(Error::NotEnrolled)?;
        let now = crate::time::Timestamp::now().as_millis() / 1000;
        let mut call = crate::protocol::Call::new(&audience, method.as_str(), path, &body);
        for (h, v) in headers {
            call = call.header(*h, v);
        }
        let signed = key
            .sign(store.device_id(), &call, now)
            .map_err(|_| Error::Crypto("signing failed"))?;
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        for (h, v) in headers {
            req = req.header(h.name(), v.as_str());
        }
        let req = req.body(body);
        // Only where it says something the body does not: a sync body
        // names itself (`SBG`), a GET has none — 44 bytes a 2G exchange
        // need not carry.
        let mut req = req;
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        for (name, value) in signed.pairs() {
            req = req.header(name, value);
        }
        Ok(req)
    }

    async fn exchange(&self, store: &Store, body: Vec<u8>) -> Result<Vec<u8>, Error> {
        let req = self.signed(store, reqwest::Method::POST, SYNC_PATH, None, body, &[])?;
        let resp = req.send().await.map_err(network)?;
        if !resp.status().is_success() {
            return Err(Self::refusal(resp).await);
        }
        Ok(resp.bytes().await.map_err(network)?.to_vec())
    }

    /// Uploads the attachments the server lacks (protocol::blobs): one
    /// question for all, then each missing one in chunks from the offset
    /// the server holds, smallest first. Records each one's state as it
    /// goes (so the app can show it, and a cut loses nothing). On a metered
    /// link, large attachments wait unless the user allowed them. One that
    /// the server refuses never stops the ones behind it; a network failure
    /// ends the round (the link is gone) and is returned.
    ///
    /// `progress` sees the summary after every HTTP exchange, as in a sync.
    pub async fn upload_attachments(
        &self,
        store: &Store,
        config: &SyncConfig,
        summary: &mut SyncSummary,
        progress: &mut impl FnMut(&SyncSummary),
    ) -> Result<(), Error> {
        use crate::protocol::blobs::*;
        let pending = store.pending_uploads()?;
        summary.attachments_waiting = pending.len() as u32;
        let mut sendable = Vec::new();
        for a in pending {
            let held =
                config.metered && !config.large_on_metered && a.size > config.metered_max_bytes;
            store.mark_held(&a.sha256, held)?;
            if !held {
                sendable.push(a);
            }
        }
        if sendable.is_empty() {
            return Ok(());
        }
        let ask = MissingRequest {
            blobs: sendable
                .iter()
                .take(MAX_MISSING_ASKED)
                .map(|a| BlobClaim {
                    sha256: a.sha256.clone(),
                    size: a.size,
                })
                .collect(),
        };
        let body = serde_json::to_vec(&ask).map_err(|_| Error::Crypto("encoding failed"))?;
        let resp = self
            .signed(
                store,
                reqwest::Method::POST,
                MISSING_PATH,
                Some("application/json"),
                body,
                &[],
            )?
            .send()
            .await
            .map_err(network)?;
        summary.round_trips += 1;
        progress(summary);
        if !resp.status().is_success() {
            return Err(Self::refusal(resp).await);
        }
        let answer: MissingResponse = resp.json().await.map_err(network)?;
        let missing: HashMap<&str, u64> = answer
            .missing
            .iter()
            .map(|m| (m.sha256.as_str(), m.offset))
            .collect();
        let refused: HashMap<&str, &str> = answer
            .refused
            .iter()
            .map(|r| (r.sha256.as_str(), r.reason.as_str()))
            .collect();
        for a in ask.blobs.iter() {
            if let Some(reason) = refused.get(a.sha256.as_str()) {
                tracing::warn!("the server refuses an attachment");
                store.mark_refused(&a.sha256, reason)?;
                summary
                    .attachments_refused
                    .push((a.sha256.clone(), (*reason).to_owned()));
                continue;
            }
            if let Some(&offset) = missing.get(a.sha256.as_str()) {
                match self.upload_one(store, a, offset, summary, progress).await {
                    Ok(()) => {}
                    // This one is refused (damaged here, over a limit):
                    // the rest still go.
                    // Anything retrying cannot fix (a refusal, a local
                    // read error): this one is refused, the rest still go.
                    // Only what the network may fix ends the round.
                    Err(e) if !e.is_retryable() => {
                        let message = match e {
                            Error::Server { message, .. } => message,
                            other => other.to_string(),
                        };
                        tracing::warn!("an attachment cannot be uploaded");
                        store.mark_refused(&a.sha256, &message)?;
                        summary
                            .attachments_refused
                            .push((a.sha256.clone(), message));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            // Held by the server now: sent, or there already.
            store.mark_uploaded(&a.sha256)?;
            summary.attachments_uploaded += 1;
            summary.attachments_waiting = summary.attachments_waiting.saturating_sub(1);
        }
        Ok(())
    }

    async fn upload_one(
        &self,
        store: &Store,
        blob: &crate::protocol::blobs::BlobClaim,
        mut offset: u64,
        summary: &mut SyncSummary,
        progress: &mut impl FnMut(&SyncSummary),
    ) -> Result<(), Error> {
        use crate::protocol::blobs::*;
        use std::sync::atomic::Ordering::Relaxed;
        let path = format!("{BLOB_PATH}{}", blob.sha256);
        let mut mismatches = 0;
        // An empty attachment still takes one (empty) chunk to exist.
        let mut sent = false;
        while offset < blob.size || (blob.size == 0 && !sent) {
            sent = true;
            let size = self.chunk.load(Relaxed).clamp(MIN_CHUNK, MAX_CHUNK);
            let chunk = store.read_attachment(&blob.sha256, offset, size)?;
            let len = chunk.len() as u64;
            use crate::protocol::SignedHeader;
            let req = self.signed(
                store,
                reqwest::Method::PATCH,
                &path,
                Some("application/offset+octet-stream"),
                chunk,
                &[
                    (SignedHeader::UploadOffset, offset.to_string()),
                    (SignedHeader::UploadLength, blob.size.to_string()),
                ],
            )?;
            let resp = match req.send().await {
                Ok(r) if !r.status().is_server_error() => r,
                other => {
                    // Cut (or the server failed): a smaller chunk fits
                    // between this link's outages more often.
                    self.chunk.store((size / 2).max(MIN_CHUNK), Relaxed);
                    self.chunk_streak.store(0, Relaxed);
                    match other {
                        Ok(r) => return Err(Self::refusal(r).await),
                        Err(e) => return Err(network(e)),
                    }
                }
            };
            summary.round_trips += 1;
            summary.attachment_bytes_up += len;
            let held = resp
                .headers()
                .get(UPLOAD_OFFSET)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            match resp.status().as_u16() {
                200..=299 => {
                    offset = held.unwrap_or(offset + len);
                    // Three in a row went through: try a larger one.
                    if self.chunk_streak.fetch_add(1, Relaxed) + 1 >= 3 {
                        self.chunk.store((size * 2).min(MAX_CHUNK), Relaxed);
                        self.chunk_streak.store(0, Relaxed);
                    }
                }
                // The server holds another length (a chunk of ours arrived
                // though its answer did not): go on from there.
                409 if mismatches < 3 => {
                    mismatches += 1;
                    offset = held.unwrap_or(0);
                }
                _ => return Err(Self::refusal(resp).await),
            }
            store.mark_sent(&blob.sha256, offset)?;
            progress(summary);
        }
        Ok(())
    }

    /// An attachment of a request, from this phone's store or downloaded on
    /// demand (an officer opening a resident's photo): in ranges of 256
    /// KiB, each stored as it arrives, so a cut resumes where it stopped;
    /// checked against its content hash at the end. Attachments are never
    /// downloaded unasked (a metered link pays only for what is opened).
    /// `progress` hears (bytes held, size) after every range.
    pub async fn fetch_attachment(
        &self,
        store: &Store,
        request: &RequestId,
        sha256: &str,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Vec<u8>, Error> {
        if let Ok(bytes) = store.attachment_bytes(sha256) {
            return Ok(bytes);
        }
        let reference = store
            .get(request)?
            .attachments
            .into_iter()
            .find(|a| a.sha256 == sha256)
            .ok_or(Error::NotFound { what: "attachment" })?;
        let info = crate::store::AttachmentInfo {
            sha256: reference.sha256.clone(),
            size: reference.size,
            mime: reference.mime.clone(),
        };
        // A few seconds on EDGE each, in whole stored chunks.
        const RANGE: u64 = crate::attachment_limits::DOWNLOAD_RANGE_BYTES;
        let path = format!("/v1/requests/{request}/attachments/{sha256}");
        loop {
            let held = store.download_received(sha256)?;
            if held >= info.size && info.size > 0 {
                break;
            }
            let last = (held + RANGE).min(info.size).saturating_sub(1);
            let range = match info.size {
                0 => vec![],
                _ => vec![(
                    crate::protocol::SignedHeader::Range,
                    format!("bytes={held}-{last}"),
                )],
            };
            let req = self.signed(store, reqwest::Method::GET, &path, None, Vec::new(), &range)?;
            let resp = req.send().await.map_err(network)?;
            if !resp.status().is_success() {
                return Err(Self::refusal(resp).await);
            }
            // The answer must be the range asked for (a whole answer only
            // when nothing is held yet).
            let starts_at = resp
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok());
            let right = match resp.status().as_u16() {
                206 => starts_at == Some(held),
                200 => held == 0,
                _ => false,
            };
            if !right {
                return Err(Error::Network {
                    retryable: true,
                    message: "the server answered another range than asked".into(),
                });
            }
            let bytes = resp.bytes().await.map_err(network)?;
            let now = store.receive_download(&info, held, &bytes)?;
            progress(now, info.size);
            if now >= info.size {
                break;
            }
        }
        store.attachment_bytes(sha256)
    }

    /// Exchanges with the server until nothing is pending and nothing more
    /// is to be pulled; `progress` sees the summary after every exchange.
    /// Every step is recorded in the store as it happens, so a cut at any
    /// point — or dropping the returned future, which is how a sync is
    /// cancelled — loses nothing: the next sync resends what was not
    /// acknowledged.
    pub async fn sync(
        &self,
        store: &Store,
        config: &SyncConfig,
        mut progress: impl FnMut(&SyncSummary),
    ) -> Result<SyncSummary, Error> {
        let result = match self.sync_inner(store, config, &mut progress).await {
            // Text first: attachments go after every document did.
            Ok(mut summary) => {
                if let Err(e) = self
                    .upload_attachments(store, config, &mut summary, &mut progress)
                    .await
                {
                    tracing::warn!(error = %e, "attachments wait for the next sync");
                    summary.attachments_interrupted = true;
                }
                // Originals of photos follow the retention setting once
                // their requests are decided (they never leave the phone).
                if let Err(e) = store.purge_originals(crate::time::Timestamp::now()) {
                    tracing::warn!(error = %e, "originals were not purged");
                }
                Ok(summary)
            }
            other => other,
        };
        match result {
            // The agency revoked this phone and asked for a wipe: done here,
            // whoever called (the app, the engine, the CLI). The handle is
            // unusable afterwards.
            Err(Error::Revoked { wiped: true }) => {
                Store::wipe(store.dir(), true)?;
                tracing::warn!("the agency revoked this device; its store was deleted");
                Err(Error::Revoked { wiped: true })
            }
            other => other,
        }
    }

    async fn sync_inner(
        &self,
        store: &Store,
        config: &SyncConfig,
        mut progress: impl FnMut(&SyncSummary),
    ) -> Result<SyncSummary, Error> {
        if store.enrollment()?.is_none() {
            return Err(Error::NotEnrolled);
        }
        let mut summary = SyncSummary::default();
        // Refused in this sync: left alone until the next one.
        let mut skip: HashSet<RequestId> = HashSet::new();
        let mut repairs: HashMap<RequestId, Repair> = HashMap::new();
        // What waits: read once per exchange, after its answer is applied.
        let mut waiting = store.repairs()?;
        let mut pending = store.pending()?;
        // New documents pushed without their id that the server could not
        // name: named from now on, so the answer is about them.
        let mut named: HashSet<RequestId> = HashSet::new();
        loop {
            let (cursor, cursor_tag) = store.cursor()?;
            let mut left_out = false;
            let mut raw = 0usize;
            let repair =
                self.repair_messages(store, &waiting, &mut repairs, &skip, config, &mut raw)?;
            let (push, order, pushed_heads, more_pending) = Self::pending_pushes(
                store,
                std::mem::take(&mut pending),
                &skip,
                &repairs,
                &named,
                config,
                raw,
            )?;
            left_out |= more_pending;
            let mut request = SyncRequest {
                cursor,
                cursor_tag,
                push,
                repair,
                max_response_bytes: config.budget_bytes.min(u32::MAX as usize) as u32,
            };
            let mut body =
                protocol::encode(&request).map_err(|_| Error::Crypto("encoding failed"))?;
            // Halved until the compressed body fits the budget (changes
            // compress well across documents, so the budget is applied to
            // what actually goes on the wire).
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
            // Every push taken as pushed: the acks are the pushes, in order.
            let acks: Vec<protocol::DocAck> = if response.acked_all {
                order
                    .iter()
                    .take(request.push.len())
                    .map(|id| protocol::DocAck {
                        id: *id,
                        heads: Vec::new(),
                    })
                    .collect()
            } else {
                response.acks.clone()
            };
            let answered: HashSet<DocId> = acks
                .iter()
                .map(|a| a.id)
                .chain(response.refused.iter().map(|r| r.id))
                .chain(response.unknown_heads.iter().map(|u| u.0))
                .collect();
            // A nameless push without an answer goes again at once, named,
            // so that its answer (a refusal, say) is about it: that counts
            // as progress, or the next sync would start nameless again.
            let mut named_now = false;
            for (p, id) in request.push.iter().zip(&order) {
                if p.id.is_none() && !answered.contains(id) {
                    named_now |= named.insert(RequestId::from_bytes(*id));
                }
            }
            let progressed = named_now
                || !acks.is_empty()
                || !response.pull.is_empty()
                || !response.repair.is_empty()
                || response.cursor != cursor;
            for ack in &acks {
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
                summary.pushed += 1;
                let pushed = pushed_heads.get(&ack.id).cloned().unwrap_or_default();
                if store.is_acked(&id, &pushed)? {
                    store.set_refusal(&id, None)?;
                } else {
                    // The server took only part: the rest builds on changes
                    // of another device that it must deliver itself (after
                    // a restore from backup). Pending, not retried now.
                    store.set_waiting(&id, "some changes wait for another device to sync first")?;
                    skip.insert(id);
                }
            }
            for r in &response.refused {
                let id = RequestId::from_bytes(r.id);
                let reason = format!("{:?}: {}", r.code, r.reason);
                store.set_refusal(&id, Some(&reason))?;
                summary.refused.push((id.to_string(), reason));
                repairs.remove(&id);
                skip.insert(id);
            }
            for unknown in &response.unknown_heads {
                // The server does not hold what this device believes it
                // acknowledged: repair (the document stays, and stays
                // pending).
                store.mark_for_repair(
                    &RequestId::from_bytes(unknown.0),
                    "the server does not know this request's history; it is being repaired",
                )?;
            }
            for r in &response.repair {
                self.continue_repair(store, &mut repairs, &mut skip, &mut summary, r)?;
            }
            for pull in &response.pull {
                // One document that cannot be applied must not stop the
                // others: it is marked and repaired.
                match store.apply_pull(pull) {
                    Ok(id) => {
                        summary.pulled += 1;
                        if !summary.changed.contains(&id) {
                            summary.changed.push(id);
                        }
                    }
                    Err(e @ (Error::Document(_) | Error::Corrupt(_))) => {
                        tracing::warn!(error = %e, "pulled changes could not be applied; repairing");
                        store.mark_for_repair(
                            &RequestId::from_bytes(pull.id),
                            "changes from the server could not be applied; the request is being repaired",
                        )?;
                    }
                    Err(e) => return Err(e),
                }
            }
            if response.reset {
                // The server was restored from a backup: anything it
                // acknowledged may be gone from it, so check every request.
                store.mark_all_for_repair("the server was restored; checking this request")?;
            }
            waiting = store.repairs()?;
            pending = store.pending()?;
            if response.wipe {
                // Revoked, allowed to push first: push what is left, then
                // wipe (also when nothing more goes through).
                progress(&summary);
                let left = pending.iter().any(|p| !skip.contains(&p.id));
                if !left || !progressed {
                    return Err(Error::Revoked { wiped: true });
                }
                continue;
            }
            store.set_cursor(response.cursor, response.cursor_tag)?;
            progress(&summary);
            let repairs_left = waiting
                .iter()
                .any(|id| !skip.contains(id) && repairs.get(id).is_none_or(|r| r.next.is_some()));
            let pending_left = pending
                .iter()
                .any(|p| !skip.contains(&p.id) && !repairs.contains_key(&p.id));
            if !(response.more || left_out || pending_left || repairs_left) {
                break;
            }
            if !progressed && !response.more {
                break;
            }
        }
        Ok(summary)
    }

    /// The repair messages of this exchange: the first step of repairs not
    /// begun yet, and the answers to the server's last messages.
    fn repair_messages(
        &self,
        store: &Store,
        waiting: &[RequestId],
        repairs: &mut HashMap<RequestId, Repair>,
        skip: &HashSet<RequestId>,
        config: &SyncConfig,
        raw: &mut usize,
    ) -> Result<Vec<DocRepair>, Error> {
        for id in waiting {
            if skip.contains(id) || repairs.contains_key(id) {
                continue;
            }
            let mut state = automerge::sync::State::new();
            let next = match store.repair_step(id, &mut state, None)? {
                RepairStep::Send(m) => Some(m),
                RepairStep::Done | RepairStep::Stuck => None,
            };
            repairs.insert(
                id.clone(),
                Repair {
                    state,
                    next,
                    rounds: 0,
                },
            );
        }
        let mut out = Vec::new();
        for (id, r) in repairs.iter_mut() {
            if *raw > config.budget_bytes {
                break;
            }
            if let Some(message) = r.next.take() {
                *raw += message.len();
                let id = id.to_bytes().ok_or(Error::NotFound { what: "request" })?;
                out.push(DocRepair { id, message });
            }
        }
        Ok(out)
    }

    /// Applies one of the server's repair messages.
    fn continue_repair(
        &self,
        store: &Store,
        repairs: &mut HashMap<RequestId, Repair>,
        skip: &mut HashSet<RequestId>,
        summary: &mut SyncSummary,
        r: &DocRepair,
    ) -> Result<(), Error> {
        let id = RequestId::from_bytes(r.id);
        let Some(slot) = repairs.get_mut(&id) else {
            return Ok(()); // not asked for in this sync: a duplicate
        };
        slot.rounds += 1;
        let give_up = |skip: &mut HashSet<RequestId>, summary: &mut SyncSummary, why: &str| {
            summary.refused.push((id.to_string(), why.to_owned()));
            skip.insert(id.clone());
        };
        match store.repair_step(&id, &mut slot.state, Some(&r.message)) {
            Ok(RepairStep::Done) => {
                repairs.remove(&id);
                summary.pulled += 1;
                if !summary.changed.contains(&id) {
                    summary.changed.push(id);
                }
            }
            Ok(RepairStep::Send(m)) if slot.rounds < MAX_REPAIR_ROUNDS => slot.next = Some(m),
            Ok(_) => give_up(
                skip,
                summary,
                "the repair did not finish; it continues at the next sync",
            ),
            Err(e @ (Error::Document(_) | Error::Corrupt(_))) => {
                tracing::warn!(error = %e, "a repair message could not be applied");
                give_up(skip, summary, "the server's repair could not be applied");
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// The pending documents that go into this exchange (not refused in
    /// this sync, not being repaired), the heads pushed for each, and
    /// whether some were left for the next exchange.
    #[allow(clippy::type_complexity)]
    fn pending_pushes(
        store: &Store,
        pending: Vec<Pending>,
        skip: &HashSet<RequestId>,
        repairs: &HashMap<RequestId, Repair>,
        named: &HashSet<RequestId>,
        config: &SyncConfig,
        mut raw: usize,
    ) -> Result<
        (
            Vec<DocPush>,
            Vec<DocId>,
            HashMap<DocId, Vec<automerge::ChangeHash>>,
            bool,
        ),
        Error,
    > {
        let mut push = Vec::new();
        let mut order = Vec::new();
        let mut pushed_heads = HashMap::new();
        // Every request waiting for a repair is in `repairs` by now (or
        // skipped): `repair_messages` began them all.
        for p in pending {
            if skip.contains(&p.id) || repairs.contains_key(&p.id) {
                continue;
            }
            if raw > config.budget_bytes.saturating_mul(16) {
                return Ok((push, order, pushed_heads, true));
            }
            let changes = store.unacked_changes(&p.id)?;
            raw += changes.len();
            let id = p.id.to_bytes().ok_or(Error::NotFound { what: "request" })?;
            // A document the server never acknowledged is new to it: it
            // reads the id from the document.
            let new = p.acked_heads.is_empty() && !named.contains(&p.id);
            push.push(DocPush {
                id: (!new).then_some(id),
                since: p.acked_heads.into_iter().map(Into::into).collect(),
                changes,
                heads: p.heads.iter().copied().map(Into::into).collect(),
            });
            pushed_heads.insert(id, p.heads);
            order.push(id);
        }
        Ok((push, order, pushed_heads, false))
    }
}
