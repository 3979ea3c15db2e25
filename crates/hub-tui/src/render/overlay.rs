//! Things drawn over the list: toasts (bottom right, newest lowest, where
//! they hide the least) and the cancel prompt.

use crate::app::App;
use crate::format::fit;
use crate::toast::ToastLevel;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

pub(super) fn toasts(app: &App, frame: &mut Frame<'_>, body: Rect, now: u64) {
    let max_w = (body.width as usize * 2 / 3)
        .max(20)
        .min(body.width as usize);
    let live: Vec<_> = app.toasts().live(now).collect();
    let n = (live.len() as u16).min(body.height.saturating_sub(1));
    let top = body.bottom() - n;
    for (y, t) in (top..body.bottom()).zip(live.iter().skip(live.len() - n as usize)) {
        let text = format!(" {} ", fit(&t.text, max_w.saturating_sub(2)));
        let w = text.chars().count() as u16;
        let style = match t.level {
            ToastLevel::Info => Style::new().bg(Color::Cyan).fg(Color::Black),
            ToastLevel::Warning => Style::new().bg(Color::Yellow).fg(Color::Black),
            ToastLevel::Error => Style::new().bg(Color::Red).fg(Color::White),
        };
        let area = Rect::new(body.right().saturating_sub(w + 1), y, w, 1);
        frame.render_widget(Clear, area);
        frame.render_widget(
            Paragraph::new(text).style(style.add_modifier(Modifier::BOLD)),
            area,
        );
    }
}

pub(super) fn confirm_cancel(app: &App, frame: &mut Frame<'_>, body: Rect, id: &str) {
    let name = app
        .ops
        .get(id)
        .map_or_else(|| id.to_owned(), |e| e.state.display_name().to_owned());
    let w = body.width.saturating_sub(4).min(64);
    let h = 4.min(body.height);
    let area = Rect::new(
        body.x + (body.width - w) / 2,
        body.y + body.height.saturating_sub(h) / 2,
        w,
        h,
    );
    let inner = w.saturating_sub(4) as usize;
    let lines = vec![
        Line::from(fit(&format!("Cancel “{name}” ({id})?"), inner)),
        Line::from("y: yes, ask its producer to stop · n: no").style(Style::new().fg(Color::Gray)),
    ];
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(" Cancel operation ")
                .border_style(Style::new().fg(Color::Yellow)),
        ),
        area,
    );
}
