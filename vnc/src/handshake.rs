//! The RFB handshake: version, security, ClientInit.
//!
//! The server announces 3.8 and speaks whatever the client answers (3.3, 3.7 or 3.8). Security differs by
//! version: in 3.3 the server names the one type it will use (a `u32`), from 3.7 on it offers a list and the
//! client picks. After None, 3.3 and 3.7 go straight on while 3.8 sends SecurityResult "ok"; after VNC
//! Authentication every version sends SecurityResult, and only 3.8 adds a reason string when it failed. The
//! server offers exactly one type: VNC Authentication when a password is set, None otherwise.
//!
//! The handshake is written against `Read` and `Write` so that transcripts can be tested byte for byte
//! without sockets.

use std::io::{self, Read, Write};

use thiserror::Error;

use crate::auth::{self, AuthError};
use crate::protocol::{self, security, ProtocolError, Version};

/// Why a handshake did not complete.
#[derive(Debug, Error)]
pub enum HandshakeError {
    /// I/O failure or timeout.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// A malformed version string.
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    /// The client chose a security type that was not offered.
    #[error("client chose security type {0}, which was not offered")]
    SecurityType(u8),
    /// Wrong password.
    #[error("authentication failed")]
    AuthFailed,
    /// No challenge could be made.
    #[error("{0}")]
    Challenge(#[from] AuthError),
}

/// A completed handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// The agreed version.
    pub version: Version,
    /// ClientInit's shared flag.
    pub shared: bool,
}

fn security_result(w: &mut impl Write, version: Version, ok: bool, reason: &str) -> io::Result<()> {
    let mut out = Vec::new();
    protocol::put_u32(&mut out, u32::from(!ok));
    if !ok && version == Version::V3_8 {
        protocol::put_string(&mut out, reason);
    }
    w.write_all(&out)?;
    w.flush()
}

