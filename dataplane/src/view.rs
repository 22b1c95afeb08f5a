//! Readable views of stored RRPairs: the fields `inspect` prints and filters on, rendered as
//! JSON lines, a table, or markdown. Pairs of TLS plaintext also show the process they were
//! captured in; pairs parsed from packets show exactly what they always did.

use std::fmt::Write as _;
use std::io::Write;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tapline_http1::{RequestHead, ResponseHead, parse_request_head, parse_response_head};

use crate::record::{ArchivedMessage, ArchivedProcessInfo, ArchivedRRPair, PairFlags};

/// Formats nanoseconds since the Unix epoch as RFC 3339 UTC with nanoseconds.
pub fn rfc3339(ns: u64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| ns.to_string())
}

/// An RRPair with its heads parsed, borrowed from the snapshot's mapped segments.
pub struct PairView<'a> {
    /// The stored record.
    pub pair: &'a ArchivedRRPair,
    /// The parsed request head, when there is a request and it parses.
    pub request: Option<RequestHead<'a>>,
    /// The parsed response head, when there is a response and it parses.
    pub response: Option<ResponseHead<'a>>,
}

impl std::fmt::Debug for PairView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairView").field("id", &self.id()).finish()
    }
}

impl<'a> PairView<'a> {
    /// Parses the heads of a stored pair.
    pub fn new(pair: &'a ArchivedRRPair) -> Self {
        let request = pair
            .request
            .as_ref()
            .and_then(|m| parse_request_head(m.head.as_slice()).ok());
        let response = pair
            .response
            .as_ref()
            .and_then(|m| parse_response_head(m.head.as_slice()).ok());
        PairView {
            pair,
            request,
            response,
        }
    }

    /// The pair's id as 16 hex digits.
    pub fn id(&self) -> String {
        format!("{:016x}", self.pair.id.to_native())
    }

    /// Duration in microseconds.
    pub fn duration_us(&self) -> u64 {
        self.pair
            .end_ns
            .to_native()
            .saturating_sub(self.pair.start_ns.to_native())
            / 1000
    }

    /// The request method, when known.
    pub fn method(&self) -> Option<&str> {
        self.request.as_ref().map(|r| r.method)
    }

    /// The request target exactly as on the wire (lossily shown as text).
    pub fn path(&self) -> Option<String> {
        self.request
            .as_ref()
            .map(|r| String::from_utf8_lossy(r.target).into_owned())
    }

    /// The response status, when known.
    pub fn status(&self) -> Option<u16> {
        self.response.as_ref().map(|r| r.status)
    }

    /// The request's Host header.
    pub fn host(&self) -> Option<String> {
        let req = self.request.as_ref()?;
        req.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// The pair's flags.
    pub fn flags(&self) -> PairFlags {
        PairFlags(self.pair.flags.to_native())
    }

    /// Whether the pair was parsed from TLS plaintext captured in a process.
    pub fn tls(&self) -> bool {
        self.flags().0 & PairFlags::TLS != 0
    }

    /// The process a TLS plaintext pair was captured in.
    pub fn process(&self) -> Option<&'a ArchivedProcessInfo> {
        self.pair.process.as_ref()
    }

    /// One JSON object, as `inspect --format jsonl` prints it. A TLS plaintext pair also has
    /// `"tls": true` and `"process": {pid, tid, command, cgroup, cgroup_id}`.
    pub fn to_json(&self) -> Value {
        let flow = &self.pair.flow;
        let mut v = json!({
            "id": self.id(),
            "protocol": self.pair.protocol.name(),
            "start": rfc3339(self.pair.start_ns.to_native()),
            "end": rfc3339(self.pair.end_ns.to_native()),
            "duration_us": self.duration_us(),
            "flow": { "src": flow.src().to_string(), "dst": flow.dst().to_string() },
            "request": self.pair.request.as_ref().map(|m| self.request_json(m)),
            "response": self.pair.response.as_ref().map(|m| self.response_json(m)),
            "flags": self.flags().names().collect::<Vec<_>>(),
        });
        if self.tls() {
            v["tls"] = json!(true);
        }
        if let Some(p) = self.process() {
            v["process"] = json!({
                "pid": p.pid.to_native(),
                "tid": p.tid.to_native(),
                "command": p.command.as_str(),
                "cgroup": p.cgroup.as_str(),
                "cgroup_id": p.cgroup_id.to_native(),
            });
        }
        v
    }

