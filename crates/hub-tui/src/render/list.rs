//! The operations table: columns sized to the terminal width, one line per
//! operation, children indented under their parents, a `LineGauge` per row.

use super::state_color;
use crate::app::App;
use crate::format::{duration_ms, eta, fit, fit_middle, one_line, rate};
use crate::op::{OpEntry, StatusLook};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols;
use ratatui::text::Line;
use ratatui::widgets::{LineGauge, Paragraph, Widget};
use ratatui::Frame;

#[derive(Debug, Clone, Copy)]
struct Col {
    x: u16,
    w: u16,
}

#[derive(Debug, Clone, Copy)]
struct Cols {
    mark: Col,
    name: Col,
    bar: Col,
    info: Col,
    rate: Option<Col>,
    eta: Col,
    elapsed: Col,
    state: Col,
}

fn columns(area: Rect) -> Cols {
    let w = area.width;
    let wide = w >= 110;
    let mark_w = 3;
    let mut name_w = (w * 24 / 100).clamp(12, 40);
    let bar_w = if wide {
        22
    } else if w >= 90 {
        18
    } else {
        14
    };
    let rate_w = if wide { Some(7) } else { None };
    let (eta_w, elapsed_w, state_w) = (6, 6, 11);
    let gaps = if rate_w.is_some() { 6 } else { 5 };
    let fixed = mark_w + bar_w + rate_w.unwrap_or(0) + eta_w + elapsed_w + state_w + gaps;
    let mut info_w = w.saturating_sub(fixed + name_w);
    if info_w < 10 {
        let short = 10 - info_w;
        name_w = name_w.saturating_sub(short).max(6);
        info_w = w.saturating_sub(fixed + name_w);
    }
    let mut x = area.x;
    let mut take = |width: u16, gap: u16| {
        let c = Col { x, w: width };
        x = x.saturating_add(width + gap);
        c
    };
    let mark = take(mark_w, 0);
    let name = take(name_w, 1);
    let bar = take(bar_w, 1);
    let info = take(info_w, 1);
    let rate = rate_w.map(|r| take(r, 1));
    let eta = take(eta_w, 1);
    let elapsed = take(elapsed_w, 1);
    let state = take(state_w, 0);
    Cols {
        mark,
        name,
        bar,
        info,
        rate,
        eta,
        elapsed,
        state,
    }
}

fn put(buf: &mut Buffer, col: Col, y: u16, text: &str, style: Style) {
    if col.w > 0 {
        buf.set_stringn(col.x, y, fit(text, col.w as usize), col.w as usize, style);
    }
}

fn put_right(buf: &mut Buffer, col: Col, y: u16, text: &str, style: Style) {
    let t = fit(text, col.w as usize);
    let pad = (col.w as usize).saturating_sub(t.chars().count()) as u16;
    buf.set_stringn(col.x + pad, y, t, col.w as usize, style);
}

pub(super) fn render(app: &mut App, frame: &mut Frame<'_>, area: Rect, now: u64) {
    if area.height == 0 {
        return;
    }
    let cols = columns(area);
    let header = Style::new().add_modifier(Modifier::BOLD).fg(Color::Gray);
    {
        let buf = frame.buffer_mut();
        let y = area.y;
        put(buf, cols.name, y, "OPERATION", header);
        put(buf, cols.bar, y, "PROGRESS", header);
        put(buf, cols.info, y, "STEP · MESSAGE", header);
        if let Some(r) = cols.rate {
            put_right(buf, r, y, "RATE", header);
        }
        put_right(buf, cols.eta, y, "ETA", header);
        put_right(buf, cols.elapsed, y, "TIME", header);
        put(buf, cols.state, y, "STATE", header);
    }
    let rows_area = Rect::new(area.x, area.y + 1, area.width, area.height - 1);
    let height = rows_area.height as usize;
    app.page = height.max(1);
    let total = app.rows().len();
    if total == 0 {
        let text = if !app.ops.is_empty() {
            "No operation matches the filters (Esc clears the text filter, s cycles states)."
                .to_owned()
        } else if let Some(b) = &app.blocked {
            format!("No data: {}.", b.describe(now))
        } else if let crate::update::ConnStatus::Failed { reason } = &app.conn {
            format!("Not connected: {reason}. Press r to try again.")
        } else if app.last_data_at.is_none() {
            format!("Waiting for the hub at {} …", app.config.url)
        } else {
            format!("No operations in namespace “{}” yet.", app.config.namespace)
        };
        Paragraph::new(Line::from(text).style(Style::new().fg(Color::DarkGray)))
            .centered()
            .render(
                Rect::new(
                    rows_area.x,
                    rows_area.y + rows_area.height / 2,
                    rows_area.width,
                    1,
                ),
                frame.buffer_mut(),
            );
        return;
    }
    if app.selected.is_none() {
        app.select_index(0);
    }
    let sel = app.selected_index().unwrap_or(0);
    if sel < app.scroll {
        app.scroll = sel;
    } else if sel >= app.scroll + height {
        app.scroll = sel + 1 - height;
    }
    app.scroll = app.scroll.min(total.saturating_sub(height));
    let stale_age = if app.is_stale() {
        Some(app.data_age_ms(now))
    } else {
        None
    };
    let end = (app.scroll + height).min(total);
    for (i, idx) in (app.scroll..end).enumerate() {
        let row = &app.rows()[idx];
        let (id, depth) = (row.id.clone(), row.depth);
        let canceling = app.is_canceling(&id);
        let Some(entry) = app.ops.get(&id) else {
            continue;
        };
        let y = rows_area.y + i as u16;
        let r = RowCtx {
            cols,
            y,
            selected: idx == sel,
            depth,
            now,
            stale_age,
            canceling,
        };
        r.draw(
            entry,
            frame.buffer_mut(),
            Rect::new(rows_area.x, y, rows_area.width, 1),
        );
    }
}

