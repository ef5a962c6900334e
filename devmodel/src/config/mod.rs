//! The xm/xl HVM guest config reader.
//!
//! Xen users describe a guest in a file such as `/etc/xen/win.hvm` that xm executed as a Python script and
//! xl parsed as a Python-like subset. This module reads those files unchanged, resolves every key into a
//! typed [`Config`] (with xm's defaults), and refuses bad input *before anything starts*, with one message
//! naming `file:line`, the key, what was found and what was expected.
//!
//! # Why our own parser
//! Real files use `import os, re`, helper variables (`arch_libdir = 'lib'` then
//! `'/usr/' + arch_libdir + '/xen/bin/qemu-dm'`), `if re.search('64', arch):` blocks, string and list
//! concatenation, `%` formatting, triple quotes and continuation lines. A Python-dialect crate such as
//! `starlark` (0.14: about 700 source files and three dozen direct dependencies) refuses `import` outright and
//! reports errors in its own terms; the subset needed here is a few hundred lines ([`lexer`], [`parser`],
//! [`eval`]) whose every error can name the config key and what was expected, and whose resource use is
//! bounded by construction (file size, nesting depth and evaluation budget caps).
//!
//! # Pipeline
//! 1. [`load`] reads at most [`MAX_FILE_SIZE`] bytes; the text is tokenized, parsed and run.
//! 2. Command-line overrides (`xm create hvm.cfg memory=512`) go through the same reader. As in xm, an
//!    override of a config key wins over the file; any other name is a variable set *before* the file runs
//!    (xm's `VAR=VAL`). A value that is not a Python expression (`boot=dc`, `vnclisten=0.0.0.0`) is taken as
//!    the string it spells, as xm did.
//! 3. A file without `builder='hvm'` is a PV guest and is refused with what to change.
//! 4. Names that are neither known keys nor read by a later expression are unknown keys (typos); a name
//!    starting with `_` is always a private helper.
//! 5. Each key is resolved into [`Config`]; host checks use the injected [`HostFacts`].
//! 6. Whatever this build cannot honour is listed in [`Config::unsupported`] as data (see [`notices`]).

mod describe;
mod disk;
mod eval;
mod fields;
mod keys;
mod lexer;
mod model;
pub mod notices;
mod options;
mod parser;
mod pv;
mod resolve;
mod validate;
mod vif;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_direct;
#[cfg(test)]
mod tests_examples;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use model::*;
pub use validate::{FileProbe, FileState, HostFacts, HostFiles};

use eval::{Binding, Evaluated, Value};
use lexer::SyntaxError;

/// Largest config file accepted, in bytes.
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Origin {
    /// A line of the config file.
    File {
        /// The file as given to [`load`].
        path: PathBuf,
        /// 1-based line of the assignment.
        line: u32,
    },
    /// A `key=value` argument after the file name.
    CommandLine {
        /// The argument as given.
        arg: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::CommandLine { arg } => {
                let shown: String = arg.chars().take(60).collect();
                let more = if arg.chars().count() > 60 { "..." } else { "" };
                write!(f, "command line '{shown}{more}'")
            }
        }
    }
}

