//! The command line of `tapline` that runs a job, following each command's flags
//! (controlplane/src/cli.rs): reports go into the job's directory.

use std::path::Path;

use super::{JobSpec, SpecError, resolve_snapshot};

/// Builds an argument list flag by flag.
struct Args(Vec<String>);

impl Args {
    fn word(&mut self, word: impl Into<String>) -> &mut Self {
        self.0.push(word.into());
        self
    }

    fn flag(&mut self, flag: &str, value: impl Into<String>) -> &mut Self {
        self.word(flag).word(value)
    }

    fn opt(&mut self, flag: &str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.flag(flag, value);
        }
        self
    }

    fn count(&mut self, flag: &str, value: Option<usize>) -> &mut Self {
        if let Some(value) = value {
            self.flag(flag, value.to_string());
        }
        self
    }

    fn each(&mut self, flag: &str, values: &[String]) -> &mut Self {
        for value in values {
            self.flag(flag, value.clone());
        }
        self
    }

    fn switch(&mut self, flag: &str, on: bool) -> &mut Self {
        if on {
            self.word(flag);
        }
        self
    }
}

impl JobSpec {
    /// The arguments of `tapline` that run the job, writing its reports into `job_dir`;
    /// `snapshots` is where snapshot names are looked up.
    ///
    /// # Errors
    /// [`SpecError`] when a snapshot name is neither a plain name nor an absolute path.
    pub fn argv(&self, snapshots: &Path, job_dir: &Path) -> Result<Vec<String>, SpecError> {
        let report = job_dir.display().to_string();
        let junit = job_dir.join("junit.xml").display().to_string();
        let snap = |name: &str| resolve_snapshot(snapshots, name).map(|p| p.display().to_string());
        let mut a = Args(Vec::new());
        match self {
            JobSpec::Run(s) => {
                a.word("run")
                    .word(snap(&s.snapshot)?)
                    .flag("--cmd", s.cmd.clone())
                    .flag("--port", s.port.to_string())
                    .each("--env", &s.env)
                    .opt("--workdir", s.workdir.as_deref())
                    .opt("--ready-timeout", s.ready_timeout.as_deref())
                    .opt("--timeout", s.timeout.as_deref())
                    .opt("--filter", s.filter.as_deref())
                    .each("--ignore", &s.ignore)
                    .opt("--rate", s.rate.as_deref())
                    .count("--connections", s.connections)
                    .switch("--keep-host", s.keep_host)
                    .opt("--request-timeout", s.request_timeout.as_deref())
                    .opt("--assert", s.assert.as_deref())
                    .opt("--mock-latency", s.mock_latency.as_deref())
                    .flag("--report", report)
                    .flag("--junit", junit);
            }
            JobSpec::Mirror(s) => {
                let mocks = s.mocks.as_deref().map(snap).transpose()?;
                a.word("mirror")
                    .flag("--iface", s.iface.clone())
                    .opt("--netns", s.netns.as_deref())
                    .flag("--port", s.port.to_string())
                    .flag("--cmd", s.cmd.clone())
                    .each("--env", &s.env)
                    .opt("--workdir", s.workdir.as_deref())
                    .opt("--ready-timeout", s.ready_timeout.as_deref())
                    .opt("--duration", s.duration.as_deref())
                    .opt("--mocks", mocks.as_deref())
                    .switch("--no-learn", s.no_learn)
                    .each("--ignore", &s.ignore)
                    .switch("--keep-host", s.keep_host)
                    .count("--queue", s.queue)
                    .count("--max-in-flight", s.max_in_flight)
                    .opt("--request-timeout", s.request_timeout.as_deref())
                    .opt("--assert", s.assert.as_deref())
                    .flag("--report", report)
                    .flag("--junit", junit);
            }
            JobSpec::Load(s) => {
                a.word("replay")
                    .word(snap(&s.snapshot)?)
                    .flag("--target", s.target.clone())
                    .opt("--rate", s.rate.as_deref())
                    .opt("--duration", s.duration.as_deref())
                    .count("--connections", s.connections)
                    .opt("--assert", s.assert.as_deref())
                    .opt("--filter", s.filter.as_deref())
                    .each("--ignore", &s.ignore)
                    .opt("--timeout", s.timeout.as_deref())
                    .switch("--keep-host", s.keep_host)
                    .flag("--report", report)
                    .flag("--junit", junit);
            }
        }
        Ok(a.0)
    }
}
