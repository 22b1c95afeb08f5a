//! The command line, as clap derives it. DESIGN.md's "Command line" section is the contract.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Capture real service traffic, turn it into request/response pairs, replay it.
#[derive(Debug, Parser)]
#[command(name = "tapline", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// tapline's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Capture live traffic into a snapshot: an interface with eBPF, or a SPAN port.
    Capture(CaptureArgs),
    /// Import a pcap or pcapng file into a snapshot of packets and request/response pairs.
    Import(ImportArgs),
    /// Show the request/response pairs of a snapshot.
    Inspect(InspectArgs),
    /// Capture sample HTTP traffic on loopback, import it and inspect it: the loop in one command.
    Demo(DemoArgs),
    /// Send a snapshot's HTTP requests to a target, compare the responses with the recorded ones,
    /// pace load, and judge assertions against the recorded figures.
    Replay(ReplayArgs),
    /// Answer a service's outbound HTTP calls from the responses recorded in a snapshot.
    Mock(MockArgs),
    /// The control plane daemon: a job API (run, mirror, load) over HTTPS with tokens or
    /// client certificates, jobs kept in SQLite and run at most N at a time.
    Serve(crate::commands::serve::ServeArgs),
    /// Submit, list, show, watch, cancel jobs of a `tapline serve` and fetch their reports.
    Job(crate::commands::job::JobArgs),
    /// Start a build in a fresh network namespace with mocks of its recorded dependencies,
    /// replay the snapshot's requests to it, report, and tear everything down.
    Run(RunArgs),
    /// Live shadow traffic: production's requests, captured as they complete, sent to a build
    /// in a fresh network namespace; its answers diffed against production's and dropped.
    Mirror(MirrorArgs),
}

/// `tapline capture`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).multiple(true).args(["iface", "span", "tls", "pids", "binaries"])))]
pub struct CaptureArgs {
    /// The interface to capture with eBPF: XDP on ingress, TC on egress.
    #[arg(long, value_name = "IF")]
    pub iface: Option<String>,
    /// A SPAN / mirror port to capture promiscuously (AF_PACKET ring).
    #[arg(long, value_name = "IF")]
    pub span: Option<String>,
    /// Enter this named network namespace (`ip netns`) before attaching.
    #[arg(long, value_name = "NS")]
    pub netns: Option<String>,
    /// Also capture TLS plaintext of every process, through uprobes on OpenSSL and GnuTLS
    /// (processes that start later too).
    #[arg(long)]
    pub tls: bool,
    /// Capture the TLS plaintext of this process (repeat for more).
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Capture the TLS plaintext of the processes running this executable (its own TLS
    /// library if statically linked, else the ones it links; repeat for more).
    #[arg(long = "binary", value_name = "PATH")]
    pub binaries: Vec<PathBuf>,
    /// Only TCP/UDP packets from or to this port (repeat for more).
    #[arg(long = "port", value_name = "P")]
    pub ports: Vec<u16>,
    /// Only packets from or to this address or network, such as 10.0.0.0/8 (repeat for more).
    #[arg(long = "host", value_name = "CIDR")]
    pub hosts: Vec<String>,
    /// Bytes kept of each packet, 1 to 65536 (default: whole packets up to 64 KiB).
    #[arg(long, value_name = "N")]
    pub snaplen: Option<u32>,
    /// Stop after this long, such as 30s, 5m, 1h or 1500ms (default: at Ctrl-C or SIGTERM).
    #[arg(long, value_name = "D")]
    pub duration: Option<String>,
    /// Size of the kernel ring buffer in MiB, a power of two (default 64).
    #[arg(long, value_name = "MIB")]
    pub ring_mib: Option<u32>,
    /// Reassembly worker threads (default: the number of cores, or the config file's).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// The snapshot directory to create.
    #[arg(long)]
    pub out: PathBuf,
    /// A tapline config file (TOML); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print nothing but errors and the summary.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `tapline import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The capture file (pcap or pcapng).
    pub file: PathBuf,
    /// The snapshot directory to create.
    #[arg(long)]
    pub out: PathBuf,
    /// Reassembly worker threads (default: the number of cores, or the config file's).
    #[arg(long)]
    pub workers: Option<usize>,
    /// A tapline config file (TOML); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Output formats of `tapline inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectFormat {
    /// A table for people.
    Table,
    /// One JSON object per pair.
    Jsonl,
    /// A markdown section per pair, with heads and text bodies.
    Markdown,
}

/// `tapline inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The snapshot directory.
    pub snapshot: PathBuf,
    /// Only pairs matching this expression, e.g. `status>=500 and path~/api/`.
    #[arg(long)]
    pub filter: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = InspectFormat::Table)]
    pub format: InspectFormat,
    /// Show at most this many pairs.
    #[arg(long)]
    pub limit: Option<usize>,
}