/// Runs the server side of the handshake up to and including ClientInit. `password` selects VNC
/// Authentication; `challenge` supplies its 16 random bytes.
pub fn run(
    r: &mut impl Read,
    w: &mut impl Write,
    password: Option<&[u8]>,
    challenge: impl FnOnce() -> Result<[u8; 16], AuthError>,
) -> Result<Handshake, HandshakeError> {
    w.write_all(protocol::SERVER_VERSION)?;
    w.flush()?;
    let mut v = [0u8; 12];
    r.read_exact(&mut v)?;
    let version = protocol::parse_version(&v)?;
    let offered = if password.is_some() {
        security::VNC_AUTH
    } else {
        security::NONE
    };
    if version == Version::V3_3 {
        w.write_all(&u32::from(offered).to_be_bytes())?;
        w.flush()?;
    } else {
        w.write_all(&[1, offered])?;
        w.flush()?;
        let mut choice = [0u8; 1];
        r.read_exact(&mut choice)?;
        if choice[0] != offered {
            security_result(w, version, false, "security type not offered")?;
            return Err(HandshakeError::SecurityType(choice[0]));
        }
    }
    if let Some(password) = password {
        let c = challenge()?;
        w.write_all(&c)?;
        w.flush()?;
        let mut answer = [0u8; 16];
        r.read_exact(&mut answer)?;
        if !auth::verify(password, &c, &answer) {
            security_result(w, version, false, "authentication failed")?;
            return Err(HandshakeError::AuthFailed);
        }
        security_result(w, version, true, "")?;
    } else if version == Version::V3_8 {
        security_result(w, version, true, "")?;
    }
    let mut init = [0u8; 1];
    r.read_exact(&mut init)?;
    Ok(Handshake {
        version,
        shared: init[0] != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    fn transcript(
        client: &[u8],
        password: Option<&[u8]>,
    ) -> (Result<Handshake, HandshakeError>, Vec<u8>) {
        let mut out = Vec::new();
        let res = run(&mut &client[..], &mut out, password, || Ok(CHALLENGE));
        (res, out)
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn v3_3_none() {
        let (res, out) = transcript(b"RFB 003.003\n\x01", None);
        assert_eq!(
            res.unwrap(),
            Handshake {
                version: Version::V3_3,
                shared: true
            }
        );
        assert_eq!(out, cat(&[b"RFB 003.008\n", &[0, 0, 0, 1]]));
    }

    #[test]
    fn v3_7_none_has_no_security_result() {
        let (res, out) = transcript(b"RFB 003.007\n\x01\x00", None);
        assert!(!res.unwrap().shared);
        assert_eq!(out, cat(&[b"RFB 003.008\n", &[1, 1]]));
    }

    #[test]
    fn v3_8_none_has_security_result() {
        let (res, out) = transcript(b"RFB 003.008\n\x01\x01", None);
        assert_eq!(res.unwrap().version, Version::V3_8);
        assert_eq!(out, cat(&[b"RFB 003.008\n", &[1, 1], &[0, 0, 0, 0]]));
    }

    #[test]
    fn vnc_auth_good_password_each_version() {
        let resp = auth::response(b"secret12", &CHALLENGE);
        for (v, pre, offer) in [
            (&b"RFB 003.003\n"[..], &[][..], &[0u8, 0, 0, 2][..]),
            (b"RFB 003.007\n", &[2], &[1, 2]),
            (b"RFB 003.008\n", &[2], &[1, 2]),
        ] {
            let client = cat(&[v, pre, &resp, &[1]]);
            let (res, out) = transcript(&client, Some(b"secret12"));
            assert!(res.is_ok(), "{v:?}");
            assert_eq!(
                out,
                cat(&[b"RFB 003.008\n", offer, &CHALLENGE, &[0, 0, 0, 0]])
            );
        }
    }

    #[test]
    fn vnc_auth_wrong_password_reason_only_in_3_8() {
        let resp = auth::response(b"wrong", &CHALLENGE);
        let (res, out) = transcript(&cat(&[b"RFB 003.008\n", &[2], &resp]), Some(b"secret12"));
        assert!(matches!(res, Err(HandshakeError::AuthFailed)));
        let mut expect = cat(&[b"RFB 003.008\n", &[1, 2], &CHALLENGE, &[0, 0, 0, 1]]);
        protocol::put_string(&mut expect, "authentication failed");
        assert_eq!(out, expect);

        let (res, out) = transcript(&cat(&[b"RFB 003.007\n", &[2], &resp]), Some(b"secret12"));
        assert!(matches!(res, Err(HandshakeError::AuthFailed)));
        assert_eq!(
            out,
            cat(&[b"RFB 003.008\n", &[1, 2], &CHALLENGE, &[0, 0, 0, 1]])
        );

        let (res, out) = transcript(&cat(&[b"RFB 003.003\n", &resp]), Some(b"secret12"));
        assert!(matches!(res, Err(HandshakeError::AuthFailed)));
        assert_eq!(
            out,
            cat(&[b"RFB 003.008\n", &[0, 0, 0, 2], &CHALLENGE, &[0, 0, 0, 1]])
        );
    }

    #[test]
    fn unoffered_security_type_is_refused() {
        let (res, out) = transcript(b"RFB 003.008\n\x02", None);
        assert!(matches!(res, Err(HandshakeError::SecurityType(2))));
        let mut expect = cat(&[b"RFB 003.008\n", &[1, 1], &[0, 0, 0, 1]]);
        protocol::put_string(&mut expect, "security type not offered");
        assert_eq!(out, expect);
    }

    #[test]
    fn truncation_at_every_byte_is_an_error() {
        let resp = auth::response(b"pw", &CHALLENGE);
        let full = cat(&[b"RFB 003.008\n", &[2], &resp, &[1]]);
        assert!(transcript(&full, Some(b"pw")).0.is_ok());
        for cut in 0..full.len() {
            assert!(
                transcript(&full[..cut], Some(b"pw")).0.is_err(),
                "cut {cut}"
            );
        }
        assert!(matches!(
            transcript(b"HTTP/1.1 200", None).0,
            Err(HandshakeError::Protocol(_))
        ));
    }
}
