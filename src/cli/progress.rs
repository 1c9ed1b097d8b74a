//! Progress of an apply on a terminal: `[3/12] creating vault:pki/roles/web…`
//! on one line of stderr, redrawn in place and cleared before anything else
//! is printed. Only for the human output when stderr is a terminal: never
//! in JSON output, never in a log file or a CI job's output.

use std::io::{IsTerminal, Write};

use crate::plan::Action;
use crate::vault::ApplyEvent;

/// The progress line of one apply.
pub struct Progress<W: Write> {
    /// Where it is drawn; `None`: off.
    out: Option<W>,
    /// The changes the plan holds.
    total: usize,
    /// The changes made so far.
    done: usize,
    /// Whether a line is drawn (and must be cleared before other output).
    shown: bool,
}

impl Progress<std::io::Stderr> {
    /// On stderr for `total` changes, when `human` output goes to people
    /// and stderr is a terminal; off otherwise.
    pub fn stderr(total: usize, human: bool) -> Self {
        let on = human && std::io::stderr().is_terminal();
        Progress::new(on.then(std::io::stderr), total)
    }
}

impl<W: Write> Progress<W> {
    /// Progress drawn on `out` (`None`: off) for `total` changes.
    pub fn new(out: Option<W>, total: usize) -> Self {
        Progress {
            out,
            total,
            done: 0,
            shown: false,
        }
    }

    /// Clears the line, if drawn: call before printing anything else.
    pub fn clear(&mut self) {
        if let Some(out) = self.out.as_mut()
            && self.shown
        {
            let _ = write!(out, "\r\x1b[K");
            let _ = out.flush();
            self.shown = false;
        }
    }

    /// Counts `event` (printed by the caller just before) and draws the line.
    pub fn after(&mut self, event: &ApplyEvent) {
        let text = match event {
            ApplyEvent::Started { addr, action } => format!(
                "[{}/{}] {} {addr}…",
                self.done + 1,
                self.total.max(self.done + 1),
                action.progressive()
            ),
            ApplyEvent::Done { action, .. } if *action != Action::NoOp => {
                self.done += 1;
                format!("[{}/{}] applied", self.done, self.total.max(self.done))
            }
            _ => return,
        };
        self.draw(&text);
    }

    fn draw(&mut self, text: &str) {
        if let Some(out) = self.out.as_mut() {
            let _ = write!(out, "\r\x1b[K{text}");
            let _ = out.flush();
            self.shown = true;
        }
    }

    /// What was written, for a test.
    #[cfg(test)]
    fn into_inner(self) -> Option<W> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Addr;

    fn started(a: &str, action: Action) -> ApplyEvent {
        ApplyEvent::Started {
            addr: Addr::parse_vault(a).unwrap(),
            action,
        }
    }

    fn done(a: &str, action: Action) -> ApplyEvent {
        ApplyEvent::Done {
            addr: Addr::parse_vault(a).unwrap(),
            action,
        }
    }

    #[test]
    fn counts_changes_and_clears_before_other_output() {
        let mut p = Progress::new(Some(Vec::new()), 2);
        p.after(&started("pki/roles/web", Action::Create));
        p.clear();
        p.after(&done("pki/roles/web", Action::Create));
        p.clear();
        // A no-op is not a change made.
        p.after(&done("pki/roles/api", Action::NoOp));
        p.after(&started("sys/policies/acl/web", Action::Update));
        p.clear();
        p.after(&done("sys/policies/acl/web", Action::Update));
        p.clear();
        // Cleared twice: written once.
        p.clear();
        let text = String::from_utf8(p.into_inner().unwrap()).unwrap();
        assert_eq!(
            text,
            "\r\x1b[K[1/2] creating vault:pki/roles/web…\r\x1b[K\
             \r\x1b[K[1/2] applied\r\x1b[K\
             \r\x1b[K[2/2] updating vault:sys/policies/acl/web…\r\x1b[K\
             \r\x1b[K[2/2] applied\r\x1b[K"
        );
    }

    #[test]
    fn more_changes_than_planned_grow_the_total() {
        // The cluster half can report a change the count did not hold.
        let mut p = Progress::new(Some(Vec::new()), 0);
        p.after(&done("pki/roles/web", Action::Create));
        let text = String::from_utf8(p.into_inner().unwrap()).unwrap();
        assert_eq!(text, "\r\x1b[K[1/1] applied");
    }

    #[test]
    fn off_writes_nothing() {
        let mut p: Progress<Vec<u8>> = Progress::new(None, 3);
        p.after(&started("pki/roles/web", Action::Create));
        p.clear();
        assert!(p.into_inner().is_none());
    }
}