    /// The process as shown in the table and markdown: `command/pid`.
    fn process_label(&self) -> Option<String> {
        self.process()
            .map(|p| format!("{}/{}", p.command.as_str(), p.pid.to_native()))
    }

    fn request_json(&self, m: &ArchivedMessage) -> Value {
        let mut v = message_json(m);
        if let Some(head) = &self.request {
            v["method"] = json!(head.method);
            v["path"] = json!(String::from_utf8_lossy(head.target));
            v["version"] = json!(format!("HTTP/1.{}", head.version));
            v["headers"] = headers_json(&head.headers);
        }
        v
    }

    fn response_json(&self, m: &ArchivedMessage) -> Value {
        let mut v = message_json(m);
        if let Some(head) = &self.response {
            v["status"] = json!(head.status);
            v["reason"] = json!(String::from_utf8_lossy(head.reason));
            v["version"] = json!(format!("HTTP/1.{}", head.version));
            v["headers"] = headers_json(&head.headers);
        }
        v
    }

    /// One row of the `inspect` table.
    pub fn table_row(&self) -> [String; 8] {
        let start = rfc3339(self.pair.start_ns.to_native());
        let time = start.get(11..23).unwrap_or(&start).to_string();
        let flow = &self.pair.flow;
        let mut path = self.path().unwrap_or_else(|| "-".into());
        if path.chars().count() > 48 {
            path = path.chars().take(47).collect::<String>() + "…";
        }
        let flags: Vec<_> = self.flags().names().collect();
        let mut flow_cell = format!("{} → {}", flow.src(), flow.dst());
        if let Some(label) = self.process_label() {
            let _ = write!(flow_cell, " ({label})");
        }
        [
            time,
            format_duration(self.duration_us()),
            flow_cell,
            self.method().unwrap_or("-").to_string(),
            path,
            self.status().map_or("-".into(), |s| s.to_string()),
            self.pair
                .response
                .as_ref()
                .map_or("-".into(), |m| m.body.len().to_string()),
            if flags.is_empty() {
                "-".into()
            } else {
                flags.join(",")
            },
        ]
    }

    /// The pair as a markdown section: heads verbatim, bodies as text when they are text.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let flow = &self.pair.flow;
        let _ = writeln!(
            out,
            "## {} {} → {}\n\n- id: `{}`\n- flow: {} → {}\n- start: {}\n- duration: {}\n- flags: {}\n",
            self.method().unwrap_or("?"),
            self.path().unwrap_or_else(|| "?".into()),
            self.status()
                .map_or("no response".into(), |s| s.to_string()),
            self.id(),
            flow.src(),
            flow.dst(),
            rfc3339(self.pair.start_ns.to_native()),
            format_duration(self.duration_us()),
            {
                let names: Vec<_> = self.flags().names().collect();
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            },
        );
        if self.tls() {
            out.insert_str(out.len() - 1, "- tls: true\n");
        }
        if let Some(p) = self.process() {
            let cgroup = match p.cgroup.as_str() {
                "" => String::new(),
                path => format!(", cgroup `{path}`"),
            };
            let line = format!(
                "- process: `{}` (pid {}, tid {}){cgroup}\n",
                p.command.as_str(),
                p.pid.to_native(),
                p.tid.to_native(),
            );
            out.insert_str(out.len() - 1, &line);
        }
        for (title, message) in [
            ("Request", self.pair.request.as_ref()),
            ("Response", self.pair.response.as_ref()),
        ] {
            let Some(m) = message else { continue };
            let _ = writeln!(
                out,
                "### {title}\n\n```http\n{}```\n",
                String::from_utf8_lossy(m.head.as_slice()).replace("\r\n", "\n")
            );
            let body = m.body.as_slice();
            if body.is_empty() {
                continue;
            }
            match std::str::from_utf8(body) {
                Ok(text) if text.len() <= 64 * 1024 => {
                    let _ = writeln!(out, "```\n{text}\n```\n");
                }
                _ => {
                    let _ = writeln!(out, "({} bytes, sha256 {})\n", body.len(), sha256_hex(body));
                }
            }
        }
        out
    }
}

fn message_json(m: &ArchivedMessage) -> Value {
    json!({
        "body_len": m.body.len(),
        "body_sha256": sha256_hex(m.body.as_slice()),
        "start": rfc3339(m.start_ns.to_native()),
        "end": rfc3339(m.end_ns.to_native()),
    })
}

