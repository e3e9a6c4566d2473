//! Access policies (DESIGN.md §1, Policies; issue 5 §5): rules over the
//! client's network, country and device OS. Pure: the caller brings the
//! client's IP, the country a GeoIP database gave for it, and the user agent.
//!
//! Each of the three dimensions has an allow list and a deny list. A request
//! passes a dimension when it matches no deny entry and — if the allow list
//! is not empty — matches an allow entry. It passes the policy when it
//! passes all three. A country or OS that cannot be told (no GeoIP data for
//! the address, an unknown user agent) matches no entry: it passes deny
//! lists and fails allow lists.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AccessPolicy {
    /// IPv4 and IPv6 addresses and CIDRs.
    pub networks: ListRule,
    /// ISO 3166-1 alpha-2 codes (needs `MUSTER_GEOIP_DB`).
    pub countries: ListRule,
    pub device_os: OsRule,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ListRule {
    /// When not empty, only these are let in.
    pub allow: Vec<String>,
    /// Never let in (checked first).
    pub deny: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OsRule {
    /// When not empty, only these are let in.
    pub allow: Vec<DeviceOs>,
    /// Never let in (checked first).
    pub deny: Vec<DeviceOs>,
}

impl ListRule {
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// The operating system a user agent names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceOs {
    Windows,
    Macos,
    Ios,
    Android,
    Linux,
    Chromeos,
}

impl DeviceOs {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Windows => "windows",
            Self::Macos => "macos",
            Self::Ios => "ios",
            Self::Android => "android",
            Self::Linux => "linux",
            Self::Chromeos => "chromeos",
        }
    }

    /// The OS of a `User-Agent` header, when it says. Order matters: Android
    /// user agents also say "Linux", iPads "like Mac OS X", ChromeOS "X11".
    pub fn from_user_agent(ua: &str) -> Option<Self> {
        let has = |s: &str| ua.contains(s);
        if has("Android") {
            Some(Self::Android)
        } else if has("iPhone") || has("iPad") || has("iPod") {
            Some(Self::Ios)
        } else if has("CrOS") {
            Some(Self::Chromeos)
        } else if has("Windows") {
            Some(Self::Windows)
        } else if has("Macintosh") || has("Mac OS X") {
            Some(Self::Macos)
        } else if has("Linux") || has("X11") {
            Some(Self::Linux)
        } else {
            None
        }
    }
}

/// Why a policy is not accepted: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub field: &'static str,
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> PolicyError {
    PolicyError {
        field,
        message: message.into(),
    }
}

/// A sorted list of disjoint address ranges: a lookup is one binary search,
/// however many CIDRs the policy lists.
#[derive(Debug, Clone, Default)]
struct Ranges {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

fn merge<T: Ord + Copy>(mut r: Vec<(T, T)>, next: impl Fn(T) -> Option<T>) -> Vec<(T, T)> {
    r.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(r.len());
    for (lo, hi) in r {
        match out.last_mut() {
            Some(last) if next(last.1).is_none_or(|n| lo <= n) => {
                if hi > last.1 {
                    last.1 = hi;
                }
            }
            _ => out.push((lo, hi)),
        }
    }
    out
}

fn find<T: Ord + Copy>(r: &[(T, T)], x: T) -> bool {
    // The last range starting at or before x is the only one that can hold it.
    let i = r.partition_point(|(lo, _)| *lo <= x);
    i > 0 && r.get(i - 1).is_some_and(|(_, hi)| x <= *hi)
}

impl Ranges {
    fn new(nets: &[IpNet]) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for n in nets {
            match n {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        Self {
            v4: merge(v4, |x: u32| x.checked_add(1)),
            v6: merge(v6, |x: u128| x.checked_add(1)),
        }
    }

    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Whether one range holds all of `n` (merged ranges are maximal, so
    /// a network covered at all is covered by one).
    fn covers(&self, n: &IpNet) -> bool {
        fn within<T: Ord + Copy>(r: &[(T, T)], lo: T, hi: T) -> bool {
            let i = r.partition_point(|(l, _)| *l <= lo);
            i > 0 && r.get(i - 1).is_some_and(|(_, h)| hi <= *h)
        }
        match n {
            IpNet::V4(n) => within(&self.v4, u32::from(n.network()), u32::from(n.broadcast())),
            IpNet::V6(n) => within(&self.v6, u128::from(n.network()), u128::from(n.broadcast())),
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match canonical(ip) {
            IpAddr::V4(a) => find(&self.v4, u32::from(a)),
            IpAddr::V6(a) => find(&self.v6, u128::from(a)),
        }
    }
}

/// An IPv4 client seen through an IPv6 socket (`::ffff:a.b.c.d`) is that
/// IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A policy checked and compiled for evaluation on every request.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    allow_nets: Ranges,
    deny_nets: Ranges,
    allow_countries: Vec<[u8; 2]>,
    deny_countries: Vec<[u8; 2]>,
    allow_os: Vec<DeviceOs>,
    deny_os: Vec<DeviceOs>,
}

/// What a request brings to the policy.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub ip: Option<IpAddr>,
    /// ISO 3166-1 alpha-2, from the GeoIP database.
    pub country: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// Which rule refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Network,
    Country,
    DeviceOs,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Country => "country",
            Self::DeviceOs => "device_os",
        }
    }
    /// What the person refused is told.
    pub fn explain(self) -> &'static str {
        match self {
            Self::Network => "your organization does not allow access from this network",
            Self::Country => "your organization does not allow access from this country",
            Self::DeviceOs => "your organization does not allow access from this kind of device",
        }
    }
}

