//! Typed reads of evaluated keys: each accessor returns the value in the type a key needs, or an error
//! naming the key, where it was set, what was found and what was expected.
//!
//! Conversions follow xm: integer keys also take a string of digits (`memory = "128"`, and every
//! command-line value), flags take 0/1, True/False and yes/no, and list keys also take a single string.

use std::path::Path;

use super::eval::Value;
use super::options::Bad;
use super::{ConfigError, Origin, Script};

pub(crate) struct Fields<'a> {
    pub path: &'a Path,
    pub script: &'a Script,
}

fn found(v: &Value) -> String {
    format!("{} {}", v.type_name(), v.show())
}

impl Fields<'_> {
    /// Where `key` was set (line 0 of the file when it was not).
    pub fn at(&self, key: &str) -> Origin {
        self.script
            .origins
            .get(key)
            .cloned()
            .unwrap_or_else(|| Origin::File {
                path: self.path.to_path_buf(),
                line: 0,
            })
    }

    pub fn invalid(
        &self,
        key: &str,
        found: impl Into<String>,
        expected: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            at: self.at(key),
            key: key.to_string(),
            found: found.into(),
            expected: expected.into(),
        }
    }

    pub fn bad(&self, key: &str, b: Bad) -> ConfigError {
        self.invalid(key, b.found, b.expected)
    }

    /// The value of `key`, `None` when absent or `None`.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.script.value(key).filter(|v| **v != Value::None)
    }

    /// Whether `key` was given a value.
    pub fn given(&self, key: &str) -> bool {
        self.value(key).is_some()
    }

    /// A string key, `None` when absent.
    pub fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.invalid(key, found(v), "a string in quotes")),
        }
    }

    /// A string key where `''` means absent (xm's default for most of them).
    pub fn text(&self, key: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.string(key)?.filter(|s| !s.is_empty()))
    }

    /// An integer key.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Int(i)) => Ok(Some(*i)),
            Some(Value::Bool(b)) => Ok(Some(i64::from(*b))),
            Some(Value::Str(s)) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| self.invalid(key, format!("the string '{s}'"), "an integer")),
            Some(v) => Err(self.invalid(key, found(v), "an integer")),
        }
    }

    /// An integer key within `lo..=hi`; `what` describes the unit for messages.
    pub fn int_in(
        &self,
        key: &str,
        lo: i64,
        hi: i64,
        what: &str,
    ) -> Result<Option<i64>, ConfigError> {
        match self.int(key)? {
            Some(i) if i < lo || i > hi => {
                Err(self.invalid(key, i.to_string(), format!("{what} from {lo} to {hi}")))
            }
            other => Ok(other),
        }
    }

    /// A 0/1 flag.
    pub fn flag(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        const EXPECTED: &str = "0 or 1 (or True/False)";
        match self.value(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::Int(0)) => Ok(Some(false)),
            Some(Value::Int(1)) => Ok(Some(true)),
            Some(Value::Str(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "0" | "no" | "n" | "false" | "off" => Ok(Some(false)),
                "1" | "yes" | "y" | "true" | "on" => Ok(Some(true)),
                _ => Err(self.invalid(key, format!("the string '{s}'"), EXPECTED)),
            },
            Some(v) => Err(self.invalid(key, found(v), EXPECTED)),
        }
    }

    /// A flag with a default.
    pub fn flag_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        Ok(self.flag(key)?.unwrap_or(default))
    }

    /// A list of strings (a single string is a one-item list).
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(vec![s.clone()])),
            Some(Value::List(items) | Value::Tuple(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Str(s) => Ok(s.clone()),
                    other => Err(self.invalid(
                        key,
                        format!("item {} of the list is {}", i + 1, found(other)),
                        "a list of strings in quotes",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.invalid(key, found(v), "a list of strings such as ['...', '...']")),
        }
    }
}
