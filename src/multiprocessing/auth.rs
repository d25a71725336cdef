//! The handshake of a new connection: versions first, then the auth key.
//!
//! Each side sends a hello frame (`CONEX-MP`, the protocol version, whether
//! it holds an auth key). With keys on both sides, each then proves it
//! holds the key, as CPython 3.12's `deliver_challenge` /
//! `answer_challenge` do, byte for byte: the challenger sends
//! `#CHALLENGE#{sha256}` and 40 random bytes, the other answers
//! `{sha256}` and the HMAC-SHA256 under the key of the message after
//! `#CHALLENGE#` (the `{sha256}` tag included), the challenger compares in
//! constant time and replies `#WELCOME#` or `#FAILURE#`. The listener challenges first, then the
//! client. Until it is over, frames are capped at 1 KiB, so an
//! unauthenticated peer cannot make either side allocate.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::connection::Connection;
use super::errors::{AuthenticationError, ConnectionError};

const MAGIC: &[u8] = b"CONEX-MP";
/// 2: the HMAC covers the `{sha256}` tag and the answer carries it, as
/// CPython 3.12's (1 hashed the nonce alone).
const VERSION: u8 = 2;
const CHALLENGE: &[u8] = b"#CHALLENGE#";
const SHA256: &[u8] = b"{sha256}";
const WELCOME: &[u8] = b"#WELCOME#";
const FAILURE: &[u8] = b"#FAILURE#";
const HANDSHAKE_MAX: usize = 1024;

/// Fills `buf` with the OS's random bytes (the challenge's nonce, auth
/// keys, the random part of block and socket names), through getrandom on
/// every platform.
pub(crate) fn random_bytes(buf: &mut [u8]) -> std::io::Result<()> {
    getrandom::fill(buf).map_err(|e| std::io::Error::other(e.to_string()))
}

fn auth_err(reason: &'static str) -> ConnectionError {
    ConnectionError::Authentication(AuthenticationError { reason })
}

fn mac(key: &[u8], message: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(message);
    m
}

async fn hello(conn: &Connection, with_key: bool) -> Result<(), ConnectionError> {
    let mut mine = MAGIC.to_vec();
    mine.push(VERSION);
    mine.push(with_key as u8);
    conn.send_bytes(&mine).await?;
    let theirs = match conn.recv_bytes().await {
        Ok(b) => b,
        Err(ConnectionError::Eof) => return Err(ConnectionError::Eof),
        Err(ConnectionError::Protocol(_)) | Err(ConnectionError::FrameTooLarge { .. }) => {
            return Err(auth_err("the peer does not speak conex's handshake"));
        }
        Err(e) => return Err(e),
    };
    if theirs.len() != MAGIC.len() + 2 || &theirs[..MAGIC.len()] != MAGIC {
        return Err(auth_err("the peer does not speak conex's handshake"));
    }
    if theirs[MAGIC.len()] != VERSION {
        return Err(ConnectionError::Protocol(format!(
            "the peer speaks version {} of the protocol, this side {VERSION}",
            theirs[MAGIC.len()]
        )));
    }
    match (with_key, theirs[MAGIC.len() + 1] != 0) {
        (true, false) => Err(auth_err("this side has an auth key and the peer has none")),
        (false, true) => Err(auth_err(
            "the peer requires an auth key and this side has none",
        )),
        _ => Ok(()),
    }
}

/// Proves that the peer on `conn` holds `authkey`: sends a challenge,
/// checks the answer (constant time) and says `#WELCOME#` or
/// `#FAILURE#`. Python: `multiprocessing.connection.deliver_challenge`,
/// with CPython 3.12's messages (`{sha256}`): for a connection whose peer
/// runs [`answer_challenge`] with the same key; [`Listener`] and
/// [`Client`] run both on every connection with a key.
///
/// [`Listener`]: super::Listener
/// [`Client`]: super::Client
///
/// # Errors
/// [`ConnectionError::Authentication`] when the answer does not match
/// (the peer is told `#FAILURE#`); the connection's own errors.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), conex::multiprocessing::ConnectionError> {
/// use conex::multiprocessing::{answer_challenge, deliver_challenge, pipe};
///
/// let (a, b) = pipe(true)?;
/// let (asked, answered) = futures::join!(deliver_challenge(&a, b"key"), answer_challenge(&b, b"key"));
/// assert!(asked.is_ok() && answered.is_ok());
/// let (asked, answered) = futures::join!(deliver_challenge(&a, b"key"), answer_challenge(&b, b"other"));
/// assert!(asked.is_err() && answered.is_err());
/// # Ok(()) }
/// ```
pub async fn deliver_challenge(conn: &Connection, authkey: &[u8]) -> Result<(), ConnectionError> {
    let mut message = SHA256.to_vec();
    let mut nonce = [0u8; 40];
    random_bytes(&mut nonce)?;
    message.extend_from_slice(&nonce);
    let mut msg = CHALLENGE.to_vec();
    msg.extend_from_slice(&message);
    conn.send_bytes(&msg).await?;
    let answer = conn.recv_bytes().await?;
    let ok = answer
        .strip_prefix(SHA256)
        .is_some_and(|digest| mac(authkey, &message).verify_slice(digest).is_ok());
    if ok {
        conn.send_bytes(WELCOME).await?;
        Ok(())
    } else {
        let _ = conn.send_bytes(FAILURE).await;
        Err(auth_err("the peer's answer does not match this side's key"))
    }
}