/// Why a config was refused. Every variant maps to exit code 2 ([`ConfigError::exit_code`]).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_SIZE`].
    #[error("{}: found a file larger than {max} bytes, expected a config file (at most {max} bytes)", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        max: u64,
    },
    /// The text is not valid config syntax.
    #[error("{at}: syntax error: found {found}, expected {expected}")]
    Syntax {
        /// Where.
        at: Origin,
        /// What was there.
        found: String,
        /// What would have been valid.
        expected: String,
    },
    /// An expression could not be evaluated (undefined name, wrong operand types, …).
    #[error("{at}: {key}: found {found}, expected {expected}")]
    Script {
        /// Where.
        at: Origin,
        /// The key being assigned, or `if` for a condition.
        key: String,
        /// What was there.
        found: String,
        /// What would have been valid.
        expected: String,
    },
    /// A command-line override without `=`.
    #[error("command line '{arg}': found no '=', expected key=value (such as memory=512)")]
    BadOverride {
        /// The argument.
        arg: String,
    },
    /// A name that is no config key and that nothing reads.
    #[error("{at}: {key}: found an unknown key, expected {}", match suggestion {
        Some(s) => format!("a config key (did you mean '{s}'?)"),
        None => "a config key such as name, memory, vcpus, disk, vif, boot or serial".to_string(),
    })]
    UnknownKey {
        /// Where it was assigned.
        at: Origin,
        /// The name.
        key: String,
        /// The closest known key.
        suggestion: Option<String>,
    },
    /// A key with a value of the wrong type or an impossible value.
    #[error("{at}: {key}: found {found}, expected {expected}")]
    Invalid {
        /// Where the key was set.
        at: Origin,
        /// The key.
        key: String,
        /// What was there.
        found: String,
        /// What would have been valid.
        expected: String,
    },
    /// A required key is absent.
    #[error("{}: {key}: found no {key} key, expected {expected}", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What to add.
        expected: String,
    },
    /// A PV guest config.
    #[error("{}: found a paravirtualized (PV) guest config, expected an HVM guest config\n{explanation}", path.display())]
    NotHvm {
        /// The file.
        path: PathBuf,
        /// What to change, one line per item.
        explanation: String,
    },
}

impl ConfigError {
    /// The process exit code for this error: 2, "bad configuration", for every variant.
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// Reads, resolves and checks the config at `path`, with `key=value` `overrides` from the command line.
///
/// Host checks (memory, vCPU limit, disk/kernel/floppy files and their writability) run here through
/// `host`, so a config that loads is one the host can start; pass [`HostFacts::probe`] for the real host.
/// Requests this build cannot honour do not fail the load: they are listed in [`Config::unsupported`].
pub fn load(path: &Path, overrides: &[String], host: &HostFacts) -> Result<Config, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(ConfigError::TooLarge {
            path: path.to_path_buf(),
            max: MAX_FILE_SIZE,
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..valid]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        ConfigError::Syntax {
            at: Origin::File {
                path: path.to_path_buf(),
                line: u32::try_from(line).unwrap_or(u32::MAX),
            },
            found: "bytes that are not UTF-8 text".to_string(),
            expected: "a text file".to_string(),
        }
    })?;
    load_source(path, &text, overrides, host)
}

/// [`load`] for text already in memory; `path` is used in messages only.
pub fn load_source(
    path: &Path,
    text: &str,
    overrides: &[String],
    host: &HostFacts,
) -> Result<Config, ConfigError> {
    if text.len() as u64 > MAX_FILE_SIZE {
        return Err(ConfigError::TooLarge {
            path: path.to_path_buf(),
            max: MAX_FILE_SIZE,
        });
    }
    let script = run_script(path, text, overrides)?;
    resolve::resolve(path, &script, host)
}

/// The evaluated file: every name's final value and where it was set.
pub(crate) struct Script {
    pub(crate) state: Evaluated,
    pub(crate) origins: BTreeMap<String, Origin>,
}

impl Script {
    pub(crate) fn value(&self, key: &str) -> Option<&Value> {
        self.state.vars.get(key).map(|b| &b.value)
    }
}

fn file_at(path: &Path, line: u32) -> Origin {
    Origin::File {
        path: path.to_path_buf(),
        line,
    }
}

/// One parsed `key=value` argument.
struct Override {
    key: String,
    value: String,
    arg: String,
}

fn split_override(arg: &str) -> Result<Override, ConfigError> {
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| ConfigError::BadOverride {
            arg: arg.to_string(),
        })?;
    let key = key.trim();
    let valid = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c == '_' || c.is_alphanumeric());
    if !valid {
        return Err(ConfigError::Invalid {
            at: Origin::CommandLine {
                arg: arg.to_string(),
            },
            key: key.to_string(),
            found: format!("'{key}' before '='"),
            expected: "a key name made of letters, digits and '_'".to_string(),
        });
    }
    Ok(Override {
        key: key.to_string(),
        value: value.trim().to_string(),
        arg: arg.to_string(),
    })
}

