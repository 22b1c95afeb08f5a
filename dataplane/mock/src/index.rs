//! The matcher: a deterministic core that picks the recorded response for a request.
//!
//! It is built once from the recorded exchanges and then only read, but for one atomic counter
//! per group of identical recorded requests, so server threads share it without a lock.
//!
//! 1. **Scope.** Each recorded exchange belongs to a dependency: its normalised `Host`, or its
//!    server address when it had no `Host`. A request whose `Host` names a dependency (its
//!    `Host`, or the server address of exactly one dependency) is answered from that
//!    dependency only; any other `Host` (such as the mock's own address) or none makes every
//!    recorded exchange a candidate.
//! 2. **Exact.** Recorded requests with the same method, target (byte for byte) and body form a
//!    group, in capture order. An identical request is answered by the group: the n-th call
//!    gets the n-th recorded answer; past the last one the last is repeated
//!    ([`SequenceEnd::RepeatLast`], the default: a polled dependency stays in its final state)
//!    or the sequence starts again ([`SequenceEnd::Wrap`]).
//! 3. **Closest.** Otherwise the group of the same method with the best [`crate::score`] that
//!    is eligible (path similarity of at least [`crate::score::MIN_PATH`] and a total of at
//!    least `min_score`) answers, and its sequence advances as for an exact match; ties go to
//!    the group recorded first.
//! 4. **No match.** Otherwise the request gets no recorded answer; the three best-scoring
//!    groups of the scope (any method) are named as candidates.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::FxHasher;

use crate::recorded::{Recorded, address_alias, normalize_host};
use crate::render::{Rendered, render};
use crate::score::{Features, Score};

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Candidates named in a no-match answer.
const NO_MATCH_CANDIDATES: usize = 3;

/// What the n-th call past the last recorded answer of a group gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SequenceEnd {
    /// The last recorded answer, again and again.
    #[default]
    RepeatLast,
    /// The first recorded answer again, and so on round.
    Wrap,
}

/// How the matcher decides and renders.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchConfig {
    /// The least total score of a closest match (`0.0..=1.0`).
    pub min_score: f64,
    /// What happens past the last recorded answer.
    pub end: SequenceEnd,
    /// Whether matched responses carry `X-Tapline-Mock: matched`.
    pub mark: bool,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            min_score: 0.6,
            end: SequenceEnd::RepeatLast,
            mark: true,
        }
    }
}

/// A request as the matcher sees it (parsed by the server, or built by a test).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method.
    pub method: &'a str,
    /// The target exactly as received.
    pub target: &'a [u8],
    /// The headers in order.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The body, transfer coding removed.
    pub body: &'a [u8],
}

impl Request<'_> {
    /// The `Host` header, when there is one.
    pub fn host(&self) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
            .map(|(_, v)| *v)
    }
}

/// A recorded dependency: the exchanges of one `Host` (or server address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// Its name: the normalised `Host`, or the server address.
    pub name: String,
    /// The server addresses its exchanges went to.
    pub servers: Vec<std::net::SocketAddr>,
    /// Recorded exchanges.
    pub responses: usize,
}

/// Which recorded exchanges a request is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every dependency (the request's `Host` names none).
    All,
    /// One dependency, by its index in [`Index::dependencies`].
    Dependency(usize),
}

/// The matcher's verdict on a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// An identical recorded request: `recorded` answers, as the `call`-th call (from 1).
    Exact {
        /// Index of the answering exchange.
        recorded: usize,
        /// Which call of its group this was, from 1.
        call: u64,
    },
    /// The closest recorded request answers.
    Closest {
        /// Index of the answering exchange.
        recorded: usize,
        /// Which call of its group this was, from 1.
        call: u64,
        /// How close it was.
        score: Score,
    },
    /// Nothing recorded answers this request.
    NoMatch {
        /// Where the matcher looked.
        scope: Scope,
        /// The best-scoring recorded requests of the scope, best first.
        candidates: Vec<Candidate>,
    },
}

/// A recorded request that was considered for a request that got no match.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Index of the exchange.
    pub recorded: usize,
    /// Its score.
    pub score: Score,
    /// Whether it had the request's method.
    pub same_method: bool,
}

