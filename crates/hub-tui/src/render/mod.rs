//! Drawing the model: title line, operations list (with an optional detail
//! pane), toasts, the cancel prompt and the status bar. Only the visible rows
//! are drawn, so the cost does not grow with the number of operations beyond
//! the (cached) row order.

mod detail;
mod list;
mod overlay;
mod status;

use crate::app::{App, Mode};
use crate::op::OpStatus;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::Frame;

/// The colour of a state.
pub fn state_color(s: OpStatus) -> Color {
    match s {
        OpStatus::Running => Color::Cyan,
        OpStatus::Stalled => Color::Yellow,
        OpStatus::Completed => Color::Green,
        OpStatus::Failed => Color::Red,
        OpStatus::Canceled => Color::Magenta,
        OpStatus::Unknown => Color::Gray,
    }
}

impl App {
    /// Draws the whole screen at `now` (ms since the Unix epoch, the clock
    /// the hub's timestamps use).
    pub fn render(&mut self, frame: &mut Frame<'_>, now: u64) {
        let area = frame.area();
        if area.height < 3 || area.width < 20 {
            frame.buffer_mut().set_stringn(
                area.x,
                area.y,
                "terminal too small",
                area.width as usize,
                Style::new(),
            );
            return;
        }
        let [title, body, status] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Fill(1),
            Constraint::Length(1),
        ])
        .areas(area);
        let (list_area, detail_area) = self.split_body(body);
        list::render(self, frame, list_area, now);
        self.render_title(frame, title);
        if let Some(d) = detail_area {
            detail::render(self, frame, d, now);
        }
        status::render(self, frame, status, now);
        overlay::toasts(self, frame, body, now);
        if let Mode::ConfirmCancel { operation_id } = &self.mode {
            let id = operation_id.clone();
            overlay::confirm_cancel(self, frame, body, &id);
        }
    }

    fn split_body(&self, body: Rect) -> (Rect, Option<Rect>) {
        if !self.show_detail || self.selected.is_none() {
            return (body, None);
        }
        if body.width >= 150 {
            let [l, d] =
                Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
                    .areas(body);
            (l, Some(d))
        } else {
            let [l, d] =
                Layout::vertical([Constraint::Min(4), Constraint::Percentage(55)]).areas(body);
            (l, Some(d))
        }
    }

    fn render_title(&mut self, frame: &mut Frame<'_>, area: Rect) {
        let bar = Style::new().bg(Color::Blue).fg(Color::White);
        let buf = frame.buffer_mut();
        buf.set_style(area, bar);
        let w = area.width as usize;
        if self.mode == Mode::Filter {
            let text = format!(" Filter: {}█", self.filter_text);
            let hint = "Enter keep · Esc clear ";
            buf.set_stringn(area.x, area.y, &text, w, bar.add_modifier(Modifier::BOLD));
            let hx = area.right().saturating_sub(hint.chars().count() as u16);
            if hx as usize > area.x as usize + text.chars().count() + 1 {
                buf.set_stringn(hx, area.y, hint, hint.len(), bar);
            }
            return;
        }
        let shown = self.rows().len();
        let total = self.ops.len();
        let mut left = format!(" progress-hub top · {}", self.config.namespace);
        if shown == total {
            left.push_str(&format!(" · {total} ops"));
        } else {
            left.push_str(&format!(" · {shown}/{total} ops"));
        }
        if shown > self.page {
            // Which rows the list shows, when they do not all fit.
            let first = self.scroll + 1;
            let last = (self.scroll + self.page).min(shown);
            left.push_str(&format!(" · rows {first}-{last}"));
        }
        if self.state_filter != crate::filter::StateFilter::All {
            left.push_str(&format!(" · state:{}", self.state_filter.label()));
        }
        if !self.filter_text.is_empty() {
            left.push_str(&format!(" · filter:{}", self.filter_text));
        }
        let cancel = if self.config.can_cancel {
            "c cancel · "
        } else {
            ""
        };
        let long =
            format!("↑↓ move · ⏎ details · {cancel}/ filter · s state · r reconnect · q quit ");
        let short = format!(
            "⏎ {}/ s r q ",
            if self.config.can_cancel { "c " } else { "" }
        );
        let left_len = left.chars().count();
        let hint = if left_len + long.chars().count() < w {
            long
        } else if left_len + short.chars().count() < w {
            short
        } else {
            String::new()
        };
        buf.set_stringn(area.x, area.y, &left, w, bar.add_modifier(Modifier::BOLD));
        let hl = hint.chars().count() as u16;
        if hl > 0 {
            buf.set_stringn(area.right() - hl, area.y, &hint, hl as usize, bar);
        }
    }
}
