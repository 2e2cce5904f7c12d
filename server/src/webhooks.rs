//! Webhooks: an agency subscribes a URL to events; deliveries are queued in
//! the database in the same transaction as the change that caused them
//! (nothing is announced that was not stored, nothing stored goes
//! unannounced), signed by the Standard Webhooks conventions
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64
//! HMAC-SHA256 of "id.timestamp.body">`), and retried with backoff until
//! the receiver answers 2xx — at least once, across restarts, from any
//! server on the database (a lease keeps two servers from sending one
//! delivery at the same time; [`worker`]).
//!
//! Payloads carry ids, kind, region and status — no personal data; the
//! receiver reads the request through the back-office API.
//!
//! Deliveries never reach the inside of the deployment's network: an
//! address that is loopback, private, link-local, unique-local, CGNAT,
//! multicast, reserved or unspecified (IPv4-mapped ones too) is refused
//! unless the deployment lists it ([`AddressPolicy`]). The check is made on
//! the addresses a host name resolves to at delivery time, by the HTTP
//! client's own resolver, so the connection goes only to a checked address
//! (a name that resolves elsewhere later cannot rebind it); redirects are
//! not followed and no proxy is used.

use std::net::IpAddr;

use base64::Engine;
use ring::hmac;
use sambung_core::model::{Request, RequestId};
use sambung_core::url_rule::{Host, Url};
use serde::{Deserialize, Serialize};

use crate::accounts::Scope;
use crate::error::ServerError;
use crate::storage::Tx;
pub use crate::storage::{Delivery, NewDelivery, Outcome, Subscription};

pub mod worker;

/// Longest webhook address, in characters.
pub const MAX_URL_CHARS: usize = 2000;

/// The events one may subscribe to.
pub const EVENTS: &[&str] = &[
    "request.submitted",
    "request.status_changed",
    "request.note_added",
    "attachment.received",
];

/// One event caused by a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// One of [`EVENTS`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Unix milliseconds.
    pub timestamp: i64,
    /// What it is about.
    pub data: EventData,
}

/// The body of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventData {
    /// Request id (UUID).
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Region code.
    pub region: String,
    /// Status now.
    pub status: String,
    /// Status before, for a status change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// The events between two states of a request.
pub fn events_between(before: Option<&Request>, after: &Request) -> Vec<Event> {
    let now = sambung_core::Timestamp::now().as_millis();
    let status = after.status();
    let data = |from: Option<String>| EventData {
        id: after.id.to_string(),
        kind: after.kind().as_str().to_owned(),
        region: after.content.region.0.clone(),
        status: status.as_str().to_owned(),
        from,
    };
    let event = |kind: &str, from| Event {
        kind: kind.to_owned(),
        timestamp: now,
        data: data(from),
    };
    let mut out = Vec::new();
    let old_status = before.map(|b| b.status());
    if old_status != Some(status) {
        if status == sambung_core::lifecycle::Status::Submitted {
            out.push(event("request.submitted", None));
        } else if let Some(old) = old_status {
            out.push(event(
                "request.status_changed",
                Some(old.as_str().to_owned()),
            ));
        }
    }
    let notes = |r: Option<&Request>| r.map(|r| r.notes.len()).unwrap_or(0);
    if after.notes.len() > notes(before) {
        out.push(event("request.note_added", None));
    }
    let attachments = |r: Option<&Request>| r.map(|r| r.attachments.len()).unwrap_or(0);
    if after.attachments.len() > attachments(before) {
        out.push(event("attachment.received", None));
    }
    out
}

/// Which subscriptions receive which of `events` about a request in
/// `scope`: only events they asked for, about requests their account may
/// see, and never about drafts.
pub fn deliveries_for(subs: &[Subscription], scope: &Scope, events: &[Event]) -> Vec<NewDelivery> {
    let mut out = Vec::new();
    for s in subs {
        if !s.account.may_see(scope) {
            continue;
        }
        for e in events {
            if e.data.status == "draft" || !s.events.contains(&e.kind) {
                continue;
            }
            if let Ok(payload) = serde_json::to_string(e) {
                out.push(NewDelivery {
                    webhook: s.id.clone(),
                    event: e.kind.clone(),
                    payload,
                });
            }
        }
    }
    out
}

