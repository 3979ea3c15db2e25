//! `run`'s reading of the command's output: split into lines on `\n` and
//! `\r` (so tqdm-style redraws count), each chunk read from the pipe
//! turned into at most one progress update.
//!
//! The outbox sends at most one update per interval anyway, merging what
//! came in between, so only the latest values of a chunk matter: its last
//! non-empty line becomes the message, and the last line that holds
//! progress gives the value. Lines are therefore read from the end of the
//! chunk backwards, and stop being parsed once both are found; a line is
//! only handed to the (regex) parser when a byte scan says it can hold
//! progress ([`ProgressParser::may_hold_progress`]). Nothing is allocated
//! per line: a line is borrowed from the chunk, except the one that
//! continues a partial line from the previous chunk.

use std::borrow::Cow;

use hub_client::{OperationHandle, ProgressFields, ProgressParser};

/// Longest message taken from an output line (characters).
pub const MAX_MESSAGE: usize = 200;

/// Longest line looked at (bytes); the rest of a longer line is ignored.
pub const MAX_LINE: usize = 64 * 1024;

fn is_break(b: &u8) -> bool {
    *b == b'\n' || *b == b'\r'
}

/// The latest message and progress of a run of lines.
#[derive(Default)]
struct Latest {
    message: Option<String>,
    parsed: Option<hub_client::Parsed>,
}

impl Latest {
    /// Looks at one line (lines come newest first); true once nothing
    /// older can change the result.
    fn see(&mut self, raw: &[u8], parser: &ProgressParser) -> bool {
        let raw = &raw[..raw.len().min(MAX_LINE)];
        if raw.iter().all(u8::is_ascii_whitespace) {
            return false;
        }
        let text = String::from_utf8_lossy(raw);
        let text = if raw.contains(&0x1b) {
            Cow::Owned(strip_ansi(&text))
        } else {
            text
        };
        let line = text.trim();
        if line.is_empty() {
            return false;
        }
        if self.message.is_none() {
            self.message = Some(line.chars().take(MAX_MESSAGE).collect());
        }
        if self.parsed.is_none() && parser.may_hold_progress(line) {
            self.parsed = parser.parse_line(line);
        }
        self.parsed.is_some()
    }

    fn into_fields(self) -> Option<ProgressFields> {
        let message = self.message?;
        let mut fields = ProgressFields {
            message: Some(message),
            ..Default::default()
        };
        if let Some(p) = self.parsed {
            fields.progress = p.percent;
            fields.current = p.current;
        }
        Some(fields)
    }
}

/// Splits output into lines and reports the latest of each chunk.
#[derive(Default)]
pub struct LineFeed {
    /// The unfinished last line of the previous chunks.
    partial: Vec<u8>,
}

impl LineFeed {
    /// Takes a chunk of output: its complete lines are reported, an
    /// unfinished last line waits for the next chunk.
    pub fn push(&mut self, bytes: &[u8], parser: &ProgressParser, op: Option<&OperationHandle>) {
        let Some(op) = op else {
            return;
        };
        if let Some(latest) = self.scan(bytes, parser) {
            report(latest, op);
        }
    }

    /// The latest of the chunk's complete lines (`None` when it has none).
    fn scan(&mut self, bytes: &[u8], parser: &ProgressParser) -> Option<Latest> {
        let Some(end) = bytes.iter().rposition(is_break) else {
            self.keep(bytes);
            return None;
        };
        let mut latest = Latest::default();
        let mut segments = bytes[..end].rsplit(is_break).peekable();
        while let Some(seg) = segments.next() {
            let done = if segments.peek().is_none() && !self.partial.is_empty() {
                // The first line of the chunk continues the previous one.
                self.keep(seg);
                latest.see(&self.partial, parser)
            } else {
                latest.see(seg, parser)
            };
            if done {
                break;
            }
        }
        self.partial.clear();
        self.keep(&bytes[end + 1..]);
        Some(latest)
    }

    /// The end of the output: an unfinished last line counts too.
    pub fn finish(&mut self, parser: &ProgressParser, op: Option<&OperationHandle>) {
        if let Some(op) = op {
            let mut latest = Latest::default();
            latest.see(&self.partial, parser);
            report(latest, op);
        }
        self.partial.clear();
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.partial.len());
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

fn report(latest: Latest, op: &OperationHandle) {
    if let Some(fields) = latest.into_fields() {
        let _ = op.update(fields);
    }
}

/// Remove ANSI escape sequences (colours, cursor moves) from a line.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latest_of(chunks: &[&[u8]], parser: &ProgressParser) -> Vec<(Option<String>, Option<f64>)> {
        let mut feed = LineFeed::default();
        chunks
            .iter()
            .filter_map(|c| feed.scan(c, parser))
            .map(|l| (l.message, l.parsed.and_then(|p| p.percent)))
            .collect()
    }

    #[test]
    fn ansi_sequences_are_removed() {
        assert_eq!(strip_ansi("\u{1b}[32m42%\u{1b}[0m done"), "42% done");
        assert_eq!(strip_ansi("plain"), "plain");
        assert_eq!(strip_ansi("\u{1b}[2K\u{1b}[1G 5/10"), " 5/10");
    }

    #[test]
    fn a_chunk_gives_its_last_message_and_its_last_progress() {
        let p = ProgressParser::new();
        let got = latest_of(&[b"10%\n20%\nlog line\n\n"], &p);
        assert_eq!(got, vec![(Some("log line".into()), Some(20.0))]);
        // A line split across chunks is read whole.
        let got = latest_of(&[b"start\n4", b"0% half\r", b"\x1b[32m3/4\x1b[0m\n"], &p);
        assert_eq!(
            got,
            vec![
                (Some("start".into()), None),
                (Some("40% half".into()), Some(40.0)),
                (Some("3/4".into()), Some(75.0)),
            ]
        );
        // No progress anywhere: just the message.
        let got = latest_of(&[b"a\nb of c\nrecord 5 of batch\n"], &p);
        assert_eq!(got, vec![(Some("record 5 of batch".into()), None)]);
    }
}