fn country_code(c: &str) -> Option<[u8; 2]> {
    let b = c.as_bytes();
    match b {
        [x, y] if x.is_ascii_uppercase() && y.is_ascii_uppercase() => Some([*x, *y]),
        _ => None,
    }
}

/// ISO 3166-1 alpha-2 codes officially assigned (plus XK, used by GeoIP
/// databases for Kosovo).
const ISO_3166: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW";

impl AccessPolicy {
    pub fn uses_countries(&self) -> bool {
        !self.countries.is_empty()
    }

    /// Checks every entry and compiles the policy. Refused: a CIDR that does
    /// not parse, a country that is not an ISO 3166-1 alpha-2 code, more
    /// than 10,000 entries in a list, and a policy that contradicts itself —
    /// an entry both allowed and denied, or an allowed network that a denied
    /// one covers entirely (it could never let anyone in).
    pub fn compile(&self) -> Result<Compiled, PolicyError> {
        for (f, n) in [
            (
                "networks",
                self.networks.allow.len() + self.networks.deny.len(),
            ),
            (
                "countries",
                self.countries.allow.len() + self.countries.deny.len(),
            ),
        ] {
            if n > 10_000 {
                return Err(err(f, "at most 10,000 entries"));
            }
        }
        let nets = |list: &[String], field: &'static str| -> Result<Vec<IpNet>, PolicyError> {
            list.iter()
                .map(|s| {
                    let t = s.trim();
                    t.parse::<IpNet>()
                        .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                        .map(|n| n.trunc())
                        .map_err(|_| err(field, format!("'{s}' is not an IP address or CIDR")))
                })
                .collect()
        };
        let allow_nets = nets(&self.networks.allow, "networks.allow")?;
        let deny_nets = nets(&self.networks.deny, "networks.deny")?;
        let deny_ranges = Ranges::new(&deny_nets);
        for a in &allow_nets {
            let covered = deny_ranges.covers(a);
            if covered {
                return Err(err(
                    "networks",
                    format!("{a} is allowed but also denied: a policy cannot say both"),
                ));
            }
        }
        let codes = |list: &[String], field: &'static str| -> Result<Vec<[u8; 2]>, PolicyError> {
            list.iter()
                .map(|c| {
                    country_code(c.trim())
                        .filter(|_| ISO_3166.split(' ').any(|k| k == c.trim()))
                        .ok_or_else(|| {
                            err(field, format!("'{c}' is not an ISO 3166-1 alpha-2 country code (like DE or US)"))
                        })
                })
                .collect()
        };
        let allow_countries = codes(&self.countries.allow, "countries.allow")?;
        let deny_countries = codes(&self.countries.deny, "countries.deny")?;
        if let Some(c) = allow_countries.iter().find(|c| deny_countries.contains(c)) {
            return Err(err(
                "countries",
                format!("{} is both allowed and denied", String::from_utf8_lossy(c)),
            ));
        }
        if let Some(o) = self
            .device_os
            .allow
            .iter()
            .find(|o| self.device_os.deny.contains(o))
        {
            return Err(err(
                "device_os",
                format!("{} is both allowed and denied", o.as_str()),
            ));
        }
        Ok(Compiled {
            allow_nets: Ranges::new(&allow_nets),
            deny_nets: deny_ranges,
            allow_countries,
            deny_countries,
            allow_os: self.device_os.allow.clone(),
            deny_os: self.device_os.deny.clone(),
        })
    }
}

