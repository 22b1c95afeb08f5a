//! The snapshots jobs can name: the directories under `DATA_DIR/snapshots/`, each with the
//! headline of its `manifest.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use tapline_dataplane::snapshot::Snapshot;

/// One snapshot as `GET /api/v1/snapshots` lists it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct SnapshotEntry {
    /// Its directory name: what a job spec's `snapshot` names.
    pub name: String,
    /// Its path on the server.
    pub path: String,
    /// The manifest's headline (source, times, counts), absent when it cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<serde_json::Value>,
    /// Why it cannot be used, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The snapshots under `dir`, by name; an absent directory holds none.
pub fn list(dir: &Path) -> Vec<SnapshotEntry> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<SnapshotEntry> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let (manifest, error) = match Snapshot::open(&path) {
                Ok(snapshot) => {
                    let m = snapshot.manifest();
                    let headline = serde_json::json!({
                        "format_version": m.format_version,
                        "tapline_version": m.tapline_version,
                        "source": m.source,
                        "created": m.created,
                        "first": m.first,
                        "last": m.last,
                        "packets": m.counts.packets,
                        "connections": m.counts.connections,
                        "rrpairs": m.counts.rrpairs,
                        "incomplete_rrpairs": m.counts.incomplete_rrpairs,
                    });
                    (Some(headline), None)
                }
                Err(e) => (None, Some(e.to_string())),
            };
            SnapshotEntry {
                name,
                path: path.display().to_string(),
                manifest,
                error,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_snapshots_are_listed_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list(&dir.path().join("none")).is_empty());
        std::fs::create_dir(dir.path().join("half")).unwrap();
        std::fs::write(dir.path().join("file"), "x").unwrap();
        let all = list(dir.path());
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].name, "half");
        assert!(all[0].manifest.is_none());
        assert!(
            all[0].error.as_deref().unwrap().contains("manifest.json"),
            "{all:?}"
        );
    }
}
