//! Reading captures with tshark, the reference dissector the tests compare tapline with.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::Result;
use crate::process::run_checked;

/// Time allowed for one tshark run over a test capture.
const TSHARK_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `tshark -r FILE -Y FILTER -T fields -e F...` and returns one row of field values per
/// matching packet (tab-separated by tshark; empty fields are empty strings).
///
/// Reassembly-dependent fields such as `http.request.uri` need tshark's TCP reassembly,
/// which is on by default.
///
/// # Errors
///
/// When tshark fails or takes longer than two minutes.
pub fn fields(file: &Path, filter: &str, fields: &[&str]) -> Result<Vec<Vec<String>>> {
    let mut command = Command::new("tshark");
    command
        .arg("-n")
        .arg("-r")
        .arg(file)
        .args(["-Y", filter, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]);
    for field in fields {
        command.args(["-e", field]);
    }
    let run = run_checked(&mut command, TSHARK_TIMEOUT)?;
    Ok(run
        .stdout_text()
        .lines()
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect())
}

/// Counts the packets of `file` that match the display filter `filter`.
///
/// # Errors
///
/// As [`fields`].
pub fn count(file: &Path, filter: &str) -> Result<usize> {
    Ok(fields(file, filter, &["frame.number"])?.len())
}

/// One HTTP/1 request as tshark dissects it, with the response tshark paired it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsharkRequest {
    /// The frame holding the end of the request.
    pub frame: u64,
    /// tshark's TCP stream index.
    pub stream: u64,
    /// The request method.
    pub method: String,
    /// The request target as on the wire (`http.request.uri`).
    pub target: String,
    /// The status of the paired response, when tshark found one.
    pub status: Option<u16>,
}

/// The HTTP/1 requests over TCP that tshark finds in `file`, with their paired responses'
/// status codes.
///
/// # Errors
///
/// As [`fields`].
pub fn http_requests(file: &Path) -> Result<Vec<TsharkRequest>> {
    let filter = "http.request && tcp && !http2";
    let rows = fields(
        file,
        filter,
        &[
            "frame.number",
            "tcp.stream",
            "http.request.method",
            "http.request.uri",
            "http.response_in",
        ],
    )?;
    let responses = fields(
        file,
        "http.response && tcp && !http2",
        &["frame.number", "http.response.code"],
    )?;
    let status_of = |frame: &str| -> Option<u16> {
        responses
            .iter()
            .find(|row| row.first().map(String::as_str) == Some(frame))
            .and_then(|row| row.get(1))
            .and_then(|code| code.parse().ok())
    };
    let mut requests = Vec::new();
    for row in rows {
        let field = |i: usize| row.get(i).cloned().unwrap_or_default();
        let (Ok(frame), Ok(stream)) = (field(0).parse(), field(1).parse()) else {
            continue;
        };
        requests.push(TsharkRequest {
            frame,
            stream,
            method: field(2),
            target: field(3),
            status: status_of(&field(4)),
        });
    }
    Ok(requests)
}
