//! The link simulator: the weak links of `shared/network-profiles.md`
//! (latency, bandwidth, loss, outages) between devices and a server, as a
//! loopback HTTP proxy that keeps a **virtual clock**. Nothing sleeps: each
//! exchange advances the clock by the time it would take on the profile, so
//! a day of EDGE runs in a second and a run is repeatable from its seed.
//!
//! Faults: a lost request (the server never sees it), a lost response (the
//! server applied it, the device never hears), a duplicated request (a
//! retransmission), and outages that cut every exchange in flight.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// A link profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Name, as in network-profiles.md.
    pub name: &'static str,
    /// Downlink, bits per second.
    pub down_bps: f64,
    /// Uplink, bits per second.
    pub up_bps: f64,
    /// Round-trip latency, seconds.
    pub rtt_s: f64,
    /// Chance of losing a request or a response, percent.
    pub loss_percent: f64,
    /// Chance of a request arriving twice, percent.
    pub duplicate_percent: f64,
    /// Outages: a cut of `.0` seconds every `.1` seconds.
    pub outage: Option<(f64, f64)>,
    /// Seconds fully offline before the link comes up.
    pub offline_first_s: f64,
}

impl Profile {
    /// The profiles of network-profiles.md.
    pub fn all() -> Vec<Profile> {
        let p = |name, down_kbps: f64, up_kbps: f64, rtt_ms: f64, loss, outage| Profile {
            name,
            down_bps: down_kbps * 1000.0,
            up_bps: up_kbps * 1000.0,
            rtt_s: rtt_ms / 1000.0,
            loss_percent: loss,
            duplicate_percent: 0.0,
            outage,
            offline_first_s: 0.0,
        };
        let edge = p("edge", 200.0, 100.0, 600.0, 2.0, Some((20.0, 300.0)));
        vec![
            p("gprs", 40.0, 20.0, 1000.0, 3.0, Some((30.0, 120.0))),
            edge.clone(),
            p("rural-3g", 1000.0, 384.0, 300.0, 1.0, Some((10.0, 600.0))),
            p("congested-4g", 10_000.0, 3000.0, 80.0, 0.5, None),
            Profile {
                name: "offline-then-edge",
                offline_first_s: 48.0 * 3600.0,
                ..edge
            },
        ]
    }

    /// A perfect link (no delay, no loss): for counting bytes, and the base
    /// of test profiles that add one fault at a time.
    pub fn lossless() -> Profile {
        Profile {
            name: "lossless",
            down_bps: 1e9,
            up_bps: 1e9,
            rtt_s: 0.0,
            loss_percent: 0.0,
            duplicate_percent: 0.0,
            outage: None,
            offline_first_s: 0.0,
        }
    }

    /// Whether the link is down at virtual time `t` (seconds).
    pub fn in_outage(&self, t: f64) -> bool {
        if t < self.offline_first_s {
            return true;
        }
        match self.outage {
            Some((cut, every)) => ((t - self.offline_first_s) % every) >= every - cut,
            None => false,
        }
    }

    /// Whether the link is down at any moment of `[from, to]` (seconds): an
    /// exchange that spans a whole cut is cut, even if it started and would
    /// have ended while the link was up.
    pub fn outage_between(&self, from: f64, to: f64) -> bool {
        if self.in_outage(from) || self.in_outage(to) {
            return true;
        }
        if from < self.offline_first_s {
            return true;
        }
        let Some((cut, every)) = self.outage else {
            return false;
        };
        // Cuts are [k·every + every − cut, (k+1)·every) after the offline
        // time; the first one starting after `from` decides.
        let t0 = from - self.offline_first_s;
        let t1 = to - self.offline_first_s;
        let next_cut = (t0 / every).floor() * every + every - cut;
        let next_cut = if next_cut <= t0 {
            next_cut + every
        } else {
            next_cut
        };
        next_cut < t1
    }

    /// The first moment at or after `t` when the link is up.
    pub fn up_again(&self, t: f64) -> f64 {
        if t < self.offline_first_s {
            return self.up_again(self.offline_first_s);
        }
        match self.outage {
            Some((_, every)) if self.in_outage(t) => {
                let rel = t - self.offline_first_s;
                self.offline_first_s + ((rel / every).floor() + 1.0) * every
            }
            _ => t,
        }
    }

    /// A profile by name.
    pub fn named(name: &str) -> Option<Profile> {
        Self::all().into_iter().find(|p| p.name == name)
    }
}

/// A deterministic random source (xorshift64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// From a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).max(1))
    }

    /// A number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        (self.unit() * n.max(1) as f64) as u64
    }
}

