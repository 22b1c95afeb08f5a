//! `tapline job`: the client of `tapline serve`: submit a job (from the command line after
//! `--` or a JSON spec file), list, show, watch and cancel jobs, fetch reports, list the
//! server's snapshots.
//!
//! Exit codes: 0 success; for `watch` and `submit --watch` the job's own code when it failed
//! with 1, 2 or 3, else 1 for a failed or cancelled job; 2 for a bad flag or spec or an error
//! answer; 3 when the server cannot be reached.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use tapline_server::report::ReportFormat;
use tapline_server::{
    Client, ClientError, ClientOptions, Job, JobEvent, JobSpec, JobState, LoadSpec, MirrorSpec,
    RunSpec,
};

use crate::exit::EnvironmentError;

/// How to authenticate to a control plane: shared by `tapline job` and `tapline run --server`.
#[derive(Debug, Clone, clap::Args)]
pub struct Credentials {
    /// A bearer token.
    #[arg(
        long,
        global = true,
        value_name = "T",
        env = "TAPLINE_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// A file holding the bearer token (its first line).
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// A client certificate (PEM) for mutual TLS, with --key.
    #[arg(long, global = true, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, global = true, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// CA certificates (PEM) the server's certificate must chain to.
    #[arg(long, global = true, value_name = "FILE")]
    pub ca: Option<PathBuf>,
}

/// `tapline job`.
#[derive(Debug, clap::Args)]
pub struct JobArgs {
    /// The control plane's URL, such as https://ci-tapline:7070.
    #[arg(long, global = true, value_name = "URL", env = "TAPLINE_SERVER")]
    pub server: Option<String>,
    /// Token or client certificate.
    #[command(flatten)]
    pub credentials: Credentials,
    /// What to do.
    #[command(subcommand)]
    pub action: JobAction,
}

