//! The filter language of `inspect --filter` (and later `replay --filter`).
//!
//! ```text
//! expr   := and ("or" and)*
//! and    := unary ("and" unary)*
//! unary  := "not" unary | "(" expr ")" | field op value
//! op     := "=" | "!=" | "~" | "!~" | ">" | ">=" | "<" | "<="
//! ```
//! Fields: `method`, `path`, `host`, `status`, `src`, `dst`, `port` (server port), `protocol`,
//! `flag` (`flag=tls` for pairs of TLS plaintext), `duration` (µs, or with a unit: `250ms`,
//! `1.5s`, `300us`), `req_len`, `resp_len` (body bytes), `id`, and for pairs of TLS plaintext
//! the process they were captured in: `pid` (number), `command`, `cgroup` (text; a pair parsed
//! from packets has none, so only `!=` and `!~` match it). `~` matches a regular expression; `=`
//! on `src`/`dst` accepts an address with or without port. Values may be quoted with `"`.

use regex::Regex;

use crate::record::PairFlags;
use crate::view::PairView;

/// A filter expression that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("filter {expr:?}: {reason} (at character {position})")]
pub struct FilterError {
    /// The whole expression.
    pub expr: String,
    /// What was wrong.
    pub reason: String,
    /// Where, counted in characters from 0.
    pub position: usize,
}

/// A parsed filter.
#[derive(Debug, Clone)]
pub struct Filter {
    root: Node,
}

#[derive(Debug, Clone)]
enum Node {
    Or(Vec<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
    Test(Test),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Method,
    Path,
    Host,
    Status,
    Src,
    Dst,
    Port,
    Protocol,
    Flag,
    Duration,
    ReqLen,
    RespLen,
    Id,
    Pid,
    Command,
    Cgroup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Match,
    NotMatch,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone)]
struct Test {
    field: Field,
    op: Op,
    text: String,
    number: Option<f64>,
    regex: Option<Regex>,
}

impl Filter {
    /// Parses a filter expression.
    ///
    /// # Errors
    /// A [`FilterError`] naming what was expected and where.
    pub fn parse(expr: &str) -> Result<Self, FilterError> {
        let tokens = tokenize(expr)?;
        let mut parser = Parser {
            expr,
            tokens,
            pos: 0,
        };
        let root = parser.or()?;
        if let Some(tok) = parser.tokens.get(parser.pos) {
            return Err(parser.error(format!("unexpected {:?}", tok.text), tok.at));
        }
        Ok(Filter { root })
    }

    /// Whether a pair passes the filter.
    pub fn matches(&self, pair: &PairView<'_>) -> bool {
        eval(&self.root, pair)
    }
}

fn eval(node: &Node, pair: &PairView<'_>) -> bool {
    match node {
        Node::Or(nodes) => nodes.iter().any(|n| eval(n, pair)),
        Node::And(nodes) => nodes.iter().all(|n| eval(n, pair)),
        Node::Not(node) => !eval(node, pair),
        Node::Test(test) => test.eval(pair),
    }
}

impl Test {
    fn eval(&self, pair: &PairView<'_>) -> bool {
        match self.field {
            Field::Status => self.num(pair.status().map(f64::from)),
            Field::Duration => self.num(Some(pair.duration_us() as f64)),
            Field::Port => self.num(Some(f64::from(pair.pair.flow.dst().port()))),
            Field::ReqLen => self.num(pair.pair.request.as_ref().map(|m| m.body.len() as f64)),
            Field::RespLen => self.num(pair.pair.response.as_ref().map(|m| m.body.len() as f64)),
            Field::Method => self.text(pair.method().map(str::to_owned)),
            Field::Path => self.text(pair.path()),
            Field::Host => self.text(pair.host()),
            Field::Protocol => self.text(Some(pair.pair.protocol.name().to_owned())),
            Field::Id => self.text(Some(pair.id())),
            Field::Pid => self.num(pair.process().map(|p| f64::from(p.pid.to_native()))),
            Field::Command => self.text(pair.process().map(|p| p.command.as_str().to_owned())),
            Field::Cgroup => self.text(pair.process().map(|p| p.cgroup.as_str().to_owned())),
            Field::Src | Field::Dst => {
                let addr = if self.field == Field::Src {
                    pair.pair.flow.src()
                } else {
                    pair.pair.flow.dst()
                };
                let full = addr.to_string();
                let ip = addr.ip().to_string();
                match self.op {
                    Op::Eq => self.text == full || self.text == ip,
                    Op::Ne => self.text != full && self.text != ip,
                    _ => self.text(Some(full)),
                }
            }
            Field::Flag => {
                let has = PairFlags::bit(&self.text).is_some_and(|bit| pair.flags().0 & bit != 0);
                match self.op {
                    Op::Ne => !has,
                    _ => has,
                }
            }
        }
    }

