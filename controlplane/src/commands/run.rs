//! `tapline run`: one job, no daemon. It makes an ephemeral environment (a fresh network
//! namespace with no route out), serves mocks of the service's recorded dependencies inside
//! it on their own loopback addresses under their recorded host names, starts the build
//! under test there, waits until it listens, replays the snapshot's requests to its port from
//! inside, reports as `tapline replay` does, and tears everything down: on success, failure,
//! `--timeout`, SIGINT or SIGTERM. Environments left by a killed run are removed first.
//!
//! Exit codes: 0 every request matched and every assertion holds; 1 differences, a breached
//! assertion, or `--timeout` reached; 2 bad input (a flag, the snapshot, no recorded request
//! to `--port`, a build that exits or never listens); 3 environment (no CAP_SYS_ADMIN /
//! CAP_NET_ADMIN, a kernel refusal); 128+N after signal N.

mod remote;

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tapline_dataplane::snapshot::Snapshot;
use tapline_mock::{Latency, MatchConfig, Summary};
use tapline_netns::{
    DependencyPlan, EnvSpec, Environment, MockSet, MockSettings, NetnsError, Process, Readiness,
    SpawnSpec, cleanup_stale,
};
use tapline_replay::report::{html, junit};
use tapline_replay::{Options, Report, Settings, units};

use super::replay::{print, write};
use crate::cli::{MockLatency, RunArgs};
use crate::exit::{self, EnvironmentError};

/// Default wait for the build to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Time the build gets to exit after SIGTERM at teardown.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// How often the job looks at signals and its deadline.
const TICK: Duration = Duration::from_millis(20);
/// Unmatched mock calls named in the summary.
const UNMATCHED_SHOWN: usize = 3;

/// Runs `tapline run`.
pub fn run(args: &RunArgs) -> anyhow::Result<u8> {
    if let Some(server) = &args.server {
        return remote::submit(server, args);
    }
    let mut job = Job::prepare(args)?;
    tapline_netns::check_privileges("tapline run").map_err(environment)?;
    let cleaned = cleanup_stale();
    if !cleaned.removed.is_empty() {
        job.say(&format!(
            "removed {} stale environment(s) of dead runs: {} ({} processes killed)",
            cleaned.removed.len(),
            cleaned.removed.join(", "),
            cleaned.killed
        ));
    }
    for error in &cleaned.errors {
        eprintln!("tapline run: warning: stale environment: {error}");
    }
    let signals = Signals::install()?;
    let mut live = Live::default();
    let outcome = job.execute(&mut live, &signals);
    let mocks = live.stop_sut_and_mocks();
    // Reports are written while the environment is still there to be torn down below.
    let reported = match &outcome {
        Ok(Outcome::Finished(report)) => job.write_reports(report).map(|written| {
            print(report, args.quiet, &written);
        }),
        _ => Ok(()),
    };
    let finished = matches!(outcome, Ok(Outcome::Finished(_)));
    if let Some(summary) = mocks.filter(|s| finished || s.requests > 0) {
        job.say(&mock_line(&summary));
    }
    if let Some(env) = live.env.take() {
        let name = env.name().to_owned();
        let report = env.teardown();
        for error in &report.errors {
            eprintln!("tapline run: warning: teardown of {name}: {error}");
        }
        job.say(&format!(
            "teardown done in {} ms ({name} removed{})",
            report.elapsed.as_millis(),
            match report.killed {
                0 => String::new(),
                n => format!(", {n} leftover processes killed"),
            }
        ));
    }
    reported?;
    match outcome? {
        Outcome::Finished(report) => Ok(if report.passed { 0 } else { exit::ASSERTIONS }),
        Outcome::TimedOut(limit) => {
            eprintln!(
                "tapline: error: --timeout {}: the job did not finish in time; torn down",
                show(limit)
            );
            Ok(exit::ASSERTIONS)
        }
        Outcome::Signalled(signal) => {
            eprintln!("tapline run: stopped by signal {signal}; torn down");
            Ok(u8::try_from(128 + signal).unwrap_or(u8::MAX))
        }
    }
}