/// `tapline job` actions.
#[derive(Debug, Subcommand)]
pub enum JobAction {
    /// Submit a job: `-- run SNAP --cmd CMD --port P ...`, `-- mirror --iface IF ...`,
    /// `-- load SNAP --target URL ...`, or --spec FILE (JSON).
    Submit {
        /// A JSON job spec ({"kind":"load", ...}); `-` reads standard input.
        #[arg(long, value_name = "FILE", conflicts_with = "command")]
        spec: Option<PathBuf>,
        /// Follow the job until it ends and exit with its outcome.
        #[arg(long)]
        watch: bool,
        /// The job: run, mirror or load with the flags of `tapline run`, `mirror` or `replay`.
        #[arg(last = true, value_name = "KIND ARGS")]
        command: Vec<String>,
    },
    /// List jobs, newest first.
    List {
        /// Only jobs in this state: queued, running, succeeded, failed or cancelled.
        #[arg(long)]
        state: Option<String>,
    },
    /// Show a job as JSON.
    Show {
        /// The job id.
        id: u64,
    },
    /// Follow a job's state and output until it ends; exit with its outcome.
    Watch {
        /// The job id.
        id: u64,
    },
    /// Cancel a job (queued: at once; running: SIGINT, then SIGKILL after the grace period).
    Cancel {
        /// The job id.
        id: u64,
    },
    /// Fetch a job's report.
    Report {
        /// The job id.
        id: u64,
        /// json, html or junit.
        #[arg(long, default_value = "json")]
        format: String,
        /// Write it to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// List the snapshots on the server.
    Snapshots,
}

/// Runs `tapline job`.
pub fn run(args: &JobArgs) -> anyhow::Result<u8> {
    let client = connect(args)?;
    match &args.action {
        JobAction::Submit {
            spec,
            watch,
            command,
        } => {
            let spec = match spec {
                Some(file) => read_spec(file)?,
                None => spec_from_args(command)?,
            };
            let job = client.submit(&spec).map_err(client_error)?;
            println!("job {} queued ({})", job.id, job.kind);
            if *watch {
                follow(&client, job.id)
            } else {
                Ok(0)
            }
        }
        JobAction::List { state } => {
            let state = state
                .as_deref()
                .map(str::parse::<JobState>)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--state: {e}"))?;
            let jobs = client.list(state).map_err(client_error)?;
            print_table(&jobs);
            Ok(0)
        }
        JobAction::Show { id } => {
            let job = client.job(*id).map_err(client_error)?;
            println!("{}", serde_json::to_string_pretty(&job)?);
            Ok(0)
        }
        JobAction::Watch { id } => follow(&client, *id),
        JobAction::Cancel { id } => {
            let job = client.cancel(*id).map_err(client_error)?;
            let what = if job.state == JobState::Running {
                "is being stopped".to_owned()
            } else {
                job.state.to_string()
            };
            println!("job {} {what}", job.id);
            Ok(0)
        }
        JobAction::Report { id, format, out } => {
            let format =
                ReportFormat::parse(format).map_err(|e| anyhow::anyhow!("--format: {e}"))?;
            let bytes = client.report(*id, format).map_err(client_error)?;
            match out {
                Some(path) => {
                    std::fs::write(path, &bytes)
                        .with_context(|| format!("--out {}", path.display()))?;
                    println!("wrote {}", path.display());
                }
                None => {
                    let _ = std::io::stdout().write_all(&bytes);
                }
            }
            Ok(0)
        }
        JobAction::Snapshots => {
            let list = client.snapshots().map_err(client_error)?;
            println!("{}", serde_json::to_string_pretty(&list)?);
            Ok(0)
        }
    }
}

fn connect(args: &JobArgs) -> anyhow::Result<Client> {
    let server = args
        .server
        .clone()
        .context("--server URL is required (or TAPLINE_SERVER)")?;
    connect_to(server, &args.credentials)
}

/// A client of the control plane at `server`.
///
/// # Errors
/// When the token file cannot be read or the TLS files are not usable.
pub fn connect_to(server: String, args: &Credentials) -> anyhow::Result<Client> {
    let token = match &args.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("--token-file {}", path.display()))?
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .with_context(|| format!("--token-file {}: holds no token", path.display()))?
                .to_owned(),
        ),
        None => args.token.clone(),
    };
    Client::new(&ClientOptions {
        server,
        token,
        cert: args.cert.clone(),
        key: args.key.clone(),
        ca: args.ca.clone(),
        timeout: None,
    })
    .map_err(client_error)
}

/// An unreachable server is the environment's fault (exit 3); the rest is input (exit 2).
pub fn client_error(e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Transport { .. } => anyhow::Error::new(EnvironmentError(e.to_string())),
        other => anyhow::Error::new(other),
    }
}

fn read_spec(file: &Path) -> anyhow::Result<JobSpec> {
    let bytes = if file == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        buf
    } else {
        std::fs::read(file).with_context(|| format!("--spec {}", file.display()))?
    };
    JobSpec::from_json(&bytes).map_err(|e| anyhow::anyhow!("--spec {}: {e}", file.display()))
}

