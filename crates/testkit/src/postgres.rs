//! A private PostgreSQL server for one test: its own data directory in a
//! temporary directory, no TCP port unless asked for TLS (a Unix socket
//! in that directory), a
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
    /// With TLS: the TCP port on 127.0.0.1 it also listens on.
    tls_port: Option<u16>,
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
        let server = Postgres::init();
        server.launch();
        server
    }

    /// Also listening on a free TCP port of 127.0.0.1 with TLS, its
    /// certificate and key copied from these PEM files.
    pub fn start_with_tls(cert: &Path, key: &Path) -> Postgres {
        let mut server = Postgres::init();
        for (from, to) in [(cert, "server.crt"), (key, "server.key")] {
            let target = server.data.join(to);
            std::fs::copy(from, &target).unwrap();
            run(
                {
                    let mut c = Command::new("chmod");
                    c.arg("600").arg(&target);
                    c
                },
                "chmod the key",
            );
            if is_root() {
                run(
                    {
                        let mut c = Command::new("chown");
                        c.arg("postgres").arg(&target);
                        c
                    },
                    "chown the key",
                );
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        server.tls_port = Some(port);
        server.launch();
        server
    }

    /// `initdb` in a new temporary directory.
    fn init() -> Postgres {
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
        Postgres {
            bin,
            data,
            socket,
            tls_port: None,
            _dir: dir,
        }
    }

    /// Start the server on its data directory and wait until it accepts connections.
    fn launch(&self) {
        let listen = match self.tls_port {
            Some(port) => format!("-c listen_addresses=127.0.0.1 -p {port} -c ssl=on"),
            None => "-c listen_addresses=".into(),
        };
        let options = format!(
            "{listen} -k {} -c max_connections=200 -c shared_buffers=16MB \
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
        let port = self
            .tls_port
            .map(|p| format!(" port={p}"))
            .unwrap_or_default();
        format!(
            "host={}{port} user=tern dbname=postgres",
            self.socket.display()
        )
    }

    /// What `psql` prints for `sql` (unaligned, tuples only), over the socket.
    pub fn psql(&self, sql: &str) -> String {
        let port = self.tls_port.unwrap_or(5432).to_string();
        let socket = self.socket.to_str().unwrap();
        let out = as_server_user(
            Path::new("psql"),
            &[
                "-h", socket, "-p", &port, "-U", "tern", "-d", "postgres", "-Atc", sql,
            ],
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A connection string over TCP to the TLS port (`start_with_tls`),
    /// TLS required.
    pub fn tls_url(&self) -> String {
        let port = self.tls_port.expect("started with TLS");
        format!("host=127.0.0.1 port={port} user=tern dbname=postgres sslmode=require")
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