/// What was checked before anything is made.
#[derive(Debug)]
struct Job<'a> {
    args: &'a RunArgs,
    snapshot: Option<Snapshot>,
    options: Options,
    plan: DependencyPlan,
    env: Vec<(String, String)>,
    ready_timeout: Duration,
    timeout: Option<Duration>,
    started: Instant,
}

/// How the job ended when nothing failed.
#[derive(Debug)]
enum Outcome {
    /// The replay ran to its end.
    Finished(Box<Report>),
    /// `--timeout` passed first.
    TimedOut(Duration),
    /// SIGINT or SIGTERM came first.
    Signalled(i32),
}

/// What runs, for the teardown.
#[derive(Debug, Default)]
struct Live {
    env: Option<Environment>,
    mocks: Option<MockSet>,
    sut: Option<Process>,
}

impl Live {
    /// Stops the build (SIGTERM, then SIGKILL to its group) and the mocks; returns what the
    /// mocks answered.
    fn stop_sut_and_mocks(&mut self) -> Option<Summary> {
        if let Some(mut sut) = self.sut.take() {
            sut.stop(STOP_GRACE);
        }
        self.mocks.take().map(MockSet::stop)
    }
}

impl<'a> Job<'a> {
    /// Checks the flags and reads the snapshot (errors are input errors: exit 2).
    fn prepare(args: &'a RunArgs) -> anyhow::Result<Self> {
        let duration = |flag: &str, text: &Option<String>| -> anyhow::Result<Option<Duration>> {
            text.as_deref()
                .map(|t| {
                    units::parse_duration(t)
                        .ok()
                        .filter(|d| !d.is_zero())
                        .with_context(|| format!("{flag} {t:?}: {}", units::DURATION_HINT))
                })
                .transpose()
        };
        let ready_timeout =
            duration("--ready-timeout", &args.ready_timeout)?.unwrap_or(READY_TIMEOUT);
        let timeout = duration("--timeout", &args.timeout)?;
        if args.cmd.trim().is_empty() {
            bail!("--cmd: expected a command line to start the build under test");
        }
        let env = args
            .env
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) if !k.is_empty() && !k.contains('\0') && !v.contains('\0') => {
                    Ok((k.to_owned(), v.to_owned()))
                }
                _ => bail!("--env {kv:?}: expected NAME=VALUE"),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if let Some(dir) = &args.workdir
            && !dir.is_dir()
        {
            bail!("--workdir {}: no such directory", dir.display());
        }
        let port = args.port;
        let filter = match &args.filter {
            Some(f) => format!("port={port} and ({f})"),
            None => format!("port={port}"),
        };
        let options = Options::parse(&Settings {
            target: format!("http://127.0.0.1:{port}"),
            keep_host: args.keep_host,
            filter: Some(filter),
            ignore: args.ignore.clone(),
            rate: args.rate.clone(),
            connections: args.connections,
            duration: None,
            timeout: args.request_timeout.clone(),
            assert: args.assert.clone(),
        })
        .map_err(|e| anyhow::anyhow!(e.to_string().replace("--timeout", "--request-timeout")))?;
        let snapshot = Snapshot::open(&args.snapshot)?;
        let plan = DependencyPlan::from_snapshot(&snapshot, port);
        if plan.inbound == 0 {
            let seen: Vec<String> = plan
                .servers_seen
                .iter()
                .take(8)
                .map(|(s, n)| format!("{s} ×{n}"))
                .collect();
            bail!(
                "{}: no recorded request to port {port} to replay (servers seen: {}); --port is \
                 the port of the service under test",
                args.snapshot.display(),
                if seen.is_empty() {
                    "none".to_owned()
                } else {
                    seen.join(", ")
                }
            );
        }
        Ok(Job {
            args,
            snapshot: Some(snapshot),
            options,
            plan,
            env,
            ready_timeout,
            timeout,
            started: Instant::now(),
        })
    }

    /// A progress line (not with --quiet).
    fn say(&self, line: &str) {
        if !self.args.quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "tapline run: {line}");
            let _ = out.flush();
        }
    }

    /// Whether `--timeout` has passed.
    fn expired(&self) -> bool {
        self.timeout.is_some_and(|t| self.started.elapsed() >= t)
    }

    /// Makes the environment, the mocks and the build, waits for it, replays.
    fn execute(&mut self, live: &mut Live, signals: &Signals) -> anyhow::Result<Outcome> {
        let job = self;
        let args = job.args;
        let plan = &job.plan;
        let env = Environment::create(&EnvSpec {
            prefix: "run".into(),
            hosts: plan.hosts(),
            loopback_addresses: plan.loopback_addresses(),
        })
        .map_err(netns)?;
        job.say(&format!(
            "environment {} created (network namespace {}, loopback only, no route out)",
            env.name(),
            env.netns_path().display()
        ));
        let env = live.env.insert(env);
        let settings = MockSettings {
            matching: MatchConfig::default(),
            latency: match args.mock_latency {
                MockLatency::None => Latency::None,
                MockLatency::Recorded => Latency::Recorded,
            },
        };
        match MockSet::start(env, &args.snapshot, plan, settings) {
            Ok(Some(mocks)) => {
                job.say(&mocks_line(plan, &mocks));
                live.mocks = Some(mocks);
            }
            Ok(None) => job.say("mocks: none (the snapshot records no call to another server)"),
            Err(NetnsError::Mock(tapline_mock::MockError::NoPairs { detail, .. })) => job.say(
                &format!("mocks: none, no usable recorded dependency call{detail}"),
            ),
            Err(e) => return Err(netns(e)),
        }
        let logs = args.logs.clone().or_else(|| args.report.clone());
        let sut = env
            .spawn(&SpawnSpec {
                command: args.cmd.clone(),
                env: job.env.clone(),
                workdir: args.workdir.clone(),
                log_dir: logs.clone(),
                label: "sut".into(),
            })
            .map_err(netns)?;
        job.say(&format!(
            "build under test started (pid {}): {}{}",
            sut.pid(),
            args.cmd,
            logs.map(|d| format!(" (output in {})", d.join("sut.{stdout,stderr}").display()))
                .unwrap_or_default()
        ));
        let sut = live.sut.insert(sut);
        let mut signalled = None;
        let readiness = env
            .wait_ready(sut, args.port, job.ready_timeout, || {
                signalled = signalled.or_else(|| signals.received());
                signalled.is_some() || job.expired()
            })
            .map_err(netns)?;
        match readiness {
            Readiness::Ready(after) => job.say(&format!(
                "build ready on port {} in {} ms",
                args.port,
                after.as_millis()
            )),
            Readiness::Aborted => return Ok(job.interrupted(signalled)),
        }
        let snapshot = job
            .snapshot
            .take()
            .context("the snapshot was already used")?;
        let options = job.options.clone();
        job.say(&format!(
            "replaying {} recorded requests to 127.0.0.1:{} inside the environment (rate {})",
            job.plan.inbound,
            args.port,
            args.rate.as_deref().unwrap_or("100%")
        ));
        let replay = env
            .thread("tapline-replay", move || {
                tapline_replay::replay(&snapshot, &options)
            })
            .map_err(netns)?;
        loop {
            if replay.is_finished() {
                let report = replay.join().map_err(netns)??;
                if let Some(status) = sut.status() {
                    job.say(&format!("the build exited during the replay ({status})"));
                }
                return Ok(Outcome::Finished(Box::new(report)));
            }
            if let Some(signal) = signals.wait(TICK) {
                return Ok(Outcome::Signalled(signal));
            }
            if job.expired() {
                return Ok(job.interrupted(None));
            }
        }
    }

    /// The outcome of a wait cut short by `signal` or by `--timeout`.
    fn interrupted(&self, signal: Option<i32>) -> Outcome {
        match (signal, self.timeout) {
            (Some(signal), _) => Outcome::Signalled(signal),
            (None, Some(limit)) => Outcome::TimedOut(limit),
            (None, None) => Outcome::Signalled(0),
        }
    }

    /// Writes the report files asked for; returns their paths.
    fn write_reports(&self, report: &Report) -> anyhow::Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        if let Some(dir) = &self.args.report {
            std::fs::create_dir_all(dir).with_context(|| format!("--report {}", dir.display()))?;
            let json = dir.join("report.json");
            write(&json, &report.to_json())?;
            let page = dir.join("report.html");
            write(&page, &html::render(report))?;
            written.push(json);
            written.push(page);
        }
        if let Some(file) = &self.args.html {
            write(file, &html::render(report))?;
            written.push(file.clone());
        }
        if let Some(file) = &self.args.junit {
            write(file, &junit::render(report))?;
            written.push(file.clone());
        }
        Ok(written)
    }
}

