//! The risk engine (DESIGN.md §1, Risk-based authentication; issue 5 §4):
//! pure, deterministic and explainable. The caller gathers the signals of
//! one sign-in attempt (or of one request on a session); `assess` weighs
//! them and answers low / medium / high with every reason that counted.
//!
//! Weights (points; low < 3 ≤ medium < 6 ≤ high):
//! - unknown device: 2 — alone it stays low (people get new browsers);
//! - recent failures for the user: 2; for the client address: 3;
//! - new country for this user: 3 — medium on its own;
//! - impossible travel, a denylisted network, rapid address changes within
//!   one session: 6 each — high on their own.

use serde::{Deserialize, Serialize};

/// Faster than any airliner between two sign-ins: impossible travel.
pub const MAX_TRAVEL_KMH: f64 = 1000.0;
/// Failures for the user, within the lockout window, that count as a signal.
pub const USER_FAILURES: i64 = 3;
/// Failures from one address, over all accounts, that count as a signal.
pub const IP_FAILURES: i64 = 10;
/// Address changes within ten minutes of one session that count as rapid.
pub const RAPID_IP_CHANGES: i64 = 3;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// A place and when someone was there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    pub at_ms: i64,
    pub coords: (f64, f64),
}

/// Everything the engine looks at; gathered by the caller, never fetched here.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// The browser's device cookie names a device this user signed in from before.
    pub known_device: bool,
    /// Whether the user has signed in before at all (a first sign-in has no
    /// baseline: its device and country are not "new").
    pub has_history: bool,
    /// This attempt's country, when GeoIP knows it.
    pub country: Option<String>,
    /// Countries of the user's recent sign-ins.
    pub known_countries: Vec<String>,
    /// The previous sign-in with coordinates, and this one's.
    pub last_seen: Option<Seen>,
    pub here: Option<Seen>,
    pub user_failures: i64,
    pub ip_failures: i64,
    /// The address is on the risk policy's deny list.
    pub denylisted_ip: bool,
    /// Address changes of the session within the last ten minutes.
    pub session_ip_changes: i64,
}

/// One signal that counted, in words an admin reads in the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reason {
    pub signal: String,
    pub points: u32,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Assessment {
    pub level: Level,
    pub score: u32,
    pub reasons: Vec<Reason>,
}

/// Great-circle distance (haversine), in kilometres.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1) = (a.0.to_radians(), a.1.to_radians());
    let (la2, lo2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}

pub fn assess(s: &Signals) -> Assessment {
    let mut reasons = Vec::new();
    let mut add = |signal: &str, points: u32, detail: String| {
        reasons.push(Reason {
            signal: signal.to_owned(),
            points,
            detail,
        });
    };
    if s.has_history && !s.known_device {
        add(
            "unknown_device",
            2,
            "first sign-in from this browser or app".into(),
        );
    }
    if s.has_history
        && let Some(c) = &s.country
        && !s.known_countries.is_empty()
        && !s.known_countries.contains(c)
    {
        add("new_country", 3, format!("first sign-in from {c}"));
    }
    if let (Some(before), Some(now)) = (s.last_seen, s.here) {
        let km = distance_km(before.coords, now.coords);
        let hours = (now.at_ms - before.at_ms).max(0) as f64 / 3_600_000.0;
        // Nearby places are never impossible, however quick (GeoIP is coarse).
        if km > 500.0 && km > MAX_TRAVEL_KMH * hours {
            add(
                "impossible_travel",
                6,
                format!("{km:.0} km from the last sign-in in {:.1} h", hours),
            );
        }
    }
    if s.user_failures >= USER_FAILURES {
        add(
            "user_failures",
            2,
            format!(
                "{} recent failed attempts for this account",
                s.user_failures
            ),
        );
    }
    if s.ip_failures >= IP_FAILURES {
        add(
            "ip_failures",
            3,
            format!("{} recent failed attempts from this address", s.ip_failures),
        );
    }
    if s.denylisted_ip {
        add(
            "denylisted_ip",
            6,
            "the address is on the risk deny list".into(),
        );
    }
    if s.session_ip_changes >= RAPID_IP_CHANGES {
        add(
            "rapid_ip_changes",
            6,
            format!(
                "{} address changes within ten minutes",
                s.session_ip_changes
            ),
        );
    }
    let score: u32 = reasons.iter().map(|r| r.points).sum();
    let level = match score {
        0..=2 => Level::Low,
        3..=5 => Level::Medium,
        _ => Level::High,
    };
    Assessment {
        level,
        score,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signals() -> Signals {
        Signals {
            known_device: true,
            has_history: true,
            country: Some("DE".into()),
            known_countries: vec!["DE".into()],
            ..Signals::default()
        }
    }

    #[test]
    fn a_familiar_sign_in_is_low_with_no_reasons() {
        let a = assess(&signals());
        assert_eq!((a.level, a.score, a.reasons.len()), (Level::Low, 0, 0));
        // The very first sign-in has no baseline to differ from.
        let first = Signals {
            known_device: false,
            has_history: false,
            country: Some("US".into()),
            ..Signals::default()
        };
        assert_eq!(assess(&first).level, Level::Low);
    }

    #[test]
    fn each_signal_counts_and_explains_itself() {
        let cases: Vec<(Signals, &str, Level)> = vec![
            (
                Signals {
                    known_device: false,
                    ..signals()
                },
                "unknown_device",
                Level::Low,
            ),
            (
                Signals {
                    country: Some("FR".into()),
                    ..signals()
                },
                "new_country",
                Level::Medium,
            ),
            (
                Signals {
                    user_failures: 3,
                    ..signals()
                },
                "user_failures",
                Level::Low,
            ),
            (
                Signals {
                    ip_failures: 10,
                    ..signals()
                },
                "ip_failures",
                Level::Medium,
            ),
            (
                Signals {
                    denylisted_ip: true,
                    ..signals()
                },
                "denylisted_ip",
                Level::High,
            ),
            (
                Signals {
                    session_ip_changes: 3,
                    ..signals()
                },
                "rapid_ip_changes",
                Level::High,
            ),
        ];
        for (s, signal, level) in cases {
            let a = assess(&s);
            assert_eq!(a.level, level, "{signal}");
            assert_eq!(a.reasons.len(), 1, "{signal}");
            assert_eq!(a.reasons.first().map(|r| r.signal.as_str()), Some(signal));
        }
        // Signals add up: a new device in a new country is medium.
        let both = Signals {
            known_device: false,
            country: Some("FR".into()),
            ..signals()
        };
        assert_eq!(assess(&both).score, 5);
        // Deterministic: the same signals, the same answer.
        assert_eq!(assess(&both), assess(&both));
    }

    #[test]
    fn travel_faster_than_a_plane_is_impossible() {
        let berlin = (52.52, 13.40);
        let sf = (37.77, -122.42);
        let d = distance_km(berlin, sf);
        assert!((9000.0..9200.0).contains(&d), "{d}");
        let at = |ms, coords| Some(Seen { at_ms: ms, coords });
        let quick = Signals {
            last_seen: at(0, berlin),
            here: at(3_600_000, sf),
            ..signals()
        };
        assert_eq!(assess(&quick).level, Level::High);
        let slow = Signals {
            last_seen: at(0, berlin),
            here: at(12 * 3_600_000, sf),
            ..signals()
        };
        assert_eq!(assess(&slow).level, Level::Low);
        let near = Signals {
            last_seen: at(0, berlin),
            here: at(60_000, (52.40, 13.06)),
            ..signals()
        };
        assert_eq!(assess(&near).level, Level::Low);
    }
}