/// Bytes of an HTTP/1.1 header block: each `name: value\r\n`, the start
/// line (given) and the blank line that ends it.
fn header_bytes(start_line: usize, headers: &HeaderMap) -> u64 {
    let fields: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + 2 + v.len() + 2)
        .sum();
    (start_line + 2 + fields + 2) as u64
}
/// How long a device waits for an answer before giving up.
pub const TIMEOUT_S: f64 = 30.0;

/// What crossed the link.
#[derive(Debug, Default)]
pub struct Stats {
    /// Bytes sent by devices (bodies and headers), including lost ones.
    pub bytes_up: AtomicU64,
    /// Bytes received by devices.
    pub bytes_down: AtomicU64,
    /// Exchanges attempted.
    pub attempts: AtomicU64,
    /// Exchanges that completed.
    pub completed: AtomicU64,
    /// Requests lost before the server.
    pub lost_requests: AtomicU64,
    /// Responses lost after the server applied the request.
    pub lost_responses: AtomicU64,
    /// Requests that arrived twice.
    pub duplicated: AtomicU64,
    /// Exchanges cut by an outage.
    pub cut: AtomicU64,
    /// Bytes sent by devices in exchanges that did not complete (cut, lost,
    /// or answered into the void): what cuts cost.
    pub wasted_up: AtomicU64,
}

impl Stats {
    /// A plain copy of the counters.
    pub fn snapshot(&self) -> [u64; 9] {
        [
            &self.bytes_up,
            &self.bytes_down,
            &self.attempts,
            &self.completed,
            &self.lost_requests,
            &self.lost_responses,
            &self.duplicated,
            &self.cut,
            &self.wasted_up,
        ]
        .map(|a| a.load(Ordering::Relaxed))
    }
}

/// The link's behaviour on a virtual clock, without any networking: the
/// proxy runs every exchange through it, and benchmarks run their
/// baselines (which have no server here) through the same one, so both
/// meet the same bandwidth, latency, losses and cuts.
#[derive(Debug, Clone)]
pub struct Model {
    profile: Profile,
    clock_s: f64,
    rng: Rng,
}

/// What happens to a request sent now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Plan {
    /// An outage cuts it: the device hears so after a round trip.
    Cut,
    /// Lost on the way: the device times out.
    LoseRequest,
    /// It reaches the server.
    Deliver {
        /// When it was sent (virtual seconds).
        start: f64,
        /// The answer is lost (the device times out).
        lose_response: bool,
        /// It arrives twice.
        duplicate: bool,
    },
}

/// How a whole exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The answer arrived.
    Completed,
    /// An outage cut it before the server.
    Cut,
    /// The request was lost.
    LostRequest,
    /// The server got it; the answer was lost or cut.
    LostResponse,
}

impl Model {
    /// A link of `profile` at virtual time 0, its chance from `seed`.
    pub fn new(profile: Profile, seed: u64) -> Model {
        Model {
            profile,
            clock_s: 0.0,
            rng: Rng::new(seed),
        }
    }

    /// The virtual time, seconds.
    pub fn now_s(&self) -> f64 {
        self.clock_s
    }

    /// Lets virtual time pass.
    pub fn advance(&mut self, seconds: f64) {
        self.clock_s += seconds.max(0.0);
    }

    /// The profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    fn up_done(&self, start: f64, up: u64) -> f64 {
        start + self.profile.rtt_s / 2.0 + up as f64 * 8.0 / self.profile.up_bps
    }

    /// Decides, at the current time, the fate of a request of `up` bytes.
    /// A failure's time is spent here (a round trip for a cut, the timeout
    /// for a loss).
    pub fn plan(&mut self, up: u64) -> Plan {
        let start = self.clock_s;
        if self.profile.outage_between(start, self.up_done(start, up)) {
            self.clock_s += self.profile.rtt_s;
            Plan::Cut
        } else if self.rng.unit() * 100.0 < self.profile.loss_percent {
            self.clock_s += TIMEOUT_S;
            Plan::LoseRequest
        } else {
            let lose_response = self.rng.unit() * 100.0 < self.profile.loss_percent;
            let duplicate = self.rng.unit() * 100.0 < self.profile.duplicate_percent;
            Plan::Deliver {
                start,
                lose_response,
                duplicate,
            }
        }
    }

    /// Whether the answer (`down` bytes) to a request of `up` bytes
    /// delivered from `start` arrives; advances the clock by the exchange,
    /// or by the timeout if it does not.
    pub fn answer(&mut self, start: f64, lose_response: bool, up: u64, down: u64) -> bool {
        let p = &self.profile;
        let duration = p.rtt_s + up as f64 * 8.0 / p.up_bps + down as f64 * 8.0 / p.down_bps;
        let cut = p.outage_between(self.up_done(start, up), start + duration);
        let base = self.clock_s.max(start);
        if lose_response || cut {
            self.clock_s = base + TIMEOUT_S;
            false
        } else {
            self.clock_s = base + duration;
            true
        }
    }

    /// One whole exchange of `up` bytes answered by `down` (for a baseline
    /// that has no server here).
    pub fn exchange(&mut self, up: u64, down: u64) -> Outcome {
        match self.plan(up) {
            Plan::Cut => Outcome::Cut,
            Plan::LoseRequest => Outcome::LostRequest,
            Plan::Deliver {
                start,
                lose_response,
                ..
            } => {
                if self.answer(start, lose_response, up, down) {
                    Outcome::Completed
                } else {
                    Outcome::LostResponse
                }
            }
        }
    }
}