/// "mocks: 2 dependencies, 60 recorded responses: inventory → 127.0.1.1:8081, …".
fn mocks_line(plan: &DependencyPlan, mocks: &MockSet) -> String {
    let each: Vec<String> = plan
        .dependencies
        .iter()
        .map(|d| {
            let ports: Vec<String> = d.ports.iter().map(ToString::to_string).collect();
            format!("{} → {}:{}", d.name, d.address, ports.join(","))
        })
        .collect();
    format!(
        "mocks: {} dependenc{}, {} recorded responses: {}",
        plan.dependencies.len(),
        if plan.dependencies.len() == 1 {
            "y"
        } else {
            "ies"
        },
        mocks.recorded(),
        each.join(", ")
    )
}

/// "mocks answered 60 calls: 60 exact, 0 closest, 0 unmatched".
fn mock_line(s: &Summary) -> String {
    let mut line = format!(
        "mocks answered {} calls: {} exact, {} closest, {} unmatched",
        s.requests, s.exact, s.closest, s.unmatched
    );
    if !s.unmatched_samples.is_empty() {
        let shown: Vec<&str> = s
            .unmatched_samples
            .iter()
            .take(UNMATCHED_SHOWN)
            .map(String::as_str)
            .collect();
        line.push_str(&format!(" (unmatched: {})", shown.join("; ")));
    }
    line
}

/// A duration as flags take it.
fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// An environment failure (exit 3) or an input failure (exit 2), by what it is.
fn netns(e: NetnsError) -> anyhow::Error {
    if e.is_environment() {
        environment(e)
    } else {
        anyhow::Error::new(e)
    }
}

/// An error with exit code 3.
fn environment(e: NetnsError) -> anyhow::Error {
    anyhow::Error::new(EnvironmentError(e.to_string()))
}

/// SIGINT and SIGTERM, turned into messages so the job can tear down before exiting.
#[derive(Debug)]
struct Signals {
    received: mpsc::Receiver<i32>,
}

impl Signals {
    /// Installs the handlers.
    fn install() -> anyhow::Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(|e| {
            EnvironmentError(format!("installing the SIGINT/SIGTERM handlers: {e}"))
        })?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("tapline-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    if tx.send(signal).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| EnvironmentError(format!("starting the signal thread: {e}")))?;
        Ok(Signals { received: rx })
    }

    /// A signal received since the last look, if any.
    fn received(&self) -> Option<i32> {
        self.received.try_recv().ok()
    }

    /// Waits up to `limit` for a signal.
    fn wait(&self, limit: Duration) -> Option<i32> {
        self.received.recv_timeout(limit).ok()
    }
}