/// `tapline demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where to keep the demo's capture and snapshot (default: a new temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// `--latency` of `tapline mock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MockLatency {
    /// Answer at once.
    None,
    /// Wait the recorded time from the request's last byte to the response's last byte.
    Recorded,
}

/// `--after-last` of `tapline mock`: what identical calls get past the last recorded answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MockAfterLast {
    /// The last recorded answer, again.
    RepeatLast,
    /// The first recorded answer again, and so on round.
    Wrap,
}

/// `tapline mock`.
#[derive(Debug, clap::Args)]
pub struct MockArgs {
    /// The snapshot directory.
    pub snapshot: PathBuf,
    /// The address to listen on, ip:port (such as 127.0.0.1:9000).
    #[arg(long)]
    pub listen: std::net::SocketAddr,
    /// Answer only the outbound calls of this service: its IP address, or ip:port.
    #[arg(long)]
    pub service: Option<String>,
    /// Answer only from the pairs whose server is this dependency (IP address or ip:port);
    /// repeat for several.
    #[arg(long = "dependency")]
    pub dependencies: Vec<String>,
    /// Wait the recorded response time before answering, or answer at once.
    #[arg(long, value_enum, default_value_t = MockLatency::None)]
    pub latency: MockLatency,
    /// What the n-th identical call gets when fewer answers were recorded.
    #[arg(long, value_enum, default_value_t = MockAfterLast::RepeatLast)]
    pub after_last: MockAfterLast,
    /// The least score (0 to 1) of a closest match.
    #[arg(long, default_value_t = 0.6)]
    pub min_score: f64,
    /// The status of the answer to a request nothing recorded matches.
    #[arg(long, default_value_t = 599)]
    pub no_match_status: u16,
    /// Send recorded responses without the `X-Tapline-Mock: matched` header.
    #[arg(long)]
    pub no_mark: bool,
    /// Worker threads (default: the number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `tapline replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The snapshot directory.
    pub snapshot: PathBuf,
    /// Where to send the requests: http://HOST[:PORT] (required here or in the config file).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Keep the recorded Host header instead of the target's.
    #[arg(long)]
    pub keep_host: bool,
    /// Only pairs matching this expression (the language of `inspect --filter`).
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Leave something out of the comparison: header:NAME, json:$.PATH, body or status (repeat).
    #[arg(long = "ignore", value_name = "RULE")]
    pub ignore: Vec<String>,
    /// 100% keeps the recorded pace, 1000% is ten times faster, max is as fast as the target answers.
    #[arg(long, value_name = "RATE")]
    pub rate: Option<String>,
    /// Connections for --rate max (default: the recorded connections, at most 64).
    #[arg(long, value_name = "N")]
    pub connections: Option<usize>,
    /// Loop the snapshot for this long, such as 30s or 5m.
    #[arg(long, value_name = "D")]
    pub duration: Option<String>,
    /// Longest wait for a connection or a response (default 30s).
    #[arg(long, value_name = "D")]
    pub timeout: Option<String>,
    /// Write report.json and report.html into this directory.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Write a JUnit XML report to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Assertions against the recorded figures, such as 'p99<=1.1x,errors<=0.5%,match>=99%'.
    #[arg(long = "assert", value_name = "EXPR")]
    pub assert: Option<String>,
    /// A tapline config file (TOML) with a [replay] section; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print only the verdict line.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `tapline run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The snapshot directory.
    pub snapshot: PathBuf,
    /// The system under test: a command line, run by /bin/sh -c inside the environment.
    #[arg(long, value_name = "CMD")]
    pub cmd: String,
    /// The port it listens on; the snapshot's requests to this port are replayed, the other
    /// servers it called are mocked.
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// A variable for the system under test, K=V (repeat for more).
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Its working directory (default: the current one).
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Longest wait for it to accept connections on --port (default 30s).
    #[arg(long, value_name = "D")]
    pub ready_timeout: Option<String>,
    /// Longest the whole job may take, such as 5m; past it everything is torn down (exit 1).
    #[arg(long, value_name = "D")]
    pub timeout: Option<String>,
    /// Only the requests matching this expression too (the language of `inspect --filter`).
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Leave something out of the comparison: header:NAME, json:$.PATH, body or status (repeat).
    #[arg(long = "ignore", value_name = "RULE")]
    pub ignore: Vec<String>,
    /// 100% keeps the recorded pace, 1000% is ten times faster, max is as fast as it answers.
    #[arg(long, value_name = "RATE")]
    pub rate: Option<String>,
    /// Connections for --rate max (default: the recorded connections, at most 64).
    #[arg(long, value_name = "N")]
    pub connections: Option<usize>,
    /// Keep the recorded Host header instead of 127.0.0.1:P.
    #[arg(long)]
    pub keep_host: bool,
    /// Longest wait for a connection or a response during the replay (default 30s).
    #[arg(long, value_name = "D")]
    pub request_timeout: Option<String>,
    /// Assertions against the recorded figures, such as 'p99<=1.1x,errors<=0.5%,match>=99%'.
    #[arg(long = "assert", value_name = "EXPR")]
    pub assert: Option<String>,
    /// Write report.json and report.html (and the build's sut.stdout and sut.stderr) into
    /// this directory.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Write a JUnit XML report to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the HTML report to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Keep the build's sut.stdout and sut.stderr in this directory (default: the --report
    /// directory; without either they go with the environment).
    #[arg(long, value_name = "DIR")]
    pub logs: Option<PathBuf>,
    /// Whether the mocks wait the recorded response time before answering.
    #[arg(long, value_enum, default_value_t = MockLatency::None)]
    pub mock_latency: MockLatency,
    /// Print only the verdict line (and errors).
    #[arg(long, short)]
    pub quiet: bool,
    /// Submit the run to a control plane (`tapline serve`) at this URL instead of running it
    /// here, follow it, and fetch its reports into --report/--junit/--html.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Token or client certificate for --server.
    #[command(flatten)]
    pub credentials: crate::commands::job::Credentials,
}

