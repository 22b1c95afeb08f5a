//! `tapline mirror`: live shadow traffic. It makes an ephemeral environment (a fresh network
//! namespace with no route out), starts the build under test there (with mocks of the
//! service's dependencies from `--mocks SNAP` when given), captures production's traffic on
//! `--iface` passively (XDP and TC, as `tapline capture` does), and sends each request to
//! `--port` to the build as soon as its exchange completes, from a thread inside the
//! environment; the build's answers are compared with production's and go nowhere else. A
//! summary line shows the match rate and both latencies every second; on SIGINT, SIGTERM or
//! `--duration` the report is written and everything is torn down.
//!
//! Production is never slowed: the capture does not wait for the mirror, the mirror's queue
//! and in-flight requests are bounded, and what does not fit is dropped and counted.
//!
//! Exit codes: 0 every mirrored exchange matched and every assertion holds; 1 an exchange
//! differed or failed, or an assertion was breached; 2 bad input (a flag, a build that exits
//! or never listens); 3 environment (privilege, eBPF, the interface); 130 when stopped before
//! the build was ready.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tapline_dataplane::import::ImportOptions;
use tapline_dataplane::live::{
    self, CaptureConfig, DEFAULT_RING_BYTES, Filter, LiveOptions, LiveSource,
};
use tapline_dataplane::snapshot::Snapshot;
use tapline_mirror::learn::{self, LearnSummary, LiveMocks};
use tapline_mirror::report::{self, Facts};
use tapline_mirror::{DEFAULT_HOLD, DEFAULT_LEARNED, Ledger, MirrorConfig};
use tapline_mock::{Latency, MatchConfig};
use tapline_netns::{
    DependencyPlan, EnvSpec, Environment, MockSet, MockSettings, NetnsError, Process, Readiness,
    SpawnSpec, cleanup_stale,
};
use tapline_replay::assertion::{Assertion, parse_assertions};
use tapline_replay::rules::IgnoreRule;
use tapline_replay::units;

mod status;

use crate::cli::MirrorArgs;
use crate::exit::{self, EnvironmentError};

/// Default wait for the build to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Time the build gets to exit after SIGTERM at teardown.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Pair batches the capture's tap holds for the mirror before it drops (counted).
const TAP_DEPTH: usize = 256;

/// Runs `tapline mirror`.
pub fn run(args: &MirrorArgs) -> anyhow::Result<u8> {
    let setup = Setup::prepare(args)?;
    tapline_netns::check_privileges("tapline mirror").map_err(environment)?;
    let cleaned = cleanup_stale();
    if !cleaned.removed.is_empty() {
        setup.say(&format!(
            "removed {} stale environment(s) of dead runs: {}",
            cleaned.removed.len(),
            cleaned.removed.join(", ")
        ));
    }
    let stop = live::stop_on_signals()
        .map_err(|e| EnvironmentError(format!("cannot install signal handlers: {e}")))?;
    let mut parts = Parts::default();
    let outcome = setup.execute(&mut parts, stop);
    if let Some(mut sut) = parts.sut.take() {
        sut.stop(STOP_GRACE);
    }
    let mocks = parts.mocks.take().map(MockSet::stop);
    if let Some(env) = parts.env.take() {
        let name = env.name().to_owned();
        let done = env.teardown();
        for error in &done.errors {
            eprintln!("tapline mirror: warning: teardown of {name}: {error}");
        }
        setup.say(&format!(
            "teardown done in {} ms ({name} removed)",
            done.elapsed.as_millis()
        ));
    }
    let Some(Mirrored {
        ledger,
        started_ns: started,
        elapsed,
        learned,
    }) = outcome?
    else {
        eprintln!("tapline mirror: stopped before the build was ready; torn down");
        return Ok(130);
    };
    let mocks_json = match (mocks, learned) {
        (Some(s), _) => Some(serde_json::json!({
            "from": "snapshot", "requests": s.requests, "exact": s.exact, "closest": s.closest,
            "unmatched": s.unmatched, "unmatched_samples": s.unmatched_samples,
        })),
        (None, Some(l)) => {
            setup.say(&format!(
                "live mocks: {} dependency requests learned from {} answers ({}), answered {} \
                 calls of the build: {} exact, {} closest, {} unmatched",
                l.learned,
                l.answers,
                if l.servers.is_empty() {
                    "no dependency seen".to_owned()
                } else {
                    l.servers.join(", ")
                },
                l.requests,
                l.exact,
                l.closest,
                l.unmatched
            ));
            serde_json::to_value(&l).ok().map(|mut v| {
                v["from"] = "live".into();
                v
            })
        }
        (None, None) => None,
    };
    let source = match &args.netns {
        Some(ns) => format!("{ns}/{} port {}", args.iface, args.port),
        None => format!("{} port {}", args.iface, args.port),
    };
    let target = format!("`{}` at 127.0.0.1:{}", args.cmd, args.port);
    let facts = Facts {
        source: &source,
        target: &target,
        started_ns: started,
        duration: elapsed,
        port: args.port,
        queue: setup.config.queue,
        max_in_flight: setup.config.max_in_flight,
        timeout: setup.config.timeout,
        assertions: &setup.assertions,
    };
    let report = report::build(&ledger, &facts, mocks_json);
    let written = report.write(args.report.as_deref(), args.junit.as_deref())?;
    let mut out = std::io::stdout().lock();
    let text = if args.quiet {
        report.text().lines().last().unwrap_or_default().to_owned() + "\n"
    } else {
        report.text()
    };
    let _ = out.write_all(text.as_bytes());
    for path in written {
        let _ = writeln!(out, "wrote {}", path.display());
    }
    let _ = out.flush();
    Ok(if report.report.passed {
        0
    } else {
        exit::ASSERTIONS
    })
}

