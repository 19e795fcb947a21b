//! A real `tern serve` for a test: its own temporary data, listeners on
//! ephemeral loopback ports, stopped (by its PID) when dropped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct TernServer {
    bin: PathBuf,
    child: Option<Child>,
    dir: tempfile::TempDir,
    config_path: PathBuf,
    addrs: HashMap<String, SocketAddr>,
    /// Lines the server printed on standard output.
    pub stdout: Vec<String>,
}

/// Listener lines for a config: every name on 127.0.0.1:0.
pub fn ephemeral_listeners(names: &[&str]) -> String {
    let mut s = String::from("[listeners]\n");
    for n in names {
        s.push_str(&format!("{n} = \"127.0.0.1:0\"\n"));
    }
    s
}

impl TernServer {
    /// Write a config (`hostname`, `data_dir` and then `config`), start the server and
    /// wait until it is ready.
    pub fn start(bin: &Path, hostname: &str, config: &str) -> TernServer {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let config_path = dir.path().join("tern.toml");
        let text = format!(
            "hostname = \"{hostname}\"\ndata_dir = \"{}\"\n{config}",
            dir.path().join("data").display()
        );
        std::fs::write(&config_path, text).unwrap_or_else(|e| panic!("write config: {e}"));
        let mut server = TernServer {
            bin: bin.to_path_buf(),
            child: None,
            dir,
            config_path,
            addrs: HashMap::new(),
            stdout: Vec::new(),
        };
        server.spawn();
        server
    }

    /// Start (again) on the same data and config.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap_or_else(|e| panic!("log: {e}"));
        let mut child = Command::new(&self.bin)
            .args(["--config"])
            .arg(&self.config_path)
            .arg("serve")
            .env(
                "RUST_LOG",
                std::env::var("TERN_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        self.child = Some(child);
        self.addrs.clear();
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| {
                    panic!(
                        "tern did not become ready; config:\n{}\nlog:\n{}",
                        std::fs::read_to_string(&self.config_path).unwrap_or_default(),
                        self.log()
                    )
                });
            if let Some((name, addr)) = line
                .strip_prefix("tern: ")
                .and_then(|l| l.split_once(" listening on "))
            {
                self.addrs.insert(
                    name.to_string(),
                    addr.parse()
                        .unwrap_or_else(|e| panic!("bad address {addr}: {e}")),
                );
            }
            let ready = line == "tern: ready";
            self.stdout.push(line);
            if ready {
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
    }

    pub fn addr(&self, listener: &str) -> SocketAddr {
        *self
            .addrs
            .get(listener)
            .unwrap_or_else(|| panic!("no {listener} listener; have {:?}", self.addrs.keys()))
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("tern.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Run `tern --config <ours> ARGS...`.
    pub fn admin(&self, args: &[&str]) -> Output {
        self.admin_command(args)
            .output()
            .unwrap_or_else(|e| panic!("admin: {e}"))
    }

    /// The admin command line for `args` (program first), to run some
    /// other way (under a wrapper that measures it).
    pub fn admin_command_line(&self, args: &[&str]) -> Vec<String> {
        let mut line = vec![
            self.bin.display().to_string(),
            "--config".into(),
            self.config_path.display().to_string(),
        ];
        line.extend(args.iter().map(|a| a.to_string()));
        line
    }

    fn admin_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--config").arg(&self.config_path).args(args);
        c
    }

    /// Run an admin command that must succeed; its standard output.
    pub fn admin_ok(&self, args: &[&str]) -> String {
        let out = self.admin(args);
        assert!(
            out.status.success(),
            "tern {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run an admin command that must fail; its standard error.
    pub fn admin_err(&self, args: &[&str]) -> String {
        let out = self.admin(args);
        assert!(
            !out.status.success(),
            "tern {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// SIGTERM, then wait (at most `within`) for the process to exit.
    pub fn stop(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// SIGKILL: the crash of hardening.md C-FT1.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TernServer {
    fn drop(&mut self) {
        self.kill();
    }
}
