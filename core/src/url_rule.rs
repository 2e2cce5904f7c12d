//! The one rule for addresses Sambung sends to — the device's sync server,
//! the server's webhook receivers: `https://`, or plain `http://` only to
//! this machine's loopback, with nothing in the address that could make it
//! mean something else than it seems.
//!
//! The text is parsed as a URL by the `url` crate — the parser reqwest
//! itself uses, so what is checked here is what a request goes to — never
//! split by hand: `http://localhost:80@elsewhere` is a user name in front
//! of `elsewhere`, and `http://127.0.0.1.evil.example` a name, not a
//! loopback address. Callers add their own policy on top (the webhook check
//! keeps internal addresses out); input cleaning is theirs too, because
//! only they know whether the text they store is the text that was checked.
//!
//! ```
//! use sambung_core::url_rule::{UrlRefusal, https_or_loopback};
//! assert!(https_or_loopback("https://sambung.example.go.id").is_ok());
//! assert!(https_or_loopback("http://127.0.0.1:8480").is_ok());
//! assert_eq!(https_or_loopback("http://sambung.example.go.id"), Err(UrlRefusal::NotHttps));
//! ```

pub use url::{Host, Url};

/// Why an address breaks the rule; the message names the rule, never the
/// address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    /// The text does not parse as an absolute URL.
    #[error("not a URL")]
    NotAUrl,
    /// No host to connect to.
    #[error("no host")]
    NoHost,
    /// A user name or password in the address: credentials would sit in
    /// configuration and logs, and `user@host` is the classic way to make
    /// an address read as another host.
    #[error("user names and passwords do not belong in the address")]
    Credentials,
    /// A query or fragment: the device appends its paths to the address
    /// (a query would end up in the middle), a fragment is never sent, and
    /// a query is where a secret would sit in plain sight (a webhook's
    /// receiver checks the delivery's signature instead).
    #[error("no query or fragment")]
    QueryOrFragment,
    /// Neither `https://` nor `http://` to loopback.
    #[error("not https")]
    NotHttps,
}

/// Checks `text` against the rule and returns the parsed address: scheme
/// `https`, or `http` when the host is loopback ([`is_loopback`]); a host;
/// no user name or password; no query or fragment.
pub fn https_or_loopback(text: &str) -> Result<Url, UrlRefusal> {
    let parsed = Url::parse(text).map_err(|_| UrlRefusal::NotAUrl)?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlRefusal::Credentials);
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(UrlRefusal::QueryOrFragment);
    }
    if parsed.host().is_none() {
        return Err(UrlRefusal::NoHost);
    }
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback(&parsed) => Ok(parsed),
        _ => Err(UrlRefusal::NotHttps),
    }
}

/// Whether the address's host is this machine: the name `localhost`
/// (exactly: `a.localhost` or `localhost.` are names resolved elsewhere),
/// or a loopback address written out (`127.0.0.0/8`, `::1`; an IPv4-mapped
/// `::ffff:127.0.0.1` is not taken for one).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_plain_http_only_to_loopback() {
        for ok in [
            "https://sambung.example.go.id",
            "https://sambung.example.go.id:8443/base/",
            "https://10.1.2.3:8443/",
            "https://[2001:db8::1]/hook",
            "http://127.0.0.1:8480",
            "http://127.8.9.10/h",
            "http://localhost:1",
            "http://LOCALHOST/h",
            "http://[::1]:80",
            // The parser's own forms of an IPv4 address are that address.
            "http://0x7f.1/",
        ] {
            assert!(https_or_loopback(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("http://sambung.example.go.id", UrlRefusal::NotHttps),
            ("http://10.0.0.1/h", UrlRefusal::NotHttps),
            ("http://127.0.0.1.evil.example", UrlRefusal::NotHttps),
            ("http://localhost.evil.example", UrlRefusal::NotHttps),
            ("http://a.localhost/", UrlRefusal::NotHttps),
            ("http://[::ffff:127.0.0.1]/", UrlRefusal::NotHttps),
            ("ftp://127.0.0.1", UrlRefusal::NotHttps),
            ("file:///etc/passwd", UrlRefusal::NoHost),
            ("http://localhost:80@evil.example", UrlRefusal::Credentials),
            ("http://127.0.0.1@evil.example", UrlRefusal::Credentials),
            (
                "https://user:pw@sambung.example.go.id",
                UrlRefusal::Credentials,
            ),
            ("https://:pw@sambung.example.go.id", UrlRefusal::Credentials),
            (
                "https://sambung.example.go.id/?x=1",
                UrlRefusal::QueryOrFragment,
            ),
            (
                "https://sambung.example.go.id/hook?",
                UrlRefusal::QueryOrFragment,
            ),
            (
                "https://sambung.example.go.id/#top",
                UrlRefusal::QueryOrFragment,
            ),
            ("not a url", UrlRefusal::NotAUrl),
            ("/v1/sync", UrlRefusal::NotAUrl),
            ("", UrlRefusal::NotAUrl),
        ] {
            assert_eq!(https_or_loopback(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn the_address_returned_is_the_one_a_request_goes_to() {
        // Parsed once, by reqwest's parser: the host checked is the host
        // connected to, case and spaces normalised as reqwest would.
        let u = https_or_loopback("  https://Sambung.Example.go.id:443/base ").unwrap();
        assert_eq!(u.as_str(), "https://sambung.example.go.id/base");
        assert_eq!(u.host_str(), Some("sambung.example.go.id"));
        let u = https_or_loopback("http://[::1]:8480/").unwrap();
        assert!(is_loopback(&u));
        assert!(!is_loopback(&Url::parse("https://example.go.id").unwrap()));
    }
}