/// The job after `--`: `run`, `mirror` or `load` with their commands' flags.
#[derive(Debug, Parser)]
#[command(name = "tapline job submit --", no_binary_name = false)]
enum SpecCommand {
    /// `tapline run` as a job.
    Run {
        /// A snapshot name on the server, or a path (made absolute).
        snapshot: String,
        #[arg(long)]
        cmd: String,
        #[arg(long)]
        port: u16,
        #[arg(long = "env")]
        env: Vec<String>,
        #[arg(long)]
        workdir: Option<String>,
        #[arg(long)]
        ready_timeout: Option<String>,
        #[arg(long)]
        timeout: Option<String>,
        #[arg(long)]
        filter: Option<String>,
        #[arg(long = "ignore")]
        ignore: Vec<String>,
        #[arg(long)]
        rate: Option<String>,
        #[arg(long)]
        connections: Option<usize>,
        #[arg(long)]
        keep_host: bool,
        #[arg(long)]
        request_timeout: Option<String>,
        #[arg(long = "assert")]
        assert: Option<String>,
        #[arg(long)]
        mock_latency: Option<String>,
    },
    /// `tapline mirror` as a job.
    Mirror {
        #[arg(long)]
        iface: String,
        #[arg(long)]
        netns: Option<String>,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        cmd: String,
        #[arg(long = "env")]
        env: Vec<String>,
        #[arg(long)]
        workdir: Option<String>,
        #[arg(long)]
        ready_timeout: Option<String>,
        #[arg(long)]
        duration: Option<String>,
        #[arg(long)]
        mocks: Option<String>,
        #[arg(long)]
        no_learn: bool,
        #[arg(long = "ignore")]
        ignore: Vec<String>,
        #[arg(long)]
        keep_host: bool,
        #[arg(long)]
        queue: Option<usize>,
        #[arg(long)]
        max_in_flight: Option<usize>,
        #[arg(long)]
        request_timeout: Option<String>,
        #[arg(long = "assert")]
        assert: Option<String>,
    },
    /// `tapline replay` (load) as a job.
    Load {
        /// A snapshot name on the server, or a path (made absolute).
        snapshot: String,
        #[arg(long)]
        target: String,
        #[arg(long)]
        rate: Option<String>,
        #[arg(long)]
        duration: Option<String>,
        #[arg(long)]
        connections: Option<usize>,
        #[arg(long = "assert")]
        assert: Option<String>,
        #[arg(long)]
        filter: Option<String>,
        #[arg(long = "ignore")]
        ignore: Vec<String>,
        #[arg(long)]
        timeout: Option<String>,
        #[arg(long)]
        keep_host: bool,
    },
}

/// A snapshot argument: a name stays a name; a path is made absolute.
/// A snapshot argument as the server needs it: a relative path made absolute, a bare name kept.
pub fn snapshot_arg(text: String) -> String {
    if text.contains('/') && !text.starts_with('/') {
        std::path::absolute(&text)
            .map(|p| p.display().to_string())
            .unwrap_or(text)
    } else {
        text
    }
}

fn spec_from_args(command: &[String]) -> anyhow::Result<JobSpec> {
    if command.is_empty() {
        anyhow::bail!(
            "no job given: add `-- run SNAP --cmd CMD --port P`, `-- mirror --iface IF --port P --cmd CMD`, \
             `-- load SNAP --target URL` or --spec FILE"
        );
    }
    let argv = std::iter::once("tapline job submit --".to_owned()).chain(command.iter().cloned());
    let parsed = SpecCommand::try_parse_from(argv).map_err(|e| {
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or_default().to_owned();
        anyhow::anyhow!("{}", first.strip_prefix("error: ").unwrap_or(&first))
    })?;
    Ok(match parsed {
        SpecCommand::Run {
            snapshot,
            cmd,
            port,
            env,
            workdir,
            ready_timeout,
            timeout,
            filter,
            ignore,
            rate,
            connections,
            keep_host,
            request_timeout,
            assert,
            mock_latency,
        } => JobSpec::Run(RunSpec {
            snapshot: snapshot_arg(snapshot),
            cmd,
            port,
            env,
            workdir,
            ready_timeout,
            timeout,
            filter,
            ignore,
            rate,
            connections,
            keep_host,
            request_timeout,
            assert,
            mock_latency,
        }),
        SpecCommand::Mirror {
            iface,
            netns,
            port,
            cmd,
            env,
            workdir,
            ready_timeout,
            duration,
            mocks,
            no_learn,
            ignore,
            keep_host,
            queue,
            max_in_flight,
            request_timeout,
            assert,
        } => JobSpec::Mirror(MirrorSpec {
            iface,
            netns,
            port,
            cmd,
            env,
            workdir,
            ready_timeout,
            duration,
            mocks: mocks.map(snapshot_arg),
            no_learn,
            ignore,
            keep_host,
            queue,
            max_in_flight,
            request_timeout,
            assert,
        }),
        SpecCommand::Load {
            snapshot,
            target,
            rate,
            duration,
            connections,
            assert,
            filter,
            ignore,
            timeout,
            keep_host,
        } => JobSpec::Load(LoadSpec {
            snapshot: snapshot_arg(snapshot),
            target,
            rate,
            duration,
            connections,
            assert,
            filter,
            ignore,
            timeout,
            keep_host,
        }),
    })
}

