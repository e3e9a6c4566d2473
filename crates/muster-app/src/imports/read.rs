//! An import file read as a stream of lines, never whole: CSV (RFC 4180, with
//! a header row; `,`, `;` or tab as the header shows) or JSON Lines, told
//! apart by the first character. Memory holds one line at a time.

use super::columns::{Target, resolve};
use super::line::{Candidate, RowError, candidate, csv_covers, csv_doc, json_covers};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A line longer than this is not a user: the file is something else.
const MAX_LINE: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    /// What a person calls one unit of the file: a CSV row, a JSON line.
    pub fn word(self) -> &'static str {
        match self {
            Self::Csv => "row",
            Self::Jsonl => "line",
        }
    }
}

pub struct Source {
    format: Format,
    inner: Inner,
    read: Arc<AtomicU64>,
    total: u64,
}

enum Inner {
    Csv {
        rdr: Box<csv::Reader<BufReader<Guard>>>,
        headers: Vec<String>,
        targets: Vec<Target>,
        covers: Vec<String>,
        rec: csv::ByteRecord,
    },
    Jsonl {
        rdr: BufReader<Guard>,
        line: i64,
        buf: Vec<u8>,
    },
}

/// What one step of reading gives: a checked line, a refused line, or the end.
pub type Step = Option<Result<Candidate, RowError>>;

impl Source {
    /// Opens `path`, finds its format and, for CSV, resolves its header with
    /// the operator's `--map` pairs. A file that cannot be read as either
    /// format is refused here, with the reason.
    pub fn open(path: &Path, maps: &[(String, String)]) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let total = file.metadata().map(|m| m.len()).unwrap_or(0);
        let read = Arc::new(AtomicU64::new(0));
        let guard = Guard {
            inner: file,
            read: read.clone(),
            since_newline: 0,
            lines: 1,
        };
        let mut rdr = BufReader::with_capacity(64 * 1024, guard);
        let head = rdr.fill_buf().map_err(|e| e.to_string())?;
        if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
            return Err("the file is UTF-16; save it as UTF-8 (in Excel: \"CSV UTF-8\")".into());
        }
        let bom = if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
            3
        } else {
            0
        };
        let first = head
            .get(bom..)
            .unwrap_or_default()
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .copied();
        let sample: Vec<u8> = head
            .get(bom..)
            .unwrap_or_default()
            .iter()
            .take_while(|b| **b != b'\n')
            .copied()
            .collect();
        rdr.consume(bom);
        match first {
            None => Err("the file is empty".into()),
            Some(b'{') => Ok(Self {
                format: Format::Jsonl,
                inner: Inner::Jsonl {
                    rdr,
                    line: 0,
                    buf: Vec::new(),
                },
                read,
                total,
            }),
            Some(_) => {
                let mut csv = csv::ReaderBuilder::new()
                    .delimiter(delimiter(&sample))
                    .has_headers(true)
                    .flexible(false)
                    .from_reader(rdr);
                let raw = csv.byte_headers().map_err(|e| csv_error(&e))?.clone();
                let headers = raw
                    .iter()
                    .map(|h| {
                        std::str::from_utf8(h)
                            .map(|s| s.trim().to_owned())
                            .map_err(|_| NOT_UTF8.to_owned())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let targets = resolve(&headers, maps)?;
                let covers = csv_covers(&targets);
                Ok(Self {
                    format: Format::Csv,
                    inner: Inner::Csv {
                        rdr: Box::new(csv),
                        headers,
                        targets,
                        covers,
                        rec: csv::ByteRecord::new(),
                    },
                    read,
                    total,
                })
            }
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Bytes of the file read so far, and its size: for progress.
    pub fn progress(&self) -> (u64, u64) {
        (self.read.load(Ordering::Relaxed), self.total)
    }

    /// The next line, checked. `Err` is a fault of the whole file (it cannot
    /// be read further); a bad line is an `Ok(Some(Err(..)))`.
    pub fn next_line(&mut self) -> Result<Step, String> {
        match &mut self.inner {
            Inner::Csv {
                rdr,
                headers,
                targets,
                covers,
                rec,
            } => loop {
                match rdr.read_byte_record(rec) {
                    Ok(false) => return Ok(None),
                    Ok(true) => {}
                    Err(e) => match e.kind() {
                        csv::ErrorKind::UnequalLengths {
                            pos,
                            expected_len,
                            len,
                        } => {
                            let line = pos.as_ref().map_or(0, |p| p.line() as i64);
                            return Ok(Some(Err(RowError::new(
                                line,
                                "row",
                                format!("has {len} fields where the header has {expected_len}"),
                            ))));
                        }
                        _ => return Err(csv_error(&e)),
                    },
                }
                let line = rec.position().map_or(0, |p| p.line() as i64);
                if rec.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                    continue; // a spreadsheet's empty trailing row
                }
                let mut cells = Vec::with_capacity(targets.len());
                for ((t, h), raw) in targets.iter().zip(headers.iter()).zip(rec.iter()) {
                    match std::str::from_utf8(raw) {
                        Ok(s) => cells.push((t, s)),
                        Err(_) => return Ok(Some(Err(RowError::new(line, h.clone(), NOT_UTF8)))),
                    }
                }
                let named = |mut e: RowError| {
                    e.field = column_of(&e.field, targets, headers);
                    e
                };
                let r = csv_doc(line, &cells)
                    .and_then(|doc| candidate(line, doc, covers.clone()))
                    .map_err(named);
                return Ok(Some(r));
            },
            Inner::Jsonl { rdr, line, buf } => loop {
                buf.clear();
                let n = rdr.read_until(b'\n', buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    return Ok(None);
                }
                *line += 1;
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let l = *line;
                let Ok(text) = std::str::from_utf8(buf) else {
                    return Ok(Some(Err(RowError::new(l, "line", NOT_UTF8))));
                };
                let r = match serde_json::from_str::<serde_json::Value>(text) {
                    Ok(doc) => {
                        let covers = json_covers(&doc);
                        candidate(l, doc, covers)
                    }
                    Err(e) => Err(RowError::new(
                        l,
                        "line",
                        format!(
                            "not valid JSON: {}",
                            crate::users::clean_serde(&e.to_string())
                        ),
                    )),
                };
                return Ok(Some(r));
            },
        }
    }
}

const NOT_UTF8: &str =
    "not valid UTF-8: save the file as UTF-8 (it looks like Windows-1252 or Latin-1)";

fn csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => format!("the file cannot be read as CSV: {e}"),
    }
}