/// What a mirror run measured.
#[derive(Debug)]
struct Mirrored {
    ledger: Arc<Ledger>,
    started_ns: u64,
    elapsed: Duration,
    learned: Option<LearnSummary>,
}

/// What runs, for the teardown.
#[derive(Debug, Default)]
struct Parts {
    env: Option<Environment>,
    mocks: Option<MockSet>,
    sut: Option<Process>,
}

/// The checked flags.
#[derive(Debug)]
struct Setup<'a> {
    args: &'a MirrorArgs,
    config: MirrorConfig,
    assertions: Vec<Assertion>,
    plan: Option<DependencyPlan>,
    env: Vec<(String, String)>,
    ready_timeout: Duration,
    duration: Option<Duration>,
}

/// A duration flag.
fn duration(flag: &str, text: Option<&str>) -> anyhow::Result<Option<Duration>> {
    text.map(|t| {
        units::parse_duration(t)
            .ok()
            .filter(|d| !d.is_zero())
            .with_context(|| format!("{flag} {t:?}: {}", units::DURATION_HINT))
    })
    .transpose()
}

impl<'a> Setup<'a> {
    /// Checks the flags (errors are input errors: exit 2).
    fn prepare(args: &'a MirrorArgs) -> anyhow::Result<Self> {
        if args.cmd.trim().is_empty() {
            bail!("--cmd: expected a command line to start the build to shadow production with");
        }
        // Production's side is checked before a namespace is made or the build started.
        match &args.netns {
            Some(ns) if !std::path::Path::new("/run/netns").join(ns).exists() => {
                return Err(EnvironmentError(format!(
                    "--netns {ns}: no such network namespace (/run/netns/{ns}; see `ip netns list`)"
                ))
                .into());
            }
            None if !std::path::Path::new("/sys/class/net")
                .join(&args.iface)
                .exists() =>
            {
                return Err(EnvironmentError(format!(
                    "--iface {}: no such interface on this host (see `ip link`)",
                    args.iface
                ))
                .into());
            }
            _ => {}
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
        for (flag, value) in [
            ("--queue", args.queue),
            ("--max-in-flight", args.max_in_flight),
        ] {
            if let Some(n) = value
                && !(1..=1_000_000).contains(&n)
            {
                bail!("{flag} {n}: expected a number from 1 to 1000000");
            }
        }
        if let Some(w) = args.workers
            && !(1..=1024).contains(&w)
        {
            bail!("--workers {w}: expected a number from 1 to 1024");
        }
        let ignore = args
            .ignore
            .iter()
            .map(|r| IgnoreRule::parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        let assertions = match &args.assert {
            Some(text) => parse_assertions(text)?,
            None => Vec::new(),
        };
        let target = SocketAddr::from(([127, 0, 0, 1], args.port));
        let mut config = MirrorConfig::new(args.port, target);
        if args.keep_host {
            config.host = None;
        }
        config.queue = args.queue.unwrap_or(config.queue);
        config.max_in_flight = args.max_in_flight.unwrap_or(config.max_in_flight);
        config.timeout = duration("--request-timeout", args.request_timeout.as_deref())?
            .unwrap_or(config.timeout);
        config.ignore = ignore;
        let plan = match &args.mocks {
            Some(path) => Some(DependencyPlan::from_snapshot(
                &Snapshot::open(path)?,
                args.port,
            )),
            None => None,
        };
        Ok(Setup {
            args,
            config,
            assertions,
            plan,
            env,
            ready_timeout: duration("--ready-timeout", args.ready_timeout.as_deref())?
                .unwrap_or(READY_TIMEOUT),
            duration: duration("--duration", args.duration.as_deref())?,
        })
    }

    /// A progress line (not with --quiet).
    fn say(&self, line: &str) {
        if !self.args.quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "tapline mirror: {line}");
            let _ = out.flush();
        }
    }