    fn num(&self, value: Option<f64>) -> bool {
        let (Some(v), Some(n)) = (value, self.number) else {
            return self.op == Op::Ne;
        };
        match self.op {
            Op::Eq => v == n,
            Op::Ne => v != n,
            Op::Gt => v > n,
            Op::Ge => v >= n,
            Op::Lt => v < n,
            Op::Le => v <= n,
            Op::Match | Op::NotMatch => self.text(Some(v.to_string())),
        }
    }

    fn text(&self, value: Option<String>) -> bool {
        let Some(v) = value else {
            return matches!(self.op, Op::Ne | Op::NotMatch);
        };
        match self.op {
            Op::Eq => v == self.text,
            Op::Ne => v != self.text,
            Op::Match => self.regex.as_ref().is_some_and(|r| r.is_match(&v)),
            Op::NotMatch => !self.regex.as_ref().is_some_and(|r| r.is_match(&v)),
            Op::Gt => v.as_str() > self.text.as_str(),
            Op::Ge => v.as_str() >= self.text.as_str(),
            Op::Lt => v.as_str() < self.text.as_str(),
            Op::Le => v.as_str() <= self.text.as_str(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    text: String,
    quoted: bool,
    at: usize,
}

const OPS: [&str; 8] = ["!=", "!~", ">=", "<=", "=", "~", ">", "<"];

fn tokenize(expr: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = expr.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' {
            tokens.push(Token {
                text: c.to_string(),
                quoted: false,
                at: i,
            });
            i += 1;
        } else if c == '"' {
            let start = i;
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(FilterError {
                            expr: expr.into(),
                            reason: "unterminated quoted value".into(),
                            position: start,
                        });
                    }
                    Some('"') => break,
                    Some('\\') if chars.get(i + 1).is_some() => {
                        text.push(chars[i + 1]);
                        i += 2;
                    }
                    Some(ch) => {
                        text.push(*ch);
                        i += 1;
                    }
                }
            }
            i += 1;
            tokens.push(Token {
                text,
                quoted: true,
                at: start,
            });
        } else if let Some(op) = OPS.iter().find(|op| {
            op.chars()
                .enumerate()
                .all(|(k, oc)| chars.get(i + k) == Some(&oc))
        }) {
            tokens.push(Token {
                text: (*op).into(),
                quoted: false,
                at: i,
            });
            i += op.len();
        } else {
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(chars[i], '(' | ')' | '=' | '!' | '~' | '>' | '<' | '"')
            {
                i += 1;
            }
            if i == start {
                return Err(FilterError {
                    expr: expr.into(),
                    reason: format!("unexpected character {:?}", chars[i]),
                    position: i,
                });
            }
            tokens.push(Token {
                text: chars[start..i].iter().collect(),
                quoted: false,
                at: start,
            });
        }
    }
    Ok(tokens)
}

