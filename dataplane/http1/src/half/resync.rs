//! Resynchronisation: scanning forward for the next plausible start line after a gap, a
//! parse error or a mid-stream pickup, with a bounded window of recent bytes kept so that a
//! request line split across calls is still found.

use super::{Half, Role, State, Step, Stop};
use crate::detect::{LineKind, Scan, looks_like_request, looks_like_response, scan_start};

/// Most capture times remembered for the scan window; older ones are merged.
const MAX_CARRY_TIMES: usize = 64;

impl Half {
    /// Bytes of recent history kept while scanning (and the longest start line found).
    fn window(&self) -> usize {
        self.max_line()
    }

    /// Capture time of the byte at `pos` of the scan window.
    pub(super) fn carry_time(&self, pos: usize) -> u64 {
        self.carry_ts
            .iter()
            .rev()
            .find(|(off, _)| *off <= pos)
            .map_or(0, |&(_, ts)| ts)
    }

    /// Remembers that the bytes from `pos` of the scan window were captured at `ts`.
    fn note_time(&mut self, pos: usize, ts: u64) {
        if self.carry_ts.len() >= MAX_CARRY_TIMES {
            // Merge the oldest two: the times of the oldest bytes get coarser.
            self.carry_ts.remove(1);
        }
        self.carry_ts.push((pos, ts));
    }

    /// Scans `data` for a start line.
    pub(super) fn resync(&mut self, ts: u64, data: &[u8]) -> Step {
        let piece = data.get(..data.len().min(self.window())).unwrap_or(data);
        let old = self.buf.len();
        self.buf.extend_from_slice(piece);
        self.note_time(old, ts);
        let want_req = self.accepts(LineKind::Request);
        let want_resp = self.accepts(LineKind::Response);
        let scan = scan_start(
            &self.buf,
            self.scan_pos,
            self.line_start,
            want_req,
            want_resp,
        );
        match scan {
            Scan::Found(start, kind) => {
                self.skipped += start as u64;
                if start >= old {
                    // The message starts in this piece: parse it from `data` directly.
                    self.buf.clear();
                    self.carry_ts.clear();
                    self.msg.start_ns = ts;
                    self.started = true;
                    self.found(kind, start - old)
                } else {
                    // It starts in what was kept from earlier calls.
                    self.buf.truncate(old);
                    self.buf.drain(..start);
                    self.msg.start_ns = self.carry_time(start);
                    self.carry_ts.clear();
                    self.started = true;
                    self.found(kind, 0)
                }
            }
            Scan::Pending(at) => {
                self.scan_pos = at;
                self.trim();
                Step::Go(piece.len())
            }
            Scan::Nothing => {
                self.scan_pos = self.buf.len().saturating_sub(8);
                self.trim();
                Step::Go(piece.len())
            }
        }
    }

    /// Keeps the scan window bounded, amortising the shifts.
    fn trim(&mut self) {
        let window = self.window();
        if self.buf.len() <= 2 * window {
            return;
        }
        let drop = self.buf.len() - window;
        self.line_start = self.buf.get(drop - 1) == Some(&b'\n');
        self.after_gap = false;
        self.buf.drain(..drop);
        let first = self.carry_time(drop);
        self.carry_ts.retain(|(off, _)| *off > drop);
        for (off, _) in &mut self.carry_ts {
            *off -= drop;
        }
        self.carry_ts.insert(0, (0, first));
        self.skipped += drop as u64;
        self.scan_pos = self.scan_pos.saturating_sub(drop);
    }

    /// A start line of `kind` begins the next message (in `buf` or `consumed` bytes on).
    fn found(&mut self, kind: LineKind, consumed: usize) -> Step {
        self.state = State::Head;
        self.scan_pos = 0;
        let own = matches!(
            (kind, self.role),
            (LineKind::Request, super::Role::Request) | (LineKind::Response, super::Role::Response)
        );
        self.synced = true;
        if own {
            Step::Go(consumed)
        } else {
            Step::Stop(consumed, Stop::WrongRole)
        }
    }

    /// Where a start line of this half's role begins in the scan window, when the window ends
    /// inside it: a message cut short by what comes next (a gap or the end).
    ///
    /// A request line is recognised only where a message may begin (a line start, or the
    /// first byte after a gap) and with a known method, as far as it goes; a status line
    /// anywhere, once its status code is there.
    pub(super) fn cut_start(&self) -> Option<usize> {
        let after_lf = self.buf.iter().rposition(|&b| b == b'\n').map(|i| i + 1);
        let line_from = match after_lf {
            Some(i) => i,
            None if self.line_start || self.after_gap => 0,
            None if self.role == Role::Response => 0,
            None => return None,
        };
        let last = self.buf.get(line_from..)?;
        // A line ending may be cut between its CR and its LF.
        let last = last.strip_suffix(b"\r").unwrap_or(last);
        match self.role {
            Role::Request => looks_like_request(last).then_some(line_from),
            Role::Response => {
                let anchors = last.windows(7).enumerate();
                let at = anchors
                    .filter(|(_, w)| *w == b"HTTP/1.")
                    .map(|(i, _)| i)
                    .find(|&i| last.get(i..).is_some_and(looks_like_response))?;
                Some(line_from + at)
            }
        }
    }
}