    /// Makes the environment, the mocks and the build, then mirrors until stopped; returns
    /// the ledger, the start (ns since the epoch) and how long it mirrored, or `None` when
    /// stopped before the build was ready.
    fn execute(
        &self,
        parts: &mut Parts,
        stop: &'static AtomicBool,
    ) -> anyhow::Result<Option<Mirrored>> {
        let args = self.args;
        let env = Environment::create(&EnvSpec {
            prefix: "mirror".into(),
            hosts: self
                .plan
                .as_ref()
                .map(DependencyPlan::hosts)
                .unwrap_or_default(),
            loopback_addresses: self
                .plan
                .as_ref()
                .map(DependencyPlan::loopback_addresses)
                .unwrap_or_default(),
        })
        .map_err(netns)?;
        self.say(&format!(
            "environment {} created (network namespace {}, loopback only, no route out)",
            env.name(),
            env.netns_path().display()
        ));
        let env = parts.env.insert(env);
        if let (Some(plan), Some(path)) = (&self.plan, &args.mocks) {
            let settings = MockSettings {
                matching: MatchConfig::default(),
                latency: Latency::None,
            };
            match MockSet::start(env, path, plan, settings) {
                Ok(Some(mocks)) => {
                    self.say(&format!(
                        "mocks: {} recorded responses of {} dependencies from {}",
                        mocks.recorded(),
                        plan.dependencies.len(),
                        path.display()
                    ));
                    parts.mocks = Some(mocks);
                }
                Ok(None) => {
                    self.say("mocks: none (the snapshot records no call to another server)")
                }
                Err(e) => return Err(netns(e)),
            }
        }
        let sut = env
            .spawn(&SpawnSpec {
                command: args.cmd.clone(),
                env: self.env.clone(),
                workdir: args.workdir.clone(),
                log_dir: args.report.clone(),
                label: "sut".into(),
            })
            .map_err(netns)?;
        self.say(&format!("build started (pid {}): {}", sut.pid(), args.cmd));
        let sut = parts.sut.insert(sut);
        let readiness = env
            .wait_ready(sut, args.port, self.ready_timeout, || {
                stop.load(Ordering::Relaxed)
            })
            .map_err(netns)?;
        match readiness {
            Readiness::Ready(after) => self.say(&format!(
                "build ready on port {} in {} ms",
                args.port,
                after.as_millis()
            )),
            Readiness::Aborted => return Ok(None),
        }
        self.mirror(env, stop).map(Some)
    }

