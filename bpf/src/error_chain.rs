//! Reading the errors of aya's loaders: the OS error behind a load or attach failure (to tell
//! a missing privilege or kernel feature from the rest), and the whole chain on one line. Both
//! loaders (`tapline-xdp`, `tapline-tls`) classify their failures with these.

use std::io;

/// The first `io::Error` in the chain of `error`.
pub fn os_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io);
        }
        current = e.source();
    }
    None
}

/// An error and its causes on one line (verifier logs cut to their last 4000 bytes).
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    if text.len() > 4000 {
        let mut start = text.len() - 4000;
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text = format!("…{}", &text[start..]);
    }
    text
}
