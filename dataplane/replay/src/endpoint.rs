//! Endpoint keys: requests grouped for reports and noise rules, `GET /api/users/{id}`.
//!
//! The key is the method and the path without its query, with the path segments that look like
//! identifiers (numbers, UUIDs, long hex strings) replaced by a placeholder, so that
//! `/api/users/7` and `/api/users/8` are one endpoint.

/// Longest path kept in a key; longer ones are cut (with `…`).
const MAX_PATH: usize = 120;

/// The endpoint key of a request.
pub fn endpoint_key(method: &str, target: &[u8]) -> String {
    let target = String::from_utf8_lossy(target);
    let mut path = target.as_ref();
    // absolute-form (`http://host/path`): keep the path.
    if let Some(rest) = path.split_once("://").map(|(_, rest)| rest) {
        path = rest.find('/').map_or("/", |i| rest.get(i..).unwrap_or("/"));
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut key = String::with_capacity(method.len() + 1 + path.len());
    key.push_str(method);
    key.push(' ');
    let mut first = true;
    for segment in path.split('/') {
        if !first {
            key.push('/');
        }
        first = false;
        key.push_str(placeholder(segment).unwrap_or(segment));
    }
    if key.chars().count() > MAX_PATH {
        key = key.chars().take(MAX_PATH).collect::<String>() + "…";
    }
    key
}

/// The placeholder for a segment that looks like an identifier.
fn placeholder(segment: &str) -> Option<&'static str> {
    let b = segment.as_bytes();
    if b.is_empty() {
        return None;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return Some("{id}");
    }
    let is_uuid = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if is_uuid {
        return Some("{uuid}");
    }
    if b.len() >= 16 && b.iter().all(u8::is_ascii_hexdigit) && b.iter().any(u8::is_ascii_digit) {
        return Some("{hex}");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_become_placeholders() {
        assert_eq!(endpoint_key("GET", b"/api/users/7"), "GET /api/users/{id}");
        assert_eq!(
            endpoint_key("GET", b"/api/users/8?full=1"),
            "GET /api/users/{id}"
        );
        assert_eq!(
            endpoint_key("DELETE", b"/o/123e4567-e89b-12d3-a456-426614174000/x"),
            "DELETE /o/{uuid}/x"
        );
        assert_eq!(
            endpoint_key("GET", b"/blob/0123456789abcdef0123"),
            "GET /blob/{hex}"
        );
        assert_eq!(
            endpoint_key("GET", b"/blob/deadbeefdeadbeefcafe"),
            "GET /blob/deadbeefdeadbeefcafe"
        );
        assert_eq!(endpoint_key("GET", b"/"), "GET /");
        assert_eq!(endpoint_key("GET", b"/a//b/"), "GET /a//b/");
        assert_eq!(endpoint_key("OPTIONS", b"*"), "OPTIONS *");
        assert_eq!(endpoint_key("GET", b"http://h:80/v1/9?q"), "GET /v1/{id}");
        assert_eq!(endpoint_key("GET", b"http://h"), "GET /");
        assert_eq!(endpoint_key("GET", b"/\xff"), "GET /\u{fffd}");
    }

    #[test]
    fn long_paths_are_cut() {
        let long = format!("/{}", "a".repeat(500));
        let key = endpoint_key("GET", long.as_bytes());
        assert_eq!(key.chars().count(), MAX_PATH + 1);
        assert!(key.ends_with('…'));
    }
}
