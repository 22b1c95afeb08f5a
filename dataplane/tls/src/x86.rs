//! Reading the first instructions of x86-64 functions, so that the uprobes can sit where the
//! kernel handles them cheaply.
//!
//! A uprobe on an instruction the kernel cannot emulate (`sub $n,%rsp`, `test`, `mov`) is
//! single-stepped out of line on every hit, a debug trap that costs several times the probed
//! call. The kernel emulates `push %reg`, relative jumps and calls, and `nop`s. OpenSSL 3's
//! `SSL_read_ex` and `SSL_write_ex` start with `sub $n,%rsp` and call an internal function
//! that starts with `push`; these functions find that internal function and check its first
//! instruction. They read bytes only (untrusted: any input gives an answer, never a panic).

/// `endbr64`, which CET-enabled builds put first in every function.
const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];

/// How far into a function [`calls`] looks.
pub const CALL_WINDOW: usize = 128;

/// The offset past a leading `endbr64` (0 when there is none).
fn past_endbr(code: &[u8]) -> usize {
    if code.starts_with(&ENDBR64) {
        ENDBR64.len()
    } else {
        0
    }
}

/// The little-endian `i32` at `at` in `code`.
fn rel32(code: &[u8], at: usize) -> Option<i64> {
    let bytes: [u8; 4] = code.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(i64::from(i32::from_le_bytes(bytes)))
}

/// The function a thin wrapper hands its call to, with its arguments untouched: `code` (the
/// wrapper's first bytes) is `[endbr64] sub $n,%rsp; call rel32` or `[endbr64] jmp rel32`.
/// Returns the target's position relative to the start of `code`; `None` for any other shape.
pub fn forwarded_call(code: &[u8]) -> Option<i64> {
    let mut at = past_endbr(code);
    let reserves = match code.get(at..at.checked_add(3)?) {
        // sub $imm8,%rsp
        Some([0x48, 0x83, 0xec]) => Some(4),
        // sub $imm32,%rsp
        Some([0x48, 0x81, 0xec]) => Some(7),
        _ => None,
    };
    if let Some(len) = reserves {
        at += len;
    }
    let opcode = *code.get(at)?;
    // After a stack reservation only a call forwards (a jump would leave the stack unbalanced);
    // without one, a tail jump does.
    let wanted = if reserves.is_some() { 0xe8 } else { 0xe9 };
    if opcode != wanted {
        return None;
    }
    let next = i64::try_from(at.checked_add(5)?).ok()?;
    next.checked_add(rel32(code, at.checked_add(1)?)?)
}

/// Whether `code` holds a `call rel32` to `target` (a position relative to the start of `code`)
/// within its first [`CALL_WINDOW`] bytes. Searched byte by byte: a match that is not an
/// instruction would need four bytes that happen to point exactly at `target`.
pub fn calls(code: &[u8], target: i64) -> bool {
    let window = code.get(..CALL_WINDOW).unwrap_or(code);
    window.windows(5).enumerate().any(|(at, bytes)| {
        bytes.first() == Some(&0xe8)
            && i64::try_from(at + 5)
                .ok()
                .zip(rel32(bytes, 1))
                .and_then(|(next, rel)| next.checked_add(rel))
                == Some(target)
    })
}

/// Where, from the start of the function at `code`, a uprobe lands on an instruction the
/// kernel emulates: on the first instruction, or past a leading `endbr64` (which moves neither
/// the stack nor an argument, so an entry probe and a return probe both work there), when that
/// instruction is a `push %reg`. `None` when it is anything else.
pub fn cheap_entry(code: &[u8]) -> Option<usize> {
    let at = past_endbr(code);
    match code.get(at..)? {
        [0x50..=0x57, ..] | [0x41, 0x50..=0x57, ..] => Some(at),
        _ => None,
    }
}

/// Where, from the start of the function at `code`, an entry-only probe that reads the first
/// argument lands on a `push %reg`: as [`cheap_entry`], or past a leading null check of that
/// argument (`test %rdi,%rdi; je`), which `SSL_free` and `gnutls_deinit` start with. Past the
/// check the probe no longer fires for a null argument, which frees nothing: fit for an entry
/// probe on a close function, not for a data call's pair of entry and return probes.
pub fn cheap_entry_past_null_check(code: &[u8]) -> Option<usize> {
    if let Some(at) = cheap_entry(code) {
        return Some(at);
    }
    let mut at = past_endbr(code);
    // test %rdi,%rdi
    if code.get(at..at.checked_add(3)?)? != [0x48, 0x85, 0xff] {
        return None;
    }
    at += 3;
    at += match code.get(at..)? {
        // je rel8
        [0x74, ..] => 2,
        // je rel32
        [0x0f, 0x84, ..] => 6,
        _ => return None,
    };
    match code.get(at..)? {
        [0x50..=0x57, ..] | [0x41, 0x50..=0x57, ..] => Some(at),
        _ => None,
    }
}