    /// Captures and mirrors until stopped.
    fn mirror(&self, env: &Environment, stop: &'static AtomicBool) -> anyhow::Result<Mirrored> {
        let args = self.args;
        let mut config = self.config.clone();
        let live_mocks = (!args.no_learn && args.mocks.is_none()).then(|| {
            config.hold = DEFAULT_HOLD;
            LiveMocks::new(args.port, DEFAULT_LEARNED)
        });
        let stop_mocks = Arc::new(AtomicBool::new(false));
        let serving = match &live_mocks {
            Some(mocks) => {
                let (mocks, stop) = (Arc::clone(mocks), Arc::clone(&stop_mocks));
                self.say(&format!(
                    "live mocks: the build's dependency calls are answered with production's \
                     latest answers to the same calls (requests held {} ms for them)",
                    DEFAULT_HOLD.as_millis()
                ));
                Some(
                    env.thread("tapline-live-mocks", move || {
                        learn::serve(&mocks, &stop, add_to_loopback)
                    })
                    .map_err(netns)?,
                )
            }
            None => None,
        };
        let learner = live_mocks.as_ref().map(LiveMocks::learner);
        let (ledger, intake, senders) = tapline_mirror::start(&config, learner);
        let sending = env
            .thread("tapline-mirror", move || senders.run())
            .map_err(netns)?;
        let (tap_tx, tap_rx) = crossbeam_channel::bounded(TAP_DEPTH);
        let intake = std::thread::Builder::new()
            .name("tapline-intake".into())
            .spawn(move || intake.run(&tap_rx))
            .context("starting the mirror's intake thread")?;
        let scratch = tempfile::tempdir().context("making a folder for the capture")?;
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| scratch.path().join("capture"));
        let mut pipeline = ImportOptions::default();
        if let Some(w) = args.workers {
            pipeline.workers = w;
        }
        pipeline.pair_tap = Some(tap_tx);
        let capture = CaptureConfig {
            ring_bytes: DEFAULT_RING_BYTES,
            // Without learning only the service's own exchanges are needed.
            filter: Filter {
                ports: if args.no_learn {
                    vec![args.port]
                } else {
                    vec![]
                },
                hosts: vec![],
            },
            ..CaptureConfig::default()
        };
        let options = LiveOptions {
            source: LiveSource::Interface(args.iface.clone()),
            netns: args.netns.clone(),
            capture,
            tls: None,
            duration: self.duration,
            out,
            pipeline,
            status_every: Duration::from_secs(1),
        };
        let started_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0));
        let started = Instant::now();
        let observed = Arc::clone(&ledger);
        let quiet = args.quiet;
        // The capture enters production's namespace: on a thread of its own, never this one.
        let capturing = std::thread::Builder::new()
            .name("tapline-capture".into())
            .spawn(move || {
                let mut observer = status::Observer::new(observed, quiet);
                let result = live::run(&options, stop, &mut observer);
                observer.clear();
                drop(options);
                result
            })
            .context("starting the capture thread")?;
        let captured = capturing
            .join()
            .map_err(|_| anyhow::anyhow!("the capture thread panicked"))?;
        let elapsed = started.elapsed();
        if let Ok(summary) = &captured {
            ledger
                .tap_full
                .store(summary.manifest.counts.tap_dropped_pairs, Ordering::Relaxed);
        }
        let _ = intake.join();
        let sent = sending.join().map_err(netns)?;
        stop_mocks.store(true, Ordering::Relaxed);
        if let Some(serving) = serving {
            serving.join().map_err(netns)??;
        }
        let summary = captured.map_err(|e| {
            if e.is_environment() {
                anyhow::Error::new(EnvironmentError(e.to_string()))
            } else {
                anyhow::Error::new(e).context("capturing production's traffic")
            }
        })?;
        sent?;
        if let Some(kept) = &args.out {
            self.say(&format!(
                "capture kept in {} ({} pairs)",
                kept.display(),
                summary.manifest.counts.rrpairs
            ));
        }
        Ok(Mirrored {
            ledger,
            started_ns,
            elapsed,
            learned: live_mocks.map(|m| m.summary()),
        })
    }
}

/// Inside the environment: puts a learned dependency's address on the loopback, so its live
/// mock can listen there (an address already there is fine).
fn add_to_loopback(ip: std::net::IpAddr) -> std::io::Result<()> {
    let mut rtnl = tapline_netns::rtnl::Rtnl::open()?;
    let lo = rtnl.link_index("lo")?.unwrap_or(1);
    let prefix = if ip.is_ipv4() { 32 } else { 128 };
    match rtnl.add_address(lo, ip, prefix) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_name_their_flag() {
        let e = duration("--duration", Some("soon"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--duration \"soon\""), "{e}");
        assert_eq!(duration("--duration", None).unwrap(), None);
    }
}
