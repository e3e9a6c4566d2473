//! The console's dashboard: users per lifecycle state, and 30-day charts
//! drawn here as inline SVG (no script, nothing from another host).

use super::{Chrome, Console};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use muster_app::dashboard::{self, Series};
use std::fmt::Write;

struct StateCount {
    state: &'static str,
    count: i64,
}

struct Chart {
    key: &'static str,
    label: &'static str,
    total: i64,
    /// The `<svg>` element, built from numbers and fixed labels only.
    svg: String,
}

#[derive(askama::Template)]
#[template(path = "admin/dashboard.html")]
struct Page<'a> {
    chrome: &'a Chrome,
    states: Option<Vec<StateCount>>,
    total: i64,
    charts: Option<Vec<Chart>>,
    first: String,
    last: String,
}

pub async fn page(State(s): State<AppState>, Ctx(ctx): Ctx, headers: HeaderMap) -> Response {
    let c = console!(s, headers, ctx, "/admin");
    let d = match dashboard::get(&s.app, &c.caller, &c.slug).await {
        Ok(d) => d,
        Err(e) => return c.error_page(&s, e),
    };
    let states: Option<Vec<StateCount>> = d.states.map(|v| {
        v.into_iter()
            .map(|(st, n)| StateCount {
                state: st.as_str(),
                count: n,
            })
            .collect()
    });
    let total = states.iter().flatten().map(|x| x.count).sum();
    let charts = d.charts.map(|v| {
        v.iter()
            .map(|series| Chart {
                key: series.key,
                label: series.label,
                total: series.total(),
                svg: bars(series, d.first_day),
            })
            .collect()
    });
    let page = Page {
        chrome: c.chrome(),
        states,
        total,
        charts,
        first: date(d.first_day),
        last: date(d.first_day + dashboard::DAYS as i64 - 1),
    };
    c.send(&s, super::render(StatusCode::OK, &page))
}

const W: usize = 300;
const H: i64 = 80;

/// A bar per day, scaled to the busiest day; each bar has a `<title>` (the
/// day and its count) that browsers and screen readers show.
fn bars(series: &Series, first_day: i64) -> String {
    let max = series.per_day.iter().copied().max().unwrap_or(0).max(1);
    let step = W / dashboard::DAYS;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {h}\" width=\"{W}\" height=\"{h}\" role=\"img\" aria-label=\"{label}: {total} in {days} days\" class=\"chart\">",
        h = H + 14,
        label = series.label,
        total = series.total(),
        days = dashboard::DAYS,
    );
    let _ = write!(
        svg,
        "<line x1=\"0\" y1=\"{H}\" x2=\"{W}\" y2=\"{H}\" class=\"axis\"/>"
    );
    for (i, n) in series.per_day.iter().enumerate() {
        let height = if *n == 0 { 0 } else { (n * H / max).max(2) };
        let x = i * step;
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{height}\"><title>{day}: {n}</title></rect>",
            y = H - height,
            w = step.saturating_sub(2),
            day = date(first_day + i as i64),
        );
    }
    let scale = if series.total() == 0 {
        "none in these days".to_owned()
    } else {
        format!("busiest day: {max}")
    };
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{y}\">{scale}</text></svg>",
        y = H + 12,
    );
    svg
}

/// Days since 1970-01-01 as `YYYY-MM-DD`.
fn date(day: i64) -> String {
    match time::Date::from_julian_day(i32::try_from(day + 2_440_588).unwrap_or(2_440_588)) {
        Ok(d) => d.to_string(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(20_792), "2026-12-05");
    }

    #[test]
    fn bars_scale_to_the_busiest_day() {
        let mut per_day = vec![0; dashboard::DAYS];
        per_day[3] = 4;
        per_day[29] = 1;
        let s = Series {
            key: "k",
            label: "Sign-ups",
            actions: &[],
            per_day,
        };
        let svg = bars(&s, 20_763);
        assert_eq!(svg.matches("<rect").count(), dashboard::DAYS);
        // The busiest day is full height; a small one is still visible.
        assert!(
            svg.contains("height=\"80\"><title>2026-11-09: 4</title>"),
            "{svg}"
        );
        assert!(
            svg.contains("height=\"20\"><title>2026-12-05: 1</title>"),
            "{svg}"
        );
        assert!(svg.contains("aria-label=\"Sign-ups: 5 in 30 days\""));
        assert!(!svg.contains("script"));
    }
}
