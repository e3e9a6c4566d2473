//! How `muster import` shows its progress: a bar redrawn in place on a
//! terminal (lines done, rate, ETA from the bytes read), plain lines every few
//! seconds otherwise (a log, CI), and each refused line as it is found.

use muster_app::imports::{Format, Phase, Progress, RowError};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Reporter {
    tty: bool,
    /// `--json`: only the final report goes to stdout.
    quiet_rows: bool,
    word: &'static str,
    phase: Option<(Phase, Instant)>,
    last_draw: Instant,
    drawn: bool,
}

impl Reporter {
    pub fn new(json: bool) -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            quiet_rows: json,
            word: "line",
            phase: None,
            last_draw: Instant::now(),
            drawn: false,
        }
    }

    /// Takes the bar off the screen before anything else is printed.
    pub fn clear(&mut self) {
        if self.tty && self.drawn {
            eprint!("\r\x1b[2K");
            self.drawn = false;
        }
    }
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Checking => "checking",
        Phase::Writing => "writing ",
    }
}

impl Progress for Reporter {
    fn begin(&mut self, format: Format) {
        self.word = format.word();
    }

    fn step(&mut self, phase: Phase, lines: u64, bytes: u64, total: u64) {
        let started = match self.phase {
            Some((p, t)) if p == phase => t,
            _ => {
                let now = Instant::now();
                self.phase = Some((phase, now));
                now
            }
        };
        let every = if self.tty {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(5)
        };
        let done = total > 0 && bytes >= total;
        if self.last_draw.elapsed() < every && !done {
            return;
        }
        self.last_draw = Instant::now();
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let rate = lines as f64 / secs;
        let frac = if total == 0 {
            1.0
        } else {
            (bytes as f64 / total as f64).min(1.0)
        };
        let eta = if frac > 0.0 {
            secs * (1.0 - frac) / frac
        } else {
            0.0
        };
        let eta = format!("{}:{:02}", (eta as u64) / 60, (eta as u64) % 60);
        if self.tty {
            let width = 24;
            let filled = (frac * width as f64).round() as usize;
            eprint!(
                "\r\x1b[2K{} [{}{}] {:>3.0}%  {lines} {}s  {rate:.0}/s  ETA {eta}",
                phase_name(phase),
                "#".repeat(filled),
                "-".repeat(width - filled.min(width)),
                frac * 100.0,
                self.word,
            );
            let _ = std::io::stderr().flush();
            self.drawn = true;
        } else {
            eprintln!(
                "{}: {lines} {}s, {:.0}% of the file, {rate:.0}/s, ETA {eta}",
                phase_name(phase).trim_end(),
                self.word,
                frac * 100.0
            );
        }
    }

    fn refused(&mut self, e: &RowError) {
        if self.quiet_rows {
            return;
        }
        self.clear();
        let field = if e.field.is_empty() {
            String::new()
        } else {
            format!(", {}", e.field)
        };
        println!("{} {}{field}: {}", self.word, e.line, e.reason);
    }
}