/// Follows job `id` until it ends; returns the exit code its outcome maps to.
/// Prints a job's state changes and output until it ends; returns the exit code for it.
///
/// # Errors
/// When the server cannot be reached or answers with an error.
pub fn follow(client: &Client, id: u64) -> anyhow::Result<u8> {
    let mut last_state: Option<JobState> = None;
    let job = client
        .watch(id, |event| match event {
            JobEvent::State { job } => {
                if last_state != Some(job.state) {
                    last_state = Some(job.state);
                    println!("{}", describe(job));
                }
            }
            JobEvent::Output { stream, line } => {
                if stream == "stderr" {
                    eprintln!("  | {line}");
                } else {
                    println!("  | {line}");
                }
            }
        })
        .map_err(client_error)?;
    if last_state != Some(job.state) {
        println!("{}", describe(&job));
    }
    Ok(match (job.state, job.exit_code) {
        (JobState::Succeeded, _) => 0,
        (JobState::Failed, Some(code @ 1..=3)) => u8::try_from(code).unwrap_or(1),
        _ => 1,
    })
}

/// One line about a job's state.
fn describe(job: &Job) -> String {
    let mut line = format!("job {} {}", job.id, job.state);
    match job.state {
        JobState::Running => {
            if let Some(pid) = job.pid {
                line.push_str(&format!(" (pid {pid})"));
            }
        }
        JobState::Succeeded | JobState::Failed | JobState::Cancelled => {
            if let Some(reason) = &job.reason {
                line.push_str(&format!(": {reason}"));
            }
            if !job.reports.is_empty() {
                line.push_str(&format!(" (reports: {})", job.reports.join(", ")));
            }
        }
        JobState::Queued => {}
    }
    line
}

fn print_table(jobs: &[Job]) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(
        out,
        "{:<6} {:<7} {:<10} {:<25} {:<5} REASON",
        "ID", "KIND", "STATE", "CREATED", "EXIT"
    );
    for job in jobs {
        let exit = job.exit_code.map(|c| c.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<6} {:<7} {:<10} {:<25} {:<5} {}",
            job.id,
            job.kind,
            job.state,
            job.created,
            exit,
            job.reason.as_deref().unwrap_or("")
        );
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn the_command_after_the_dashes_becomes_a_spec() {
        let spec = spec_from_args(&args(
            "load shop --target http://127.0.0.1:8080 --rate max --duration 1s --ignore header:date",
        ))
        .unwrap();
        let JobSpec::Load(load) = spec else {
            panic!("{spec:?}")
        };
        assert_eq!(load.snapshot, "shop");
        assert_eq!(load.rate.as_deref(), Some("max"));
        assert_eq!(load.ignore, ["header:date"]);
        let spec = spec_from_args(&args("run snaps/a --cmd ./app --port 8080 --env A=1")).unwrap();
        let JobSpec::Run(run) = spec else {
            panic!("{spec:?}")
        };
        assert!(run.snapshot.starts_with('/') && run.snapshot.ends_with("snaps/a"));
        assert_eq!(run.env, ["A=1"]);
        let e = spec_from_args(&args("deploy x")).unwrap_err().to_string();
        assert!(e.contains("deploy"), "{e}");
        let e = spec_from_args(&args("run s --cmd x --port 99999"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("99999"), "{e}");
        assert!(spec_from_args(&[]).is_err());
    }
}
