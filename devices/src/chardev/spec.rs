//! [`CharSpec`]: one entry of the `serial` config key, in the forms qemu-dm accepted.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One serial back-end as a config names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CharSpec {
    /// `null`: output discarded, no input.
    Null,
    /// `stdio`: the device model's own standard input and output.
    Stdio,
    /// `pty`: a new pseudo-terminal; its path is printed as `char device redirected to /dev/pts/N`.
    Pty,
    /// `file:PATH`: output appended to a file, no input.
    File(PathBuf),
    /// `unix:PATH[,server][,nowait]`: a Unix stream socket, listening when `server`.
    Unix {
        /// Socket path.
        path: PathBuf,
        /// Listen (`server`) rather than connect.
        server: bool,
        /// With `server`: wait for the first client before the guest starts (no `nowait`).
        wait: bool,
    },
    /// `tcp:HOST:PORT[,server][,nowait]`: a TCP stream, listening when `server`.
    Tcp {
        /// Host name or address; empty means all addresses when listening.
        host: String,
        /// Port number.
        port: u16,
        /// Listen (`server`) rather than connect.
        server: bool,
        /// With `server`: wait for the first client before the guest starts (no `nowait`).
        wait: bool,
    },
}

/// Why a `serial` value could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CharSpecError {
    /// The part before the first `:` is no back-end we know.
    #[error("unknown serial back-end '{0}' (expected pty, stdio, null, file:PATH, unix:PATH[,server][,nowait] or tcp:HOST:PORT[,server][,nowait])")]
    UnknownKind(String),
    /// A back-end that needs a path or address got none.
    #[error("'{0}' needs {1}")]
    Missing(String, &'static str),
    /// An option after a `,` that the back-end does not take.
    #[error("unknown option '{option}' in '{spec}' (expected server or nowait)")]
    UnknownOption { spec: String, option: String },
    /// The TCP port is not a number from 1 to 65535.
    #[error("bad TCP port '{port}' in '{spec}' (expected 1 to 65535)")]
    BadPort { spec: String, port: String },
}

impl FromStr for CharSpec {
    type Err = CharSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let spec = spec.trim();
        let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
        let socket_options = |rest: &str| -> Result<(String, bool, bool), CharSpecError> {
            let mut parts = rest.split(',');
            let target = parts.next().unwrap_or("").to_string();
            let (mut server, mut nowait) = (false, false);
            for option in parts {
                match option.trim() {
                    "server" => server = true,
                    "nowait" => nowait = true,
                    other => {
                        return Err(CharSpecError::UnknownOption {
                            spec: spec.to_string(),
                            option: other.to_string(),
                        })
                    }
                }
            }
            Ok((target, server, server && !nowait))
        };
        match kind {
            "null" | "none" if rest.is_empty() => Ok(CharSpec::Null),
            "stdio" if rest.is_empty() => Ok(CharSpec::Stdio),
            "pty" if rest.is_empty() => Ok(CharSpec::Pty),
            "file" if !rest.is_empty() => Ok(CharSpec::File(PathBuf::from(rest))),
            "file" => Err(CharSpecError::Missing(spec.to_string(), "a path")),
            "unix" => {
                let (path, server, wait) = socket_options(rest)?;
                if path.is_empty() {
                    return Err(CharSpecError::Missing(spec.to_string(), "a socket path"));
                }
                Ok(CharSpec::Unix {
                    path: PathBuf::from(path),
                    server,
                    wait,
                })
            }
            "tcp" => {
                let (addr, server, wait) = socket_options(rest)?;
                let (host, port) = addr
                    .rsplit_once(':')
                    .ok_or_else(|| CharSpecError::Missing(spec.to_string(), "HOST:PORT"))?;
                let port_num = port
                    .parse::<u16>()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| CharSpecError::BadPort {
                        spec: spec.to_string(),
                        port: port.to_string(),
                    })?;
                Ok(CharSpec::Tcp {
                    host: host.trim_matches(|c| c == '[' || c == ']').to_string(),
                    port: port_num,
                    server,
                    wait,
                })
            }
            _ => Err(CharSpecError::UnknownKind(kind.to_string())),
        }
    }
}

impl fmt::Display for CharSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opts = |server: bool, wait: bool| match (server, wait) {
            (false, _) => "",
            (true, true) => ",server",
            (true, false) => ",server,nowait",
        };
        match self {
            CharSpec::Null => write!(f, "null"),
            CharSpec::Stdio => write!(f, "stdio"),
            CharSpec::Pty => write!(f, "pty"),
            CharSpec::File(p) => write!(f, "file:{}", p.display()),
            CharSpec::Unix { path, server, wait } => {
                write!(f, "unix:{}{}", path.display(), opts(*server, *wait))
            }
            CharSpec::Tcp {
                host,
                port,
                server,
                wait,
            } => write!(f, "tcp:{host}:{port}{}", opts(*server, *wait)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_dm_serial_forms_parse_and_print_back() {
        for s in [
            "pty",
            "stdio",
            "null",
            "file:/var/log/guest.log",
            "unix:/tmp/s.sock,server,nowait",
            "unix:/tmp/s.sock,server",
            "unix:/tmp/s.sock",
            "tcp:127.0.0.1:4555,server,nowait",
            "tcp::4555,server",
        ] {
            let spec: CharSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
        }
        assert_eq!(
            "tcp:localhost:7,server".parse::<CharSpec>().unwrap(),
            CharSpec::Tcp {
                host: "localhost".into(),
                port: 7,
                server: true,
                wait: true
            }
        );
    }

    #[test]
    fn bad_serial_values_say_what_was_expected() {
        assert!(matches!(
            "vc".parse::<CharSpec>(),
            Err(CharSpecError::UnknownKind(_))
        ));
        assert!(matches!(
            "file:".parse::<CharSpec>(),
            Err(CharSpecError::Missing(..))
        ));
        assert!(matches!(
            "tcp:host:0".parse::<CharSpec>(),
            Err(CharSpecError::BadPort { .. })
        ));
        assert!(matches!(
            "tcp:host:99999".parse::<CharSpec>(),
            Err(CharSpecError::BadPort { .. })
        ));
        assert!(matches!(
            "unix:/x,serve".parse::<CharSpec>(),
            Err(CharSpecError::UnknownOption { .. })
        ));
    }
}
