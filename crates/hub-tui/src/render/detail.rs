//! The detail pane (Enter): everything known about the selected operation,
//! its metadata and details objects, and its recent events with offsets.

use super::state_color;
use crate::app::App;
use crate::format::{duration_ms, eta, one_line, rate};
use crate::op::StatusLook;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;
use serde_json::Value;

fn ago(now: u64, t: u64) -> String {
    format!("{} ago", duration_ms(now.saturating_sub(t)))
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn object_line<'a>(title: &'a str, v: Option<&Value>, out: &mut Vec<Line<'a>>) {
    let key = Style::new().fg(Color::Gray);
    let text = match v {
        Some(Value::Object(map)) if !map.is_empty() => map
            .iter()
            .map(|(k, v)| format!("{k}={}", one_line(&value_text(v))))
            .collect::<Vec<_>>()
            .join(" · "),
        Some(v) if !v.is_null() && v.as_object().is_none() => one_line(&value_text(v)),
        _ => return,
    };
    out.push(Line::from(vec![
        Span::styled(format!("{title} "), key),
        Span::raw(text),
    ]));
}

pub(super) fn render(app: &App, frame: &mut Frame<'_>, area: Rect, now: u64) {
    let Some(entry) = app.selected.as_deref().and_then(|id| app.ops.get(id)) else {
        return;
    };
    let s = &entry.state;
    let label = Style::new().fg(Color::Gray);
    let color = state_color(s.state);
    let mut lines: Vec<Line<'_>> = Vec::new();
    let mut progress = format!("{:.1}%", s.ratio() * 100.0);
    if let (Some(c), Some(t)) = (s.current, s.total) {
        progress.push_str(&format!(" ({c}/{t})"));
    }
    lines.push(Line::from(vec![
        Span::styled(
            format!("{} {}", s.state.symbol(), s.state.as_str()),
            Style::new().fg(color).add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!("  {progress}")),
        Span::styled("  id ", label),
        Span::raw(s.operation_id.clone()),
        Span::styled("  kind ", label),
        Span::raw(s.kind.clone().unwrap_or_else(|| "—".into())),
    ]));
    let mut times = vec![
        Span::styled("started ", label),
        Span::raw(ago(now, s.started_at)),
    ];
    times.push(Span::styled("  updated ", label));
    times.push(Span::raw(ago(now, s.updated_at)));
    if let Some(f) = s.finished_at {
        times.push(Span::styled("  finished ", label));
        times.push(Span::raw(format!(
            "{} (took {})",
            ago(now, f),
            duration_ms(f.saturating_sub(s.started_at))
        )));
    }
    lines.push(Line::from(times));
    lines.push(Line::from(vec![
        Span::styled("rate ", label),
        Span::raw(rate(s.rate)),
        Span::styled("  ETA ", label),
        Span::raw(eta(s.eta_seconds)),
        Span::styled("  cancel requested ", label),
        Span::raw(if s.cancel_requested {
            "yes"
        } else if app.cancel_sent.contains(&s.operation_id) {
            "sent"
        } else {
            "no"
        }),
        Span::styled("  last offset ", label),
        Span::raw(s.last_offset.to_string()),
    ]));
    let mut what = Vec::new();
    if let Some(p) = &s.parent_id {
        what.push(Span::styled("parent ", label));
        what.push(Span::raw(format!("{p}  ")));
    }
    if let Some(step) = &s.step {
        what.push(Span::styled("step ", label));
        what.push(Span::raw(format!("{}  ", one_line(step))));
    }
    if let Some(m) = &s.message {
        what.push(Span::styled("message ", label));
        what.push(Span::raw(one_line(m)));
    }
    if !what.is_empty() {
        lines.push(Line::from(what));
    }
    if let Some(e) = &s.error {
        lines.push(Line::from(vec![
            Span::styled("error ", label),
            Span::styled(one_line(e), Style::new().fg(Color::Red)),
        ]));
    }
    object_line("metadata", s.metadata.as_ref(), &mut lines);
    object_line("details", s.details.as_ref(), &mut lines);
    lines.push(Line::from(Span::styled(
        format!("recent events ({})", entry.recent.len()),
        Style::new().fg(Color::Gray).add_modifier(Modifier::BOLD),
    )));
    if entry.recent.is_empty() {
        lines.push(Line::from(Span::styled("  none seen live yet", label)));
    }
    for ev in entry.recent.iter().rev() {
        lines.push(Line::from(vec![
            Span::styled(
                format!("  #{:<7}", ev.offset),
                Style::new().fg(Color::DarkGray),
            ),
            Span::raw(format!("{:>9}  ", ago(now, ev.timestamp))),
            Span::styled(format!("{:<20}", ev.kind), Style::new().fg(Color::Gray)),
            Span::raw(ev.summary.clone()),
        ]));
    }
    let title = format!(" {} ", s.display_name());
    let mut style = Style::new();
    if app.is_stale() {
        style = style.add_modifier(Modifier::DIM);
    }
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .style(style)
            .wrap(Wrap { trim: false })
            .block(
                Block::bordered()
                    .title(title)
                    .border_style(Style::new().fg(color)),
            ),
        area,
    );
}
