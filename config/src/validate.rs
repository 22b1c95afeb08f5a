//! Range and cross-field checks run on a parsed [`Config`], all collected at once.

use std::time::Duration;

use crate::units::format_duration;
use crate::{ByteSize, Config};

/// Most import workers accepted.
const MAX_WORKERS: usize = 1024;
/// Most flows accepted (each tracked flow costs memory up front in the flow table).
const MAX_FLOWS: usize = 1 << 24;
/// Largest body kept per HTTP message.
const MAX_BODY: ByteSize = ByteSize::gib(1);
/// Longest HTTP head accepted.
const MAX_HEAD: ByteSize = ByteSize::mib(16);
/// Smallest ring segment.
const SEGMENT_MIN: ByteSize = ByteSize::mib(1);
/// Largest ring segment.
const SEGMENT_MAX: ByteSize = ByteSize::gib(4);
/// Segment files are laid out in 16-byte frames.
const SEGMENT_ALIGN: u64 = 16;
/// Shortest idle timeout.
const IDLE_MIN: Duration = Duration::from_secs(1);
/// Longest idle timeout.
const IDLE_MAX: Duration = Duration::from_secs(24 * 3600);
/// Most jobs the control plane runs at once.
const MAX_CONCURRENT: usize = 1024;
/// Longest grace a cancelled job gets.
const GRACE_MAX: Duration = Duration::from_secs(600);
/// Smallest and largest API request body limit.
const BODY_MIN: ByteSize = ByteSize::kib(1);
const BODY_MAX: ByteSize = ByteSize::mib(64);

/// One value out of range.
#[derive(Debug)]
pub(crate) struct Finding {
    /// Dotted path of the field blamed.
    pub(crate) field: &'static str,
    /// Another field the check depends on (a cross-field limit), if any.
    pub(crate) related: Option<&'static str>,
    /// What is wrong, quoting the value and the accepted range.
    pub(crate) message: String,
}

/// Runs every check on `config` and returns the findings in field order.
pub(crate) fn findings(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |field, related, message| {
        out.push(Finding {
            field,
            related,
            message,
        });
    };

    if let Some(workers) = config.import.workers
        && !(1..=MAX_WORKERS).contains(&workers)
    {
        push(
            "import.workers",
            None,
            format!(
                "must be between 1 and {MAX_WORKERS} (or unset for one per core), \
                 found {workers}"
            ),
        );
    }

    let r = &config.reassembly;
    if !(1..=MAX_FLOWS).contains(&r.max_flows) {
        push(
            "reassembly.max_flows",
            None,
            format!("must be between 1 and {MAX_FLOWS}, found {}", r.max_flows),
        );
    }
    for (field, size) in [
        (
            "reassembly.max_buffered_per_direction",
            r.max_buffered_per_direction,
        ),
        ("reassembly.max_buffered_total", r.max_buffered_total),
    ] {
        if size.0 == 0 {
            push(field, None, "must not be zero".to_owned());
        }
    }
    if r.max_buffered_per_direction > r.max_buffered_total {
        push(
            "reassembly.max_buffered_per_direction",
            Some("reassembly.max_buffered_total"),
            format!(
                "must not exceed reassembly.max_buffered_total ({}), found {}",
                r.max_buffered_total, r.max_buffered_per_direction
            ),
        );
    }
    if !(IDLE_MIN..=IDLE_MAX).contains(&r.idle_timeout) {
        push(
            "reassembly.idle_timeout",
            None,
            format!(
                "must be between {} and {}, found {}",
                format_duration(IDLE_MIN),
                format_duration(IDLE_MAX),
                format_duration(r.idle_timeout)
            ),
        );
    }

    let h = &config.http;
    for (field, size, max) in [
        ("http.max_head_bytes", h.max_head_bytes, MAX_HEAD),
        ("http.max_body_bytes", h.max_body_bytes, MAX_BODY),
    ] {
        if size.0 == 0 || size > max {
            push(
                field,
                None,
                format!("must be between 1B and {max}, found {size}"),
            );
        }
    }
    if h.max_pipelined == 0 {
        push("http.max_pipelined", None, "must be at least 1".to_owned());
    }

    let capacity = config.segments.capacity;
    if !(SEGMENT_MIN..=SEGMENT_MAX).contains(&capacity) {
        push(
            "segments.capacity",
            None,
            format!("must be between {SEGMENT_MIN} and {SEGMENT_MAX}, found {capacity}"),
        );
    } else if !capacity.0.is_multiple_of(SEGMENT_ALIGN) {
        push(
            "segments.capacity",
            None,
            format!(
                "must be a multiple of {SEGMENT_ALIGN} bytes, found {} bytes",
                capacity.0
            ),
        );
    }
    serve(config, &mut push);
    out
}

