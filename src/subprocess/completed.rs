//! `CompletedProcess`: what `run` returns.

use std::ffi::OsString;

use super::errors::CalledProcessError;

/// A child that ran to completion.
///
/// Python: `subprocess.CompletedProcess`. `T` is `Vec<u8>`, or `String` in
/// text mode; `stdout` / `stderr` are `Some` when that stream was captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedProcess<T = Vec<u8>> {
    /// The arguments the child was started with.
    pub args: Vec<OsString>,
    /// Its exit status, `-N` if signal `N` killed it.
    pub returncode: i32,
    /// Captured standard output.
    pub stdout: Option<T>,
    /// Captured standard error.
    pub stderr: Option<T>,
}

impl<T: AsRef<[u8]>> CompletedProcess<T> {
    /// A non-zero status as a [`CalledProcessError`] (with the output).
    /// Python: `CompletedProcess.check_returncode()`.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), conex::subprocess::SubprocessError> {
    /// let done = conex::subprocess::run(["sh", "-c", "exit 4"]).await?;
    /// assert_eq!(done.check_returncode().unwrap_err().returncode, 4);
    /// # Ok(()) }
    /// ```
    pub fn check_returncode(&self) -> Result<(), CalledProcessError> {
        if self.returncode == 0 {
            return Ok(());
        }
        Err(CalledProcessError {
            returncode: self.returncode,
            cmd: self.args.clone(),
            stdout: self.stdout.as_ref().map(|s| s.as_ref().to_vec()),
            stderr: self.stderr.as_ref().map(|s| s.as_ref().to_vec()),
        })
    }

    /// Whether the child exited with status 0.
    pub fn success(&self) -> bool {
        self.returncode == 0
    }
}
