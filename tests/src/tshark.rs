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
    command.arg("-n").arg("-r").arg(file).args([
        "-Y",
        filter,
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=f",
    ]);
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

/// The HTTP/1 requests over TCP that tshark finds in `file` (reassembling out-of-order
/// segments, as tapline does), with the status codes of the responses tshark paired them with.
///
/// # Errors
///
/// As [`fields`].
pub fn http_requests(file: &Path) -> Result<Vec<TsharkRequest>> {
    let mut command = Command::new("tshark");
    command
        .arg("-n")
        .args(["-o", "tcp.reassemble_out_of_order:TRUE", "-r"])
        .arg(file)
        .args(["-Y", "http && tcp && !http2", "-T", "fields"])
        .args(["-E", "separator=/t", "-E", "occurrence=f"]);
    for field in [
        "frame.number",
        "tcp.stream",
        "http.request.method",
        "http.request.uri",
        "http.response.code",
        "http.request_in",
    ] {
        command.args(["-e", field]);
    }
    let run = run_checked(&mut command, TSHARK_TIMEOUT)?;
    let rows: Vec<Vec<String>> = run
        .stdout_text()
        .lines()
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect();
    Ok(pair_rows(&rows))
}

/// Builds requests from tshark rows (frame, stream, method, uri, code, request_in): rows with
/// a method are requests, rows with a code are responses naming their request's frame.
fn pair_rows(rows: &[Vec<String>]) -> Vec<TsharkRequest> {
    let field = |row: &Vec<String>, i: usize| row.get(i).cloned().unwrap_or_default();
    let mut requests: Vec<TsharkRequest> = rows
        .iter()
        .filter(|row| !field(row, 2).is_empty())
        .filter_map(|row| {
            Some(TsharkRequest {
                frame: field(row, 0).parse().ok()?,
                stream: field(row, 1).parse().ok()?,
                method: field(row, 2),
                target: field(row, 3),
                status: None,
            })
        })
        .collect();
    for row in rows {
        let (Ok(status), Ok(request_frame)) =
            (field(row, 4).parse::<u16>(), field(row, 5).parse::<u64>())
        else {
            continue;
        };
        if let Some(request) = requests.iter_mut().find(|r| r.frame == request_frame) {
            request.status = Some(status);
        }
    }
    requests
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fields: &[&str]) -> Vec<String> {
        fields.iter().map(|f| (*f).to_owned()).collect()
    }

    #[test]
    fn responses_are_paired_through_request_in() {
        let rows = vec![
            row(&["4", "0", "GET", "/a", "", ""]),
            row(&["6", "0", "", "", "200", "4"]),
            row(&["8", "1", "POST", "/b?c", "", ""]),
            row(&["9", "1", "", "", "", ""]),
        ];
        let requests = pair_rows(&rows);
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].status, Some(200));
        assert_eq!(requests[1].target, "/b?c");
        assert_eq!(requests[1].status, None);
    }
}