#[derive(Debug)]
struct Group {
    scope: Scope,
    members: Vec<usize>,
    next: AtomicU64,
    features: Features,
}

/// The recorded exchanges, indexed for matching, with their responses rendered.
#[derive(Debug)]
pub struct Index {
    recorded: Vec<Recorded>,
    rendered: Vec<Rendered>,
    dependencies: Vec<Dependency>,
    aliases: FxMap<String, usize>,
    groups: Vec<Group>,
    exact: FxMap<u64, Vec<usize>>,
    by_method: FxMap<(Scope, String), Vec<usize>>,
    by_scope: FxMap<Scope, Vec<usize>>,
    config: MatchConfig,
}

impl Index {
    /// Indexes `recorded` (in capture order) for matching.
    pub fn new(recorded: Vec<Recorded>, config: MatchConfig) -> Self {
        let mut dependencies: Vec<Dependency> = Vec::new();
        let mut names: FxMap<String, usize> = FxMap::default();
        let mut dependency_of = Vec::with_capacity(recorded.len());
        for r in &recorded {
            let name = r.dependency();
            let d = *names.entry(name.clone()).or_insert_with(|| {
                dependencies.push(Dependency {
                    name,
                    servers: Vec::new(),
                    responses: 0,
                });
                dependencies.len() - 1
            });
            if let Some(dep) = dependencies.get_mut(d) {
                dep.responses += 1;
                if !dep.servers.contains(&r.server) {
                    dep.servers.push(r.server);
                }
            }
            dependency_of.push(d);
        }
        // A server address names a dependency when it serves exactly one.
        let mut aliases = names.clone();
        let mut by_address: FxMap<String, Vec<usize>> = FxMap::default();
        for (d, dep) in dependencies.iter().enumerate() {
            for server in &dep.servers {
                by_address
                    .entry(address_alias(*server))
                    .or_default()
                    .push(d);
            }
        }
        for (alias, deps) in by_address {
            if let [d] = deps.as_slice() {
                aliases.entry(alias).or_insert(*d);
            }
        }

        let mut index = Index {
            rendered: recorded
                .iter()
                .map(|r| render(&r.response, &r.method, config.mark))
                .collect(),
            recorded: Vec::new(),
            dependencies,
            aliases,
            groups: Vec::new(),
            exact: FxMap::default(),
            by_method: FxMap::default(),
            by_scope: FxMap::default(),
            config,
        };
        for (i, r) in recorded.iter().enumerate() {
            let dep = dependency_of.get(i).copied().unwrap_or(0);
            for scope in [Scope::All, Scope::Dependency(dep)] {
                index.insert(&recorded, i, r, scope);
            }
        }
        index.recorded = recorded;
        index
    }

    fn insert(&mut self, recorded: &[Recorded], i: usize, r: &Recorded, scope: Scope) {
        let key = key_hash(scope, &r.method, &r.target, &r.body);
        let ids = self.exact.entry(key).or_default();
        let found = ids.iter().copied().find(|&g| {
            self.groups.get(g).is_some_and(|group| {
                group.scope == scope
                    && group
                        .members
                        .first()
                        .and_then(|&m| recorded.get(m))
                        .is_some_and(|first| same_request(first, &r.method, &r.target, &r.body))
            })
        });
        match found.and_then(|g| self.groups.get_mut(g)) {
            Some(group) => group.members.push(i),
            None => {
                let g = self.groups.len();
                ids.push(g);
                let headers = r.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
                self.groups.push(Group {
                    scope,
                    members: vec![i],
                    next: AtomicU64::new(0),
                    features: Features::new(&r.target, headers, &r.body),
                });
                self.by_method
                    .entry((scope, r.method.clone()))
                    .or_default()
                    .push(g);
                self.by_scope.entry(scope).or_default().push(g);
            }
        }
    }

    /// The recorded exchanges, in capture order.
    pub fn recorded(&self) -> &[Recorded] {
        &self.recorded
    }

    /// The rendered response of exchange `i`.
    pub fn rendered(&self, i: usize) -> Option<&Rendered> {
        self.rendered.get(i)
    }