/// Queues what `events` about a request in `scope` mean for `subs`, in
/// the transaction that writes the request: nothing is announced that was
/// not stored, and nothing stored goes unannounced.
pub fn queue_in_tx(
    tx: &mut dyn Tx,
    subs: &[Subscription],
    scope: &Scope,
    events: &[Event],
) -> Result<(), ServerError> {
    let deliveries = deliveries_for(subs, scope, events);
    if !deliveries.is_empty() {
        tx.queue_deliveries(&deliveries, sambung_core::Timestamp::now().as_millis())?;
    }
    Ok(())
}

/// A new subscription's secret, `whsec_` and 32 random bytes in base64
/// (the Standard Webhooks form).
pub fn new_secret() -> Result<(String, Vec<u8>), ServerError> {
    let key: [u8; 32] = sambung_core::crypto::random_key_bytes()
        .map_err(|_| ServerError::Storage("no randomness".into()))?;
    let text = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    Ok((text, key.to_vec()))
}

/// The `webhook-signature` value of a body.
///
/// ```
/// let sig = sambung_server::webhooks::signature(b"key", "msg_1", 1_700_000_000, "{}");
/// assert!(sig.starts_with("v1,"));
/// ```
pub fn signature(secret: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let signed = format!("{id}.{timestamp}.{body}");
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, signed.as_bytes()))
    )
}

/// Checks a subscription URL: the one rule of `sambung_core::url_rule`
/// (HTTPS, or plain HTTP to this host only — deliveries leave the host
/// encrypted; no credentials, query or fragment), then this server's own:
/// an address written in the URL must be one `policy` permits (a host name
/// is checked at each delivery, on what it resolves to then). The text is
/// checked as given, untrimmed: it is what is stored and delivered to.
pub fn check_url(url: &str, policy: &AddressPolicy) -> Result<(), ServerError> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(ServerError::BadRequest(format!(
            "url: at most {MAX_URL_CHARS} characters"
        )));
    }
    let parsed = sambung_core::url_rule::https_or_loopback(url).map_err(|why| {
        ServerError::BadRequest(format!(
            "url: {why} (https, plain http only to this host, no credentials, query or fragment)"
        ))
    })?;
    if let Some(ip) = literal_address(&parsed)
        && !policy.permits(ip)
    {
        return Err(ServerError::BadRequest(
            "url points at an internal address (loopback, private, link-local or reserved); \
             the deployment's webhook_allow lists those it permits"
                .into(),
        ));
    }
    Ok(())
}

/// The address written in a URL in place of a host name, if any: never
/// resolved, so checked against the policy as it stands.
fn literal_address(url: &Url) -> Option<IpAddr> {
    match url.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(Host::Domain(_)) | None => None,
    }
}

/// Ranges a delivery never goes to unless the deployment allows them.
const INTERNAL: &[&str] = &[
    "0.0.0.0/8",       // "this" network, unspecified
    "10.0.0.0/8",      // private (RFC 1918)
    "100.64.0.0/10",   // carrier-grade NAT
    "127.0.0.0/8",     // loopback
    "169.254.0.0/16",  // link-local (cloud metadata services)
    "172.16.0.0/12",   // private
    "192.0.0.0/24",    // IETF protocol assignments
    "192.0.2.0/24",    // documentation
    "192.88.99.0/24",  // 6to4 relay anycast
    "192.168.0.0/16",  // private
    "198.18.0.0/15",   // benchmarking
    "198.51.100.0/24", // documentation
    "203.0.113.0/24",  // documentation
    "224.0.0.0/4",     // multicast
    "240.0.0.0/4",     // reserved, broadcast
    "::/128",          // unspecified
    "::1/128",         // loopback
    "::/96",           // IPv4-compatible (deprecated)
    "100::/64",        // discard
    "2001::/32",       // Teredo
    "2001:db8::/32",   // documentation
    "fc00::/7",        // unique local
    "fe80::/10",       // link-local
    "fec0::/10",       // site-local (deprecated)
    "ff00::/8",        // multicast
];

/// Which addresses webhook deliveries may go to: any public address, and
/// the internal ones the deployment lists (`webhook_allow`, CIDRs).
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allow: Vec<ipnet::IpNet>,
}

impl AddressPolicy {
    /// Public addresses only, plus `allow`.
    pub fn new(allow: Vec<ipnet::IpNet>) -> Self {
        AddressPolicy { allow }
    }

