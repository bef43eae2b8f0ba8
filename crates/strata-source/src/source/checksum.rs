//! Checksums of migration sources.
//!
//! A checksum must not change when a file is checked out on another platform,
//! so it is taken over the text with a leading BOM removed and every line
//! ending turned into `\n`. The algorithm has a version number that is stored
//! beside each checksum in the history table: a future Strata that changes the
//! algorithm can still verify rows written by this one.

use sha2::{Digest, Sha256};

/// The checksum algorithm version written to the history table.
/// 1 = SHA-256 over [`normalize`]d text, lower-case hex.
pub const CHECKSUM_ALGORITHM: i16 = 1;

/// Removes a leading UTF-8 BOM and turns `\r\n` and lone `\r` into `\n`.
pub fn normalize(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.contains('\r') {
        return text.to_owned();
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Hex SHA-256 of the normalised text.
pub fn checksum(text: &str) -> String {
    let digest = Sha256::digest(normalize(text).as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        hex.push(char::from_digit(u32::from(byte >> 4), 16).expect("invariant: nibble < 16"));
        hex.push(char::from_digit(u32::from(byte & 0xf), 16).expect("invariant: nibble < 16"));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_and_bom_do_not_change_the_checksum() {
        let unix = checksum("CREATE TABLE t ();\nSELECT 1;\n");
        assert_eq!(
            unix,
            checksum("\u{feff}CREATE TABLE t ();\r\nSELECT 1;\r\n")
        );
        assert_eq!(unix, checksum("CREATE TABLE t ();\rSELECT 1;\r"));
        assert_ne!(unix, checksum("CREATE TABLE t ();\nSELECT 2;\n"));
    }

    #[test]
    fn checksum_is_sha256_hex() {
        assert_eq!(
            checksum(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