impl Compiled {
    /// Whether the policy has any rule at all (most have none: nothing to do).
    pub fn is_empty(&self) -> bool {
        self.allow_nets.is_empty()
            && self.deny_nets.is_empty()
            && self.allow_countries.is_empty()
            && self.deny_countries.is_empty()
            && self.allow_os.is_empty()
            && self.deny_os.is_empty()
    }

    pub fn uses_countries(&self) -> bool {
        !self.allow_countries.is_empty() || !self.deny_countries.is_empty()
    }

    /// The first rule that refuses `r`, if any.
    pub fn evaluate(&self, r: &Request<'_>) -> Option<Refusal> {
        if !self.allow_nets.is_empty() || !self.deny_nets.is_empty() {
            let (deny, allow) = match r.ip {
                Some(ip) => (self.deny_nets.contains(ip), self.allow_nets.contains(ip)),
                None => (false, false),
            };
            if deny || (!self.allow_nets.is_empty() && !allow) {
                return Some(Refusal::Network);
            }
        }
        if !self.allow_countries.is_empty() || !self.deny_countries.is_empty() {
            let c = r.country.and_then(country_code);
            let deny = c.is_some_and(|c| self.deny_countries.contains(&c));
            let allow = c.is_some_and(|c| self.allow_countries.contains(&c));
            if deny || (!self.allow_countries.is_empty() && !allow) {
                return Some(Refusal::Country);
            }
        }
        if !self.allow_os.is_empty() || !self.deny_os.is_empty() {
            let os = r.user_agent.and_then(DeviceOs::from_user_agent);
            let deny = os.is_some_and(|o| self.deny_os.contains(&o));
            let allow = os.is_some_and(|o| self.allow_os.contains(&o));
            if deny || (!self.allow_os.is_empty() && !allow) {
                return Some(Refusal::DeviceOs);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req<'a>(ip: &str, country: Option<&'a str>, ua: Option<&'a str>) -> Request<'a> {
        Request {
            ip: Some(ip.parse().unwrap()),
            country,
            user_agent: ua,
        }
    }

    fn policy(allow: &[&str], deny: &[&str]) -> AccessPolicy {
        AccessPolicy {
            networks: ListRule {
                allow: allow.iter().map(|s| (*s).to_owned()).collect(),
                deny: deny.iter().map(|s| (*s).to_owned()).collect(),
            },
            ..AccessPolicy::default()
        }
    }

    #[test]
    fn networks_allow_and_deny_v4_and_v6() {
        let p = policy(
            &["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"],
            &["10.9.0.0/16"],
        )
        .compile()
        .unwrap();
        assert_eq!(p.evaluate(&req("10.1.2.3", None, None)), None);
        assert_eq!(
            p.evaluate(&req("::ffff:10.1.2.3", None, None)),
            None,
            "v4-mapped"
        );
        assert_eq!(p.evaluate(&req("192.0.2.7", None, None)), None);
        assert_eq!(p.evaluate(&req("2001:db8:1::1", None, None)), None);
        assert_eq!(
            p.evaluate(&req("10.9.1.1", None, None)),
            Some(Refusal::Network)
        );
        assert_eq!(
            p.evaluate(&req("192.0.2.8", None, None)),
            Some(Refusal::Network)
        );
        assert_eq!(
            p.evaluate(&req("2001:db9::1", None, None)),
            Some(Refusal::Network)
        );
        let no_ip = Request {
            ip: None,
            country: None,
            user_agent: None,
        };
        assert_eq!(p.evaluate(&no_ip), Some(Refusal::Network));
        let deny_only = policy(&[], &["203.0.113.0/24"]).compile().unwrap();
        assert_eq!(
            deny_only.evaluate(&req("203.0.113.9", None, None)),
            Some(Refusal::Network)
        );
        assert_eq!(deny_only.evaluate(&req("198.51.100.1", None, None)), None);
    }

    #[test]
    fn a_thousand_cidrs_agree_with_a_linear_scan() {
        let nets: Vec<String> = (0..1000u32)
            .map(|i| {
                format!(
                    "{}.{}.{}.0/{}",
                    1 + i % 200,
                    (i * 7) % 256,
                    (i * 13) % 256,
                    16 + i % 9
                )
            })
            .collect();
        let refs: Vec<&str> = nets.iter().map(String::as_str).collect();
        let p = policy(&refs, &[]).compile().unwrap();
        let parsed: Vec<IpNet> = nets.iter().map(|n| n.parse::<IpNet>().unwrap()).collect();
        for i in 0..5000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(i.wrapping_mul(2_654_435_761)));
            let linear = parsed.iter().any(|n| n.contains(&ip));
            let r = Request {
                ip: Some(ip),
                country: None,
                user_agent: None,
            };
            assert_eq!(p.evaluate(&r).is_none(), linear, "{ip}");
        }
    }

    #[test]
    fn countries_and_device_os() {
        let p = AccessPolicy {
            countries: ListRule {
                allow: vec!["DE".into(), "FR".into()],
                deny: vec![],
            },
            device_os: OsRule {
                allow: vec![],
                deny: vec![DeviceOs::Android],
            },
            ..AccessPolicy::default()
        }
        .compile()
        .unwrap();
        let mac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15";
        let android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36";
        assert_eq!(p.evaluate(&req("192.0.2.1", Some("DE"), Some(mac))), None);
        assert_eq!(
            p.evaluate(&req("192.0.2.1", Some("US"), Some(mac))),
            Some(Refusal::Country)
        );
        assert_eq!(
            p.evaluate(&req("192.0.2.1", None, Some(mac))),
            Some(Refusal::Country),
            "unknown fails an allow list"
        );
        assert_eq!(
            p.evaluate(&req("192.0.2.1", Some("FR"), Some(android))),
            Some(Refusal::DeviceOs)
        );
        assert_eq!(
            p.evaluate(&req("192.0.2.1", Some("FR"), None)),
            None,
            "unknown passes a deny list"
        );
    }

    #[test]
    fn operating_systems_from_user_agents() {
        for (ua, os) in [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
                Some(DeviceOs::Windows),
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)",
                Some(DeviceOs::Ios),
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X)",
                Some(DeviceOs::Ios),
            ),
            (
                "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0)",
                Some(DeviceOs::Chromeos),
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/156.0",
                Some(DeviceOs::Linux),
            ),
            ("Mozilla/5.0 (Linux; Android 14)", Some(DeviceOs::Android)),
            ("curl/8.5.0", None),
        ] {
            assert_eq!(DeviceOs::from_user_agent(ua), os, "{ua}");
        }
    }

    #[test]
    fn bad_entries_and_contradictions_are_refused() {
        for (p, field) in [
            (policy(&["10.0.0.0/33"], &[]), "networks.allow"),
            (policy(&[], &["not-an-ip"]), "networks.deny"),
            (policy(&["10.1.0.0/16"], &["10.0.0.0/8"]), "networks"),
            (policy(&["10.0.0.0/8"], &["10.0.0.0/8"]), "networks"),
            (
                AccessPolicy {
                    countries: ListRule {
                        allow: vec!["de".into()],
                        deny: vec![],
                    },
                    ..AccessPolicy::default()
                },
                "countries.allow",
            ),
            (
                AccessPolicy {
                    countries: ListRule {
                        allow: vec![],
                        deny: vec!["ZZ".into()],
                    },
                    ..AccessPolicy::default()
                },
                "countries.deny",
            ),
            (
                AccessPolicy {
                    countries: ListRule {
                        allow: vec!["DE".into()],
                        deny: vec!["DE".into()],
                    },
                    ..AccessPolicy::default()
                },
                "countries",
            ),
            (
                AccessPolicy {
                    device_os: OsRule {
                        allow: vec![DeviceOs::Ios],
                        deny: vec![DeviceOs::Ios],
                    },
                    ..AccessPolicy::default()
                },
                "device_os",
            ),
        ] {
            assert_eq!(p.compile().unwrap_err().field, field, "{p:?}");
        }
        // A deny range inside a larger allowed one is a carve-out, not a contradiction.
        assert!(policy(&["10.0.0.0/8"], &["10.1.0.0/16"]).compile().is_ok());
        assert!(AccessPolicy::default().compile().unwrap().is_empty());
    }
}
