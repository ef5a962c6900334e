//! VNC Authentication (RFB security type 2).
//!
//! The server sends 16 random bytes; the client encrypts them with DES in ECB mode (two 8-byte blocks) and
//! sends the result back. The DES key is the password truncated to 8 bytes and padded with NULs, with the
//! bits of every key byte reversed: the original VNC implementation took the lowest bit of each byte as the
//! first key bit, and every client since has kept that quirk. The truncation is silent, so a longer password
//! authenticates with its first 8 bytes only; [`crate::VncServer::start`] warns about it.
//!
//! This is weak protection (a 56-bit key from at most 8 characters, an offline-guessable exchange): listen on
//! loopback or a trusted network. The challenge comes from the OS random source and the response is compared
//! in constant time.

use std::io::{self, Read};

use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockEncrypt, KeyInit};
use thiserror::Error;

/// Why the challenge could not be made.
#[derive(Debug, Error)]
pub enum AuthError {
    /// The OS random source failed.
    #[error("reading /dev/urandom: {0}")]
    Random(#[from] io::Error),
}

/// The DES key for `password`: first 8 bytes, NUL-padded, each byte bit-reversed.
pub fn des_key(password: &[u8]) -> [u8; 8] {
    let mut key = [0u8; 8];
    for (k, p) in key.iter_mut().zip(password.iter()) {
        *k = p.reverse_bits();
    }
    key
}

/// The response a client with `password` gives to `challenge`.
pub fn response(password: &[u8], challenge: &[u8; 16]) -> [u8; 16] {
    let key = des_key(password);
    let cipher = des::Des::new(GenericArray::from_slice(&key));
    let mut out = *challenge;
    for block in out.chunks_exact_mut(8) {
        cipher.encrypt_block(GenericArray::from_mut_slice(block));
    }
    out
}

/// Whether `answer` is the right response to `challenge`, compared in constant time.
pub fn verify(password: &[u8], challenge: &[u8; 16], answer: &[u8; 16]) -> bool {
    let expected = response(password, challenge);
    expected
        .iter()
        .zip(answer.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// 16 random bytes from the OS.
pub fn challenge() -> Result<[u8; 16], AuthError> {
    let mut c = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut c)?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    const SEQ: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    // Vectors checked against TigerVNC's Xvnc (research notes).
    #[test]
    fn known_vectors() {
        assert_eq!(hex(&des_key(b"secret12")), "cea6c64ea62e8c4c");
        assert_eq!(
            hex(&response(b"secret12", &SEQ)),
            "adcd997f8e16fee575e973f93c2b62b4"
        );
        assert_eq!(
            hex(&response(b"", &SEQ)),
            "491e890de9ace932838a49792f2213f3"
        );
    }

    #[test]
    fn long_passwords_are_truncated_to_eight_bytes() {
        let r = response(b"secret12", &SEQ);
        assert!(verify(b"secret12-and-more", &SEQ, &r));
        assert!(!verify(b"secret13", &SEQ, &r));
        let mut wrong = r;
        wrong[15] ^= 1;
        assert!(!verify(b"secret12", &SEQ, &wrong));
    }

    #[test]
    fn challenges_differ() {
        let a = challenge().unwrap();
        let b = challenge().unwrap();
        assert_ne!(a, b);
    }
}
