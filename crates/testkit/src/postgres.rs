//! A private PostgreSQL server for one test: its own data directory in a
//! temporary directory, no TCP port (a Unix socket in that directory), a
//! small memory footprint (many run at once; no /dev/shm needed), and
//! stopped when dropped. Debian's server binaries live in
//! `/usr/lib/postgresql/<version>/bin` (`scripts/install-test-deps`
//! installs the `postgresql` package); PostgreSQL refuses to run as root,
//! so as root the server runs as the `postgres` user.
//!
//! Only std and tempfile: the store's own suite includes this file by
//! path (the store cannot depend on testkit, which depends on it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running server; `url()` names its database.
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

/// The directory holding `initdb` and `pg_ctl`: on the PATH, or Debian's newest.
fn server_binaries() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file());
    if let Some(dir) = on_path {
        return dir;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.retain(|bin| bin.join("initdb").is_file());
    versions.sort();
    versions.pop().expect(
        "PostgreSQL's server is not installed (Debian: apt-get install postgresql; \
         scripts/install-test-deps does it)",
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `program` with `args`, as the postgres user when we are root.
fn as_server_user(program: &Path, args: &[&str]) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program).args(args);
        c
    } else {
        let mut c = Command::new(program);
        c.args(args);
        c
    }
}

fn run(mut command: Command, what: &str) {
    let out = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    /// initdb and start a server (the `tern` superuser, trust over the
    /// socket only); waits until it accepts connections.
    pub fn start() -> Postgres {
        let bin = server_binaries();
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().to_path_buf();
        let data = socket.join("data");
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres").arg(&socket);
                    c
                },
                "chown the server's directory",
            );
        }
        let data_arg = data.to_str().unwrap();
        run(
            as_server_user(
                &bin.join("initdb"),
                &[
                    "-D",
                    data_arg,
                    "-U",
                    "tern",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
            ),
            "initdb",
        );
        let server = Postgres {
            bin,
            data,
            socket,
            _dir: dir,
        };
        server.launch();
        server
    }

    /// Start the server on its data directory and wait until it accepts connections.
    fn launch(&self) {
        let options = format!(
            "-c listen_addresses= -k {} -c max_connections=200 -c shared_buffers=16MB \
             -c dynamic_shared_memory_type=mmap",
            self.socket.display()
        );
        let log = self.socket.join("server.log");
        run(
            as_server_user(
                &self.bin.join("pg_ctl"),
                &[
                    "-D",
                    self.data.to_str().unwrap(),
                    "-o",
                    &options,
                    "-l",
                    log.to_str().unwrap(),
                    "-w",
                    "start",
                ],
            ),
            "pg_ctl start",
        );
    }

    /// Start it again after `kill`: it recovers from its WAL as after a crash.
    pub fn restart(&self) {
        self.launch();
    }
    /// A libpq-style connection string for the `postgres` database.
    pub fn url(&self) -> String {
        format!("host={} user=tern dbname=postgres", self.socket.display())
    }

    /// Stop the server at once, as a crash would (`pg_ctl -m immediate`).
    pub fn kill(&self) {
        let _ = as_server_user(
            &self.bin.join("pg_ctl"),
            &["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.kill();
    }
}
