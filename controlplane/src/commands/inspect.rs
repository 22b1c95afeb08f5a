//! `tapline inspect`: the pairs of a snapshot as a table, JSON lines or markdown.

use std::io::{BufWriter, Write};

use tapline_dataplane::filter::Filter;
use tapline_dataplane::snapshot::Snapshot;
use tapline_dataplane::view::{PairView, write_table};

use crate::cli::{InspectArgs, InspectFormat};
use crate::exit;

/// Runs `tapline inspect`.
pub fn run(args: &InspectArgs) -> anyhow::Result<u8> {
    let filter = args.filter.as_deref().map(Filter::parse).transpose()?;
    let snapshot = Snapshot::open(&args.snapshot)?;
    let mut errors = Vec::new();
    let pairs = snapshot.pairs_sorted(&mut |e| errors.push(e));
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut rows = Vec::new();
    let mut shown = 0usize;
    for pair in pairs {
        if args.limit.is_some_and(|limit| shown >= limit) {
            break;
        }
        let view = PairView::new(pair);
        if filter.as_ref().is_some_and(|f| !f.matches(&view)) {
            continue;
        }
        shown += 1;
        let written = match args.format {
            InspectFormat::Jsonl => writeln!(out, "{}", view.to_json()),
            InspectFormat::Markdown => writeln!(out, "{}", view.to_markdown()),
            InspectFormat::Table => {
                rows.push(view.table_row());
                Ok(())
            }
        };
        if written.is_err() {
            // The reader went away (a closed pipe): stop quietly.
            return Ok(0);
        }
    }
    if args.format == InspectFormat::Table {
        let _ = write_table(&mut out, &rows, snapshot.manifest().counts.rrpairs);
    }
    out.flush().ok();
    drop(out);
    if let Some(first) = errors.first() {
        eprintln!(
            "tapline: error: {first}{}",
            if errors.len() > 1 {
                format!(" (and {} more)", errors.len() - 1)
            } else {
                String::new()
            }
        );
        return Ok(exit::USAGE);
    }
    Ok(0)
}