/// Evaluates an override's value: a Python expression, or else the plain string it spells.
fn override_value(o: &Override, state: &mut Evaluated) -> Result<Value, ConfigError> {
    let at = Origin::CommandLine { arg: o.arg.clone() };
    let as_expr = lexer::tokenize(&o.value)
        .and_then(parser::parse_expression)
        .and_then(|e| eval::eval_expr(&e, state));
    match as_expr {
        Ok(v) => Ok(v),
        Err(e) if o.value.starts_with(['\'', '"', '[', '(']) => Err(ConfigError::Syntax {
            at,
            found: e.found,
            expected: e.expected,
        }),
        Err(_) => Ok(Value::Str(o.value.clone())),
    }
}

fn script_error(path: &Path, e: SyntaxError, key: &str) -> ConfigError {
    ConfigError::Script {
        at: file_at(path, e.line),
        key: key.to_string(),
        found: e.found,
        expected: e.expected,
    }
}

/// Runs the file with the overrides applied (pre-file variables, post-file keys).
fn run_script(path: &Path, text: &str, overrides: &[String]) -> Result<Script, ConfigError> {
    let syntax = |e: SyntaxError| ConfigError::Syntax {
        at: file_at(path, e.line),
        found: e.found,
        expected: e.expected,
    };
    let parsed: Vec<Override> = overrides
        .iter()
        .map(|a| split_override(a))
        .collect::<Result<_, _>>()?;
    let mut state = Evaluated::default();
    let mut origins = BTreeMap::new();
    let (keys_, vars): (Vec<&Override>, Vec<&Override>) =
        parsed.iter().partition(|o| keys::lookup(&o.key).is_some());
    for o in &vars {
        let value = override_value(o, &mut state)?;
        state.vars.insert(o.key.clone(), Binding { value, line: 0 });
        origins.insert(o.key.clone(), Origin::CommandLine { arg: o.arg.clone() });
    }
    let stmts = parser::parse(lexer::tokenize(text).map_err(syntax)?).map_err(syntax)?;
    eval::run(&stmts, &mut state).map_err(|e| {
        let key = statement_target(&stmts, e.line).unwrap_or_else(|| "if".to_string());
        script_error(path, e, &key)
    })?;
    for (name, binding) in &state.vars {
        if binding.line > 0 {
            origins.insert(name.clone(), file_at(path, binding.line));
        }
    }
    for o in &keys_ {
        let value = override_value(o, &mut state)?;
        state.vars.insert(o.key.clone(), Binding { value, line: 0 });
        origins.insert(o.key.clone(), Origin::CommandLine { arg: o.arg.clone() });
    }
    Ok(Script { state, origins })
}

/// The name assigned by the statement on `line` (`if` for a condition), searching nested blocks.
fn statement_target(stmts: &[parser::Stmt], line: u32) -> Option<String> {
    let mut stack: Vec<&[parser::Stmt]> = vec![stmts];
    let mut best: Option<(u32, String)> = None;
    while let Some(block) = stack.pop() {
        for s in block {
            match s {
                parser::Stmt::Assign {
                    target, line: l, ..
                } if *l <= line && best.as_ref().is_none_or(|(b, _)| *l >= *b) => {
                    best = Some((*l, target.clone()));
                }
                parser::Stmt::If {
                    branches,
                    otherwise,
                } => {
                    for (l, _, body) in branches {
                        if *l <= line && best.as_ref().is_none_or(|(b, _)| *l >= *b) {
                            best = Some((*l, "if".to_string()));
                        }
                        stack.push(body);
                    }
                    stack.push(otherwise);
                }
                _ => {}
            }
        }
    }
    best.map(|(_, t)| t)
}