fn headers_json(headers: &[(&str, &[u8])]) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|(n, v)| json!([n, String::from_utf8_lossy(v)]))
            .collect(),
    )
}

/// Lowercase hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A duration in µs, shown with a unit that keeps it short.
pub fn format_duration(us: u64) -> String {
    match us {
        0..1_000 => format!("{us}µs"),
        1_000..1_000_000 => format!("{:.1}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

/// Column titles of the pair table.
pub const TABLE_HEADERS: [&str; 8] = [
    "TIME",
    "DURATION",
    "FLOW",
    "METHOD",
    "PATH",
    "STATUS",
    "RESP BYTES",
    "FLAGS",
];

/// Writes rows of [`PairView::table_row`] as an aligned table, with a closing count line.
///
/// # Errors
/// When writing fails.
pub fn write_table(out: &mut impl Write, rows: &[[String; 8]], total: u64) -> std::io::Result<()> {
    let mut widths = TABLE_HEADERS.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &[&str]| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = w.saturating_sub(cell.chars().count());
            if i == 1 || i == 6 {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            } else {
                text.push_str(cell);
                if i + 1 < cells.len() {
                    text.push_str(&" ".repeat(pad));
                }
            }
            if i + 1 < cells.len() {
                text.push_str("  ");
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, &TABLE_HEADERS)?;
    for row in rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(out, &cells)?;
    }
    writeln!(out, "{} of {} pairs shown", rows.len(), total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_has_nanoseconds() {
        assert_eq!(
            rfc3339(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn durations_pick_units() {
        assert_eq!(format_duration(12), "12µs");
        assert_eq!(format_duration(1_500), "1.5ms");
        assert_eq!(format_duration(2_500_000), "2.50s");
    }

    #[test]
    fn tls_pairs_show_the_marker_and_their_process() {
        use crate::record::{Flow, Message, ProcessInfo, Protocol, RRPair};
        let pair = |process: Option<ProcessInfo>, flags| RRPair {
            id: 1,
            protocol: Protocol::Http1,
            start_ns: 0,
            end_ns: 1_000,
            flow: Flow::new(
                "10.0.0.1:51000".parse().unwrap(),
                "10.0.0.2:443".parse().unwrap(),
            ),
            conn_start_ns: 0,
            index_in_conn: 0,
            request: Some(Message {
                head: b"GET /x HTTP/1.1\r\n\r\n".to_vec(),
                ..Message::default()
            }),
            response: None,
            interim: vec![],
            flags,
            process,
        };
        let tls = rkyv::to_bytes::<rkyv::rancor::Error>(&pair(
            Some(ProcessInfo {
                pid: 42,
                tid: 43,
                command: "nginx".into(),
                cgroup: "/svc".into(),
                cgroup_id: 5,
            }),
            PairFlags::TLS,
        ))
        .unwrap();
        let tls = rkyv::access::<ArchivedRRPair, rkyv::rancor::Error>(&tls).unwrap();
        let view = PairView::new(tls);
        let json = view.to_json();
        assert_eq!(json["tls"], true);
        assert_eq!(json["flags"], json!(["tls"]));
        assert_eq!(
            json["process"],
            json!({"pid": 42, "tid": 43, "command": "nginx", "cgroup": "/svc", "cgroup_id": 5})
        );
        let row = view.table_row();
        assert_eq!(row[2], "10.0.0.1:51000 → 10.0.0.2:443 (nginx/42)");
        assert_eq!(row[7], "tls");
        let md = view.to_markdown();
        assert!(
            md.contains("- flags: tls\n- tls: true\n- process: `nginx` (pid 42, tid 43), cgroup `/svc`\n\n### Request"),
            "{md}"
        );

        let plain = rkyv::to_bytes::<rkyv::rancor::Error>(&pair(None, 0)).unwrap();
        let plain = rkyv::access::<ArchivedRRPair, rkyv::rancor::Error>(&plain).unwrap();
        let view = PairView::new(plain);
        let json = view.to_json();
        assert!(json.get("tls").is_none() && json.get("process").is_none());
        assert_eq!(view.table_row()[2], "10.0.0.1:51000 → 10.0.0.2:443");
        assert!(view.to_markdown().contains("- flags: none\n\n### Request"));
    }
}