/// What answers a challenge `message` (the bytes after `#CHALLENGE#`):
/// `{sha256}` and the HMAC-SHA256 of the whole message, as CPython 3.12's
/// `_create_response`. `None` for a digest other than sha256 (CPython
/// 3.11's untagged md5 form among them).
fn response(authkey: &[u8], message: &[u8]) -> Option<Vec<u8>> {
    if !message.starts_with(SHA256) {
        return None;
    }
    let mut r = SHA256.to_vec();
    r.extend_from_slice(&mac(authkey, message).finalize().into_bytes());
    Some(r)
}

/// Proves to the peer on `conn` that this side holds `authkey`: answers
/// its challenge and waits for `#WELCOME#`. Python:
/// `multiprocessing.connection.answer_challenge` (CPython 3.12's
/// messages); the other half of [`deliver_challenge`].
///
/// # Errors
/// [`ConnectionError::Authentication`] when the peer sent no challenge,
/// one of a digest other than sha256, or refused the answer; the
/// connection's own errors.
pub async fn answer_challenge(conn: &Connection, authkey: &[u8]) -> Result<(), ConnectionError> {
    let msg = conn.recv_bytes().await?;
    let Some(message) = msg.strip_prefix(CHALLENGE) else {
        return Err(auth_err("the peer sent no challenge"));
    };
    let Some(answer) = response(authkey, message) else {
        return Err(auth_err(
            "the peer's challenge asks for a digest other than sha256",
        ));
    };
    conn.send_bytes(&answer).await?;
    match conn.recv_bytes().await {
        Ok(r) if r == WELCOME => Ok(()),
        Ok(_) | Err(ConnectionError::Eof) => Err(auth_err("the peer refused this side's key")),
        Err(e) => Err(e),
    }
}

/// The listener's side of the handshake.
pub(crate) async fn server(conn: &Connection, key: Option<&[u8]>) -> Result<(), ConnectionError> {
    let max = conn.max_frame();
    conn.set_max_frame(HANDSHAKE_MAX);
    let r = async {
        hello(conn, key.is_some()).await?;
        if let Some(key) = key {
            deliver_challenge(conn, key).await?;
            answer_challenge(conn, key).await?;
        }
        Ok(())
    }
    .await;
    conn.set_max_frame(max);
    r
}

/// The client's side of the handshake.
pub(crate) async fn client(conn: &Connection, key: Option<&[u8]>) -> Result<(), ConnectionError> {
    let max = conn.max_frame();
    conn.set_max_frame(HANDSHAKE_MAX);
    let r = async {
        hello(conn, key.is_some()).await?;
        if let Some(key) = key {
            answer_challenge(conn, key).await?;
            deliver_challenge(conn, key).await?;
        }
        Ok(())
    }
    .await;
    conn.set_max_frame(max);
    r
}

#[cfg(test)]
mod tests {
    // CPython 3.12's _create_response for key b"key" and the message
    // b"{sha256}" + bytes(range(40)), computed with Python's hmac module.
    #[test]
    fn the_answer_is_cpythons() {
        let mut message = super::SHA256.to_vec();
        message.extend(0u8..40);
        let r = super::response(b"key", &message).unwrap();
        let hex: String = r[8..].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(&r[..8], b"{sha256}");
        assert_eq!(
            hex,
            "05b37335205f51ff483146e965fdf576943e0e64675a64ceccba80b6704d76b8"
        );
        assert!(super::response(b"key", &[7u8; 20]).is_none(), "md5 form");
    }
}