/// The checks of `[serve]`.
fn serve(config: &Config, push: &mut impl FnMut(&'static str, Option<&'static str>, String)) {
    let s = &config.serve;
    if !(1..=MAX_CONCURRENT).contains(&s.max_concurrent) {
        push(
            "serve.max_concurrent",
            None,
            format!(
                "must be between 1 and {MAX_CONCURRENT}, found {}",
                s.max_concurrent
            ),
        );
    }
    if s.cancel_grace > GRACE_MAX {
        push(
            "serve.cancel_grace",
            None,
            format!(
                "must be at most {}, found {}",
                format_duration(GRACE_MAX),
                format_duration(s.cancel_grace)
            ),
        );
    }
    if !(BODY_MIN..=BODY_MAX).contains(&s.max_body) {
        push(
            "serve.max_body",
            None,
            format!(
                "must be between {BODY_MIN} and {BODY_MAX}, found {}",
                s.max_body
            ),
        );
    }
    if s.tls_cert.is_some() != s.tls_key.is_some() {
        let (field, related) = if s.tls_cert.is_some() {
            ("serve.tls_key", "serve.tls_cert")
        } else {
            ("serve.tls_cert", "serve.tls_key")
        };
        push(
            field,
            Some(related),
            format!("must be set together with {related}"),
        );
    }
    if s.client_ca.is_some() && s.tls_cert.is_none() {
        push(
            "serve.client_ca",
            Some("serve.tls_cert"),
            "needs serve.tls_cert and serve.tls_key: client certificates only exist over TLS"
                .to_owned(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(config: &Config) -> Vec<&'static str> {
        findings(config).iter().map(|f| f.field).collect()
    }

    #[test]
    fn defaults_pass() {
        assert!(findings(&Config::default()).is_empty());
    }

    #[test]
    fn boundaries_are_inclusive() {
        let mut c = Config::default();
        c.import.workers = Some(1024);
        c.reassembly.max_flows = 1;
        c.reassembly.idle_timeout = IDLE_MIN;
        c.http.max_body_bytes = MAX_BODY;
        c.segments.capacity = SEGMENT_MAX;
        assert!(findings(&c).is_empty(), "{:?}", findings(&c));
        c.segments.capacity = SEGMENT_MIN;
        c.reassembly.idle_timeout = IDLE_MAX;
        c.import.workers = Some(1);
        assert!(findings(&c).is_empty(), "{:?}", findings(&c));
    }

    #[test]
    fn every_limit_is_checked() {
        let mut c = Config::default();
        c.import.workers = Some(0);
        c.reassembly.max_flows = 0;
        c.reassembly.max_buffered_per_direction = ByteSize(0);
        c.reassembly.max_buffered_total = ByteSize(0);
        c.reassembly.idle_timeout = Duration::from_millis(999);
        c.http.max_head_bytes = ByteSize(0);
        c.http.max_body_bytes = ByteSize(MAX_BODY.0 + 1);
        c.http.max_pipelined = 0;
        c.segments.capacity = ByteSize(SEGMENT_MAX.0 + 16);
        assert_eq!(
            fields(&c),
            [
                "import.workers",
                "reassembly.max_flows",
                "reassembly.max_buffered_per_direction",
                "reassembly.max_buffered_total",
                "reassembly.idle_timeout",
                "http.max_head_bytes",
                "http.max_body_bytes",
                "http.max_pipelined",
                "segments.capacity",
            ]
        );
    }

    #[test]
    fn cross_field_and_alignment_checks() {
        let mut c = Config::default();
        c.reassembly.max_buffered_per_direction = ByteSize::mib(512);
        c.segments.capacity = ByteSize(SEGMENT_MIN.0 + 8);
        let found = findings(&c);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].related, Some("reassembly.max_buffered_total"));
        assert!(found[0].message.contains("256MiB"), "{}", found[0].message);
        assert!(found[1].message.contains("multiple of 16"));
    }
}
