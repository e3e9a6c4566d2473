//! GeoIP (`MUSTER_GEOIP_DB`): a MaxMind-format country or city database,
//! read once at start-up and looked up in memory — the country of a client
//! address for access rules, and its coordinates (city databases only) for
//! the risk engine's impossible travel.

use std::net::IpAddr;
use std::path::Path;

pub struct Geo {
    reader: maxminddb::Reader<Vec<u8>>,
}

/// Where an address is, as far as the database knows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Place {
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    /// Degrees, when the database has them (a city database).
    pub coords: Option<(f64, f64)>,
}

#[derive(serde::Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    country: Option<Country<'a>>,
    location: Option<Location>,
}

#[derive(serde::Deserialize)]
struct Country<'a> {
    iso_code: Option<&'a str>,
}

#[derive(serde::Deserialize)]
struct Location {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

impl std::fmt::Debug for Geo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Geo")
    }
}

impl Geo {
    /// Opens the database; a file that is not one is an error at start-up,
    /// not a silent "no country" on every request.
    pub fn open(path: &Path) -> Result<Self, String> {
        let reader = maxminddb::Reader::open_readfile(path)
            .map_err(|e| format!("{}: not a MaxMind database ({e})", path.display()))?;
        Ok(Self { reader })
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, String> {
        let reader = maxminddb::Reader::from_source(bytes).map_err(|e| e.to_string())?;
        Ok(Self { reader })
    }

    /// What the database says of `ip`; nothing for an address it does not
    /// hold (private ranges, say) or a record it cannot read.
    pub fn lookup(&self, ip: IpAddr) -> Place {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let rec = self
            .reader
            .lookup(ip)
            .ok()
            .and_then(|r| r.decode::<Record<'_>>().ok().flatten());
        let Some(rec) = rec else {
            return Place::default();
        };
        Place {
            country: rec
                .country
                .and_then(|c| c.iso_code)
                .filter(|c| c.len() == 2)
                .map(str::to_ascii_uppercase),
            coords: rec.location.and_then(|l| Some((l.latitude?, l.longitude?))),
        }
    }
}
