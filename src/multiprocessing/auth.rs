//! The handshake of a new connection: versions first, then the auth key.
//!
//! Each side sends a hello frame (`CONEX-MP`, the protocol version, whether
//! it holds an auth key). With keys on both sides, each then proves it
//! holds the key, as Python's `deliver_challenge` / `answer_challenge`: the
//! challenger sends 40 random bytes, the other answers with their
//! HMAC-SHA256 under the key, the challenger compares in constant time and
//! replies WELCOME or FAILURE. The listener challenges first, then the
//! client. Until it is over, frames are capped at 1 KiB, so an
//! unauthenticated peer cannot make either side allocate.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::connection::Connection;
use super::errors::{AuthenticationError, ConnectionError};

const MAGIC: &[u8] = b"CONEX-MP";
const VERSION: u8 = 1;
const CHALLENGE: &[u8] = b"#CHALLENGE#{sha256}";
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

async fn deliver_challenge(conn: &Connection, key: &[u8]) -> Result<(), ConnectionError> {
    let mut nonce = [0u8; 40];
    random_bytes(&mut nonce)?;
    let mut msg = CHALLENGE.to_vec();
    msg.extend_from_slice(&nonce);
    conn.send_bytes(&msg).await?;
    let answer = conn.recv_bytes().await?;
    if mac(key, &nonce).verify_slice(&answer).is_ok() {
        conn.send_bytes(WELCOME).await?;
        Ok(())
    } else {
        let _ = conn.send_bytes(FAILURE).await;
        Err(auth_err("the peer's answer does not match this side's key"))
    }
}

async fn answer_challenge(conn: &Connection, key: &[u8]) -> Result<(), ConnectionError> {
    let msg = conn.recv_bytes().await?;
    let Some(nonce) = msg.strip_prefix(CHALLENGE) else {
        return Err(auth_err("the peer sent no challenge"));
    };
    let digest = mac(key, nonce).finalize().into_bytes();
    conn.send_bytes(&digest).await?;
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
