//! Exit codes and the one-line error messages the CLI prints.

/// Assertions failed (replay mismatches or a baseline breached).
pub const ASSERTIONS: u8 = 1;
/// Usage or input error.
pub const USAGE: u8 = 2;
/// Missing privilege, kernel feature or tool.
pub const ENVIRONMENT: u8 = 3;

/// An error caused by the environment rather than by the input: exit code 3.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EnvironmentError(pub String);

/// The exit code of an error: 3 when an [`EnvironmentError`] is in its chain, else 2.
pub fn code_of(error: &anyhow::Error) -> u8 {
    if error
        .chain()
        .any(|e| e.downcast_ref::<EnvironmentError>().is_some())
    {
        ENVIRONMENT
    } else {
        USAGE
    }
}

/// The error and its causes on one line, without repeating a cause already in the message.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string().replace('\n', "; ");
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
