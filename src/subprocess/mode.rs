//! Bytes or text: what captured output comes back as.

use std::fmt;

use super::errors::DecodeError;

/// How each mode decodes: public items of a private module (the capture
/// code uses them through [`ModeExt`], a user cannot name them).
mod sealed {
    use super::DecodeError;

    pub trait Sealed {}

    /// Output made from captured bytes under mode `M`.
    pub trait Decode<M>: Sized {
        fn decode(mode: &M, stream: &'static str, bytes: Vec<u8>) -> Result<Self, DecodeError>;
    }
}

/// What captured output is returned as: [`Bytes`] (the default) or
/// [`Text`].
///
/// Python: `text=False` / `text=True` (and `errors=`). Sealed.
pub trait Mode: sealed::Sealed + Clone + Copy + Send + Sync + fmt::Debug + 'static {
    /// `Vec<u8>` for [`Bytes`], `String` for [`Text`].
    type Output: AsRef<[u8]>
        + Clone
        + fmt::Debug
        + PartialEq
        + Send
        + Sync
        + 'static
        + sealed::Decode<Self>;
}

/// Decoding captured output under a mode (crate-internal).
pub(crate) trait ModeExt: Mode {
    /// `bytes` of `stream` ("stdout" / "stderr") as this mode's output.
    fn decode(&self, stream: &'static str, bytes: Vec<u8>) -> Result<Self::Output, DecodeError> {
        <Self::Output as sealed::Decode<Self>>::decode(self, stream, bytes)
    }
}

impl<M: Mode> ModeExt for M {}

/// Output as raw bytes, untouched (Python's default, `text=False`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bytes;

/// Output decoded as UTF-8 with universal newlines (`\r\n` and `\r` become
/// `\n`), as Python's `text=True`. Strict by default: invalid UTF-8 is a
/// [`DecodeError`] carrying the bytes; [`Command::text_lossy`] replaces
/// them with U+FFFD instead (Python's `errors="replace"`).
///
/// [`Command::text_lossy`]: super::Command::text_lossy
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Text {
    pub(crate) lossy: bool,
}

impl sealed::Sealed for Bytes {}
impl sealed::Sealed for Text {}

impl Mode for Bytes {
    type Output = Vec<u8>;
}

impl Mode for Text {
    type Output = String;
}

impl sealed::Decode<Bytes> for Vec<u8> {
    fn decode(_: &Bytes, _stream: &'static str, bytes: Vec<u8>) -> Result<Vec<u8>, DecodeError> {
        Ok(bytes)
    }
}

impl sealed::Decode<Text> for String {
    fn decode(mode: &Text, stream: &'static str, bytes: Vec<u8>) -> Result<String, DecodeError> {
        let s = match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) if mode.lossy => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            Err(e) => {
                let error = e.utf8_error();
                return Err(DecodeError {
                    stream,
                    bytes: e.into_bytes(),
                    error,
                });
            }
        };
        Ok(universal_newlines(s))
    }
}

/// `\r\n` and lone `\r` become `\n` (Python's text mode on read).
pub(crate) fn universal_newlines(s: String) -> String {
    if !s.contains('\r') {
        return s;
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_translate() {
        assert_eq!(universal_newlines("a\r\nb\rc\n".into()), "a\nb\nc\n");
        assert_eq!(universal_newlines("\r\r\n".into()), "\n\n");
    }

    #[test]
    fn strict_text_hands_back_bytes() {
        let err = Text { lossy: false }
            .decode("stdout", vec![b'a', 0xff])
            .unwrap_err();
        assert_eq!(err.bytes, [b'a', 0xff]);
        assert_eq!(err.error.valid_up_to(), 1);
        let ok = Text { lossy: true }
            .decode("stdout", vec![b'a', 0xff])
            .unwrap();
        assert_eq!(ok, "a\u{fffd}");
    }
}
