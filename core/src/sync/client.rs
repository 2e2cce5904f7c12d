//! The HTTP transport of a sync: enrollment, and the exchanges a
//! [`SyncSession`] asks for, carried over HTTPS (reqwest with rustls on the
//! ring provider; plain HTTP only to this machine's loopback), then the
//! attachments' uploads and on-demand downloads. What to send and what an
//! answer means is decided in `session.rs`; this file moves bytes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::transfer::{
    self, BlobStep, ChunkAnswer, ChunkSize, LinkPolicy, UploadRound, chunk_answer,
};
use super::{ServerTrust, Step, SyncSession, SyncSummary};
use crate::error::Error;
use crate::model::RequestId;
use crate::protocol::{ErrorBody, ErrorCode, SYNC_PATH};
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

/// An HTTP client for one server.
pub struct Client {
    http: reqwest::Client,
    base: String,
    trust: ServerTrust,
    /// Upload chunk size, learnt from the link.
    chunk: ChunkSize,
}

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
            chunk: ChunkSize::default(),
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
        use crate::protocol::blobs::{MISSING_PATH, MissingResponse};
        let link = LinkPolicy {
            metered: config.metered,
            metered_max_bytes: config.metered_max_bytes,
            large_on_metered: config.large_on_metered,
        };
        let Some(round) = UploadRound::begin(store, &link, summary)? else {
            return Ok(());
        };
        let resp = self
            .signed(
                store,
                reqwest::Method::POST,
                MISSING_PATH,
                Some("application/json"),
                round.question()?,
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
        for (a, step) in round.steps(&answer) {
            match step {
                BlobStep::Refused(reason) => {
                    tracing::warn!("the server refuses an attachment");
                    transfer::upload_refused(store, summary, &a.sha256, reason)?;
                    continue;
                }
                BlobStep::Send { offset } => {
                    match self.upload_one(store, &a, offset, summary, progress).await {
                        Ok(()) => {}
                        // Anything retrying cannot fix (a refusal, damaged
                        // here, over a limit, a local read error): this one
                        // is refused, the rest still go. Only what the
                        // network may fix ends the round.
                        Err(e) if !e.is_retryable() => {
                            let message = match e {
                                Error::Server { message, .. } => message,
                                other => other.to_string(),
                            };
                            tracing::warn!("an attachment cannot be uploaded");
                            transfer::upload_refused(store, summary, &a.sha256, message)?;
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
                BlobStep::Held => {}
            }
            // Held by the server now: sent, or there already.
            transfer::upload_done(store, summary, &a.sha256)?;
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
        use crate::protocol::blobs::{BLOB_PATH, UPLOAD_OFFSET};
        let path = format!("{BLOB_PATH}{}", blob.sha256);
        let mut mismatches = 0;
        // An empty attachment still takes one (empty) chunk to exist.
        let mut sent = false;
        while offset < blob.size || (blob.size == 0 && !sent) {
            sent = true;
            let size = self.chunk.get();
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
                    // Cut (or the server failed).
                    self.chunk.cut(size);
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
            match chunk_answer(resp.status().as_u16(), held, offset, len, mismatches) {
                ChunkAnswer::Taken { offset: now } => {
                    offset = now;
                    self.chunk.went_through(size);
                }
                ChunkAnswer::Elsewhere { offset: now } => {
                    mismatches += 1;
                    offset = now;
                }
                ChunkAnswer::Refused => return Err(Self::refusal(resp).await),
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
        let path = format!("/v1/requests/{request}/attachments/{sha256}");
        loop {
            let held = store.download_received(sha256)?;
            if held >= info.size && info.size > 0 {
                break;
            }
            let range: Vec<_> = transfer::next_range(held, info.size)
                .map(|r| (crate::protocol::SignedHeader::Range, r))
                .into_iter()
                .collect();
            let req = self.signed(store, reqwest::Method::GET, &path, None, Vec::new(), &range)?;
            let resp = req.send().await.map_err(network)?;
            if !resp.status().is_success() {
                return Err(Self::refusal(resp).await);
            }
            // The answer must be the range asked for (a whole answer only
            // when nothing is held yet).
            let content_range = resp
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok());
            if !transfer::is_range_asked(resp.status().as_u16(), content_range, held) {
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
        // The agency revoked this phone and asked for a wipe: done there,
        // whoever called (the app, the engine, the CLI).
        super::wipe_if_asked(store, result)
    }

    /// The exchanges of one sync: the session builds each request and
    /// applies each answer; this loop only carries them.
    async fn sync_inner(
        &self,
        store: &Store,
        config: &SyncConfig,
        mut progress: impl FnMut(&SyncSummary),
    ) -> Result<SyncSummary, Error> {
        let mut session = SyncSession::new(store, config.budget_bytes)?;
        loop {
            let body = session.next_request(store)?;
            let answer = self.exchange(store, body).await?;
            let step = session.apply(store, &answer)?;
            progress(session.summary());
            match step {
                Step::Again => {}
                Step::Done => return Ok(session.into_summary()),
                Step::Wipe => return Err(Error::Revoked { wiped: true }),
            }
        }
    }
}
