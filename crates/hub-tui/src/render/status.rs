//! The status bar: connection indicator, why no data comes (a refused
//! subscription), URL, namespace, retry countdown,
//! data age while stale, counts by state and the hub's message rate.

use super::state_color;
use crate::app::App;
use crate::format::{duration_ms, fit, per_second};
use crate::op::{OpStatus, StatusLook};
use crate::update::ConnStatus;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;

/// The indicator symbol, its colour and the words after it.
pub(crate) fn indicator(conn: &ConnStatus, now: u64) -> (&'static str, Color, String) {
    match conn {
        ConnStatus::Connected => ("●", Color::Green, "connected".to_owned()),
        ConnStatus::Connecting { attempt: 0 } => ("◐", Color::Yellow, "connecting".to_owned()),
        ConnStatus::Connecting { attempt } => (
            "◐",
            Color::Yellow,
            format!("reconnecting · attempt {attempt}"),
        ),
        ConnStatus::Reconnecting {
            attempt,
            next_retry_at,
            cause,
        } => {
            let secs = next_retry_at.saturating_sub(now).div_ceil(1000);
            let mut t = format!("reconnecting · attempt {attempt} in {secs}s");
            if let Some(c) = cause {
                t.push_str(&format!(" ({c})"));
            }
            ("◐", Color::Yellow, t)
        }
        ConnStatus::Failed { reason } => ("✗", Color::Red, format!("failed: {reason} · r retries")),
        ConnStatus::Disconnected => ("○", Color::DarkGray, "disconnected".to_owned()),
    }
}

pub(super) fn render(app: &App, frame: &mut Frame<'_>, area: Rect, now: u64) {
    let bar = Style::new().bg(Color::Black).fg(Color::Gray);
    let buf = frame.buffer_mut();
    buf.set_style(area, bar);
    let (sym, color, words) = indicator(&app.conn, now);
    let mut left = vec![
        Span::styled(
            format!(" {sym} "),
            Style::new().fg(color).add_modifier(Modifier::BOLD),
        ),
        Span::styled(words, Style::new().fg(color)),
    ];
    if let Some(b) = &app.blocked {
        left.push(Span::styled(
            format!(" · {}", b.describe(now)),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
    }
    if app.is_catching_up() && app.blocked.is_none() {
        left.push(Span::styled(
            " · catching up",
            Style::new().fg(Color::Yellow),
        ));
    } else if app.is_stale() {
        if let Some(age) = app.data_age_ms(now) {
            left.push(Span::styled(
                format!(" · data {} old", duration_ms(age)),
                Style::new().fg(Color::Yellow),
            ));
        }
    }
    left.push(Span::raw(format!(
        "  {}  ns {}",
        app.config.url, app.config.namespace
    )));

    let counts = app.counts();
    let mut right: Vec<Span<'_>> = Vec::new();
    for s in OpStatus::ALL {
        let n = counts.get(s);
        if n > 0 || matches!(s, OpStatus::Running) {
            right.push(Span::styled(
                format!("{}{n} ", s.symbol()),
                Style::new().fg(state_color(s)),
            ));
        }
    }
    match app
        .system
        .as_ref()
        .and_then(|s| s.events_per_second.map(|r| (r, s.is_stale)))
    {
        Some((r, cached)) => {
            let mut t = format!("│ hub {}", per_second(r));
            if cached {
                t.push_str(" (cached)");
            }
            right.push(Span::raw(t));
            right.push(Span::raw(" "));
        }
        None if app.conn.is_connected() => {
            right.push(Span::raw(format!(
                "│ recv {} ",
                per_second(app.received.per_second(now))
            )));
        }
        None => {}
    }
    let right_w: usize = right.iter().map(|s| s.content.chars().count()).sum();
    let w = area.width as usize;
    let left_max = w.saturating_sub(right_w + 1);
    // Cut the left part from its end (URL first) to fit.
    let mut used = 0;
    let mut cut = Vec::new();
    for span in left {
        let n = span.content.chars().count();
        if used + n <= left_max {
            used += n;
            cut.push(span);
        } else {
            let room = left_max.saturating_sub(used);
            if room > 0 {
                cut.push(Span::styled(fit(&span.content, room), span.style));
            }
            break;
        }
    }
    buf.set_line(area.x, area.y, &Line::from(cut), area.width);
    if right_w < w {
        let x = area.right() - right_w as u16;
        buf.set_line(x, area.y, &Line::from(right), right_w as u16);
    }
}
