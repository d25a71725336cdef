//! Pipelines beyond the conformance suite: streaming a running pipeline,
//! its process group, large data between stages.

use std::time::Duration;

use conex::subprocess::{Command, PIPE, Pipeline};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{eventually, process_gone};

// Large data flows stage to stage; the parent only sees the last stage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_data_between_stages() {
    let done = (Command::shell("head -c 8388608 /dev/zero")
        | Command::new(["cat"])
        | Command::new(["wc", "-c"]))
    .stdout(PIPE)
    .text()
    .await
    .unwrap();
    assert_eq!(done.stdout.unwrap().trim(), "8388608");
    assert_eq!(done.returncodes, [0, 0, 0]);
}

// A running pipeline: write into its first stage, read from its last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_a_running_pipeline() {
    let mut p = Pipeline::new(Command::new(["tr", "a-z", "A-Z"]).stdin(PIPE))
        .pipe(Command::new(["rev"]))
        .stdout(PIPE)
        .popen()
        .unwrap();
    assert_eq!(p.stages.len(), 2);
    let mut stdin = p.stages[0].stdin.take().unwrap();
    let mut stdout = p.stages[1].stdout.take().unwrap();
    stdin.write_all(b"hello\nworld\n").await.unwrap();
    drop(stdin);
    let mut out = String::new();
    stdout.read_to_string(&mut out).await.unwrap();
    assert_eq!(out, "OLLEH\nDLROW\n");
    assert_eq!(p.wait().await.unwrap(), [0, 0]);
    assert_eq!(p.poll(), Some(vec![0, 0]));
}

// communicate on a running pipeline, with per-stage stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_communicate() {
    let mut p = (Command::shell("cat; echo s1 >&2") | Command::shell("sort; echo s2 >&2"))
        .input("b\na\n")
        .capture_output()
        .popen()
        .unwrap();
    let (out, errs) = p.communicate(b"").await.unwrap();
    assert_eq!(out.unwrap(), b"a\nb\n");
    assert_eq!(errs, [Some(b"s1\n".to_vec()), Some(b"s2\n".to_vec())]);
    let mut p = (Command::new(["cat"]).stdin(PIPE) | Command::new(["wc", "-l"]))
        .stdout(PIPE)
        .popen()
        .unwrap();
    let (out, _) = p
        .blocking_communicate_on_thread(b"1\n2\n3\n".to_vec())
        .await;
    assert_eq!(String::from_utf8(out.unwrap()).unwrap().trim(), "3");
}

trait BlockingOnThread {
    async fn blocking_communicate_on_thread(
        &mut self,
        input: Vec<u8>,
    ) -> (Option<Vec<u8>>, Vec<Option<Vec<u8>>>);
}

impl BlockingOnThread for conex::subprocess::PipelinePopen {
    async fn blocking_communicate_on_thread(
        &mut self,
        input: Vec<u8>,
    ) -> (Option<Vec<u8>>, Vec<Option<Vec<u8>>>) {
        // The facade from a plain thread while the runtime keeps going.
        std::thread::scope(|s| {
            s.spawn(|| self.blocking().communicate(&input).unwrap())
                .join()
                .unwrap()
        })
    }
}

// A grouped pipeline is one process group led by its first stage; kill()
// reaches every stage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_pipeline_kill_reaches_every_stage() {
    let mut p = (Command::new(["sleep", "30"]) | Command::new(["sleep", "31"]))
        .process_group()
        .popen()
        .unwrap();
    let leader = p.stages[0].pid() as i32;
    for s in &p.stages {
        // SAFETY: a plain query by pid; the stage is not reaped yet.
        assert_eq!(unsafe { libc::getpgid(s.pid() as i32) }, leader);
    }
    let pids: Vec<u32> = p.stages.iter().map(|s| s.pid()).collect();
    p.kill();
    assert_eq!(p.wait().await.unwrap(), [-9, -9]);
    for pid in pids {
        assert!(eventually(Duration::from_secs(5), || process_gone(pid)));
    }
}

// A pipeline's communicate, cut short again and again, loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_communicate_cancelled_anywhere_loses_nothing() {
    let data: Vec<u8> = (0..(1 << 20)).map(|i| (i % 199) as u8).collect();
    let mut p = (Command::new(["cat"]).stdin(PIPE) | Command::new(["cat"]))
        .stdout(PIPE)
        .popen()
        .unwrap();
    let mut first = true;
    let mut cuts = 0;
    let (out, _) = loop {
        let input: &[u8] = if first { &data } else { b"" };
        first = false;
        match tokio::time::timeout(Duration::from_micros(300), p.communicate(input)).await {
            Ok(r) => break r.unwrap(),
            Err(_) => cuts += 1,
        }
    };
    assert!(cuts > 0);
    assert!(
        out.unwrap() == data,
        "lost or reordered across {cuts} cancellations"
    );
}
