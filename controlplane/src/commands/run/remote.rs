//! `tapline run --server URL`: the same run, submitted to a control plane (`tapline serve`)
//! as a job, followed until it ends, with its reports fetched to where the flags say.

use std::path::Path;

use anyhow::Context;
use tapline_server::report::ReportFormat;
use tapline_server::{Client, JobSpec, RunSpec};

use crate::cli::{MockLatency, RunArgs};
use crate::commands::job::{client_error, connect_to, follow, snapshot_arg};

/// Submits the run and follows it; returns the job's exit code.
///
/// # Errors
/// When the server cannot be reached, refuses the spec, or a report cannot be written.
pub(super) fn submit(server: &str, args: &RunArgs) -> anyhow::Result<u8> {
    let client = connect_to(server.to_owned(), &args.credentials)?;
    let spec = JobSpec::Run(spec_of(args));
    let job = client.submit(&spec).map_err(client_error)?;
    println!("job {} queued (run) on {server}", job.id);
    let code = follow(&client, job.id)?;
    fetch_reports(&client, job.id, args)?;
    Ok(code)
}

/// The job spec of a `tapline run` command line; flags that name local files stay local.
fn spec_of(args: &RunArgs) -> RunSpec {
    RunSpec {
        snapshot: snapshot_arg(args.snapshot.display().to_string()),
        cmd: args.cmd.clone(),
        port: args.port,
        env: args.env.clone(),
        workdir: args.workdir.as_ref().map(|p| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string()
        }),
        ready_timeout: args.ready_timeout.clone(),
        timeout: args.timeout.clone(),
        filter: args.filter.clone(),
        ignore: args.ignore.clone(),
        rate: args.rate.clone(),
        connections: args.connections,
        keep_host: args.keep_host,
        request_timeout: args.request_timeout.clone(),
        assert: args.assert.clone(),
        mock_latency: match args.mock_latency {
            MockLatency::None => None,
            MockLatency::Recorded => Some("recorded".to_owned()),
        },
    }
}

/// Writes the job's reports where `--report`, `--html` and `--junit` ask. A job that failed
/// before replaying has none: that is said, not an error.
fn fetch_reports(client: &Client, id: u64, args: &RunArgs) -> anyhow::Result<()> {
    let mut wanted: Vec<(ReportFormat, std::path::PathBuf)> = Vec::new();
    if let Some(dir) = &args.report {
        std::fs::create_dir_all(dir).with_context(|| format!("--report {}", dir.display()))?;
        wanted.push((ReportFormat::Json, dir.join("report.json")));
        wanted.push((ReportFormat::Html, dir.join("report.html")));
    }
    if let Some(file) = &args.html {
        wanted.push((ReportFormat::Html, file.clone()));
    }
    if let Some(file) = &args.junit {
        wanted.push((ReportFormat::Junit, file.clone()));
    }
    for (format, path) in wanted {
        match client.report(id, format) {
            Ok(bytes) => write(&path, &bytes)?,
            Err(e) => eprintln!(
                "tapline run: no {} report for job {id}: {e}",
                path.display()
            ),
        }
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    #[test]
    fn a_run_command_line_becomes_the_same_job_spec() {
        let cli = Cli::try_parse_from([
            "tapline",
            "run",
            "/snaps/shop",
            "--cmd",
            "./app --port 8080",
            "--port",
            "8080",
            "--env",
            "MODE=fixed",
            "--rate",
            "200%",
            "--assert",
            "p99<=1.1x",
            "--mock-latency",
            "recorded",
            "--ignore",
            "json:$.id",
            "--server",
            "https://cp:7070",
            "--token",
            "0123456789abcdef",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not a run");
        };
        assert_eq!(args.server.as_deref(), Some("https://cp:7070"));
        assert_eq!(args.credentials.token.as_deref(), Some("0123456789abcdef"));
        let spec = spec_of(&args);
        assert_eq!(spec.snapshot, "/snaps/shop");
        assert_eq!(spec.cmd, "./app --port 8080");
        assert_eq!(spec.port, 8080);
        assert_eq!(spec.env, vec!["MODE=fixed".to_owned()]);
        assert_eq!(spec.rate.as_deref(), Some("200%"));
        assert_eq!(spec.assert.as_deref(), Some("p99<=1.1x"));
        assert_eq!(spec.mock_latency.as_deref(), Some("recorded"));
        assert_eq!(spec.ignore, vec!["json:$.id".to_owned()]);
        // The server checks the spec with the same rules as its API.
        let json = serde_json::to_vec(&JobSpec::Run(spec)).unwrap();
        assert!(JobSpec::from_json(&json).is_ok());
    }
}
