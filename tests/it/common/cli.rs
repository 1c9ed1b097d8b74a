//! The `certplane` binary as a child process, as a user or a CI job runs
//! it: a clean environment (nothing of the caller's Vault, certplane,
//! Kubernetes or logging settings), stdin not a terminal, colours off; one
//! finished run ([`Run`]), or the pull loop `certplane run` ([`Daemon`],
//! with its health and metrics endpoints) killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::OpenBao;

/// Removes every variable of the caller's environment that would change
/// what certplane does: `VAULT_*`, `BAO_*`, `CERTPLANE_*`, `KUBERNETES_*`,
/// `KUBECONFIG` and `RUST_LOG`.
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars() {
        if k.starts_with("VAULT_")
            || k.starts_with("BAO_")
            || k.starts_with("CERTPLANE_")
            || k.starts_with("KUBERNETES_")
            || k == "KUBECONFIG"
            || k == "RUST_LOG"
        {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// `certplane` with a clean environment ([`clean_env`]), `HOME` at `home`
/// (no `~/.vault-token`), `NO_COLOR`, stdin null and stdout/stderr piped.
pub fn command(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_certplane"));
    clean_env(&mut cmd)
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The names of the threads of process `pid` (Linux: `/proc/<pid>/task`);
/// tokio's worker threads are called `tokio-rt-worker`.
pub fn thread_names(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect()
}

/// One finished run of the binary.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl Run {
    /// Runs `cmd` to the end.
    pub fn of(cmd: &mut Command) -> Run {
        let start = Instant::now();
        let out = cmd.output().expect("run the certplane binary");
        Run::from_output(out, start.elapsed())
    }

    /// The run an [`Output`] describes.
    pub fn from_output(out: Output, elapsed: Duration) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed,
        }
    }

    /// Both streams, for assertion messages.
    pub fn both(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Panics (with both streams) unless the exit code is `code`.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\n{}", self.both());
        self
    }
}

/// Runs `certplane <args>` ([`command`] with `home`), then `env`. There is
/// no cluster here: `plan` and `apply` render the cluster half into
/// `home/rendered` unless `args` say `--render`.
pub fn certplane(args: &[&str], env: &[(&str, &str)], home: &Path) -> Run {
    let mut cmd = command(home);
    let rendered = home.join("rendered");
    let mut args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    if matches!(
        args.first().and_then(|a| a.to_str()),
        Some("plan" | "apply")
    ) && !args.iter().any(|a| *a == "--render")
    {
        args.insert(1, std::ffi::OsStr::new("--render"));
        args.insert(2, rendered.as_os_str());
    }
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::of(&mut cmd)
}

/// [`certplane`] against the Vault at `addr` with `token` in `VAULT_*`.
pub fn certplane_as(addr: &str, token: &str, home: &Path, args: &[&str]) -> Run {
    certplane(args, &[("VAULT_ADDR", addr), ("VAULT_TOKEN", token)], home)
}

/// [`certplane`] against `bao` with its root token, `HOME` in its scratch
/// directory.
pub fn certplane_root(bao: &OpenBao, args: &[&str]) -> Run {
    certplane_as(&bao.addr(), bao.token(), bao.dir(), args)
}

/// The `-o json` plan, parsed.
#[track_caller]
pub fn json_plan(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("plan -o json is not JSON ({e})\n{}", run.both()))
}

/// `GET path` over plain HTTP/1.0 on 127.0.0.1:`port` (the health and
/// metrics endpoints of `certplane run`): `(status, body)`, `None` when
/// nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split(' ').nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Some((status, body.to_string()))
}

/// Sends SIGTERM to `child` and waits up to `secs` for it to exit; its exit
/// code, or `Err` with how long it kept running.
pub fn terminate(child: &mut Child, secs: u64) -> Result<Option<i32>, String> {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status();
    if !sent.is_ok_and(|s| s.success()) {
        return Err(format!("cannot send SIGTERM to {pid}"));
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Ok(s.code());
        }
        if Instant::now() > deadline {
            return Err(format!("still running {secs}s after SIGTERM"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `certplane run` following a Git repository, its stderr logged
/// to a file in its scratch directory; killed on drop.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// The port of its `--listen` address (health and metrics).
    pub port: u16,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Daemon {
    /// `certplane -vv run --repo <url> --ref main --interval 1s --listen
    /// 127.0.0.1:<free port> --cache <dir>/cache --render <dir>/rendered
    /// <extra>` ([`command`] with `HOME` at `dir`, its scratch directory),
    /// then `env`.
    pub fn run(dir: tempfile::TempDir, url: &str, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::run_verbose(dir, url, &["-vv"], extra, env)
    }

    /// [`Daemon::run`] with these global flags (`-vv` there; `&[]` for the
    /// default verbosity) instead.
    pub fn run_verbose(
        dir: tempfile::TempDir,
        url: &str,
        global: &[&str],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let port = super::free_port();
        let log = dir.path().join("certplane.log");
        let mut cmd = command(dir.path());
        cmd.args(global)
            .args(["run", "--repo", url, "--ref", "main", "--interval", "1s"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--cache")
            .arg(dir.path().join("cache"))
            .arg("--render")
            .arg(dir.path().join("rendered"))
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("the log file"));
        let child = cmd.spawn().expect("spawn certplane run");
        Daemon {
            child,
            port,
            log,
            dir,
        }
    }

    /// Its scratch directory (`HOME`, the cache and the rendered files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET path` on its listen port: `(status, body)`; `None` when nothing
    /// answers.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.port, path)
    }

    /// `/readyz`: `(status, body)`, `(0, "")` when nothing answers.
    pub fn readyz(&self) -> (u16, String) {
        self.get("/readyz").unwrap_or((0, String::new()))
    }

    /// `/metrics`, parsed; panics unless it answers 200.
    pub fn metrics(&self) -> Metrics {
        let (status, body) = self.get("/metrics").expect("/metrics answers");
        assert_eq!(status, 200, "{body}");
        Metrics::parse(&body)
    }

    /// Polls `f` until it holds or `secs` pass; panics with the logs when
    /// the time is up or the process exits first.
    #[track_caller]
    pub fn wait(&mut self, secs: u64, what: &str, mut f: impl FnMut(&Daemon) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if f(self) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "certplane run exited ({status}) while waiting for {what}\n{}",
                    self.logs()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {secs}s waiting for {what}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prometheus text, parsed: `(name, labels, value)` per sample.
pub struct Metrics(Vec<(String, String, f64)>);

impl Metrics {
    /// Parses the text format (comments left out).
    pub fn parse(text: &str) -> Metrics {
        let mut out = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value: {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n.to_string(), l.trim_end_matches('}').to_string()),
                None => (series.to_string(), String::new()),
            };
            out.push((name, labels, value));
        }
        Metrics(out)
    }

    /// The value of `name{labels}` (`labels` as written, `""` for none).
    pub fn get(&self, name: &str, labels: &str) -> Option<f64> {
        self.0
            .iter()
            .find(|(n, l, _)| n == name && l == labels)
            .map(|x| x.2)
    }

    /// [`Self::get`]; panics when there is no such sample.
    #[track_caller]
    pub fn value(&self, name: &str, labels: &str) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{{{labels}}}"))
    }

    /// Whether there is a sample of `name`.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _, _)| n == name)
    }
}