/// `tapline mirror`.
#[derive(Debug, clap::Args)]
pub struct MirrorArgs {
    /// The interface production's traffic passes (captured passively with XDP and TC).
    #[arg(long, value_name = "IF")]
    pub iface: String,
    /// Enter this named network namespace (`ip netns`) to capture.
    #[arg(long, value_name = "NS")]
    pub netns: Option<String>,
    /// The port of production's service: requests to it are mirrored; the build listens on it.
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// The build to shadow production with: a command line, run by /bin/sh -c inside a fresh
    /// network namespace.
    #[arg(long, value_name = "CMD")]
    pub cmd: String,
    /// A variable for the build, K=V (repeat for more).
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// The build's working directory (default: the current one).
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Longest wait for the build to accept connections on --port (default 30s).
    #[arg(long, value_name = "D")]
    pub ready_timeout: Option<String>,
    /// Stop after this long, such as 30s or 5m (default: at Ctrl-C or SIGTERM).
    #[arg(long, value_name = "D")]
    pub duration: Option<String>,
    /// Serve the build's dependency calls from this snapshot's recorded ones (as tapline run).
    #[arg(long, value_name = "SNAP")]
    pub mocks: Option<PathBuf>,
    /// Do not learn the build's dependency answers from production's live calls.
    #[arg(long)]
    pub no_learn: bool,
    /// Leave something out of the comparison: header:NAME, json:$.PATH, body or status (repeat).
    #[arg(long = "ignore", value_name = "RULE")]
    pub ignore: Vec<String>,
    /// Keep production's Host header instead of 127.0.0.1:P.
    #[arg(long)]
    pub keep_host: bool,
    /// Requests waiting for the build, at most; past it they are dropped, counted (default 1024).
    #[arg(long, value_name = "N")]
    pub queue: Option<usize>,
    /// Requests in flight to the build, at most (default 32).
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<usize>,
    /// Longest wait for the build's answer to one request (default 5s).
    #[arg(long, value_name = "D")]
    pub request_timeout: Option<String>,
    /// Assertions against production's figures, such as 'match>=99%,p99<=1.2x'.
    #[arg(long = "assert", value_name = "EXPR")]
    pub assert: Option<String>,
    /// Write report.json and report.html (and the build's sut.stdout and sut.stderr) here.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Write a JUnit XML report to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Keep the capture as a snapshot in this directory (default: a temporary one, removed).
    #[arg(long, value_name = "SNAP")]
    pub out: Option<PathBuf>,
    /// Reassembly worker threads of the capture (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Print only the verdict line (and errors).
    #[arg(long, short)]
    pub quiet: bool,
}
