//! Where a webhook may be sent. An endpoint URL is a request Muster makes
//! from inside the operator's network on an admin's behalf, so by default it
//! must be https to a public address: private, loopback, link-local (cloud
//! metadata) and other special-purpose ranges are refused when the endpoint
//! is saved and again when each delivery connects — the name is resolved by
//! `PublicOnly`, so a name that later resolves inward (DNS rebinding) is
//! refused too. `MUSTER_WEBHOOKS_ALLOW_PRIVATE` lifts this for internal
//! receivers (and the tests' loopback one).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether the operator allows private targets (and plain http).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Targets {
    pub allow_private: bool,
}

impl Targets {
    /// Checks an endpoint URL; the message says what to change.
    pub fn check(self, raw: &str) -> Result<url::Url, String> {
        if raw.len() > 2000 {
            return Err("at most 2000 characters".into());
        }
        let u = url::Url::parse(raw).map_err(|_| "not an absolute URL".to_owned())?;
        match u.scheme() {
            "https" => {}
            "http" if self.allow_private => {}
            "http" => return Err("use https".into()),
            _ => return Err("use an https URL".into()),
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err("put no credentials in the URL; verify the signature instead".into());
        }
        if u.fragment().is_some() {
            return Err("a URL with a #fragment is not sent as written; remove it".into());
        }
        if self.allow_private {
            return Ok(u);
        }
        match u.host() {
            Some(url::Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip))?,
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                let internal = ["localhost", "local", "internal", "localdomain", "home.arpa"]
                    .iter()
                    .any(|s| name == *s || name.ends_with(&format!(".{s}")));
                if internal || !name.contains('.') {
                    return Err(format!("'{name}' is not a public host name"));
                }
            }
            None => return Err("the URL names no host".into()),
        }
        Ok(u)
    }
}

fn check_ip(ip: IpAddr) -> Result<(), String> {
    if is_public(ip) {
        Ok(())
    } else {
        Err(format!(
            "{ip} is a private, loopback or reserved address; webhooks go to public addresses"
        ))
    }
}

/// Whether `ip` is an ordinary public unicast address (RFC 6890's
/// special-purpose registries, the ranges that matter for SSRF).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (b & 0xc0) == 64) // shared address space, RFC 6598
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b & 0xfe) == 18) // benchmarking, RFC 2544
        || a >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (RFC 6052) reaches the IPv4 address in its last 32 bits.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = s;
        return public_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || s[..6] == [0; 6] // IPv4-compatible, deprecated
        || (s[0] & 0xfe00) == 0xfc00 // unique local, RFC 4193
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local, deprecated
        || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
}

/// Resolves names for the delivery client and keeps only public addresses,
/// so the check holds at connection time, not just when the URL was saved.
pub(crate) struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                let why = format!("{host} resolves to no public address");
                return Err(why.into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_purpose_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            assert!(!is_public(ip), "{ip} should not count as public");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "64:ff9b::808:808",
        ] {
            let ip: IpAddr = ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            assert!(is_public(ip), "{ip} should count as public");
        }
    }

    #[test]
    fn urls_are_refused_with_the_reason() {
        let strict = Targets::default();
        let cases = [
            ("http://93.184.216.34/hook", "https"),
            ("https://127.0.0.1/hook", "private"),
            ("https://[::1]:8443/hook", "private"),
            ("https://169.254.169.254/latest", "private"),
            ("https://localhost/hook", "public host"),
            ("https://svc.internal/hook", "public host"),
            ("https://intranet/hook", "public host"),
            ("https://user:pw@example.com/hook", "credentials"),
            ("https://example.com/hook#x", "fragment"),
            ("ftp://example.com/", "https"),
            ("not a url", "absolute"),
        ];
        for (url, why) in cases {
            let err = strict.check(url).err().unwrap_or_default();
            assert!(err.contains(why), "{url}: expected '{why}', got '{err}'");
        }
        assert!(strict.check("https://hooks.example.com/muster").is_ok());
        assert!(strict.check("https://93.184.216.34/hook").is_ok());
        let open = Targets {
            allow_private: true,
        };
        assert!(open.check("http://127.0.0.1:9000/hook").is_ok());
        assert!(open.check("https://user:pw@127.0.0.1/").is_err());
    }
}