/// The separator the header row uses most, outside quotes: `,` `;` or tab.
fn delimiter(header: &[u8]) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for b in header {
        if *b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            for (d, n) in counts.iter_mut() {
                if d == b {
                    *n += 1;
                }
            }
        }
    }
    counts
        .iter()
        .max_by_key(|(d, n)| (*n, *d == b','))
        .map_or(b',', |(d, _)| *d)
}

/// An error's field named as the file names it: the column's header.
fn column_of(field: &str, targets: &[Target], headers: &[String]) -> String {
    let found = targets.iter().zip(headers).find(|(t, _)| {
        let key = super::columns::profile_key(t);
        key.as_deref() == Some(field)
            || (field == "email" && **t == Target::Email)
            || (field == "roles" && **t == Target::Roles)
            || (field == "customAttributes" && matches!(t, Target::Custom(_) | Target::CustomJson))
    });
    match found {
        Some((_, h)) => h.clone(),
        None => field.to_owned(),
    }
}

/// Counts what is read from the file and refuses a line over `MAX_LINE`
/// bytes, so that a file that is not a user list cannot fill memory.
struct Guard {
    inner: File,
    read: Arc<AtomicU64>,
    since_newline: u64,
    lines: u64,
}

impl Read for Guard {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for b in buf.get(..n).unwrap_or_default() {
            if *b == b'\n' {
                self.since_newline = 0;
                self.lines += 1;
            } else {
                self.since_newline += 1;
                if self.since_newline > MAX_LINE {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "line {} is longer than {} KiB: this does not look like a CSV or JSON Lines file of users",
                            self.lines,
                            MAX_LINE / 1024
                        ),
                    ));
                }
            }
        }
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_separator_is_what_the_header_uses_outside_quotes() {
        assert_eq!(delimiter(b"email,givenName,familyName"), b',');
        assert_eq!(delimiter(b"email;\"Name, given\";familyName"), b';');
        assert_eq!(delimiter(b"email\tgivenName"), b'\t');
        assert_eq!(delimiter(b"email"), b',');
    }
}