    /// The recorded dependencies, in order of first appearance.
    pub fn dependencies(&self) -> &[Dependency] {
        &self.dependencies
    }

    /// The settings the index was built with.
    pub fn config(&self) -> &MatchConfig {
        &self.config
    }

    /// Where a request with this `Host` is matched.
    pub fn scope_of(&self, host: Option<&[u8]>) -> Scope {
        host.map(normalize_host)
            .and_then(|h| self.aliases.get(&h).copied())
            .map_or(Scope::All, Scope::Dependency)
    }

    /// The name of a scope, for messages.
    pub fn scope_name(&self, scope: Scope) -> String {
        match scope {
            Scope::All => "all dependencies".to_owned(),
            Scope::Dependency(d) => self
                .dependencies
                .get(d)
                .map_or_else(|| "?".to_owned(), |dep| dep.name.clone()),
        }
    }

    /// Decides which recorded response answers `request`, advancing the sequence of the group
    /// that answers.
    pub fn answer(&self, request: &Request<'_>) -> Decision {
        let scope = self.scope_of(request.host());
        let key = key_hash(scope, request.method, request.target, request.body);
        if let Some(ids) = self.exact.get(&key) {
            for &g in ids {
                let Some(group) = self.groups.get(g) else {
                    continue;
                };
                let first = group.members.first().and_then(|&m| self.recorded.get(m));
                if group.scope == scope
                    && first.is_some_and(|r| {
                        same_request(r, request.method, request.target, request.body)
                    })
                    && let Some((recorded, call)) = self.take(group)
                {
                    return Decision::Exact { recorded, call };
                }
            }
        }
        let features = Features::new(
            request.target,
            request.headers.iter().copied(),
            request.body,
        );
        let mut best: Option<(&Group, Score)> = None;
        let same_method = self.by_method.get(&(scope, request.method.to_owned()));
        for &g in same_method.map_or(&[][..], Vec::as_slice) {
            let Some(group) = self.groups.get(g) else {
                continue;
            };
            let score = features.score(&group.features);
            if score.eligible(self.config.min_score)
                && best.is_none_or(|(_, b)| score.total > b.total)
            {
                best = Some((group, score));
            }
        }
        if let Some((group, score)) = best
            && let Some((recorded, call)) = self.take(group)
        {
            return Decision::Closest {
                recorded,
                call,
                score,
            };
        }
        Decision::NoMatch {
            scope,
            candidates: self.candidates(scope, request.method, &features),
        }
    }

    fn take(&self, group: &Group) -> Option<(usize, u64)> {
        let n = group.next.fetch_add(1, Ordering::Relaxed);
        let len = group.members.len() as u64;
        if len == 0 {
            return None;
        }
        let at = match self.config.end {
            SequenceEnd::RepeatLast => n.min(len - 1),
            SequenceEnd::Wrap => n % len,
        };
        let at = usize::try_from(at).ok()?;
        group.members.get(at).map(|&m| (m, n.saturating_add(1)))
    }

    fn candidates(&self, scope: Scope, method: &str, features: &Features) -> Vec<Candidate> {
        let mut all: Vec<Candidate> = self
            .by_scope
            .get(&scope)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(|&g| self.groups.get(g))
            .filter_map(|group| {
                let recorded = *group.members.first()?;
                let r = self.recorded.get(recorded)?;
                Some(Candidate {
                    recorded,
                    score: features.score(&group.features),
                    same_method: r.method == method,
                })
            })
            .collect();
        all.sort_by(|a, b| {
            b.same_method
                .cmp(&a.same_method)
                .then(a.score.better(&b.score))
                .then(a.recorded.cmp(&b.recorded))
        });
        all.truncate(NO_MATCH_CANDIDATES);
        all
    }
}

fn same_request(r: &Recorded, method: &str, target: &[u8], body: &[u8]) -> bool {
    r.method == method && r.target == target && r.body == body
}

fn key_hash(scope: Scope, method: &str, target: &[u8], body: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    scope.hash(&mut h);
    method.hash(&mut h);
    target.hash(&mut h);
    body.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests;
