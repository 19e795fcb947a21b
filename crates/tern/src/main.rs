//! `tern`: the whole mail server in one binary. This crate owns the command
//! line (`cli`), the configuration (`config`), the admin commands (`admin`)
//! and the wiring of `tern serve` (`serve`); every protocol lives in its own crate.

mod acme;
mod admin;
mod backup;
mod cli;
mod config;
mod dns_check;
mod filters;
mod history;
mod imap_import;
mod jmap_push;
mod jmap_submit;
mod keys;
mod mailbox_files;
mod maintenance;
mod man;
mod messages;
mod metrics;
mod reports;
mod serve;
mod spam;
mod trace;
mod web_admin;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use cli::{Cli, Command};
use config::{BackendName, Config, LogFormat};
use store::Store;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Needs no configuration and no store.
    if let Command::Man { dir } = &cli.command {
        return match man::write(dir) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        };
    }
    let (config, development) = match load_config(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let serving = match &cli.command {
        Command::Serve { quiet: true, .. } => Some("warn".to_string()),
        Command::Serve { log_level, .. } => Some(
            log_level
                .clone()
                .unwrap_or_else(|| config.log_level.clone()),
        ),
        _ => None,
    };
    init_logging(&config, serving.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(run(cli.command, config, development)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("tern: error: {message}");
    ExitCode::FAILURE
}

/// `--config FILE`, else `./tern.toml`, else the development setup.
fn load_config(path: Option<&Path>) -> Result<(Config, bool), String> {
    if let Some(p) = path {
        return Config::load(p)
            .map(|c| (c, false))
            .map_err(|e| e.to_string());
    }
    let local = Path::new("tern.toml");
    if local.exists() {
        return Config::load(local)
            .map(|c| (c, false))
            .map_err(|e| e.to_string());
    }
    Ok((Config::development(), true))
}

/// `level`: the server's log level; None for an admin command.
fn init_logging(config: &Config, level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    // Admin commands stay quiet unless something is wrong.
    let default = level.unwrap_or("warn");
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(command: Command, config: Config, development: bool) -> Result<(), String> {
    // Restoring needs a data directory without a store: before opening one.
    if let Command::Restore { dir } = &command {
        return backup::restore(&config, dir);
    }
    match command {
        Command::Migrate { check: true, .. } => return backup::migrate_check(&config),
        Command::Migrate { to: Some(_), .. } => {
            return backup::copy_to_postgres(&config, database_tls(&config)?).await;
        }
        _ => {}
    }
    let store = open_store(&config).await?;
    match command {
        Command::Serve { .. } => serve::serve(config, store, development)
            .await
            .map_err(|e| e.to_string()),
        Command::Domain(c) => admin::domain(store, c).await.map_err(|e| e.to_string()),
        Command::Account(c) => admin::account(store, c).await.map_err(|e| e.to_string()),
        Command::Alias(c) => admin::alias(store, c).await.map_err(|e| e.to_string()),
        Command::Dns(c) => admin::dns(store, &config, c)
            .await
            .map_err(|e| e.to_string()),
        Command::Queue(c) => admin::queue(store, c).await.map_err(|e| e.to_string()),
        Command::Spam(c) => spam::spam(store, &config, c).await,
        Command::Greylist(c) => spam::greylist(store, c).await,
        Command::Sieve(c) => filters::sieve(store, &config, c).await,
        Command::Key(c) => keys::key(store, c).await.map_err(|e| e.to_string()),
        Command::Import {
            address,
            source,
            password,
            ca_file,
            insecure,
        } => match imap_import::parse_url(&source) {
            None => mailbox_files::import(store, &address, std::path::Path::new(&source))
                .await
                .map_err(|e| e.to_string()),
            Some(_) => {
                let tls = match insecure {
                    true => net::tls::opportunistic_client(&[]),
                    false => net::tls::verifying_client(ca_file.as_deref(), &[]),
                }
                .map_err(|e| e.to_string())?;
                let password = admin::password(password).map_err(|e| e.to_string())?;
                imap_import::import(store, &address, &source, &password, tls)
                    .await
                    .map_err(|e| e.to_string())
            }
        },
        Command::Export { address, dir } => mailbox_files::export(store, &address, &dir)
            .await
            .map_err(|e| e.to_string()),
        Command::Backup { dir } => backup::backup(store, &config, &dir).await,
        Command::Restore { .. } => Ok(()),
        // The store was opened, and so brought up to date, above.
        Command::Migrate { .. } => {
            println!("the store's schema is up to date");
            Ok(())
        }
        Command::Trace {
            message,
            json,
            no_recheck,
        } => trace::trace(store, &config, &message, json, !no_recheck)
            .await
            .map_err(|e| e.to_string()),
        // Handled in main, before a store is opened; the same here.
        Command::Man { dir } => man::write(&dir).map(drop),
        Command::History { what, json, limit } => history::history(store, &what, json, limit)
            .await
            .map_err(|e| e.to_string()),
        Command::Report(c) => reports::report(store, &config, c)
            .await
            .map_err(|e| e.to_string()),
        Command::Dkim(c) => admin::dkim(store, &config, c)
            .await
            .map_err(|e| e.to_string()),
    }
}

async fn open_store(config: &Config) -> Result<Arc<dyn Store>, String> {
    let options = store::StoreOptions {
        busy_timeout: config.store.busy_timeout.0,
        max_size: config.store.max_size,
    };
    let backend = match config.store.backend {
        BackendName::Sqlite => store::Backend::Sqlite(config.data_dir.clone()),
        BackendName::Postgres => store::Backend::Postgres {
            url: config.store.url.clone().unwrap_or_default(),
            tls: database_tls(config)?,
        },
    };
    store::connect(&backend, &options)
        .await
        .map_err(|e| format!("store unreachable: {e}"))
}

/// The TLS client that checks the database server: against `ca_file`, or
/// the system's roots. A machine without any roots and no `ca_file` gets
/// none: a url with `sslmode=require` is then refused rather than spoken
/// to in plain text.
fn database_tls(config: &Config) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    match (
        net::tls::verifying_client(config.store.ca_file.as_deref(), &[]),
        &config.store.ca_file,
    ) {
        (Ok(tls), _) => Ok(Some(tls)),
        (Err(e), Some(_)) => Err(format!("store.ca_file: {e}")),
        (Err(e), None) => {
            tracing::warn!(error = %e, "store: no TLS to the database");
            Ok(None)
        }
    }
}