struct RowCtx {
    cols: Cols,
    y: u16,
    selected: bool,
    depth: u16,
    now: u64,
    stale_age: Option<Option<u64>>,
    canceling: bool,
}

impl RowCtx {
    fn draw(&self, entry: &OpEntry, buf: &mut Buffer, row: Rect) {
        let s = &entry.state;
        let c = self.cols;
        let y = self.y;
        let color = state_color(s.state);
        let colored = Style::new().fg(color);
        let plain = Style::new();
        buf.set_stringn(
            c.mark.x,
            y,
            if self.selected { "›" } else { " " },
            1,
            plain.add_modifier(Modifier::BOLD),
        );
        buf.set_stringn(c.mark.x + 1, y, s.state.symbol(), 1, colored);
        let mut name = String::new();
        if self.depth > 0 {
            name.push_str(&"  ".repeat(self.depth as usize - 1));
            name.push_str("└ ");
        }
        name.push_str(&one_line(s.display_name()));
        // Similar names differ at their end ("… frame #1", "… frame #2"):
        // cut in the middle, so both ends stay.
        buf.set_stringn(
            c.name.x,
            y,
            fit_middle(&name, c.name.w as usize),
            c.name.w as usize,
            plain,
        );
        if c.bar.w > 0 {
            let ratio = s.ratio();
            LineGauge::default()
                .ratio(ratio)
                .label(format!("{:>3.0}%", ratio * 100.0))
                .filled_symbol(symbols::line::THICK_HORIZONTAL)
                .unfilled_symbol(symbols::line::HORIZONTAL)
                .filled_style(Style::new().fg(color))
                .unfilled_style(Style::new().fg(Color::DarkGray))
                .render(Rect::new(c.bar.x, y, c.bar.w, 1), buf);
        }
        let terminal = s.state.is_terminal();
        if let (Some(err), crate::op::OpStatus::Failed) = (&s.error, s.state) {
            put(buf, c.info, y, &one_line(err), Style::new().fg(Color::Red));
        } else {
            let mut parts: Vec<&str> = Vec::new();
            if self.canceling {
                parts.push("cancel requested");
            }
            if let Some(step) = s.step.as_deref() {
                parts.push(step);
            }
            if let Some(m) = s.message.as_deref() {
                parts.push(m);
            }
            put(buf, c.info, y, &one_line(&parts.join(" · ")), plain);
        }
        // No rate or countdown for a finished operation, nor while the data
        // is stale: the estimate was the hub's at the last word it said.
        let estimate = !terminal && self.stale_age.is_none();
        if let Some(rc) = c.rate {
            let t = if estimate {
                rate(s.rate)
            } else {
                String::new()
            };
            put_right(buf, rc, y, &t, plain);
        }
        let eta_text = if estimate {
            eta(s.eta_seconds)
        } else {
            String::new()
        };
        put_right(buf, c.eta, y, &eta_text, plain);
        // While stale a running row's time stops where the data did: the
        // hub has said nothing since, so counting on would claim it runs.
        let end = s.finished_at.unwrap_or(match self.stale_age {
            Some(Some(age)) => self.now.saturating_sub(age),
            _ => self.now,
        });
        put_right(
            buf,
            c.elapsed,
            y,
            &duration_ms(end.saturating_sub(s.started_at)),
            plain,
        );
        match self.stale_age {
            // A finished operation's state is final: stale data cannot
            // change it.
            Some(age) if !terminal => {
                let t = match age {
                    Some(a) => format!("stale {}", duration_ms(a)),
                    None => "stale".to_owned(),
                };
                put(buf, c.state, y, &t, Style::new().fg(Color::DarkGray));
            }
            _ => {
                let t = if self.canceling {
                    "canceling"
                } else {
                    s.state.as_str()
                };
                put(buf, c.state, y, t, colored);
            }
        }
        if self.stale_age.is_some() {
            buf.set_style(row, Style::new().add_modifier(Modifier::DIM));
        }
        if self.selected {
            buf.set_style(row, Style::new().add_modifier(Modifier::REVERSED));
        }
    }
}
