//! A real MaxMind-format database, written by `mmdb-writer` in the layout
//! of GeoIP2/GeoLite2 City (`country.iso_code`, `location.latitude` /
//! `longitude`), and read by Muster's production reader.

use serde::Serialize;

#[derive(Serialize)]
struct Country {
    iso_code: String,
}

#[derive(Serialize)]
struct Location {
    latitude: f64,
    longitude: f64,
}

#[derive(Serialize)]
struct Record {
    country: Country,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Location>,
}

/// One network of the database: CIDR, country code, (latitude, longitude).
pub type Entry<'a> = (&'a str, &'a str, Option<(f64, f64)>);

/// A database holding these networks.
pub fn build(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut w = mmdb_writer::Writer::new("GeoLite2-City");
    for (cidr, country, coords) in entries {
        let rec = Record {
            country: Country {
                iso_code: (*country).to_owned(),
            },
            location: coords.map(|(latitude, longitude)| Location {
                latitude,
                longitude,
            }),
        };
        w.insert(cidr.parse::<ipnet::IpNet>().expect("a CIDR"), &rec)
            .expect("insert a record");
    }
    w.to_bytes().expect("write the database")
}
