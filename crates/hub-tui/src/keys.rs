//! Keyboard handling: one key in, the model updated and the [`Command`]s the
//! caller must carry out returned. Pure: time is an argument.

use crate::app::{App, Command, Mode};
use crate::toast::ToastLevel;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

impl App {
    /// Handles one key press at `now`.
    ///
    /// Keys: ↑/↓ or k/j move, PgUp/PgDn, Home/End (g/G) jump, Enter toggles
    /// the detail pane, Esc closes it (or clears the filter), `c` asks to
    /// cancel the selected operation (y/n; only when the token allows), `/`
    /// edits the name/glob filter, `s` cycles the state filter, `r`
    /// reconnects now, `q` or Ctrl-C quits.
    pub fn handle_key(&mut self, key: KeyEvent, now: u64) -> Vec<Command> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        // Make sure the selection reflects the current rows.
        self.rows();
        if key.modifiers.contains(KeyModifiers::CONTROL)
            && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('C'))
        {
            self.set_quit();
            return vec![Command::Quit];
        }
        match self.mode.clone() {
            Mode::Filter => {
                self.filter_key(key);
                Vec::new()
            }
            Mode::ConfirmCancel { operation_id } => self.confirm_key(key, operation_id, now),
            Mode::Normal => self.normal_key(key, now),
        }
    }

    fn normal_key(&mut self, key: KeyEvent, now: u64) -> Vec<Command> {
        let page = self.page.max(1);
        if matches!(
            key.code,
            KeyCode::Up
                | KeyCode::Down
                | KeyCode::PageUp
                | KeyCode::PageDown
                | KeyCode::Home
                | KeyCode::End
                | KeyCode::Enter
                | KeyCode::Char('j' | 'k' | 'g' | 'G' | 'c')
        ) {
            self.user_selected = true;
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::Char('Q') => {
                self.set_quit();
                return vec![Command::Quit];
            }
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::PageUp => self.move_by(-(page as i64)),
            KeyCode::PageDown => self.move_by(page as i64),
            KeyCode::Home | KeyCode::Char('g') => self.select_index(0),
            KeyCode::End | KeyCode::Char('G') => self.select_index(usize::MAX),
            KeyCode::Enter if self.selected.is_some() || self.show_detail => {
                self.show_detail = !self.show_detail;
            }
            KeyCode::Esc => {
                if self.show_detail {
                    self.show_detail = false;
                } else if !self.filter_text.is_empty() {
                    self.set_filter(String::new());
                }
            }
            KeyCode::Char('/') => self.mode = Mode::Filter,
            KeyCode::Char('s') => {
                let next = self.state_filter.next();
                self.set_state_filter(next);
            }
            KeyCode::Char('r') => return vec![Command::Reconnect],
            KeyCode::Char('c') => self.ask_cancel(now),
            _ => {}
        }
        Vec::new()
    }

    fn move_by(&mut self, delta: i64) {
        let len = self.rows().len();
        if len == 0 {
            return;
        }
        let cur = match self.selected_index() {
            Some(i) => i as i64,
            // Nothing selected yet: the first move selects the first row.
            None => return self.select_index(0),
        };
        let next = (cur + delta).clamp(0, len as i64 - 1);
        self.select_index(next as usize);
    }

    fn ask_cancel(&mut self, now: u64) {
        if !self.config.can_cancel {
            self.toast(
                "Cancel is not allowed with this token",
                ToastLevel::Warning,
                now,
            );
            return;
        }
        let Some(id) = self.selected.clone() else {
            return;
        };
        let Some(entry) = self.ops.get(&id) else {
            return;
        };
        if entry.state.state.is_terminal() {
            let msg = format!(
                "{} has already finished ({})",
                entry.state.display_name(),
                entry.state.state.as_str()
            );
            self.toast(msg, ToastLevel::Warning, now);
            return;
        }
        self.mode = Mode::ConfirmCancel { operation_id: id };
    }

    fn confirm_key(&mut self, key: KeyEvent, id: String, now: u64) -> Vec<Command> {
        match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => {
                self.mode = Mode::Normal;
                self.mark_cancel_sent(&id, now);
                vec![Command::Cancel(id)]
            }
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
                self.mode = Mode::Normal;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn filter_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Enter => self.mode = Mode::Normal,
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                self.set_filter(String::new());
            }
            KeyCode::Backspace => {
                let mut t = self.filter_text.clone();
                t.pop();
                self.set_filter(t);
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                let mut t = self.filter_text.clone();
                if t.chars().count() < 128 {
                    t.push(c);
                }
                self.set_filter(t);
            }
            _ => {}
        }
    }
}