    /// Whether a delivery may connect to `ip`. An IPv6 address carrying
    /// an IPv4 one (mapped, NAT64, 6to4) is judged by that IPv4 address.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = embedded_v4(ip);
        !is_internal(ip) || self.allow.iter().any(|n| n.contains(&ip))
    }
}

/// The IPv4 address an IPv6 one stands for, if any.
fn embedded_v4(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else {
        return ip;
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let o = v6.octets();
    // NAT64 (64:ff9b::/96): the last 32 bits.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    // 6to4 (2002::/16): bits 16–48.
    if s[0] == 0x2002 {
        return IpAddr::V4(std::net::Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    ip
}

/// The [`INTERNAL`] ranges, parsed once. The table is constant: an entry
/// that did not parse would be a bug (a unit test parses each); it is
/// left out rather than panicking.
static INTERNAL_NETS: std::sync::LazyLock<Vec<ipnet::IpNet>> =
    std::sync::LazyLock::new(|| INTERNAL.iter().filter_map(|r| r.parse().ok()).collect());

/// Whether `ip` is in one of the [`INTERNAL`] ranges.
pub fn is_internal(ip: IpAddr) -> bool {
    INTERNAL_NETS.iter().any(|n| n.contains(&ip))
}

/// A new subscription's id.
pub fn new_id() -> String {
    format!("wh_{}", RequestId::random().to_string().replace('-', ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let secret = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let sig = signature(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn urls_must_be_https_or_this_host() {
        let loopback = AddressPolicy::new(vec!["127.0.0.1/32".parse().unwrap()]);
        for ok in [
            "https://agency.go.id/hook",
            "http://127.0.0.1:9000/h",
            "http://localhost/h",
        ] {
            assert!(check_url(ok, &loopback).is_ok(), "{ok}");
        }
        for bad in [
            "http://agency.go.id/hook",
            "ftp://x/y",
            "nonsense",
            "https://u:p@x/y",
            "http://10.0.0.1/h",
            // Loopback, but not the allowed address.
            "http://[::1]:1/h",
            "http://127.0.0.2/h",
            // The shared rule (`sambung_core::url_rule`): no name that
            // only starts like loopback, no query or fragment.
            "http://127.0.0.1.evil.example/h",
            "http://localhost:80@evil.example/h",
            "https://agency.go.id/hook?token=secret",
            "https://agency.go.id/hook#part",
        ] {
            assert!(check_url(bad, &loopback).is_err(), "{bad}");
        }
        // Without an allow list, no literal internal address.
        let public = AddressPolicy::default();
        for bad in [
            "http://127.0.0.1:9000/h",
            "https://10.1.2.3/h",
            "https://169.254.169.254/latest/meta-data",
            "https://[::ffff:192.168.1.1]/h",
            "https://[fd00::1]/h",
            "https://100.64.0.1/h",
        ] {
            let e = check_url(bad, &public).unwrap_err();
            assert!(e.to_string().contains("internal address"), "{bad}: {e}");
        }
        assert!(check_url("https://93.184.216.34/h", &public).is_ok());
        // A name is judged at delivery time, on what it resolves to.
        assert!(check_url("http://localhost:1/h", &public).is_ok());
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let public = AddressPolicy::default();
        for bad in [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:c0a8:0101::1",
            "::127.0.0.1",
        ] {
            let ip: IpAddr = bad.parse().unwrap();
            assert!(!public.permits(ip), "{bad}");
        }
        for ok in [
            "93.184.216.34",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = ok.parse().unwrap();
            assert!(public.permits(ip), "{ok}");
        }
        let allowed = AddressPolicy::new(vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.20.0.0/16".parse().unwrap(),
        ]);
        for ok in ["127.0.0.1", "::ffff:127.0.0.1", "10.20.3.4"] {
            assert!(allowed.permits(ok.parse().unwrap()), "{ok}");
        }
        for bad in ["127.0.0.2", "10.21.0.1", "::1"] {
            assert!(!allowed.permits(bad.parse().unwrap()), "{bad}");
        }
        // Every entry of the table parses (a bad one would be left out).
        for r in INTERNAL {
            assert!(r.parse::<ipnet::IpNet>().is_ok(), "{r}");
        }
        assert_eq!(INTERNAL_NETS.len(), INTERNAL.len());
    }
}