/// Whether `code` starts a function that only zeroes argument registers 4 and 5 (`%rcx`, `%r8`)
/// and jumps on (`jmp rel32`), as GnuTLS's `gnutls_record_send` hands its call to
/// `gnutls_record_send2(session, data, size, 0, 0)`: its first three arguments pass untouched.
pub fn zeroes_then_jumps(code: &[u8]) -> bool {
    let mut at = past_endbr(code);
    loop {
        let Some(rest) = code.get(at..) else {
            return false;
        };
        at += match rest {
            // xor %ecx,%ecx
            [0x31, 0xc9, ..] => 2,
            // xor %rcx,%rcx; xor %r8d,%r8d
            [0x48, 0x31, 0xc9, ..] | [0x45, 0x31, 0xc0, ..] => 3,
            // xor %r8,%r8
            [0x4d, 0x31, 0xc0, ..] => 3,
            [0xe9, _, _, _, _, ..] => return true,
            _ => return false,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian OpenSSL 3.0's `SSL_read_ex` at 0x354c0: `sub $0x8,%rsp; call 35290`.
    const READ_EX: [u8; 9] = [0x48, 0x83, 0xec, 0x08, 0xe8, 0xc7, 0xfd, 0xff, 0xff];

    #[test]
    fn the_wrapper_call_is_decoded() {
        assert_eq!(forwarded_call(&READ_EX), Some(0x35290 - 0x354c0));
        let mut cet = ENDBR64.to_vec();
        cet.extend_from_slice(&READ_EX);
        assert_eq!(forwarded_call(&cet), Some(0x35290 - 0x354c0 + 4));
        // sub $0x108,%rsp; call +0x10
        let wide = [0x48, 0x81, 0xec, 0x08, 1, 0, 0, 0xe8, 0x10, 0, 0, 0];
        assert_eq!(forwarded_call(&wide), Some(12 + 0x10));
        // A tail jump with no reservation.
        assert_eq!(forwarded_call(&[0xe9, 0xfb, 0xff, 0xff, 0xff]), Some(0));
    }

    #[test]
    fn other_shapes_are_refused() {
        // An argument changed before the call (`xor %ecx,%ecx; call`).
        assert_eq!(forwarded_call(&[0x31, 0xc9, 0xe8, 0, 0, 0, 0]), None);
        // A jump after a reservation, a call without one, truncated bytes, nothing.
        assert_eq!(
            forwarded_call(&[0x48, 0x83, 0xec, 8, 0xe9, 0, 0, 0, 0]),
            None
        );
        assert_eq!(forwarded_call(&[0xe8, 0, 0, 0, 0]), None);
        assert_eq!(forwarded_call(&READ_EX[..8]), None);
        assert_eq!(forwarded_call(&[]), None);
    }

    #[test]
    fn a_call_is_found_in_the_body() {
        // Debian OpenSSL 3.0's SSL_read up to its call at +0x1e to 0x35290.
        let read = [
            0x48, 0x83, 0xec, 0x18, 0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0, 0, 0, 0x48, 0x89, 0x44,
            0x24, 0x08, 0x31, 0xc0, 0x85, 0xd2, 0x78, 0x2f, 0x48, 0x89, 0xe1, 0x48, 0x63, 0xd2,
            0xe8, 0x3d, 0xfe, 0xff, 0xff,
        ];
        assert!(calls(&read, 0x35290 - 0x35430));
        assert!(!calls(&read, 0x35290 - 0x35430 + 1));
        assert!(!calls(&read[..34], 0x35290 - 0x35430));
        assert!(!calls(&[], 0));
    }

    #[test]
    fn only_a_push_is_cheap() {
        assert_eq!(cheap_entry(&[0x41, 0x55, 0x41, 0x54]), Some(0));
        assert_eq!(cheap_entry(&[0x55]), Some(0));
        assert_eq!(cheap_entry(&[0xf3, 0x0f, 0x1e, 0xfa, 0x53]), Some(4));
        assert_eq!(cheap_entry(&[0x48, 0x83, 0xec, 0x18]), None);
        assert_eq!(cheap_entry(&[0x48, 0x85, 0xff]), None);
        assert_eq!(cheap_entry(&[0x41]), None);
        assert_eq!(cheap_entry(&ENDBR64), None);
        assert_eq!(cheap_entry(&[]), None);
    }

    #[test]
    fn a_forwarder_to_send2_is_recognized() {
        // Debian GnuTLS 3.7.9's gnutls_record_send.
        let send = [0x45, 0x31, 0xc0, 0x31, 0xc9, 0xe9, 0x86, 0x9c, 0xff, 0xff];
        assert!(zeroes_then_jumps(&send));
        assert!(zeroes_then_jumps(&[
            0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x31, 0xc9, 0xe9, 0, 0, 0, 0
        ]));
        // Another register zeroed (an argument that matters), a truncated jump, nothing.
        assert!(!zeroes_then_jumps(&[0x31, 0xd2, 0xe9, 0, 0, 0, 0]));
        assert!(!zeroes_then_jumps(&send[..9]));
        assert!(!zeroes_then_jumps(&[]));
    }

    #[test]
    fn a_null_check_is_stepped_over() {
        // Debian OpenSSL 3.0's SSL_free: test %rdi,%rdi; je rel32; push %r13.
        let free = [0x48, 0x85, 0xff, 0x0f, 0x84, 0x97, 0x03, 0, 0, 0x41, 0x55];
        assert_eq!(cheap_entry_past_null_check(&free), Some(9));
        let short = [0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x85, 0xff, 0x74, 0x10, 0x53];
        assert_eq!(cheap_entry_past_null_check(&short), Some(9));
        assert_eq!(cheap_entry_past_null_check(&[0x53]), Some(0));
        // Another register tested, a jne, no push after, truncated.
        assert_eq!(
            cheap_entry_past_null_check(&[0x48, 0x85, 0xf6, 0x74, 0, 0x53]),
            None
        );
        assert_eq!(
            cheap_entry_past_null_check(&[0x48, 0x85, 0xff, 0x75, 0, 0x53]),
            None
        );
        assert_eq!(
            cheap_entry_past_null_check(&[0x48, 0x85, 0xff, 0x74, 0, 0x90]),
            None
        );
        assert_eq!(cheap_entry_past_null_check(&free[..9]), None);
        assert_eq!(cheap_entry_past_null_check(&[0x48, 0x85]), None);
    }
}