struct Parser<'e> {
    expr: &'e str,
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, reason: String, position: usize) -> FilterError {
        FilterError {
            expr: self.expr.into(),
            reason,
            position,
        }
    }

    fn peek_word(&self, word: &str) -> bool {
        self.tokens
            .get(self.pos)
            .is_some_and(|t| !t.quoted && t.text.eq_ignore_ascii_case(word))
    }

    fn end(&self) -> usize {
        self.expr.chars().count()
    }

    fn or(&mut self) -> Result<Node, FilterError> {
        let mut nodes = vec![self.and()?];
        while self.peek_word("or") {
            self.pos += 1;
            nodes.push(self.and()?);
        }
        Ok(if nodes.len() == 1 {
            nodes.remove(0)
        } else {
            Node::Or(nodes)
        })
    }

    fn and(&mut self) -> Result<Node, FilterError> {
        let mut nodes = vec![self.unary()?];
        while self.peek_word("and") {
            self.pos += 1;
            nodes.push(self.unary()?);
        }
        Ok(if nodes.len() == 1 {
            nodes.remove(0)
        } else {
            Node::And(nodes)
        })
    }

    fn unary(&mut self) -> Result<Node, FilterError> {
        if self.peek_word("not") {
            self.pos += 1;
            return Ok(Node::Not(Box::new(self.unary()?)));
        }
        if self.peek_word("(") {
            self.pos += 1;
            let node = self.or()?;
            if !self.peek_word(")") {
                let at = self.tokens.get(self.pos).map_or(self.end(), |t| t.at);
                return Err(self.error("expected \")\"".into(), at));
            }
            self.pos += 1;
            return Ok(node);
        }
        self.test().map(Node::Test)
    }

    fn test(&mut self) -> Result<Test, FilterError> {
        let end = self.end();
        let Some(field_tok) = self.tokens.get(self.pos).cloned() else {
            return Err(self.error(
                "expected a field such as status, path or method".into(),
                end,
            ));
        };
        let field = field_of(&field_tok.text).ok_or_else(|| {
            self.error(
                format!(
                    "unknown field {:?}; fields: method, path, host, status, src, dst, port, protocol, flag, duration, req_len, resp_len, id, pid, command, cgroup",
                    field_tok.text
                ),
                field_tok.at,
            )
        })?;
        let Some(op_tok) = self.tokens.get(self.pos + 1).cloned() else {
            return Err(self.error(
                format!("expected an operator after {:?}", field_tok.text),
                end,
            ));
        };
        let op = op_of(&op_tok.text).ok_or_else(|| {
            self.error(
                format!(
                    "expected one of = != ~ !~ > >= < <=, found {:?}",
                    op_tok.text
                ),
                op_tok.at,
            )
        })?;
        let Some(value_tok) = self.tokens.get(self.pos + 2).cloned() else {
            return Err(self.error(format!("expected a value after {:?}", op_tok.text), end));
        };
        self.pos += 3;
        let text = value_tok.text.clone();
        let regex =
            match op {
                Op::Match | Op::NotMatch => Some(Regex::new(&text).map_err(|e| {
                    self.error(format!("bad regular expression: {e}"), value_tok.at)
                })?),
                _ => None,
            };
        let numeric = matches!(
            field,
            Field::Status
                | Field::Duration
                | Field::Port
                | Field::ReqLen
                | Field::RespLen
                | Field::Pid
        );
        let number = if numeric && regex.is_none() {
            let parsed = if field == Field::Duration {
                parse_duration_us(&text)
            } else {
                text.parse::<f64>().ok()
            };
            Some(parsed.ok_or_else(|| {
                self.error(format!("expected a number, found {text:?}"), value_tok.at)
            })?)
        } else {
            None
        };
        if field == Field::Flag && PairFlags::bit(&text).is_none() {
            let names: Vec<_> = PairFlags::NAMES.iter().map(|(_, n)| *n).collect();
            return Err(self.error(
                format!("unknown flag {text:?}; flags: {}", names.join(", ")),
                value_tok.at,
            ));
        }
        Ok(Test {
            field,
            op,
            text,
            number,
            regex,
        })
    }
}

fn field_of(name: &str) -> Option<Field> {
    Some(match name.to_ascii_lowercase().as_str() {
        "method" => Field::Method,
        "path" | "target" => Field::Path,
        "host" => Field::Host,
        "status" => Field::Status,
        "src" => Field::Src,
        "dst" => Field::Dst,
        "port" => Field::Port,
        "protocol" => Field::Protocol,
        "flag" => Field::Flag,
        "duration" => Field::Duration,
        "req_len" => Field::ReqLen,
        "resp_len" => Field::RespLen,
        "id" => Field::Id,
        "pid" => Field::Pid,
        "command" | "comm" => Field::Command,
        "cgroup" => Field::Cgroup,
        _ => return None,
    })
}

fn op_of(text: &str) -> Option<Op> {
    Some(match text {
        "=" => Op::Eq,
        "!=" => Op::Ne,
        "~" => Op::Match,
        "!~" => Op::NotMatch,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        "<" => Op::Lt,
        "<=" => Op::Le,
        _ => return None,
    })
}

/// Parses `250`, `250us`, `1.5ms`, `2s` into microseconds.
fn parse_duration_us(text: &str) -> Option<f64> {
    let (num, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = text.strip_suffix("us").or_else(|| text.strip_suffix("µs")) {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e6)
    } else {
        (text, 1.0)
    };
    num.parse::<f64>().ok().map(|n| n * scale)
}

#[cfg(test)]
mod tests;