/// A simulated link in front of one server.
pub struct Link {
    profile: Profile,
    upstream: String,
    http: reqwest::Client,
    model: Mutex<Model>,
    stats: Stats,
}

impl Link {
    /// The virtual time, seconds since the link was created.
    pub fn now_s(&self) -> f64 {
        self.model().now_s()
    }

    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets virtual time pass (a device waiting, people working offline).
    pub fn advance(&self, seconds: f64) {
        self.model().advance(seconds);
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }
}

/// Starts a link proxy for `upstream` on an ephemeral loopback port;
/// returns its URL and the link.
pub async fn start(upstream: &str, profile: Profile, seed: u64) -> (String, Arc<Link>) {
    // reqwest is built without a default TLS provider in this workspace;
    // the proxy speaks plain HTTP on loopback, but the client needs one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let link = Arc::new(Link {
        model: Mutex::new(Model::new(profile.clone(), seed)),
        profile,
        upstream: upstream.trim_end_matches('/').to_owned(),
        http: reqwest::Client::new(),
        stats: Stats::default(),
    });
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(link.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), link)
}

async fn forward(
    State(link): State<Arc<Link>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // "POST /v1/sync HTTP/1.1"
    let up = body.len() as u64
        + header_bytes(method.as_str().len() + 1 + uri.path().len() + 9, &headers);
    link.stats.attempts.fetch_add(1, Ordering::Relaxed);
    link.stats.bytes_up.fetch_add(up, Ordering::Relaxed);
    // Decide the fate of the request at its start on the virtual clock.
    let plan = link.model().plan(up);
    let (start, lose_response, duplicate) = match plan {
        Plan::Cut => {
            link.stats.wasted_up.fetch_add(up, Ordering::Relaxed);
            link.stats.cut.fetch_add(1, Ordering::Relaxed);
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Plan::LoseRequest => {
            link.stats.wasted_up.fetch_add(up, Ordering::Relaxed);
            link.stats.lost_requests.fetch_add(1, Ordering::Relaxed);
            return StatusCode::GATEWAY_TIMEOUT.into_response();
        }
        Plan::Deliver {
            start,
            lose_response,
            duplicate,
        } => (start, lose_response, duplicate),
    };
    let send = || {
        let target = match uri.query() {
            Some(q) => format!("{}{}?{q}", link.upstream, uri.path()),
            None => format!("{}{}", link.upstream, uri.path()),
        };
        let method = reqwest::Method::from_bytes(method.as_str().as_bytes())
            .unwrap_or(reqwest::Method::POST);
        let mut req = link.http.request(method, target).body(body.clone());
        // End-to-end headers pass; the connection's own are the proxy's.
        for (k, v) in headers.iter() {
            if !matches!(
                k.as_str(),
                "host" | "content-length" | "connection" | "transfer-encoding" | "keep-alive"
            ) {
                req = req.header(k.as_str(), v.as_bytes());
            }
        }
        req.send()
    };
    let resp = match send().await {
        Ok(r) => r,
        Err(_) => {
            link.advance(TIMEOUT_S);
            return StatusCode::BAD_GATEWAY.into_response();
        }
    };
    if duplicate {
        // The same request arrives again after the first (a retransmission);
        // the device hears the answer to the first.
        link.stats.duplicated.fetch_add(1, Ordering::Relaxed);
        let _ = send().await;
    }
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    // "HTTP/1.1 200 OK" and the server's own headers.
    let mut answer_headers = HeaderMap::new();
    for (k, v) in resp.headers() {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_str().as_bytes()),
            axum::http::HeaderValue::from_bytes(v.as_bytes()),
        ) {
            answer_headers.append(k, v);
        }
    }
    let bytes = resp.bytes().await.unwrap_or_default();
    let down = bytes.len() as u64 + header_bytes(15, &answer_headers);
    if !link.model().answer(start, lose_response, up, down) {
        // The server applied the request; the answer never arrives.
        link.stats.wasted_up.fetch_add(up, Ordering::Relaxed);
        if lose_response {
            link.stats.lost_responses.fetch_add(1, Ordering::Relaxed);
        } else {
            link.stats.cut.fetch_add(1, Ordering::Relaxed);
        }
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    link.stats.bytes_down.fetch_add(down, Ordering::Relaxed);
    link.stats.completed.fetch_add(1, Ordering::Relaxed);
    let mut response = (status, bytes).into_response();
    for (k, v) in answer_headers.iter() {
        if !matches!(
            k.as_str(),
            "content-length" | "connection" | "transfer-encoding" | "keep-alive" | "date"
        ) {
            response.headers_mut().insert(k.clone(), v.clone());
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_follow_the_table() {
        let names: Vec<&str> = Profile::all().iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "gprs",
                "edge",
                "rural-3g",
                "congested-4g",
                "offline-then-edge"
            ]
        );
        let edge = Profile::named("edge").unwrap();
        assert_eq!(
            (edge.down_bps, edge.up_bps, edge.rtt_s),
            (200_000.0, 100_000.0, 0.6)
        );
        assert_eq!(edge.outage, Some((20.0, 300.0)));
        assert!(Profile::named("5g").is_none());
    }

    #[test]
    fn outages_fall_where_the_profile_puts_them() {
        let edge = Profile::named("edge").unwrap();
        assert!(!edge.in_outage(0.0));
        assert!(!edge.in_outage(279.9));
        assert!(edge.in_outage(280.0));
        assert!(edge.in_outage(299.9));
        assert!(!edge.in_outage(300.0));
        let offline = Profile::named("offline-then-edge").unwrap();
        assert!(offline.in_outage(47.9 * 3600.0));
        assert!(!offline.in_outage(48.0 * 3600.0 + 1.0));
        assert!(!Profile::named("congested-4g").unwrap().in_outage(1e6));
        assert_eq!(edge.up_again(10.0), 10.0);
        assert_eq!(edge.up_again(285.0), 300.0);
        assert_eq!(offline.up_again(5.0), 48.0 * 3600.0);
    }

    #[test]
    fn an_exchange_spanning_a_whole_cut_is_cut() {
        let edge = Profile::named("edge").unwrap();
        // The cut is [280, 300).
        assert!(!edge.outage_between(10.0, 279.0));
        assert!(edge.outage_between(270.0, 310.0), "spans it");
        assert!(edge.outage_between(285.0, 286.0), "inside it");
        assert!(edge.outage_between(279.0, 281.0), "into it");
        assert!(!edge.outage_between(300.0, 579.0), "between cuts");
        assert!(edge.outage_between(300.0, 600.0));
        assert!(
            !Profile::named("congested-4g")
                .unwrap()
                .outage_between(0.0, 1e6)
        );
        let offline = Profile::named("offline-then-edge").unwrap();
        assert!(offline.outage_between(0.0, 1.0));
        assert!(!offline.outage_between(48.0 * 3600.0, 48.0 * 3600.0 + 100.0));
    }

    #[test]
    fn the_model_spends_airtime_and_fails_as_the_profile_says() {
        let edge = Profile {
            loss_percent: 0.0,
            ..Profile::named("edge").unwrap()
        };
        let mut m = Model::new(edge.clone(), 1);
        // 10 kB up at 100 kbit/s, 20 kB down at 200 kbit/s, 0.6 s RTT.
        assert_eq!(m.exchange(10_000, 20_000), Outcome::Completed);
        assert!(
            (m.now_s() - (0.6 + 0.8 + 0.8)).abs() < 1e-9,
            "{}",
            m.now_s()
        );
        // Into the cut at 280 s: cut, a round trip spent.
        m.advance(279.0 - m.now_s());
        assert_eq!(m.exchange(100_000, 10), Outcome::Cut);
        assert!((m.now_s() - 279.6).abs() < 1e-9);
        // The answer would arrive during the next cut: lost, timeout spent.
        m.advance(570.0 - m.now_s());
        assert_eq!(m.exchange(100, 400_000), Outcome::LostResponse);
        assert!((m.now_s() - (570.0 + TIMEOUT_S)).abs() < 1e-9);
        // Loss is drawn from the seed: same seed, same fate.
        let lossy = Profile::named("gprs").unwrap();
        let run = |seed| {
            let mut m = Model::new(lossy.clone(), seed);
            (0..200).map(|_| m.exchange(500, 500)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        let lost = run(7).iter().filter(|o| **o != Outcome::Completed).count();
        assert!((1..60).contains(&lost), "{lost}");
    }

    #[test]
    fn the_rng_is_repeatable_and_spread() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let xs: Vec<f64> = (0..1000).map(|_| a.unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        assert_eq!(xs, (0..1000).map(|_| b.unit()).collect::<Vec<_>>());
        let mean = xs.iter().sum::<f64>() / 1000.0;
        assert!((0.45..0.55).contains(&mean), "{mean}");
    }
}
